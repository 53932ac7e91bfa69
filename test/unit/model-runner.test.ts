// The worker's compute: custom gradients (explicit transposes, conv gradients as forward convolutions)
// against tfjs' own gradients, wasm against cpu, and no tensor leaks per unit.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { validateJob } from '../../common/job-spec.js';
import { buildLayout, initialParameters, type ParameterLayout } from '../../common/parameter-layout.js';
import { Rng } from '../../common/random.js';
import { selectBackend } from '../../worker/backend.js';
import { conv2dForTraining, matMulForTraining, type OpsMode, type Padding } from '../../worker/layer-ops.js';
import { ModelRunner } from '../../worker/model-runner.js';
import { relativeError } from '../helpers/numeric.js';

function randomTensor(shape: number[], seed: number): tf.Tensor {
  const rng = new Rng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: size }, () => rng.normal()), shape);
}

const CUSTOM: OpsMode = { explicitTranspose: true, im2colFilterGrad: true, hostPoolGrad: true };
const NATIVE: OpsMode = { explicitTranspose: false, im2colFilterGrad: false, hostPoolGrad: false };

function convGrads(mode: OpsMode, strides: [number, number], padding: Padding, xShape: number[] = [3, 9, 8, 2], kernelShape: number[] = [3, 2, 2, 4]): Float32Array[] {
  return tf.tidy(() => {
    const x = randomTensor(xShape, 1) as tf.Tensor4D;
    const k = randomTensor(kernelShape, 2) as tf.Tensor4D;
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(conv2dForTraining(a as tf.Tensor4D, b as tf.Tensor4D, strides, padding, mode))));
    return g([x, k]).map((t) => t.dataSync() as Float32Array);
  });
}

const JOB = validateJob(
  {
    name: 'runner',
    seed: 3,
    model: {
      input: [12, 12, 1],
      trunk: [
        { conv2d: { filters: 3, kernelSize: 3, padding: 'same', activation: 'relu' } },
        { maxPooling2d: { poolSize: 2 } },
        { conv2d: { filters: 4, kernelSize: [2, 3], strides: 2, activation: 'tanh' } },
        { flatten: {} },
        { dense: { units: 8, activation: 'elu' } },
        { dropout: { rate: 0.25 } },
      ],
      heads: { a: [{ dense: { units: 5, activation: 'softmax' } }], b: [{ dense: { units: 4, activation: 'relu' } }, { dense: { units: 1 } }] },
    },
    tasks: {
      a: { loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: { dataset: 'multimnist', target: 'left' } },
      b: { loss: 'meanSquaredError', metrics: ['mae'], data: { dataset: 'synthetic', target: 0 } },
    },
    training: { steps: 1, batchSize: 6, optimizer: { name: 'sgd', learningRate: 0.1 } },
  },
  'test',
);

function batch(layout: ParameterLayout, n: number, seed: number): { x: Float32Array; y: Float32Array } {
  const rng = new Rng(seed);
  const size = layout.inputShape.reduce((a, b) => a * b, 1);
  return { x: Float32Array.from({ length: n * size }, () => rng.next()), y: Float32Array.from({ length: n }, (_, i) => i % 5) };
}

function runnerOn(layout: ParameterLayout, mode: OpsMode): ModelRunner {
  const runner = new ModelRunner(layout, new Map([['a', { loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] }], ['b', { loss: 'meanSquaredError', metrics: ['mae'] }]]), mode);
  runner.setWeights(initialParameters(layout, 3));
  return runner;
}

const dropoutSeed = { training: true, dropoutSeed: () => 42 };

