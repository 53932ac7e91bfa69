// The example Layers models of examples/models/ (written by scripts/make-example-models.mjs), the
// models the "bring your own model" jobs name with `model: { layersModel: ... }`: each loads with
// plain tf.loadLayersModel, has the inputs, outputs and layers the examples rely on, and
// predicts; the untrained ones are exactly what the script writes; the CNN carries its trained
// weights (it classifies held-out MNIST digits).
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { loadMultiMnist, readMnistDigits, type MnistDigits, type MultiMnistSplit } from '../../common/datasets/multimnist.js';
import type { MultiMnistSpec } from '../../common/job-schema.js';
import { fileSystemModel, MODEL_JSON, WEIGHTS_BIN } from '../../common/model-files.js';
import { Rng } from '../../common/random.js';
import { selectBackend } from '../../worker/backend.js';
import { EXAMPLES, REPO_ROOT } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp-dirs.js';

const MODELS_DIR = path.join(EXAMPLES, 'models');
const SCRIPT = path.join(REPO_ROOT, 'scripts', 'make-example-models.mjs');
const UNTRAINED = ['two-tower', 'mnist-rows-lstm', 'mnist-bn-trunk'];

interface Expected {
  inputs: Array<[string, number[]]>;
  outputs: Array<[string, number[]]>;
  /** Layers the examples name (e.g. as trunkOutput), with their class and output shape. */
  layers: Array<[string, string, number[]]>;
  trunkOutput: string;
  maxWeightBytes: number;
}

const MNIST_INPUT: Array<[string, number[]]> = [['input', [28, 28, 1]]];
const EXPECTED: Record<string, Expected> = {
  'two-tower': {
    inputs: [['rain', [1]], ['temp_wind', [2]]],
    outputs: [['out_a', [5]], ['out_b', [1]]],
    layers: [['rain_tower', 'Dense', [8]], ['temp_wind_tower', 'Dense', [8]], ['towers_concat', 'Concatenate', [16]], ['shared', 'Dense', [32]]],
    trunkOutput: 'shared',
    maxWeightBytes: 1 << 20,
  },
  'mnist-digit-cnn': {
    inputs: MNIST_INPUT,
    outputs: [['digit', [10]]],
    layers: [['conv1', 'Conv2D', [26, 26, 8]], ['conv2', 'Conv2D', [11, 11, 16]], ['features', 'Dense', [64]]],
    trunkOutput: 'features',
    maxWeightBytes: 1.1 * (1 << 20),
  },
  'mnist-rows-lstm': {
    inputs: MNIST_INPUT,
    outputs: [['left', [10]], ['right', [10]]],
    layers: [['rows', 'Reshape', [28, 28]], ['rows_bilstm', 'Bidirectional', [32]], ['features', 'Dense', [64]]],
    trunkOutput: 'features',
    maxWeightBytes: 1 << 20,
  },
  'mnist-bn-trunk': {
    inputs: MNIST_INPUT,
    outputs: [['left', [10]], ['right', [10]]],
    layers: [['conv', 'Conv2D', [26, 26, 8]], ['bn', 'BatchNormalization', [26, 26, 8]], ['relu', 'ReLU', [26, 26, 8]], ['features', 'Dense', [64]]],
    trunkOutput: 'features',
    maxWeightBytes: 1 << 20,
  },
};

/** The MultiMNIST data defaults (common/job-schema.ts), whose pools the CNN's training respected. */
const MULTIMNIST: MultiMnistSpec = { dataset: 'multimnist', target: 'left', trainSize: 60000, testSize: 10000, shift: 4, testFraction: 0.15, seed: 0 };
/** Measured on these 500 digits when the model was made: 0.970 (wasm); an untrained model scores ~0.1. */
const MIN_ACCURACY = 0.95;

const load = (name: string) => tf.loadLayersModel(fileSystemModel(path.join(MODELS_DIR, name)));
const metadataOf = (name: string) => (JSON.parse(readFileSync(path.join(MODELS_DIR, name, MODEL_JSON), 'utf8')) as { userDefinedMetadata: Record<string, unknown> }).userDefinedMetadata;

/** Seeded inputs in [0, 1) for each of the model's inputs, a batch of `batch`. */
function inputsFor(model: tf.LayersModel, batch: number): tf.Tensor[] {
  const rng = new Rng(7);
  return model.inputs.map((input) => {
    const shape = [batch, ...input.shape.slice(1).map(Number)];
    return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.next()), shape);
  });
}

/** Distinct digit ids the images of a MultiMNIST split overlay, in order of first appearance. */
function digitsOf(split: MultiMnistSplit, digits: MnistDigits): number[] {
  const ids = new Set<number>();
  for (let i = 0; i < split.size; i++) {
    const { left, right } = split.digitPair(i);
    ids.add(digits.offsets[left.digit]! + left.index);
    ids.add(digits.offsets[right.digit]! + right.index);
  }
  return [...ids];
}

