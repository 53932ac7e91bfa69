// A model of the user's through the whole product: `mtl validate` describes a module's model,
// `mtl run` trains a Layers model.json (the same model, saved) with real worker processes (wasm)
// to bitwise the same weights with 1 and 3 workers, with
// BatchNormalization and dropout in the trunk, and the exported model loads in plain tfjs with
// the user's layer and output names.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { saveLayersModel } from '../../common/model-files.js';
import { runCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';
import { loadExportedModel, trainJob } from '../helpers/training-runs.js';

/** A model module: a small CNN trunk with BatchNormalization and dropout, and two outputs named as Keras users name them. */
const MODULE = `
export default function build(tf) {
  const input = tf.input({ shape: [28, 28, 1], name: 'image' });
  let h = tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, name: 'conv' }).apply(input);
  h = tf.layers.batchNormalization({ name: 'bn' }).apply(h);
  h = tf.layers.activation({ activation: 'relu', name: 'relu' }).apply(h);
  h = tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(h);
  h = tf.layers.flatten({ name: 'flat' }).apply(h);
  h = tf.layers.dense({ units: 16, activation: 'relu', name: 'features' }).apply(h);
  h = tf.layers.dropout({ rate: 0.2, name: 'drop' }).apply(h);
  const left = tf.layers.dense({ units: 10, activation: 'softmax', name: 'digit_left' }).apply(h);
  const right = tf.layers.dense({ units: 10, activation: 'softmax', name: 'digit_right' }).apply(h);
  return tf.model({ inputs: input, outputs: [left, right], name: 'two_digits' });
}
`;

/** The job, with the model from the module, or (`file`) from a Layers model.json the module's model was saved to. */
async function userJob(dir: string, steps: number, file = false): Promise<string> {
  writeFileSync(path.join(dir, 'two-digits.mjs'), MODULE);
  if (file) {
    const build = ((await import(pathToFileURL(path.join(dir, 'two-digits.mjs')).href)) as { default: (t: typeof tf) => tf.LayersModel }).default;
    const model = build(tf);
    await saveLayersModel(model, path.join(dir, 'two-digits'), {});
    model.dispose();
  }
  const data = (target: string) => ({ dataset: 'multimnist', target, trainSize: 1000, testSize: 200 });
  return writeJob(
    {
      name: 'user-model',
      seed: 5,
      model: file ? { layersModel: './two-digits/model.json' } : { module: './two-digits.mjs' },
      tasks: {
        left: { output: 'digit_left', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: data('left') },
        right: { output: 'digit_right', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: data('right') },
      },
      training: { steps, batchSize: 16, shardsPerTask: 3, optimizer: { name: 'adam', learningRate: 0.002 }, aggregator: { name: 'pcgrad' } },
    },
    dir,
  );
}

void describe('a model of the user (model.module, model.layersModel)', () => {
  void it('is described by mtl validate: inputs, outputs, and which tasks share each layer', async () => {
    const r = await runCli(['validate', await userJob(tempDir('mtl-user-job-'), 6)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /model inputs: image \[28, 28, 1\] float32; task outputs: left ← digit_left \[10\], right ← digit_right \[10\]/);
    assert.match(r.stdout, /bn\s+BatchNormalization\s+4\s+16\s+shared\+state\s+left, right/);
    assert.match(r.stdout, /digit_left\s+Dense\s+2\s+170\s+task:left\s+left/);
    assert.match(r.stdout, /8 state values/);
  });

  void it('a two-output Layers model.json trains to bitwise the same weights with 1 and 3 workers (BatchNormalization, dropout, 3 shards per task), and exports the user model', async () => {
    const jobFile = await userJob(tempDir('mtl-user-file-'), 6, true);
    const one = await trainJob(jobFile, 1);
    const three = await trainJob(jobFile, 3);
    assert.equal(one.weights.length, three.weights.length);
    assert.ok(one.weights.equals(three.weights), 'weights differ between 1 and 3 workers');

    const model = await loadExportedModel(one.out);
    assert.deepEqual(model.outputNames, ['digit_left', 'digit_right']);
    assert.deepEqual(model.layers.map((l) => l.name), ['image', 'conv', 'bn', 'relu', 'pool', 'flat', 'features', 'drop', 'digit_left', 'digit_right']);
    // The moving statistics moved off their initial values (0 and 1): the state was trained.
    const movingMean = model.getLayer('bn').getWeights()[2]!.dataSync();
    assert.ok(Array.from(movingMean).some((v) => v !== 0));
    const out = model.predict(tf.zeros([2, 28, 28, 1])) as tf.Tensor[];
    assert.deepEqual(out[0]!.shape, [2, 10]);
    const sums = tf.sum(out[0]!, 1).dataSync();
    for (const s of sums) assert.ok(Math.abs(s - 1) < 1e-5, 'the export keeps the softmax');
    model.dispose();
  });
});
