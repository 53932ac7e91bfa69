// Shared parameters by task set (a model of the user's whose layers some but not all tasks
// reach): the layout cuts `shared` by task set, and the run's aggregator aggregates each group
// over the tasks that reach it only, with its own state.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateJob } from '../../common/job-spec.js';
import { Rng } from '../../common/random.js';
import { prepareUserModel } from '../../common/user-model.js';
import { createRunAggregator } from '../../coordinator/aggregation/grouped.js';
import { createAggregator } from '../../coordinator/aggregation/registry.js';

const SYNTH = { dataset: 'synthetic', target: 0, dim: 7 } as const;
const TASKS = ['a', 'b', 'c'];

/** x → trunk (every task) → pair (a and b) → out_a, out_b; trunk → out_c. */
function threeTasks(): tf.LayersModel {
  const x = tf.input({ shape: [7], name: 'x' });
  const trunk = tf.layers.dense({ units: 6, activation: 'relu', name: 'trunk' }).apply(x) as tf.SymbolicTensor;
  const pair = tf.layers.dense({ units: 5, activation: 'relu', name: 'pair' }).apply(trunk) as tf.SymbolicTensor;
  const out = (name: string, from: tf.SymbolicTensor) => tf.layers.dense({ units: 1, name }).apply(from) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: [out('out_a', pair), out('out_b', pair), out('out_c', trunk)] });
}

function prepared() {
  const tasks = Object.fromEntries(TASKS.map((t) => [t, { output: `out_${t}`, loss: 'meanSquaredError', data: SYNTH }]));
  const job = validateJob({ name: 'groups', seed: 1, model: { layersModel: 'm.json' }, tasks, training: { steps: 1, batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.1 } } }, 'test');
  return prepareUserModel(job, { model: threeTasks(), weightsLoaded: false }, new Map(TASKS.map((t) => [t, [7]])));
}

function rows(n: number, p: number, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: p }, () => rng.uniform(-1, 1)));
}

void describe('shared parameters by task set', () => {
  const { layout } = prepared();
  const groups = layout.sharedGroups!;

  void it('cut the shared range: every task’s layers first, then the pair’s, each contiguous', () => {
    assert.deepEqual(
      groups.map((g) => ({ tasks: g.tasks, offset: g.offset, size: g.size })),
      [
        { tasks: TASKS, offset: layout.shared.offset, size: 7 * 6 + 6 },
        { tasks: ['a', 'b'], offset: layout.shared.offset + 7 * 6 + 6, size: 6 * 5 + 5 },
      ],
    );
    assert.equal(groups[0]!.size + groups[1]!.size, layout.shared.size);
    const pair = layout.tensors.find((t) => t.name === 'pair/kernel')!;
    assert.equal(pair.group, 'shared');
    assert.ok(pair.offset >= groups[1]!.offset && pair.offset + pair.size <= groups[1]!.offset + groups[1]!.size);
    assert.deepEqual(layout.graph!.partiallyShared, ['pair']);
  });

  for (const method of ['mgda', 'upgrad', 'pcgrad', 'mean']) {
    void it(`${method}: each group aggregated over its own tasks only (task c's zeros stay out of the pair's)`, () => {
      const p = layout.shared.size;
      const g = rows(3, p, 7);
      const [all, pair] = groups;
      const cut = (r: Float32Array, grp: typeof all) => r.subarray(grp!.offset - layout.shared.offset, grp!.offset - layout.shared.offset + grp!.size);
      // c does not reach the pair: its gradient there is zero, as a worker sends it.
      cut(g[2]!, pair).fill(0);
      const run = createRunAggregator(layout, method, {}, { seed: 3 });
      const got = run.aggregate({ grads: g, losses: [1, 2, 3], step: 0, tasks: TASKS }).direction;
      const first = createAggregator(method, {}, { seed: 3 }).aggregate({ grads: g.map((r) => cut(r, all)), losses: [1, 2, 3], step: 0 }).direction;
      const second = createAggregator(method, {}, { seed: 3 }).aggregate({ grads: g.slice(0, 2).map((r) => cut(r, pair)), losses: [1, 2], step: 0 }).direction;
      assert.deepEqual(Array.from(cut(got, all)), Array.from(first));
      assert.deepEqual(Array.from(cut(got, pair)), Array.from(second));
      // Not what one aggregation over the whole range with c's zeros would give.
      const whole = createAggregator(method, {}, { seed: 3 }).aggregate({ grads: g, losses: [1, 2, 3], step: 0 }).direction;
      assert.notDeepEqual(Array.from(cut(got, pair)), Array.from(cut(whole, pair)));
    });
  }

  void it('a group no active task reaches gets no update; one active task of a pair updates it alone', () => {
    const p = layout.shared.size;
    const run = createRunAggregator(layout, 'mgda', {}, { seed: 0 });
    const only = rows(1, p, 9);
    const cOnly = run.aggregate({ grads: only, losses: [1], step: 0, tasks: ['c'] }).direction;
    const pairFrom = groups[1]!.offset - layout.shared.offset;
    assert.ok(cOnly.subarray(pairFrom).every((v) => v === 0));
    const aOnly = run.aggregate({ grads: only, losses: [1], step: 1, tasks: ['a'] }).direction;
    assert.deepEqual(Array.from(aOnly.subarray(pairFrom)), Array.from(only[0]!.subarray(pairFrom)));
  });

  void it('state by group: a restored aggregator continues as the original (nash-mtl, stateful)', () => {
    const p = layout.shared.size;
    const a = createRunAggregator(layout, 'nash-mtl', {}, { seed: 0 });
    for (let s = 0; s < 3; s++) a.aggregate({ grads: rows(3, p, s), losses: [1, 2, 3], step: s, tasks: TASKS });
    const saved = JSON.parse(JSON.stringify(a.state())) as unknown;
    const b = createRunAggregator(layout, 'nash-mtl', {}, { seed: 0 });
    b.restore(saved);
    const next = rows(3, p, 11);
    const x = a.aggregate({ grads: next, losses: [1, 2, 3], step: 3, tasks: TASKS });
    const y = b.aggregate({ grads: next, losses: [1, 2, 3], step: 3, tasks: TASKS });
    assert.deepEqual(Array.from(x.direction), Array.from(y.direction));
    assert.throws(() => b.restore(createAggregator('nash-mtl').state()), /aggregates its shared parameters by task set/);
  });

  void it('refuses rows without their tasks', () => {
    const run = createRunAggregator(layout, 'mean', {}, {});
    assert.throws(() => run.aggregate({ grads: rows(3, layout.shared.size, 1), losses: [1, 2, 3], step: 0 }), /input\.tasks/);
  });
});
