// Sequential mode's parts: the job spec's stage checks, the stage plan both sides share, the
// forgetting penalties (gradients against their values, the proximal step against its
// definition) and the worker's Fisher units.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { bindTasks } from '../../common/datasets/index.js';
import { JobSpecError } from '../../common/errors.js';
import type { StageSpec } from '../../common/job-schema.js';
import { validateJob, type JobSpec } from '../../common/job-spec.js';
import { buildLayout, initialParameters } from '../../common/parameter-layout.js';
import { Rng } from '../../common/random.js';
import { StagePlan } from '../../common/stages.js';
import { ForgettingPenalties } from '../../coordinator/forgetting.js';
import { selectBackend } from '../../worker/backend.js';
import { opsModeFor } from '../../worker/layer-ops.js';
import { ModelRunner } from '../../worker/model-runner.js';
import { UnitComputer } from '../../worker/unit-compute.js';

function doc(training: Record<string, unknown>, tasks = ['a', 'b', 'c']): Record<string, unknown> {
  return {
    name: 'seq',
    model: { heads: Object.fromEntries(tasks.map((t) => [t, [{ dense: { units: 1 } }]])) },
    tasks: Object.fromEntries(tasks.map((t, i) => [t, { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: i, tasks: 3 } }])),
    training: { batchSize: 8, optimizer: { name: 'sgd', learningRate: 0.1 }, ...training },
  };
}

function problems(d: unknown): Array<[string, string]> {
  try {
    validateJob(d, 'job.yaml');
  } catch (err) {
    assert.ok(err instanceof JobSpecError);
    return err.issues.map((i) => [i.path, i.message]);
  }
  return [];
}

const stages = (...s: Array<Record<string, unknown>>) => ({ mode: 'sequential', stages: s });

