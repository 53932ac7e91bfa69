// Losses and metrics of targets of several columns ([n, k]): the mean over the k components as
// well as the batch, and a worker's units on such a target (the fast path's shared batch gives
// bitwise what each unit gives alone, and is close to tfjs autodiff; evaluation's mse is the
// mean over examples and columns of the model's own predictions).
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { bindTasks } from '../../common/datasets/index.js';
import { validateJob } from '../../common/job-spec.js';
import { initialParameters } from '../../common/parameter-layout.js';
import { selectBackend } from '../../worker/backend.js';
import { metricSum, targetTensor, taskLoss, type HeadOutput } from '../../worker/losses.js';
import { buildComputeEnvironment } from '../../worker/compute-environment.js';
import { relativeError } from '../helpers/numeric.js';
import { tempDir } from '../helpers/temp-dirs.js';

const scalar = (t: tf.Tensor) => t.dataSync()[0]!;

void describe('losses and metrics of a target of several columns', () => {
  before(async () => {
    await selectBackend('cpu');
  });

  const pre = [0.5, -1, 2, 0, -0.25, 1.5];
  const y = Float32Array.of(1, 0, 0.5, 2, -1, 1);
  const out = (activation: HeadOutput['activation']): HeadOutput => ({ pre: tf.tensor2d(pre, [3, 2]), activation });

  void it('mse and mae: the mean over examples and columns; the metrics sum per-example means over the columns', () => {
    const d = pre.map((p, i) => p - y[i]!);
    const yt = targetTensor(y, 2);
    assert.deepEqual(yt.shape, [3, 2]);
    assert.ok(Math.abs(scalar(taskLoss('meanSquaredError', out('linear'), yt)) - d.reduce((s, v) => s + v * v, 0) / 6) < 1e-6);
    assert.ok(Math.abs(scalar(taskLoss('meanAbsoluteError', out('linear'), yt)) - d.reduce((s, v) => s + Math.abs(v), 0) / 6) < 1e-6);
    assert.ok(Math.abs(scalar(metricSum('mse', 'meanSquaredError', out('linear'), yt)) - d.reduce((s, v) => s + v * v, 0) / 2) < 1e-5);
    assert.ok(Math.abs(scalar(metricSum('mae', 'meanSquaredError', out('linear'), yt)) - d.reduce((s, v) => s + Math.abs(v), 0) / 2) < 1e-5);
    // One column: the tensor and the values as before.
    assert.deepEqual(targetTensor(Float32Array.of(1, 2, 3)).shape, [3]);
    const one = { pre: tf.tensor2d([0.5, 2, -0.25], [3, 1]), activation: 'linear' as const };
    assert.ok(Math.abs(scalar(taskLoss('meanSquaredError', one, targetTensor(Float32Array.of(1, 0.5, -1)))) - (0.25 + 2.25 + 0.5625) / 3) < 1e-6);
  });

  void it('multi-label: binary cross-entropy averaged over the labels; accuracy is the fraction of labels right', () => {
    const labels = Float32Array.of(1, 0, 1, 1, 0, 1);
    const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
    const bce = pre.reduce((s, z, i) => s - (labels[i]! * Math.log(sigmoid(z)) + (1 - labels[i]!) * Math.log(1 - sigmoid(z))), 0) / 6;
    const yt = targetTensor(labels, 2);
    assert.ok(Math.abs(scalar(taskLoss('binaryCrossentropy', out('sigmoid'), yt)) - bce) < 1e-6);
    // Predicted (z > 0): 1 0 | 1 0 | 0 1 against 1 0 | 1 1 | 0 1: 5 of 6 right; per-example means 1, 0.5, 1.
    assert.ok(Math.abs(scalar(metricSum('accuracy', 'binaryCrossentropy', out('sigmoid'), yt)) - 2.5) < 1e-6);
    assert.throws(() => metricSum('accuracy', 'meanSquaredError', out('linear'), yt), /needs binaryCrossentropy/);
  });
});

