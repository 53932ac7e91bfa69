// A user's model whose input leaves sizes unknown (common/input-shapes.ts): the sizes come from
// the tasks' data, the composition and its layout are built for that shape (on the coordinator
// and, through the Welcome's config, on a worker), the exported model declares the model's own
// shape when the weights allow it, and data the model cannot take is refused naming the input,
// the model's shape and the task's data shape.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JobSpecError } from '../../common/errors.js';
import { graphModelWithParameters, layoutForGraph } from '../../common/graph-layout.js';
import { configWithInputShapes } from '../../common/input-shapes.js';
import { validateJob, type JobSpec } from '../../common/job-spec.js';
import { modelFromGraphConfig, type GraphSpec } from '../../common/model-graph.js';
import { prepareUserModel } from '../../common/user-model.js';
import { GraphRunner } from '../../worker/graph-runner.js';

const SYNTH = (target: number) => ({ dataset: 'synthetic', target, dim: 90, shape: [6, 5, 3] });

function job(model: Record<string, unknown>): JobSpec {
  return validateJob(
    {
      name: 'open',
      seed: 2,
      model,
      tasks: { a: { loss: 'meanSquaredError', data: SYNTH(0) }, b: { loss: 'meanSquaredError', data: SYNTH(1) } },
      training: { steps: 2, batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.1 } },
    },
    'test',
  );
}

/** An image model of any height and width, as Keras' Input(shape=(None, None, 3)) gives. */
function anySizeConv(): tf.LayersModel {
  const x = tf.input({ shape: [null, null, 3], name: 'image' });
  const h = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv' }).apply(x) as tf.SymbolicTensor;
  const f = tf.layers.conv2d({ filters: 2, kernelSize: 1, name: 'features' }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: f, name: 'any_size' });
}

const POOLED = { a: [{ globalAveragePooling2d: {} }, { dense: { units: 1 } }], b: [{ globalAveragePooling2d: {} }, { dense: { units: 1 } }] };
const FLAT = { a: [{ flatten: {} }, { dense: { units: 1 } }], b: [{ flatten: {} }, { dense: { units: 1 } }] };
const SHAPES = new Map([
  ['a', [6, 5, 3]],
  ['b', [6, 5, 3]],
]);

function refused(base: tf.LayersModel, shapes: ReadonlyMap<string, readonly number[]>, pattern: RegExp): void {
  assert.throws(
    () => prepareUserModel(job({ layersModel: 'm.json', heads: POOLED }), { model: base, weightsLoaded: false }, shapes),
    (err: unknown) => err instanceof JobSpecError && pattern.test(err.message),
  );
}

