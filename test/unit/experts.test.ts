// Mixture-of-experts architectures (mmoe, cgc, ple): the parameter ownership the layout
// declares is the one the computation has (a task's gradient is zero on every other task's
// tensors, and non-zero on every shared tensor), and the exported tfjs-layers model computes
// what the worker computes, before and after a save/load round trip.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { JobSpecError } from '../../common/errors.js';
import { validateJob, type JobSpec } from '../../common/job-spec.js';
import { buildLayersModel, fileSystemModel, saveLayersModel } from '../../common/model-files.js';
import { buildLayout, initialParameters, SHARED_GROUP, taskGroup, type ParameterLayout } from '../../common/parameter-layout.js';
import { Rng } from '../../common/random.js';
import { selectBackend } from '../../worker/backend.js';
import { opsModeFor } from '../../worker/layer-ops.js';
import { taskLoss } from '../../worker/losses.js';
import { ModelRunner } from '../../worker/model-runner.js';
import { tempDir } from '../helpers/temp-dirs.js';

const TASKS = ['a', 'b', 'c'];
const DIM = 6;

function job(experts: Record<string, unknown>): Record<string, unknown> {
  return {
    name: 'experts',
    seed: 2,
    model: {
      trunk: [{ dense: { units: 5, activation: 'tanh' } }],
      // tanh, not relu: a dead unit would hide a dependency the ownership check looks for.
      experts: { layers: [{ dense: { units: 4, activation: 'tanh' } }], ...experts },
      heads: { a: [{ dense: { units: 3, activation: 'tanh' } }, { dense: { units: 1 } }], b: [{ dense: { units: 1 } }], c: [{ dense: { units: 1 } }] },
    },
    tasks: Object.fromEntries(TASKS.map((t, i) => [t, { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: i, tasks: 3, dim: DIM } }])),
    training: { steps: 1, batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.1 } },
  };
}

const ARCHITECTURES: Record<string, Record<string, unknown>> = {
  mmoe: { type: 'mmoe', shared: 3 },
  cgc: { type: 'cgc', shared: 2, perTask: 1 },
  'ple, 2 levels': { type: 'ple', shared: 1, perTask: 2, levels: 2 },
  'ple, 3 levels': { type: 'ple', shared: 2, perTask: 1, levels: 3 },
};

function setup(experts: Record<string, unknown>): { spec: JobSpec; layout: ParameterLayout; runner: ModelRunner; params: Float32Array } {
  const spec = validateJob(job(experts), 'job.yaml');
  const layout = buildLayout(spec, [DIM]);
  const runner = new ModelRunner(layout, new Map(TASKS.map((t) => [t, { loss: 'meanSquaredError' as const, metrics: [] }])), opsModeFor('cpu'));
  const params = initialParameters(layout, 2);
  // Non-zero biases, so that no gradient is zero by accident of the initialisation.
  const rng = new Rng(9);
  for (const t of layout.tensors) if (t.init === 'zeros') for (let k = t.offset; k < t.offset + t.size; k++) params[k] = 0.3 * rng.normal();
  runner.setWeights(params);
  return { spec, layout, runner, params };
}

function batch(n: number): { x: Float32Array; y: Float32Array } {
  const rng = new Rng(4);
  return { x: Float32Array.from({ length: n * DIM }, () => rng.normal()), y: Float32Array.from({ length: n }, () => rng.normal()) };
}