void describe('example models (examples/models/)', () => {
  before(async () => {
    tf.enableProdMode();
    await selectBackend('cpu');
  });

  for (const [name, expected] of Object.entries(EXPECTED)) {
    void it(`${name}: loads with tf.loadLayersModel, has the named inputs, outputs and layers, and predicts a batch`, async () => {
      const weightBytes = statSync(path.join(MODELS_DIR, name, WEIGHTS_BIN)).size;
      assert.ok(weightBytes > 0 && weightBytes < expected.maxWeightBytes, `${WEIGHTS_BIN} is ${weightBytes} bytes`);
      const model = await load(name);
      try {
        assert.deepEqual(model.inputNames, expected.inputs.map(([n]) => n));
        assert.deepEqual(model.inputs.map((t) => t.shape.slice(1)), expected.inputs.map(([, s]) => s));
        assert.deepEqual(model.outputNames, expected.outputs.map(([n]) => n));
        assert.deepEqual(model.outputs.map((t) => t.shape.slice(1)), expected.outputs.map(([, s]) => s));
        for (const [layer, className, shape] of expected.layers) {
          const l = model.getLayer(layer);
          assert.equal(l.getClassName(), className, layer);
          assert.deepEqual((l.output as tf.SymbolicTensor).shape.slice(1), shape, layer);
        }
        assert.equal(metadataOf(name).trunkOutput, expected.trunkOutput);

        const batch = 3;
        const xs = inputsFor(model, batch);
        const ys = model.predict(xs.length === 1 ? xs[0]! : xs);
        const outputs = Array.isArray(ys) ? ys : [ys];
        assert.deepEqual(outputs.map((y) => y.shape), expected.outputs.map(([, s]) => [batch, ...s]));
        for (const [k, y] of outputs.entries()) {
          const values = y.dataSync();
          assert.ok(values.every(Number.isFinite), `${expected.outputs[k]![0]} is finite`);
          if (y.shape[1]! > 1) {
            // The classification outputs are softmax: each row sums to 1.
            const sums = tf.tidy(() => y.sum(-1).dataSync());
            for (const s of sums) assert.ok(Math.abs(s - 1) < 1e-5, `row sums to ${s}`);
          }
        }
        // Cut at the trunk output, as a job with `trunkOutput` does.
        const trunk = tf.model({ inputs: model.inputs, outputs: model.getLayer(expected.trunkOutput).output });
        const features = trunk.predict(xs.length === 1 ? xs[0]! : xs) as tf.Tensor;
        assert.deepEqual(features.shape, [batch, ...expected.layers.find(([l]) => l === expected.trunkOutput)![2]]);
        tf.dispose([...xs, ...outputs, features]);
      } finally {
        model.dispose();
      }
    });
  }

  void it('mnist-rows-lstm: the backward LSTM does not start as a copy of the forward one; mnist-bn-trunk has its moving statistics', async () => {
    const lstm = await load('mnist-rows-lstm');
    const weights = lstm.getLayer('rows_bilstm').getWeights();
    assert.equal(weights.length, 6, 'kernel, recurrent kernel and bias of each direction');
    assert.notDeepEqual(weights[0]!.dataSync(), weights[3]!.dataSync(), 'kernels');
    assert.notDeepEqual(weights[1]!.dataSync(), weights[4]!.dataSync(), 'recurrent kernels');
    lstm.dispose();
    const bn = await load('mnist-bn-trunk');
    const [gamma, beta, mean, variance] = bn.getLayer('bn').getWeights().map((w) => [...w.dataSync()]);
    assert.deepEqual([gamma, beta, mean, variance], [Array(8).fill(1), Array(8).fill(0), Array(8).fill(0), Array(8).fill(1)]);
    bn.dispose();
  });

  void it('the untrained models are byte for byte what the script writes', async () => {
    const out = tempDir('mtl-example-models-');
    const script = (await import(pathToFileURL(SCRIPT).href)) as { writeExampleModel: (name: string, out: string) => Promise<unknown> };
    for (const name of UNTRAINED) await script.writeExampleModel(name, out);
    for (const name of UNTRAINED) {
      for (const file of [MODEL_JSON, WEIGHTS_BIN]) {
        assert.ok(readFileSync(path.join(out, name, file)).equals(readFileSync(path.join(MODELS_DIR, name, file))), `${name}/${file} differs from a fresh run`);
      }
    }
  });

  void it(`mnist-digit-cnn carries its trained weights: accuracy ≥ ${MIN_ACCURACY} on 500 MNIST digits of the MultiMNIST test pool`, async () => {
    const require = createRequire(import.meta.url);
    const digits = readMnistDigits(path.join(path.dirname(require.resolve('mnist/package.json')), 'src', 'digits'));
    const heldOut = digitsOf(loadMultiMnist({ ...MULTIMNIST, trainSize: 1 }).test, digits).slice(0, 500);
    assert.equal(heldOut.length, 500);
    const trainPool = new Set(digitsOf(loadMultiMnist({ ...MULTIMNIST, testSize: 1 }).train, digits));
    assert.deepEqual(heldOut.filter((id) => trainPool.has(id)), [], 'no evaluated digit is in the MultiMNIST train pool');

    const x = new Float32Array(heldOut.length * 784);
    heldOut.forEach((id, j) => {
      for (let k = 0; k < 784; k++) x[j * 784 + k] = digits.palette[digits.codes[id * 784 + k]!]!;
    });
    // On wasm, as the script measured it (and 10 times faster than cpu here).
    await selectBackend('wasm');
    let predicted: Int32Array | Float32Array | Uint8Array;
    try {
      const model = await load('mnist-digit-cnn');
      predicted = tf.tidy(() => (model.predict(tf.tensor4d(x, [heldOut.length, 28, 28, 1]), { batchSize: 250 }) as tf.Tensor).argMax(-1).dataSync());
      model.dispose();
    } finally {
      await selectBackend('cpu');
    }
    const correct = heldOut.filter((id, j) => predicted[j] === digits.labels[id]).length;
    const accuracy = correct / heldOut.length;
    assert.ok(accuracy >= MIN_ACCURACY, `accuracy ${accuracy}`);
    // What the script measured when it saved the model.
    const trained = metadataOf('mnist-digit-cnn').trained as Record<string, number>;
    assert.ok(Math.abs(trained.accuracyOnFirst500TestDigits! - accuracy) <= 1 / 500, `metadata says ${trained.accuracyOnFirst500TestDigits}, measured ${accuracy}`);
  });
});
