// The FLOP count behind `npm run bench -- compute`, against counts done by hand; for a model of
// the user's (the graph path), also against the YAML twin the bench times next to it.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadJobFile, validateJob, type JobSpec } from '../../common/job-spec.js';
import { modelFromGraphConfig } from '../../common/model-graph.js';
import { buildLayout } from '../../common/parameter-layout.js';
import { prepareUserModel, readBaseModel } from '../../common/user-model.js';
import { graphTrainingFlops, sharedBatchFlops, trainingFlops } from '../../bench/flops.js';
import { yamlTwin } from '../../bench/yaml-twin.js';
import { EXAMPLES } from '../helpers/paths.js';
import { jobWithModel } from '../helpers/unit-jobs.js';

void describe('trainingFlops and sharedBatchFlops', () => {
  void it('counts dense layers as 3 × 2·n·in·out, less the input gradient of the first', () => {
    const job = jobWithModel({ trunk: [{ dense: { units: 4 } }], heads: { a: [{ dense: { units: 2 } }], b: [{ dense: { units: 3 } }] } });
    const layout = buildLayout(job, [5]);
    // trunk 5→4 (2·10·20 = 400: forward + weight gradient), head a 4→2 (2·10·8 = 160, ×3): 800 + 480.
    assert.equal(trainingFlops(layout, 'a', 10), 1280);
    // head b 4→3 (240, ×3): 800 + 720.
    assert.equal(trainingFlops(layout, 'b', 10), 1520);
    // Sharing the batch saves the trunk's second forward pass (400).
    assert.equal(sharedBatchFlops(layout, ['a', 'b'], 10), 1280 + 1520 - 400);
    assert.equal(sharedBatchFlops(layout, ['a'], 10), 1280);
  });

  void it('counts conv2d as 3 × 2·n·oh·ow·kh·kw·cin·cout and skips pooling and flatten', () => {
    const job = jobWithModel({
      trunk: [{ conv2d: { filters: 2, kernelSize: 3 } }, { maxPooling2d: { poolSize: 2 } }, { flatten: {} }],
      heads: { a: [{ dense: { units: 1 } }], b: [{ dense: { units: 1 } }] },
    });
    const layout = buildLayout(job, [6, 6, 1]);
    // conv: 6x6x1 → 4x4x2 (valid), 2·1·4·4·3·3·1·2 = 576, reads the input; pool → 2x2x2 →
    // flatten 8; dense 8→1: 2·1·8·1 = 16.
    assert.equal(trainingFlops(layout, 'a', 1), 2 * 576 + 3 * 16);
  });
});

/** A layers-model job with dense heads of one unit on `trunkOutput`. */
function userJob(model: Record<string, unknown>): JobSpec {
  const head = [{ dense: { units: 1 } }];
  return validateJob(
    {
      name: 'flops',
      model: { layersModel: 'm.json', heads: { a: head, b: head }, ...model },
      tasks: { a: { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: 0 } }, b: { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: 1 } } },
      training: { steps: 1, batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.1 } },
    },
    'test',
  );
}

/** graphTrainingFlops of `task` for `base` composed with `job`, whose data have `shape`. */
function graphFlops(job: JobSpec, base: tf.LayersModel, shape: number[], task: string, n: number): number {
  const { layout } = prepareUserModel(job, { model: base, weightsLoaded: false }, new Map(Object.keys(job.tasks).map((t) => [t, shape])));
  const model = modelFromGraphConfig(layout.graph!.spec.config);
  try {
    return graphTrainingFlops(layout, model, task, n);
  } finally {
    model.dispose();
  }
}