void describe('sequential job spec', () => {
  void it('accepts stages, fills in the total steps and the defaults', () => {
    const job = validateJob(doc(stages({ tasks: ['a'], steps: 5 }, { tasks: ['b', 'c'], steps: 7, protect: { ewc: { lambda: 2 } } })), 'job.yaml');
    assert.equal(job.training.steps, 12);
    assert.deepEqual(job.training.stages![1]!.protect.ewc, { lambda: 2, samples: 1000, fisher: 'sampled', online: false, decay: 1, decoupled: false });
    assert.deepEqual(job.training.stages![0]!.freeze, []);
  });

  void it('names the offending path of every stage problem', () => {
    const found = problems({
      ...doc({ ...stages({ tasks: ['a', 'x'], steps: 5, protect: { replay: { fraction: 0.5 } } }, { tasks: ['a'], steps: 5, freeze: ['trunk'] }), steps: 3 }),
    });
    const paths = found.map(([p]) => p);
    assert.ok(paths.includes('training.stages[0].tasks[1]'), JSON.stringify(found));
    assert.ok(paths.includes('training.stages[1].tasks[0]'), 'a trains twice');
    assert.ok(paths.includes('training.stages[1].freeze[0]'));
    assert.ok(paths.includes('training.stages[0].protect.replay'), 'nothing to protect in stage 1');
    assert.ok(found.some(([p, m]) => p === 'training.stages' && /"b" is in no stage/.test(m)));
    assert.ok(found.some(([p, m]) => p === 'training.steps' && /sum of the stages' steps \(10\)/.test(m)));
  });

  void it('requires stages in sequential mode, and steps without them', () => {
    assert.deepEqual(problems(doc({ mode: 'sequential' })).map(([p]) => p), ['training.stages']);
    assert.deepEqual(problems(doc({})).map(([p]) => p), ['training.steps']);
    assert.deepEqual(problems(doc({ steps: 4, stages: [{ tasks: ['a'], steps: 4 }] })).map(([p]) => p), ['training.stages']);
    assert.ok(problems(doc({ ...stages({ tasks: ['a', 'b', 'c'], steps: 2, protect: { ewc: { lambda: -1 } } }) })).some(([p]) => p === 'training.stages[0].protect.ewc.lambda'));
  });
});

void describe('StagePlan', () => {
  const job = validateJob(
    doc({ ...stages({ tasks: ['b'], steps: 3 }, { tasks: ['a'], steps: 2, protect: { ewc: { lambda: 1, samples: 40 } } }, { name: 'z', tasks: ['c'], steps: 4, protect: { replay: { fraction: 0.3 } } }), shardsPerTask: 2 }),
    'job.yaml',
  );
  const plan = new StagePlan(job);

  void it('maps steps to stages, their active tasks (job order) and unit shapes', () => {
    assert.deepEqual(plan.stages.map((s) => [s.name, s.start, s.end]), [['stage-1', 0, 3], ['stage-2', 3, 5], ['z', 5, 9]]);
    assert.deepEqual([0, 2, 3, 4, 5, 8].map((s) => plan.activeTasks(s)), [['b'], ['b'], ['a'], ['a'], ['a', 'b', 'c'], ['a', 'b', 'c']]);
    assert.deepEqual(plan.unitShape(0, 'b'), { batchSize: 8, shards: 2 });
    assert.equal(plan.unitShape(0, 'a'), undefined);
    assert.deepEqual(plan.unitShape(6, 'a'), { batchSize: 3, shards: 2 }, 'replay: ⌈0.3 · 8⌉ examples');
    assert.deepEqual(plan.unitShape(6, 'c'), { batchSize: 8, shards: 2 });
    assert.deepEqual(plan.earlierTasks(plan.stages[2]!), ['b', 'a']);
  });

  void it('knows where an EWC Fisher is estimated, and how', () => {
    assert.equal(plan.fisherSamplesAt(3), 40, 'stage 1 ends and stage 2 uses EWC');
    assert.equal(plan.fisherKindAt(3), 'sampled');
    assert.equal(plan.fisherSamplesAt(5), undefined, 'no later stage uses EWC');
    assert.equal(plan.fisherSamplesAt(4), undefined, 'not a stage end');
  });

  void it('is one stage of every task in simultaneous mode', () => {
    const sim = new StagePlan(validateJob(doc({ steps: 4 }), 'job.yaml'));
    assert.equal(sim.sequential, false);
    assert.deepEqual(sim.activeTasks(3), ['a', 'b', 'c']);
    assert.deepEqual(sim.unitShape(3, 'c'), { batchSize: 8, shards: 1 });
  });
});

function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

type Protect = StageSpec['protect'];
const ewc = (o: Partial<NonNullable<Protect['ewc']>>): Protect => ({ ewc: { lambda: 3, samples: 10, fisher: 'sampled', online: false, decay: 1, decoupled: false, ...o } });

void describe('forgetting penalties', () => {
  const P = 20;
  const penalties = (): ForgettingPenalties => {
    const f = new ForgettingPenalties(P);
    f.addFisher(Float32Array.from(randomArray(P, 1), Math.abs), randomArray(P, 2));
    f.addFisher(Float32Array.from(randomArray(P, 3), Math.abs), randomArray(P, 4));
    f.beginStage(randomArray(P, 5));
    return f;
  };

  void it('adds the gradient of the penalty it reports (EWC, online EWC, L2-SP), checked by central differences', () => {
    const theta = randomArray(P, 6);
    for (const protect of [ewc({}), ewc({ online: true, decay: 0.7 }), { l2sp: { alpha: 0.4, beta: 0 } }, { ...ewc({}), l2sp: { alpha: 0.2, beta: 0 } }] as Protect[]) {
      const f = penalties();
      const grad = new Float32Array(P);
      const value = f.applyShared(protect, theta, grad);
      assert.ok(value > 0);
      const h = 1e-2;
      for (let p = 0; p < P; p++) {
        const at = (d: number) => {
          const t = theta.slice();
          t[p]! += d;
          return f.applyShared(protect, t, new Float32Array(P));
        };
        const numeric = (at(h) - at(-h)) / (2 * h); // exact for a quadratic, up to rounding
        assert.ok(Math.abs(numeric - grad[p]!) < 1e-3 * (1 + Math.abs(grad[p]!)), `${JSON.stringify(protect)} p=${p}: ${numeric} vs ${grad[p]}`);
      }
    }
  });

  void it('the decoupled step is the proximal point: x − θ + ηλ Σ F_k (x − θ*_k) = 0, and adds no gradient', () => {
    const f = penalties();
    const protect = ewc({ decoupled: true, lambda: 50 });
    const theta = randomArray(P, 7);
    const grad = new Float32Array(P);
    assert.ok(f.applyShared(protect, theta, grad) > 0, 'the penalty is still reported');
    assert.deepEqual(grad, new Float32Array(P));
    const x = theta.slice();
    f.proximalShared(protect, x, 0.01);
    const state = f.state();
    for (let p = 0; p < P; p++) {
      let r = x[p]! - theta[p]!;
      for (let k = 0; k < 2; k++) r += 0.01 * 50 * state.arrays[`ewc.${k}.fisher`]![p]! * (x[p]! - state.arrays[`ewc.${k}.anchor`]![p]!);
      assert.ok(Math.abs(r) < 1e-5, `p=${p}: residual ${r}`);
    }
    const untouched = theta.slice();
    f.proximalShared(ewc({}), untouched, 0.01);
    assert.deepEqual(untouched, theta, 'coupled EWC has no proximal step');
  });

  void it('restores its state exactly', () => {
    const f = penalties();
    const copy = new ForgettingPenalties(P);
    const s = f.state();
    copy.restore({ json: JSON.parse(JSON.stringify(s.json)) as typeof s.json, arrays: s.arrays });
    const theta = randomArray(P, 8);
    const [g1, g2] = [new Float32Array(P), new Float32Array(P)];
    const protect = { ...ewc({}), l2sp: { alpha: 0.3, beta: 0 } };
    assert.equal(copy.applyShared(protect, theta, g1), f.applyShared(protect, theta, g2));
    assert.deepEqual(g1, g2);
    assert.throws(() => copy.restore({ json: { stages: 3 }, arrays: s.arrays }), RangeError);
  });
});

void describe('Fisher units', () => {
  before(async () => {
    tf.enableProdMode();
    await selectBackend('cpu');
  });

  function setup(fisher: 'sampled' | 'empirical'): { job: JobSpec; computer: UnitComputer; runner: ModelRunner } {
    const data = (target: string) => ({ dataset: 'multimnist', target, trainSize: 200, testSize: 50 });
    const job = validateJob(
      {
        name: 'fisher',
        seed: 4,
        model: { input: [28, 28, 1], trunk: [{ flatten: {} }, { dense: { units: 6, activation: 'relu' } }], heads: { l: [{ dense: { units: 10, activation: 'softmax' } }], r: [{ dense: { units: 10, activation: 'softmax' } }] } },
        tasks: { l: { loss: 'sparseCategoricalCrossentropy', data: data('left') }, r: { loss: 'sparseCategoricalCrossentropy', data: data('right') } },
        training: { mode: 'sequential', batchSize: 8, optimizer: { name: 'sgd', learningRate: 0.1 }, stages: [{ tasks: ['l'], steps: 2 }, { tasks: ['r'], steps: 2, protect: { ewc: { lambda: 1, samples: 30, fisher } } }] },
      },
      'job.yaml',
    );
    const layout = buildLayout(job, [28, 28, 1]);
    const runner = new ModelRunner(layout, new Map([['l', { loss: 'sparseCategoricalCrossentropy', metrics: [] }], ['r', { loss: 'sparseCategoricalCrossentropy', metrics: [] }]]), opsModeFor('cpu'));
    runner.setWeights(initialParameters(layout, 4));
    return { job, computer: new UnitComputer(job, bindTasks(job.tasks, '.'), runner), runner };
  }

  void it('empirical: the mean of the squared per-example gradients over the shard, shards adding up to the whole', () => {
    const { job, computer, runner } = setup('empirical');
    const bindings = bindTasks(job.tasks, '.');
    const b = bindings.get('l')!;
    const shards = [0, 1].map((shard) => ({ unit: { task: 'l', step: 2, shard, shardCount: 2 }, out: computer.fisher({ task: 'l', step: 2, shard, shardCount: 2 }) }));
    assert.deepEqual(shards.map((s) => s.out.sampleCount), [15, 15]);
    for (const { unit, out } of shards) {
      const indices = computer.fisherIndices(unit);
      const expected = new Float64Array(out.grads.length);
      for (const i of indices) {
        const x = new Float32Array(784);
        const y = new Float32Array(1);
        b.dataset.train.inputs([i], x);
        b.dataset.train.targets(b.target, [i], y);
        const g = runner.gradients('l', x, y, { training: false }).grads;
        g.forEach((v, k) => (expected[k]! += v * v));
      }
      out.grads.forEach((v, k) => assert.ok(Math.abs(v - expected[k]! / indices.length) <= 1e-6 * (1 + Math.abs(v)), `k=${k}`));
    }
    const all = new Set([...shards.flatMap((s) => [...computer.fisherIndices(s.unit)])]);
    assert.equal(all.size, 30, 'the two shards hold 30 different examples');
    assert.throws(() => computer.fisher({ task: 'l', step: 1, shard: 0, shardCount: 1 }), RangeError, 'no Fisher at a step that ends no stage');
  });

  void it('sampled: deterministic, and not the empirical Fisher (labels drawn from the model)', () => {
    const a = setup('sampled').computer.fisher({ task: 'l', step: 2, shard: 0, shardCount: 1 });
    const b = setup('sampled').computer.fisher({ task: 'l', step: 2, shard: 0, shardCount: 1 });
    const e = setup('empirical').computer.fisher({ task: 'l', step: 2, shard: 0, shardCount: 1 });
    assert.deepEqual(a.grads, b.grads);
    assert.notDeepEqual(a.grads, e.grads);
    assert.ok(a.grads.every((v) => v >= 0 && Number.isFinite(v)));
  });

  void it('trains a replayed task on its smaller batch, and refuses a task that does not train at that step', () => {
    const { computer } = setup('empirical');
    assert.equal(computer.trainIndices({ task: 'l', step: 0, shard: 0 }).length, 8);
    assert.throws(() => computer.trainIndices({ task: 'r', step: 0, shard: 0 }), /does not train at step 0/);
  });
});
