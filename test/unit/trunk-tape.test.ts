// The compute fast path (one trunk forward per batch, a hand-written backward per task)
// against tfjs' autodiff over the whole model, on cpu and wasm, for every trunk layer and
// activation; and grouping tasks on one batch changes no bit of any task's gradients.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { validateJob, type JobSpec } from '../../common/job-spec.js';
import { bindTasks } from '../../common/datasets/index.js';
import { buildLayout, initialParameters, layoutForData, type ParameterLayout } from '../../common/parameter-layout.js';
import { Rng } from '../../common/random.js';
import { selectBackend } from '../../worker/backend.js';
import { maxPoolArgmax, maxPoolGradFromArgmax, opsModeFor, poolTiles, type OpsMode } from '../../worker/layer-ops.js';
import { ModelRunner, type ForwardOptions } from '../../worker/model-runner.js';
import { UnitComputer } from '../../worker/unit-compute.js';
import { buildComputeEnvironment } from '../../worker/compute-environment.js';
import { relativeError } from '../helpers/numeric.js';

const TASKS = {
  a: { loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: { dataset: 'multimnist', target: 'left' } },
  b: { loss: 'meanSquaredError', metrics: ['mae'], data: { dataset: 'synthetic', target: 0 } },
  c: { loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: { dataset: 'multimnist', target: 'right' } },
};
const HEADS = {
  a: [{ dense: { units: 5, activation: 'softmax' } }],
  b: [{ dense: { units: 4, activation: 'relu' } }, { dropout: { rate: 0.5 } }, { dense: { units: 1 } }],
  c: [{ dense: { units: 1, activation: 'sigmoid' } }],
};

function job(input: number[], trunk: unknown[]): JobSpec {
  return validateJob(
    { name: 'tape', seed: 5, model: { input, trunk, heads: HEADS }, tasks: TASKS, training: { steps: 1, batchSize: 6, optimizer: { name: 'sgd', learningRate: 0.1 } } },
    'test',
  );
}

/** Trunks covering every layer type, activation, padding and stride the fast path handles. */
const TRUNKS: Record<string, JobSpec> = {
  cnn: job(
    [12, 12, 2],
    [
      { conv2d: { filters: 3, kernelSize: 3, padding: 'same', activation: 'relu' } },
      { maxPooling2d: { poolSize: 2 } },
      { conv2d: { filters: 4, kernelSize: [2, 3], activation: 'tanh' } },
      { conv2d: { filters: 2, kernelSize: 2, strides: 2, padding: 'same', activation: 'elu' } },
      { maxPooling2d: { poolSize: 2, strides: 1, padding: 'same' } },
      { flatten: {} },
      { dense: { units: 8, activation: 'softplus' } },
      { dropout: { rate: 0.25 } },
    ],
  ),
  mlp: job(
    [28, 28, 1],
    [
      { flatten: {} },
      { dropout: { rate: 0.1 } },
      { dense: { units: 16, activation: 'sigmoid' } },
      { dense: { units: 12, activation: 'softmax', useBias: false } },
      { dense: { units: 6 } },
    ],
  ),
  // A dense layer on a rank-3 input applies to every position; the first layer reads the input.
  positional: job([5, 4], [{ dense: { units: 6, activation: 'relu' } }, { dense: { units: 3, activation: 'tanh' } }, { flatten: {} }]),
  // selu (one kernel) and the activations tfjs composes of several ops (the tape differentiates those with tfjs' autodiff).
  activations: job(
    [6],
    (['selu', 'gelu', 'swish', 'mish', 'relu6', 'softsign', 'hardSigmoid'] as const).map((activation, i) => ({ dense: { units: 5 + (i % 2), activation } })),
  ),
};

// The runner's losses (the spec only shapes the layout): c has a one-unit sigmoid head.
const OBJECTIVES = new Map([
  ['a', { loss: 'sparseCategoricalCrossentropy' as const, metrics: [] }],
  ['b', { loss: 'meanSquaredError' as const, metrics: [] }],
  ['c', { loss: 'binaryCrossentropy' as const, metrics: [] }],
]);
const TASK_NAMES = Object.keys(TASKS);