void describe('worker compute', () => {
  before(async () => {
    tf.enableProdMode();
    await selectBackend('cpu');
  });

  void it('conv gradients as forward convolutions (input and filter) equal tfjs autodiff on cpu (valid, same, strided)', () => {
    for (const [strides, padding] of [[[1, 1], 'valid'], [[1, 1], 'same'], [[2, 3], 'same'], [[2, 2], 'valid']] as Array<[[number, number], Padding]>) {
      const native = convGrads(NATIVE, strides, padding);
      const custom = convGrads(CUSTOM, strides, padding);
      assert.ok(relativeError(custom[0]!, native[0]!) < 1e-6, `dx ${String(strides)} ${padding}`);
      assert.ok(relativeError(custom[1]!, native[1]!) < 1e-6, `dkernel ${String(strides)} ${padding}: ${relativeError(custom[1]!, native[1]!)}`);
    }
  });

  void it('conv gradients equal tfjs autodiff on cpu over kernel sizes, channel counts, strides 1 and 2, valid and same, batch 1 and 4', () => {
    // Strides > 1 take the zero-spread dy from 8 input channels, conv2dTranspose below (conv2dInputGrad);
    // 'same' with an even kernel pads unevenly.
    const cases: Array<{ x: number[]; k: number[] }> = [
      { x: [1, 7, 7, 1], k: [1, 1, 1, 3] },
      { x: [4, 8, 9, 3], k: [3, 3, 3, 5] },
      { x: [1, 10, 10, 2], k: [5, 5, 2, 4] },
      { x: [4, 9, 7, 4], k: [2, 4, 4, 2] },
      { x: [4, 12, 12, 16], k: [5, 5, 16, 8] },
      { x: [1, 11, 10, 8], k: [2, 4, 8, 3] },
    ];
    for (const { x, k } of cases) {
      for (const stride of [1, 2]) {
        for (const padding of ['valid', 'same'] as const) {
          const strides: [number, number] = [stride, stride];
          const native = convGrads(NATIVE, strides, padding, x, k);
          const custom = convGrads(CUSTOM, strides, padding, x, k);
          const where = `x ${x.join('×')}, kernel ${k.join('×')}, stride ${stride}, ${padding}`;
          assert.ok(native[0]!.some((v) => v !== 0) && native[1]!.some((v) => v !== 0), `${where}: the reference is all zeros`);
          assert.ok(relativeError(custom[0]!, native[0]!) <= 1e-5, `dx ${where}: ${relativeError(custom[0]!, native[0]!)}`);
          assert.ok(relativeError(custom[1]!, native[1]!) <= 1e-5, `dkernel ${where}: ${relativeError(custom[1]!, native[1]!)}`);
        }
      }
    }
  });

  void it('explicit-transpose dense gradient equals tfjs matMul gradient', () => {
    const grads = (mode: OpsMode) =>
      tf.tidy(() => {
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.sin(matMulForTraining(a as tf.Tensor2D, b as tf.Tensor2D, mode))));
        return g([randomTensor([7, 5], 8), randomTensor([5, 3], 9)]).map((t) => t.dataSync());
      });
    const [n, c] = [grads(NATIVE), grads(CUSTOM)];
    assert.ok(relativeError(c[0]!, n[0]!) < 1e-6);
    assert.ok(relativeError(c[1]!, n[1]!) < 1e-6);
  });

  void it('a training unit and an evaluation leak no tensors', () => {
    const layout = buildLayout(JOB, [12, 12, 1]);
    const runner = runnerOn(layout, CUSTOM);
    const { x, y } = batch(layout, 6, 1);
    runner.gradients('a', x, y, dropoutSeed);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      runner.gradients('a', x, y, dropoutSeed);
      runner.gradients('b', x, y, dropoutSeed);
      runner.evaluate('a', x, y);
    }
    runner.setWeights(initialParameters(layout, 4)); // replacing weights frees the old ones
    assert.equal(tf.memory().numTensors, before);
    runner.dispose();
    assert.equal(tf.memory().numTensors, before - layout.tensors.length);
  });

  void it('dropout masks depend on the seed only: same seed same gradient, other seed other gradient', () => {
    const layout = buildLayout(JOB, [12, 12, 1]);
    const runner = runnerOn(layout, CUSTOM);
    const { x, y } = batch(layout, 6, 2);
    const g1 = runner.gradients('a', x, y, dropoutSeed).grads;
    const g2 = runner.gradients('a', x, y, dropoutSeed).grads;
    const g3 = runner.gradients('a', x, y, { training: true, dropoutSeed: () => 43 }).grads;
    assert.deepEqual(g1, g2);
    assert.notDeepEqual(g1, g3);
    runner.dispose();
  });

  void it('wasm gradients (custom path) agree with cpu gradients (native path) within 1e-5 relative', async () => {
    const layout = buildLayout(JOB, [12, 12, 1]);
    const { x, y } = batch(layout, 6, 3);
    const cpu = runnerOn(layout, NATIVE);
    const cpuGrads = ['a', 'b'].map((t) => cpu.gradients(t, x, y, dropoutSeed));
    cpu.dispose();
    await selectBackend('wasm');
    try {
      const wasm = runnerOn(layout, CUSTOM);
      const wasmGrads = ['a', 'b'].map((t) => wasm.gradients(t, x, y, dropoutSeed));
      wasm.dispose();
      for (let i = 0; i < 2; i++) {
        assert.ok(Math.abs(wasmGrads[i]!.loss - cpuGrads[i]!.loss) < 1e-5 * Math.abs(cpuGrads[i]!.loss));
        const err = relativeError(wasmGrads[i]!.grads, cpuGrads[i]!.grads);
        assert.ok(err < 1e-5, `task ${i}: relative error ${err}`);
      }
    } finally {
      await selectBackend('cpu');
    }
  });
});