void describe("a worker's units on a target of several columns", () => {
  const dir = tempDir('mtl-vector-units-');
  const lines = ['x1,x2,y1,y2,y3'];
  for (let i = 0; i < 40; i++) lines.push(`${Math.sin(i)},${Math.cos(i)},${i % 3},${Math.sin(2 * i)},${i / 10}`);
  writeFileSync(path.join(dir, 'data.csv'), lines.join('\n'));
  const data = (target: string | string[]) => ({ dataset: 'csv', path: 'data.csv', features: ['x1', 'x2'], target });
  const raw = (fastPath: boolean) => ({
    name: 'vector-units',
    seed: 4,
    model: { trunk: [{ dense: { units: 6, activation: 'tanh' } }], heads: { vec: [{ dense: { units: 2 } }], one: [{ dense: { units: 1 } }] } },
    tasks: { vec: { loss: 'meanSquaredError', metrics: ['mse'], data: data(['y2', 'y3']) }, one: { loss: 'meanAbsoluteError', data: data('y1') } },
    training: { steps: 3, batchSize: 8, optimizer: { name: 'sgd', learningRate: 0.1 } },
    compute: { fastPath },
  });

  before(async () => {
    await selectBackend('cpu');
  });

  void it('a shared batch gives bitwise what each unit gives alone, close to autodiff; evaluation averages over the columns', () => {
    const fast = buildComputeEnvironment(validateJob(raw(true), 'job.yaml'), dir, 'cpu');
    const plain = buildComputeEnvironment(validateJob(raw(false), 'job.yaml'), dir, 'cpu');
    const params = initialParameters(fast.layout, 4);
    fast.runner.setWeights(params);
    plain.runner.setWeights(params);
    const units = [{ task: 'vec', step: 1, shard: 0 }, { task: 'one', step: 1, shard: 0 }];
    assert.ok(fast.computer.sharesBatch(units[0]!, units[1]!));
    const group = fast.computer.trainGroup(units);
    units.forEach((u, i) => {
      const alone = fast.computer.train(u);
      assert.equal(group[i]!.sampleCount, 8);
      assert.deepEqual(group[i]!.grads, alone.grads, `${u.task}: bitwise the same in a group`);
      const reference = plain.computer.train(u);
      assert.ok(Math.abs(reference.loss - alone.loss) < 1e-5);
      assert.ok(relativeError(alone.grads, reference.grads) < 1e-4, `${u.task}: close to autodiff`);
    });

    const evaluation = fast.computer.evaluate({ task: 'vec', shard: 0, shardCount: 1 });
    // The same data as the worker's (a table loads the same whatever loads it).
    const b = bindTasks(validateJob(raw(true), 'job.yaml').tasks, dir).get('vec')!;
    const n = b.dataset.test.size;
    const indices = Array.from({ length: n }, (_, i) => i);
    const x = new Float32Array(n * 2);
    const y = new Float32Array(n * 2);
    b.dataset.test.inputs(indices, x);
    b.dataset.test.targets(b.target, indices, y);
    const p = fast.runner.predict('vec', x, n);
    const mse = p.reduce((s, v, i) => s + (v - y[i]!) ** 2, 0) / (2 * n);
    assert.equal(evaluation.sampleCount, n);
    assert.ok(Math.abs(evaluation.metrics.mse! - mse) < 1e-5, `mse ${evaluation.metrics.mse} vs ${mse}`);
    assert.ok(Math.abs(evaluation.loss - mse) < 1e-5, 'the loss is the same mean');
    fast.runner.dispose();
    plain.runner.dispose();
  });
});

void describe('Fisher units of a multi-label task', () => {
  const dir = tempDir('mtl-vector-fisher-');
  const lines = ['x1,x2,a,b,c,y'];
  for (let i = 0; i < 30; i++) lines.push(`${Math.sin(i)},${Math.cos(i)},${i % 2},${i % 3 === 0 ? 1 : 0},${Math.sin(3 * i) > 0 ? 1 : 0},${i / 30}`);
  writeFileSync(path.join(dir, 'data.csv'), lines.join('\n'));
  const raw = (fisher: 'sampled' | 'empirical') => ({
    name: 'vector-fisher',
    seed: 5,
    model: { trunk: [{ dense: { units: 4, activation: 'tanh' } }], heads: { m: [{ dense: { units: 3, activation: 'sigmoid' } }], r: [{ dense: { units: 1 } }] } },
    tasks: {
      m: { loss: 'binaryCrossentropy', data: { dataset: 'csv', path: 'data.csv', features: ['x1', 'x2'], target: ['a', 'b', 'c'] } },
      r: { loss: 'meanSquaredError', data: { dataset: 'csv', path: 'data.csv', features: ['x1', 'x2'], target: 'y' } },
    },
    training: { mode: 'sequential', batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.1 }, stages: [{ tasks: ['m'], steps: 2 }, { tasks: ['r'], steps: 2, protect: { ewc: { lambda: 1, samples: 10, fisher } } }] },
  });

  before(async () => {
    await selectBackend('cpu');
  });

  void it('empirical: the mean squared per-example gradients with all 3 labels; sampled: deterministic, all finite', () => {
    const env = (fisher: 'sampled' | 'empirical') => {
      const e = buildComputeEnvironment(validateJob(raw(fisher), 'job.yaml'), dir, 'cpu');
      e.runner.setWeights(initialParameters(e.layout, 5));
      return e;
    };
    const empirical = env('empirical');
    const unit = { task: 'm', step: 2, shard: 0, shardCount: 1 };
    const out = empirical.computer.fisher(unit);
    const b = bindTasks(validateJob(raw('empirical'), 'job.yaml').tasks, dir).get('m')!;
    const expected = new Float64Array(out.grads.length);
    const indices = empirical.computer.fisherIndices(unit);
    for (const i of indices) {
      const x = new Float32Array(2);
      const y = new Float32Array(3);
      b.dataset.train.inputs([i], x);
      b.dataset.train.targets(b.target, [i], y);
      empirical.runner.gradients('m', x, y, { training: false }).grads.forEach((v, k) => (expected[k]! += v * v));
    }
    const stateStart = out.grads.length - empirical.layout.state.size;
    out.grads.subarray(0, stateStart).forEach((v, k) => assert.ok(Math.abs(v - expected[k]! / indices.length) <= 1e-6 * (1 + Math.abs(v)), `k=${k}`));
    const [s1, s2] = [env('sampled'), env('sampled')];
    const a = s1.computer.fisher(unit);
    assert.deepEqual(a.grads, s2.computer.fisher(unit).grads);
    assert.notDeepEqual(a.grads, out.grads);
    assert.ok(a.grads.every((v) => v >= 0 && Number.isFinite(v)));
    for (const e of [empirical, s1, s2]) e.runner.dispose();
  });
});