function batch(layout: ParameterLayout, n: number, seed: number): { x: Float32Array; ys: Float32Array[] } {
  const rng = new Rng(seed);
  const size = layout.inputShape.reduce((a, b) => a * b, 1);
  const x = Float32Array.from({ length: n * size }, () => rng.normal());
  const ys = [Float32Array.from({ length: n }, (_, i) => i % 5), Float32Array.from({ length: n }, () => rng.normal()), Float32Array.from({ length: n }, (_, i) => i % 2)];
  return { x, ys };
}

function runner(spec: JobSpec, mode: OpsMode, fastPath: boolean): ModelRunner {
  const layout = buildLayout(spec, spec.model.input!);
  const r = new ModelRunner(layout, OBJECTIVES, mode, { fastPath });
  r.setWeights(initialParameters(layout, 9));
  return r;
}

/** Trunk masks keyed by the batch, head masks by the task (as UnitComputer keys them). */
function dropout(task: string): ForwardOptions {
  return { training: true, dropoutSeed: (layer) => (layer.name.startsWith('trunk_') ? 101 : 200 + task.charCodeAt(0)) };
}

function checkAgainstAutodiff(backend: string): void {
  const modes: OpsMode[] = [opsModeFor(backend), { explicitTranspose: true, im2colFilterGrad: true, hostPoolGrad: true }, { explicitTranspose: false, im2colFilterGrad: false, hostPoolGrad: false }];
  for (const [name, spec] of Object.entries(TRUNKS)) {
    for (const mode of modes) {
      if (!mode.im2colFilterGrad && tf.getKernel('Conv2DBackpropFilter', backend) === undefined) continue;
      const fast = runner(spec, mode, true);
      const reference = runner(spec, mode, false);
      assert.ok(fast.fastPath && !reference.fastPath);
      const { x, ys } = batch(fast.layout, 6, name.length);
      TASK_NAMES.forEach((task, i) => {
        const got = fast.gradients(task, x, ys[i]!, dropout(task));
        const want = reference.gradients(task, x, ys[i]!, dropout(task));
        const where = `${backend} ${name} ${JSON.stringify(mode)} task ${task}`;
        assert.equal(got.grads.length, want.grads.length, where);
        assert.ok(want.grads.some((g) => g !== 0), `${where}: the reference gradient is all zeros`);
        assert.ok(Math.abs(got.loss - want.loss) <= 1e-5 * Math.abs(want.loss), `${where}: loss ${got.loss} vs ${want.loss}`);
        const err = relativeError(got.grads, want.grads);
        assert.ok(err < 1e-5, `${where}: relative error ${err}`);
        // Each tensor on its own too: a small tensor's error could hide in the whole vector's norm.
        let offset = 0;
        for (const index of [...fast.layout.shared.tensors, ...fast.layout.headGroups.get(task)!.tensors]) {
          const size = fast.layout.tensors[index]!.size;
          const w = want.grads.subarray(offset, offset + size);
          if (w.some((v) => v !== 0)) {
            const e = relativeError(got.grads.subarray(offset, offset + size), w);
            assert.ok(e < 1e-5, `${where}: ${fast.layout.tensors[index]!.name} relative error ${e}`);
          }
          offset += size;
        }
      });
      fast.dispose();
      reference.dispose();
    }
  }
}