void describe('a model input of unknown size, filled in from the data', () => {
  void it("builds the composition for the data's shape; a worker rebuilds the same layout from the Welcome's config", () => {
    const base = anySizeConv();
    const prepared = prepareUserModel(job({ layersModel: 'm.json', heads: POOLED }), { model: base, weightsLoaded: true }, SHAPES);
    const graph = prepared.layout.graph!;
    assert.deepEqual(graph.inputs, [{ name: 'image', shape: [6, 5, 3], dtype: 'float32', declared: [null, null, 3] }]);
    assert.deepEqual(prepared.layout.inputShape, [6, 5, 3]);
    assert.equal(graph.spec.exportDeclared, true);
    // The rebuild kept the model's weights.
    const conv = prepared.layout.tensors.find((t) => t.name === 'conv/kernel')!;
    assert.deepEqual(Array.from(prepared.initialParams.subarray(conv.offset, conv.offset + conv.size)), Array.from(base.getLayer('conv').getWeights()[0]!.dataSync()));

    const wire = JSON.parse(JSON.stringify(graph.spec)) as GraphSpec;
    const model = modelFromGraphConfig(wire.config);
    const worker = layoutForGraph(job({ layersModel: 'm.json', heads: POOLED }), model, wire, SHAPES);
    model.dispose();
    assert.deepEqual(
      worker.tensors.map((t) => [t.name, t.offset, t.group]),
      prepared.layout.tensors.map((t) => [t.name, t.offset, t.group]),
    );
    const runner = new GraphRunner(worker, new Map([['a', { loss: 'meanSquaredError' as const, metrics: [] }]]));
    runner.setWeights(prepared.initialParams);
    const x = Float32Array.from({ length: 2 * 90 }, (_, i) => Math.cos(i));
    const { loss, grads } = runner.gradients('a', x, Float32Array.from([0.5, -1]), { training: true });
    assert.ok(Number.isFinite(loss) && grads.some((g) => g !== 0));
    runner.dispose();
  });

  void it("exports the model's own [?, ?, 3] when no weight depends on the sizes, the data's when one does (flatten → dense)", () => {
    const pooled = prepareUserModel(job({ layersModel: 'm.json', heads: POOLED }), { model: anySizeConv(), weightsLoaded: false }, SHAPES);
    const exported = graphModelWithParameters(pooled.layout, pooled.initialParams);
    assert.deepEqual(exported.inputs[0]!.shape, [null, null, null, 3]);
    const y = exported.predict(tf.ones([1, 9, 7, 3])) as tf.Tensor[];
    assert.deepEqual(y.map((t) => t.shape), [[1, 1], [1, 1]]);
    tf.dispose(y);
    exported.dispose();

    const flat = prepareUserModel(job({ layersModel: 'm.json', heads: FLAT }), { model: anySizeConv(), weightsLoaded: false }, SHAPES);
    assert.equal(flat.layout.graph!.spec.exportDeclared, false);
    assert.equal(flat.layout.tensors.find((t) => t.name === 'a/kernel')!.size, 6 * 5 * 2, "the head's dense is sized by the data's shape");
    const fixed = graphModelWithParameters(flat.layout, flat.initialParams);
    assert.deepEqual(fixed.inputs[0]!.shape, [null, 6, 5, 3]);
    fixed.dispose();
  });

  void it('takes a Sequential of any sequence length', () => {
    const seq = tf.sequential({
      layers: [tf.layers.conv1d({ inputShape: [null, 3], filters: 2, kernelSize: 2, name: 'c' }), tf.layers.globalAveragePooling1d({ name: 'g' })],
    });
    const spec = validateJob(
      {
        name: 'seq',
        model: { layersModel: 'm.json', heads: { a: [{ dense: { units: 1 } }] } },
        tasks: { a: { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: 0, tasks: 1, dim: 15, shape: [5, 3] } } },
        training: { steps: 1, batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.1 } },
      },
      'test',
    );
    const prepared = prepareUserModel(spec, { model: seq, weightsLoaded: false }, new Map([['a', [5, 3]]]));
    assert.deepEqual(prepared.layout.graph!.inputs[0]!.shape, [5, 3]);
    assert.deepEqual(prepared.layout.graph!.inputs[0]!.declared, [null, 3]);
  });

  void it("refuses data the model cannot take, naming the input, the model's shape and the task's data shape", () => {
    refused(anySizeConv(), new Map([['a', [90]], ['b', [90]]]), /tasks\.a\.data: task a's data has examples of shape \[90\], but the model's input "image" \[\?, \?, 3\] takes 3 dimension\(s\) per example, not 1/);
    refused(anySizeConv(), new Map([['a', [6, 5, 2]], ['b', [6, 5, 3]]]), /tasks\.a\.data: task a's data has examples of shape \[6, 5, 2\], but the model's input "image" \[\?, \?, 3\] has size 3 at dimension 3, not 2/);
    refused(
      anySizeConv(),
      new Map([['a', [6, 5, 3]], ['b', [4, 4, 3]]]),
      /tasks\.b\.data: task b's data has examples of shape \[4, 4, 3\], but task a's data has \[6, 5, 3\]: the model's input "image" \[\?, \?, 3\] takes its unknown sizes from the data, and every task must agree/,
    );
    const x = tf.input({ shape: [null, 3], name: 'seq' });
    const y = tf.input({ shape: [2], name: 'side' });
    const pooled = tf.layers.globalAveragePooling1d({ name: 'pool' }).apply(x) as tf.SymbolicTensor;
    const two = tf.model({ inputs: [x, y], outputs: tf.layers.concatenate({ name: 'cat' }).apply([pooled, y]) as tf.SymbolicTensor });
    assert.throws(
      () => prepareUserModel(job({ layersModel: 'm.json', heads: { a: [{ dense: { units: 1 } }], b: [{ dense: { units: 1 } }] } }), { model: two, weightsLoaded: false }, SHAPES),
      /model: input "seq" \[\?, 3\] leaves a size unknown: with several inputs/,
    );
  });

  void it('configWithInputShapes rewrites the input layers of a functional config in input order', () => {
    const config = configWithInputShapes(anySizeConv().getConfig(), [[4, 4, 3]]);
    const model = modelFromGraphConfig(config);
    assert.deepEqual(model.inputs[0]!.shape, [null, 4, 4, 3]);
    assert.deepEqual(model.getLayer('features').outputShape, [null, 4, 4, 2]);
    model.dispose();
  });
});
