// A model written by the Keras → TF.js converter in another project (@upscalerjs/default-model
// 1.0.0, Keras 2.10, a devDependency) as the trunk of a job with two YAML heads: `mtl validate`
// describes it, `mtl run` trains it on wasm with real worker processes, and the exported model
// loads in plain @tensorflow/tfjs and predicts. Its input leaves height and width unknown
// ([?, ?, 3]): the job's data (synthetic rows given as [8, 8, 3]) fills them in, and the export
// declares the model's own [?, ?, 3] again.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadJobFile } from '../../common/job-spec.js';
import { prepareRun } from '../../coordinator/prepare-run.js';
import { runCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp-dirs.js';

const UPSCALER = path.join(REPO_ROOT, 'node_modules', '@upscalerjs', 'default-model', 'models', 'model.json');
/** The converted model's layers up to FDF (its global residual feature map, 64 channels), the cut. */
const TRUNK = ['LR', 'F_m1', 'F_0', 'F_1_1', 'F_1_1_Relu', 'RDB_Concat_1_1', 'LFF_1', 'LRL_1', 'F_2_1', 'F_2_1_Relu', 'RDB_Concat_2_1', 'LFF_2', 'LRL_2', 'LRLs_Concat', 'GFF_1', 'GFF_2', 'FDF'];
const TRAINED = ['GFF_1', 'GFF_2'];

function upscalerJob(): string {
  const data = (target: number) => ({ dataset: 'synthetic', target, dim: 192, shape: [8, 8, 3], samples: 400 });
  const head = [{ globalAveragePooling2d: {} }, { dense: { units: 1 } }];
  return writeJob(
    {
      name: 'upscaler-trunk',
      seed: 3,
      model: { layersModel: UPSCALER, trunkOutput: 'FDF', trainable: TRAINED, heads: { a: head, b: head } },
      tasks: {
        a: { loss: 'meanSquaredError', metrics: ['mae'], data: data(0) },
        b: { loss: 'meanSquaredError', metrics: ['mae'], data: data(1) },
      },
      training: { steps: 4, batchSize: 8, optimizer: { name: 'adam', learningRate: 0.01 }, aggregator: { name: 'upgrad' } },
    },
    tempDir('mtl-upscaler-job-'),
  );
}

/** A model directory through plain tfjs: its JSON and weight files handed to tf.io.fromMemory. */
async function loadPlain(modelJson: string): Promise<tf.LayersModel> {
  const json = JSON.parse(readFileSync(modelJson, 'utf8')) as tf.io.ModelJSON;
  const weightSpecs = json.weightsManifest.flatMap((g) => g.weights);
  const bytes = Buffer.concat(json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(path.join(path.dirname(modelJson), p)))));
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData }));
}

const kernel = (model: tf.LayersModel, layer: string): Float32Array => model.getLayer(layer).getWeights()[0]!.dataSync() as Float32Array;

void describe('a Keras model converted by another project, as a trunk with two YAML heads', () => {
  const jobFile = upscalerJob();

  void it('is described by mtl validate: the input sizes from the data, every trunk layer with its group', async () => {
    const r = await runCli(['validate', jobFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /model inputs: LR \[8, 8, 3\] float32 \(the model's \[\?, \?, 3\], sizes from the data; the exported model keeps \[\?, \?, 3\]\); task outputs: a ← a \[1\], b ← b \[1\]/);
    for (const layer of ['F_m1', 'F_0', 'F_1_1', 'LFF_1', 'F_2_1', 'LFF_2']) assert.match(r.stdout, new RegExp(`\\n\\s+${layer}\\s+Conv2D\\s+2\\s+\\d+\\s+frozen\\s+a, b\\n`));
    assert.match(r.stdout, /GFF_2\s+Conv2D\s+2\s+36928\s+shared\s+a, b/);
    assert.match(r.stdout, /\n\s+a\s+Dense\s+2\s+65\s+task:a\s+a\n/);
    assert.match(r.stdout, /\n\s+b\s+Dense\s+2\s+65\s+task:b\s+b\n/);
    // The layers after the cut (the upsampling part) are not in the composition.
    assert.doesNotMatch(r.stdout, /UPN1/);
  });

  void it('trains on wasm with 2 workers; the export loads in plain tfjs, takes any image size, and kept the frozen weights', async () => {
    const out = tempDir('mtl-upscaler-run-');
    const r = await runCli(['run', jobFile, '--workers', '2', '--backend', 'wasm', '--out', out, '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { status: string; backend: string; stepsCompleted: number };
    assert.deepEqual([summary.status, summary.backend, summary.stepsCompleted], ['succeeded', 'wasm', 4]);

    const model = await loadPlain(path.join(out, 'model', 'model.json'));
    const original = await loadPlain(UPSCALER);
    try {
      assert.deepEqual(model.layers.map((l) => l.name), [...TRUNK, 'a_0_globalAveragePooling2d', 'b_0_globalAveragePooling2d', 'a', 'b']);
      assert.deepEqual(model.outputNames, ['a', 'b']);
      assert.deepEqual(model.inputs[0]!.shape, [null, null, null, 3], "the export declares the converted model's own input");
      for (const shape of [[2, 8, 8, 3], [1, 12, 20, 3]]) {
        const x = tf.randomUniform(shape, 0, 1, 'float32', 11);
        const ys = model.predict(x) as tf.Tensor[];
        assert.deepEqual(ys.map((y) => y.shape), [[shape[0], 1], [shape[0], 1]]);
        for (const y of ys) assert.ok(Array.from(y.dataSync()).every(Number.isFinite));
        tf.dispose([x, ...ys]);
      }

      // Frozen layers hold the file's weights bit for bit; the layers trainable names moved.
      for (const layer of ['F_m1', 'F_0', 'LFF_2']) assert.deepEqual(kernel(model, layer), kernel(original, layer), `${layer} is frozen`);
      for (const layer of TRAINED) assert.notDeepEqual(kernel(model, layer), kernel(original, layer), `${layer} trains`);
      // The heads moved off their seeded initial weights.
      const { layout, initialParams } = prepareRun(loadJobFile(jobFile));
      for (const head of ['a', 'b']) {
        const t = layout.tensors.find((s) => s.name === `${head}/kernel`)!;
        assert.notDeepEqual(kernel(model, head), initialParams.slice(t.offset, t.offset + t.size), `head ${head} trained`);
      }
    } finally {
      model.dispose();
      original.dispose();
    }
  });
});