void describe('compute fast path (trunk tape)', () => {
  before(async () => {
    tf.enableProdMode();
    await selectBackend('cpu');
  });
  after(async () => {
    await selectBackend('cpu');
  });

  void it('equals tfjs autodiff within 1e-5 relative on cpu, for every trunk layer and activation', () => {
    checkAgainstAutodiff('cpu');
  });

  void it('equals tfjs autodiff within 1e-5 relative on wasm', async () => {
    await selectBackend('wasm');
    try {
      checkAgainstAutodiff('wasm');
    } finally {
      await selectBackend('cpu');
    }
  });

  void it('the host max-pool gradient: the true maximum, the first of tied maxima (as cpu, and as wasm with the registered MaxPoolGrad)', async () => {
    const cases: Array<[[number, number, number, number], [number, number]]> = [
      [[3, 7, 9, 2], [2, 2]], // 7×9 leaves a row and a column outside the windows
      [[2, 9, 9, 3], [3, 3]],
      [[2, 6, 8, 1], [3, 2]],
    ];
    const grads = (data: Float32Array, shape: [number, number, number, number], size: [number, number]) =>
      tf.tidy(() => {
        const x = tf.tensor4d(data, shape);
        const dy = tf.tensor4d(Float32Array.from({ length: tf.maxPool(x, size, size, 'valid').size }, (_, i) => i + 1), tf.maxPool(x, size, size, 'valid').shape);
        const want = tf.grad((a: tf.Tensor) => tf.maxPool(a as tf.Tensor4D, size, size, 'valid'))(x, dy).dataSync();
        return { want, got: maxPoolGradFromArgmax(maxPoolArgmax(data, shape, size), dy.dataSync() as Float32Array, data.length) };
      });
    // Distinct values, negative ones included: one true maximum per window, on cpu.
    for (const [shape, size] of cases) {
      const count = shape.reduce((a, b) => a * b, 1);
      const rng = new Rng(count);
      const { want, got } = grads(Float32Array.from({ length: count }, () => rng.normal()), shape, size);
      assert.deepEqual(got, want, `${JSON.stringify(shape)} pool ${String(size)}, distinct values`);
    }
    // Values from {1, 2}, and from {−2, −1}: most windows hold tied maxima; the first in
    // row-major order takes the gradient, on cpu and on wasm.
    for (const backend of ['cpu', 'wasm'] as const) {
      await selectBackend(backend);
      try {
        for (const [shape, size] of cases) {
          const count = shape.reduce((a, b) => a * b, 1);
          for (const base of [1, -2]) {
            const { want, got } = grads(Float32Array.from({ length: count }, (_, i) => base + ((i * 13) % 7 === 0 ? 1 : 0)), shape, size);
            assert.deepEqual(got, want, `${backend}: ${JSON.stringify(shape)} pool ${String(size)}, ties from ${base}`);
          }
        }
      } finally {
        await selectBackend('cpu');
      }
    }
    assert.ok(poolTiles([2, 2], [2, 2], 'valid', [1, 5, 5, 1]));
    assert.ok(!poolTiles([2, 2], [1, 1], 'valid', [1, 4, 4, 1]), 'overlapping windows');
    assert.ok(!poolTiles([2, 2], [2, 2], 'same', [1, 5, 4, 1]), "'same' padding that pads");
    assert.ok(poolTiles([2, 2], [2, 2], 'same', [1, 4, 4, 1]), "'same' padding that pads nothing");
  });

  void it('tasks sharing a batch get bitwise the gradients each gets alone, and nothing leaks', async () => {
    await selectBackend('wasm');
    try {
      for (const spec of Object.values(TRUNKS)) {
        const r = runner(spec, opsModeFor('wasm'), true);
        const { x, ys } = batch(r.layout, 7, 3);
        const alone = TASK_NAMES.map((task, i) => r.gradients(task, x, ys[i]!, dropout(task)));
        const before = tf.memory().numTensors;
        const together = r.sharedGradients(
          x,
          dropout('a'),
          TASK_NAMES.map((task, i) => ({ task, targets: ys[i]!, opts: dropout(task) })),
        );
        assert.equal(tf.memory().numTensors, before, 'tensors leaked by sharedGradients');
        // Reversed order: a task's result does not depend on which tasks come before it.
        const reversed = r.sharedGradients(
          x,
          dropout('a'),
          [...TASK_NAMES].reverse().map((task) => ({ task, targets: ys[TASK_NAMES.indexOf(task)]!, opts: dropout(task) })),
        );
        TASK_NAMES.forEach((task, i) => {
          assert.deepEqual(together[i]!.grads, alone[i]!.grads, `task ${task}`);
          assert.equal(together[i]!.loss, alone[i]!.loss);
          assert.deepEqual(reversed[TASK_NAMES.length - 1 - i]!.grads, alone[i]!.grads, `task ${task} reversed`);
        });
        r.dispose();
      }
    } finally {
      await selectBackend('cpu');
    }
  });

  void it('streams each task in buckets as the backward makes them (head, then the trunk last layer first) that put together are bitwise its gradient', async () => {
    await selectBackend('wasm');
    try {
      for (const spec of Object.values(TRUNKS)) {
        const r = runner(spec, opsModeFor('wasm'), true);
        const { x, ys } = batch(r.layout, 7, 3);
        const alone = TASK_NAMES.map((task, i) => r.gradients(task, x, ys[i]!, dropout(task)));
        for (const bucketBytes of [0, 4, 256, 1 << 20]) {
          const events: string[] = [];
          const pieces = TASK_NAMES.map(() => [] as Array<{ offset: number; data: Float32Array }>);
          const before = tf.memory().numTensors;
          const streamed = r.sharedGradients(
            x,
            dropout('a'),
            TASK_NAMES.map((task, i) => ({ task, targets: ys[i]!, opts: dropout(task) })),
            {
              bucketBytes,
              begin: (k, loss, size) => {
                events.push(`begin ${k}`);
                assert.equal(loss, alone[k]!.loss);
                assert.equal(size, alone[k]!.grads.length);
              },
              piece: (k, offset, data) => {
                events.push(`piece ${k}`);
                pieces[k]!.push({ offset, data: data.slice() });
              },
              end: (k) => events.push(`end ${k}`),
            },
          );
          assert.equal(tf.memory().numTensors, before, 'tensors leaked by a streamed sharedGradients');
          // One task after the other: begin, its pieces, end.
          assert.deepEqual(events.filter((e) => !e.startsWith('piece')), TASK_NAMES.flatMap((_, k) => [`begin ${k}`, `end ${k}`]));
          TASK_NAMES.forEach((task, k) => {
            const whole = new Float32Array(alone[k]!.grads.length);
            const covered = new Uint8Array(whole.length);
            for (const { offset, data } of pieces[k]!) {
              assert.ok(covered.subarray(offset, offset + data.length).every((c) => c === 0), `${task}: pieces overlap`);
              covered.fill(1, offset, offset + data.length);
              whole.set(data, offset);
            }
            assert.ok(covered.every((c) => c === 1), `${task}: pieces leave a gap`);
            assert.deepEqual(whole, alone[k]!.grads, `${task} streamed with ${bucketBytes}-byte buckets`);
            assert.deepEqual(streamed[k]!.grads, alone[k]!.grads);
            if (bucketBytes === 0) assert.equal(pieces[k]!.length, 1, 'bucketBytes 0: one piece at the end');
            if (bucketBytes === 4) {
              // Every weighted layer its own bucket, the head's first, then the trunk's from the last layer down.
              const offsets = pieces[k]!.map((p) => p.offset);
              assert.ok(offsets[0]! >= r.layout.shared.size, `${task}: the head first`);
              assert.deepEqual(offsets, [...offsets].sort((a, b) => b - a), `${task}: last layers first`);
              assert.ok(pieces[k]!.length > 2);
            }
          });
        }
        r.dispose();
      }
    } finally {
      await selectBackend('cpu');
    }
  });

  void it('layouts whose heads read task-specific features keep autodiff', () => {
    const spec = validateJob(
      {
        name: 'experts',
        seed: 1,
        model: { input: [6], trunk: [{ dense: { units: 4 } }], experts: { type: 'mmoe', shared: 2, layers: [{ dense: { units: 3 } }] }, heads: { a: HEADS.a, c: HEADS.c } },
        tasks: { a: TASKS.a, c: TASKS.c },
        training: { steps: 1, batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.1 } },
      },
      'test',
    );
    const r = runner(spec, opsModeFor('cpu'), true);
    assert.equal(r.fastPath, false);
    assert.throws(() => r.sharedGradients(new Float32Array(6), { training: false }, [{ task: 'a', targets: new Float32Array(1), opts: { training: false } }]), /fast path/);
    r.dispose();
  });
});