void describe('graphTrainingFlops (a model of the user)', () => {
  const convTrunk = () => {
    const x = tf.input({ shape: [6, 6, 1], name: 'image' });
    let h = tf.layers.conv2d({ filters: 2, kernelSize: 3, name: 'conv' }).apply(x) as tf.SymbolicTensor;
    h = tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(h) as tf.SymbolicTensor;
    h = tf.layers.flatten({ name: 'flat' }).apply(h) as tf.SymbolicTensor;
    return tf.model({ inputs: x, outputs: h });
  };

  void it('counts a chain as trainingFlops does, and a frozen trunk as its forward pass only', () => {
    // As the YAML count above: conv 576 forward + weight gradient, head dense 16 × 3.
    assert.equal(graphFlops(userJob({ trunkOutput: 'flat' }), convTrunk(), [6, 6, 1], 'a', 1), 2 * 576 + 3 * 16);
    // Frozen: the conv's forward pass; the head needs its weight gradient, no input gradient.
    assert.equal(graphFlops(userJob({ trunkOutput: 'flat', trainable: false }), convTrunk(), [6, 6, 1], 'a', 1), 576 + 2 * 16);
  });

  void it('needs an input gradient exactly where a training layer lies upstream', () => {
    const x = tf.input({ shape: [5], name: 'x' });
    const d1 = tf.layers.dense({ units: 4, name: 'd1' }).apply(x) as tf.SymbolicTensor;
    const d2 = tf.layers.dense({ units: 3, name: 'd2' }).apply(d1) as tf.SymbolicTensor;
    const d3 = tf.layers.dense({ units: 2, name: 'd3' }).apply(d2) as tf.SymbolicTensor;
    const base = tf.model({ inputs: x, outputs: d3 });
    // d1 5→4 = 40 (frozen, nothing upstream trains: forward only), d2 4→3 = 24 (trains, its
    // input needs no gradient: forward + weights), d3 3→2 = 12 (frozen, d2 upstream: forward +
    // input), head 2→1 = 4 (trains, d2 upstream: × 3); n = 10.
    assert.equal(graphFlops(userJob({ trunkOutput: 'd3', trainable: ['d2'] }), base, [5], 'b', 10), 10 * (40 + 2 * 24 + 2 * 12 + 3 * 4));
  });

  void it('counts examples/pretrained-trunk as the bench\'s YAML twin of it, which has the same parameters', () => {
    const loaded = loadJobFile(path.join(EXAMPLES, 'pretrained-trunk.yaml'));
    const fineTuned: JobSpec = { ...loaded.spec, model: { ...loaded.spec.model, trainable: true } };
    const base = readBaseModel(fineTuned, loaded.dir);
    const twin = yamlTwin(fineTuned, base.model);
    const twinLayout = buildLayout(twin, twin.model.input!);
    const { layout } = prepareUserModel(fineTuned, base, new Map([['left', [28, 28, 1]], ['right', [28, 28, 1]]]));
    assert.equal(twinLayout.totalSize, layout.totalSize);
    assert.equal(twinLayout.shared.size, layout.shared.size);
    const model = modelFromGraphConfig(layout.graph!.spec.config);
    for (const task of ['left', 'right']) assert.equal(graphTrainingFlops(layout, model, task, 64), trainingFlops(twinLayout, task, 64));
    model.dispose();
  });

  void it('yamlTwin refuses a model that is not a chain of fast-path layers, naming the layer', () => {
    const x = tf.input({ shape: [4], name: 'x' });
    const a = tf.layers.dense({ units: 2, name: 'a_tower' }).apply(x) as tf.SymbolicTensor;
    const b = tf.layers.dense({ units: 2, name: 'b_tower' }).apply(x) as tf.SymbolicTensor;
    const branched = tf.model({ inputs: x, outputs: tf.layers.concatenate({ name: 'cat' }).apply([a, b]) as tf.SymbolicTensor });
    assert.throws(() => yamlTwin(userJob({ trunkOutput: 'cat' }), branched), /layer "b_tower" does not read "a_tower" alone: not a chain/);
    const normed = tf.model({ inputs: x, outputs: tf.layers.layerNormalization({ name: 'ln' }).apply(x) as tf.SymbolicTensor });
    assert.throws(() => yamlTwin(userJob({ trunkOutput: 'ln' }), normed), /layer "ln" \(LayerNormalization\) has no fast-path twin/);
  });
});