void describe('mixture-of-experts architectures', () => {
  before(async () => {
    tf.enableProdMode();
    await selectBackend('cpu');
  });

  for (const [label, experts] of Object.entries(ARCHITECTURES)) {
    void it(`${label}: each task's loss depends on the shared tensors and its own, never on another task's`, () => {
      const { layout, runner, params } = setup(experts);
      const { x, y } = batch(5);
      const all = layout.tensors.map((_, i) => i);
      for (const task of TASKS) {
        const grads = tf.tidy(() => {
          const xt = tf.tensor(x, [5, DIM]);
          const yt = tf.tensor1d(y);
          const f = (...ws: tf.Tensor[]) => {
            const overrides = new Map(all.map((i) => [i, ws[i]!] as const));
            const opts = { training: false };
            // + 0·Σw connects every tensor (tfjs refuses gradients of inputs y does not depend on); adds exact zeros.
            const zero = tf.mul(0, tf.addN(ws.map((w) => tf.sum(w))));
            return tf.add<tf.Scalar>(taskLoss('meanSquaredError', runner.head(task, runner.features(task, xt, opts, overrides), opts, overrides), yt), zero);
          };
          const ws = layout.tensors.map((t) => tf.tensor(params.slice(t.offset, t.offset + t.size), [...t.shape]));
          return tf.grads(f)(ws).map((g) => g.dataSync() as Float32Array);
        });
        layout.tensors.forEach((t, i) => {
          const norm = grads[i]!.reduce((s, v) => s + Math.abs(v), 0);
          if (t.group === SHARED_GROUP) assert.ok(norm > 0, `${label}: task ${task} does not depend on shared tensor ${t.name}`);
          else if (t.group === taskGroup(task)) assert.ok(norm > 0, `${label}: task ${task} does not depend on its own ${t.name}`);
          else assert.equal(norm, 0, `${label}: task ${task} depends on ${t.name} of ${t.group}`);
        });
      }
      // The groups are contiguous: shared first, then each task's.
      assert.equal(layout.shared.offset, 0);
      let offset = layout.shared.size;
      for (const task of TASKS) {
        assert.equal(layout.headGroups.get(task)!.offset, offset);
        offset += layout.headGroups.get(task)!.size;
      }
      assert.equal(offset, layout.totalSize);
    });

    void it(`${label}: the exported model computes what the worker computes, also after save and load`, async () => {
      const { layout, runner, params } = setup(experts);
      const { x } = batch(7);
      const model = buildLayersModel(layout, 'experts', params);
      const dir = tempDir('mtl-experts-model-');
      try {
        await saveLayersModel(model, dir, {});
        const loaded = await tf.loadLayersModel(fileSystemModel(dir));
        for (const m of [model, loaded]) {
          const outs = m.predict(tf.tensor(x, [7, DIM])) as tf.Tensor[];
          TASKS.forEach((task, i) => {
            const expected = runner.predict(task, x, 7);
            const got = outs[i]!.dataSync();
            for (let k = 0; k < expected.length; k++) assert.ok(Math.abs(got[k]! - expected[k]!) < 1e-5, `${label} ${task}[${k}]: ${got[k]} vs ${expected[k]}`);
          });
          tf.dispose(outs);
        }
        loaded.dispose();
      } finally {
        model.dispose();
      }
    });
  }

  void it('gives mmoe gates to the tasks and experts to all, and counts the tensors', () => {
    const { layout } = setup(ARCHITECTURES.mmoe!);
    const names = (group: string) => layout.tensors.filter((t) => t.group === group).map((t) => t.name);
    assert.deepEqual(names(SHARED_GROUP), ['trunk_0_dense/kernel', 'trunk_0_dense/bias', 'x0_s0_0_dense/kernel', 'x0_s0_0_dense/bias', 'x0_s1_0_dense/kernel', 'x0_s1_0_dense/bias', 'x0_s2_0_dense/kernel', 'x0_s2_0_dense/bias']);
    assert.deepEqual(names(taskGroup('b')), ['gate0_b/kernel', 'gate0_b/bias', 'b/kernel', 'b/bias']);
    assert.deepEqual(layout.featureShape, [4]);
  });

  void it('rejects architectures that cannot work, naming the path', () => {
    const problems = (experts: Record<string, unknown>, trunk?: unknown[]) => {
      const d = job(experts) as { model: { trunk: unknown[] } };
      if (trunk) d.model.trunk = trunk;
      try {
        buildLayout(validateJob(d, 'job.yaml'), [DIM]);
      } catch (err) {
        assert.ok(err instanceof JobSpecError);
        return err.issues.map((i) => i.path);
      }
      return [];
    };
    assert.deepEqual(problems({ type: 'mmoe', shared: 1 }), ['model.experts.shared']);
    assert.deepEqual(problems({ type: 'mmoe', shared: 2, perTask: 1 }), ['model.experts.perTask']);
    assert.deepEqual(problems({ type: 'cgc', shared: 2 }), ['model.experts.perTask']);
    assert.deepEqual(problems({ type: 'cgc', shared: 2, perTask: 1, levels: 2 }), ['model.experts.levels']);
    assert.deepEqual(problems({ type: 'ple', shared: 1, perTask: 1, levels: 2 }), []);
  });
});