void describe('training units sharing a batch (UnitComputer.trainGroup)', () => {
  const data = (dataset: string, target: string | number) => (dataset === 'multimnist' ? { dataset, target, trainSize: 300, testSize: 20 } : { dataset, target });
  const raw = {
      name: 'groups',
      seed: 8,
      model: {
        input: [28, 28, 1],
        trunk: [{ flatten: {} }, { dense: { units: 12, activation: 'relu' } }, { dropout: { rate: 0.3 } }],
        heads: { left: [{ dense: { units: 10, activation: 'softmax' } }], right: [{ dropout: { rate: 0.5 } }, { dense: { units: 10, activation: 'softmax' } }] },
      },
      tasks: {
        left: { loss: 'sparseCategoricalCrossentropy', data: data('multimnist', 'left') },
        right: { loss: 'sparseCategoricalCrossentropy', data: data('multimnist', 'right') },
      },
      training: { steps: 4, batchSize: 16, shardsPerTask: 2, optimizer: { name: 'sgd', learningRate: 0.1 } },
  };
  const spec = validateJob(raw, 'test');

  function computer(fastPath: boolean): { computer: UnitComputer; runner: ModelRunner } {
    const bindings = bindTasks(spec.tasks, '.');
    const layout = layoutForData(spec, new Map([...bindings].map(([t, b]) => [t, b.dataset.inputShape])));
    const objectives = new Map(Object.entries(spec.tasks).map(([t, s]) => [t, { loss: s.loss, metrics: s.metrics }] as const));
    const runner = new ModelRunner(layout, objectives, opsModeFor('cpu'), { fastPath });
    runner.setWeights(initialParameters(layout, 2));
    return { computer: new UnitComputer(spec, bindings, runner), runner };
  }

  void it("follows the job's compute.fastPath when a worker builds its compute environment", () => {
    const on = buildComputeEnvironment(spec, '.', 'cpu');
    const off = buildComputeEnvironment(validateJob({ ...raw, compute: { fastPath: false } }, 'test'), '.', 'cpu');
    assert.equal(spec.compute.fastPath, true, 'on by default');
    assert.equal(on.runner.fastPath, true);
    assert.equal(off.runner.fastPath, false);
    assert.ok(!off.computer.sharesBatch({ task: 'left', step: 1, shard: 0 }, { task: 'right', step: 1, shard: 0 }));
    on.runner.dispose();
    off.runner.dispose();
  });

  void it('groups exactly the units that read the same examples', () => {
    const { computer: c, runner } = computer(true);
    assert.ok(c.sharesBatch({ task: 'left', step: 3, shard: 1 }, { task: 'right', step: 3, shard: 1 }));
    assert.ok(!c.sharesBatch({ task: 'left', step: 3, shard: 1 }, { task: 'right', step: 3, shard: 0 }));
    assert.ok(!c.sharesBatch({ task: 'left', step: 2, shard: 1 }, { task: 'right', step: 3, shard: 1 }));
    assert.deepEqual(c.trainIndices({ task: 'left', step: 3, shard: 1 }), c.trainIndices({ task: 'right', step: 3, shard: 1 }));
    assert.throws(() => c.trainGroup([{ task: 'left', step: 3, shard: 1 }, { task: 'right', step: 3, shard: 0 }]), /share one batch/);
    runner.dispose();
    const plain = computer(false);
    assert.ok(!plain.computer.sharesBatch({ task: 'left', step: 3, shard: 1 }, { task: 'right', step: 3, shard: 1 }));
    plain.runner.dispose();
  });

  void it('a group gives bitwise what each unit gives alone (dropout in trunk and head), and close to autodiff', () => {
    const { computer: c, runner } = computer(true);
    const units = [
      { task: 'right', step: 2, shard: 0 },
      { task: 'left', step: 2, shard: 0 },
    ];
    const together = c.trainGroup(units);
    const alone = units.map((u) => c.train(u));
    const reference = computer(false);
    units.forEach((u, i) => {
      assert.deepEqual(together[i]!.grads, alone[i]!.grads, u.task);
      assert.equal(together[i]!.loss, alone[i]!.loss);
      assert.equal(together[i]!.sampleCount, 8);
      const want = reference.computer.train(u);
      assert.ok(relativeError(together[i]!.grads, want.grads) < 1e-5, u.task);
    });
    assert.notDeepEqual(together[0]!.grads, together[1]!.grads, 'the two tasks have different gradients');
    runner.dispose();
    reference.runner.dispose();
  });
});
