// Per-task input adapters: tasks whose data have different feature spaces each get their own
// (task-owned) layers in front of the shared trunk. The layout checks the shapes and names the
// path of a problem; the exported model has one input per adapted task and computes what the
// worker computes.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { JobSpecError } from '../../common/errors.js';
import { validateJob } from '../../common/job-spec.js';
import { buildLayersModel, fileSystemModel, saveLayersModel } from '../../common/model-files.js';
import { initialParameters, layoutForData, SHARED_GROUP, taskGroup } from '../../common/parameter-layout.js';
import { Rng } from '../../common/random.js';
import { selectBackend } from '../../worker/backend.js';
import { opsModeFor } from '../../worker/layer-ops.js';
import { ModelRunner } from '../../worker/model-runner.js';
import { tempDir } from '../helpers/temp-dirs.js';

function doc(model: Record<string, unknown>, extraTask: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'adapters',
    model: { trunk: [{ dense: { units: 4, activation: 'tanh' } }], heads: { a: [{ dense: { units: 1 } }], b: [{ dense: { units: 1 } }], c: [{ dense: { units: 1 } }] }, ...model },
    tasks: {
      a: { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: 0, tasks: 3 }, ...extraTask },
      b: { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: 1, tasks: 3 } },
      c: { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: 2, tasks: 3 } },
    },
    training: { steps: 1, batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.1 } },
  };
}

// a reads 3 features, b reads 7, c reads the trunk's 5 directly.
const SHAPES = new Map([['a', [3]], ['b', [7]], ['c', [5]]]);
const ADAPTERS = { a: [{ dense: { units: 5, activation: 'relu' } }], b: [{ dense: { units: 6, activation: 'tanh' } }, { dense: { units: 5 } }] };

function problems(d: Record<string, unknown>, shapes = SHAPES): string[] {
  try {
    layoutForData(validateJob(d, 'job.yaml'), shapes);
  } catch (err) {
    assert.ok(err instanceof JobSpecError, String(err));
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

void describe('input adapters', () => {
  before(async () => {
    tf.enableProdMode();
    await selectBackend('cpu');
  });

  void it('places each adapter in its task\'s group, in front of the trunk', () => {
    const layout = layoutForData(validateJob(doc({ adapters: ADAPTERS }), 'job.yaml'), SHAPES);
    assert.deepEqual(layout.inputShape, [5]);
    assert.deepEqual([...layout.taskInputShapes], [['a', [3]], ['b', [7]], ['c', [5]]]);
    const names = (group: string) => layout.tensors.filter((t) => t.group === group).map((t) => t.name);
    assert.deepEqual(names(SHARED_GROUP), ['trunk_0_dense/kernel', 'trunk_0_dense/bias']);
    assert.deepEqual(names(taskGroup('a')), ['adapter_a_0_dense/kernel', 'adapter_a_0_dense/bias', 'a/kernel', 'a/bias']);
    assert.deepEqual(names(taskGroup('b')).slice(0, 4), ['adapter_b_0_dense/kernel', 'adapter_b_0_dense/bias', 'adapter_b_1_dense/kernel', 'adapter_b_1_dense/bias']);
    assert.deepEqual(names(taskGroup('c')), ['c/kernel', 'c/bias']);
  });

  void it('names the path of each shape problem', () => {
    assert.deepEqual(problems(doc({})), [
      'tasks: the tasks\' datasets have different input shapes (a: [3]; b: [7]; c: [5]); one trunk needs one input: give the tasks with another feature space an input adapter (model.adapters.<task>)',
    ]);
    assert.deepEqual(problems(doc({ adapters: { ...ADAPTERS, a: [{ dense: { units: 4 } }] } })), ['model.adapters.a: the adapter outputs [4] but the trunk reads [5]']);
    assert.deepEqual(problems(doc({ adapters: ADAPTERS }, { input: [4] })), ['tasks.a.input: expected [3] (the shape of task a\'s data), got [4]']);
    assert.deepEqual(problems(doc({ adapters: ADAPTERS, input: [6] })), ['model.input: expected [5] (the shape of task c\'s data), got [6]']);
    assert.ok(problems(doc({ adapters: { z: [{ dense: { units: 5 } }] } })).some((p) => p.startsWith('model.adapters.z: adapter for unknown task')));
    assert.ok(problems(doc({ adapters: ADAPTERS, experts: { type: 'mmoe', shared: 2, layers: [{ dense: { units: 2 } }] } })).some((p) => p.startsWith('model.adapters: input adapters cannot be combined')));
  });

  void it('exports a model with one input per adapted task that computes what the worker computes', async () => {
    const layout = layoutForData(validateJob(doc({ adapters: ADAPTERS }), 'job.yaml'), SHAPES);
    const runner = new ModelRunner(layout, new Map(['a', 'b', 'c'].map((t) => [t, { loss: 'meanSquaredError' as const, metrics: [] }])), opsModeFor('cpu'));
    const params = initialParameters(layout, 3);
    runner.setWeights(params);
    const model = buildLayersModel(layout, 'adapters', params);
    assert.deepEqual(model.inputNames, ['input', 'input_a', 'input_b']);
    const rng = new Rng(1);
    const xs = new Map([...SHAPES].map(([t, s]) => [t, Float32Array.from({ length: 4 * s[0]! }, () => rng.normal())]));
    const dir = tempDir('mtl-adapters-model-');
    await saveLayersModel(model, dir, {});
    const loaded = await tf.loadLayersModel(fileSystemModel(dir));
    for (const m of [model, loaded]) {
      const outs = m.predict([tf.tensor(xs.get('c')!, [4, 5]), tf.tensor(xs.get('a')!, [4, 3]), tf.tensor(xs.get('b')!, [4, 7])]) as tf.Tensor[];
      ['a', 'b', 'c'].forEach((t, i) => {
        const expected = runner.predict(t, xs.get(t)!, 4);
        const got = outs[i]!.dataSync();
        for (let k = 0; k < 4; k++) assert.ok(Math.abs(got[k]! - expected[k]!) < 1e-5, `${t}[${k}]: ${got[k]} vs ${expected[k]}`);
      });
      tf.dispose(outs);
    }
    model.dispose();
    loaded.dispose();
  });
});

void describe('named inputs', () => {
  before(async () => {
    tf.enableProdMode();
    await selectBackend('cpu');
  });

  // The classic two-input model: a 3-feature input and a 2-feature input, each with its own
  // tower, concatenated before the trunk. The data's 5 features are the two inputs side by side.
  const model = {
    inputs: { numeric: { features: 3, layers: [{ dense: { units: 4, activation: 'tanh' } }] }, wind: { features: 2, layers: [{ dense: { units: 2, activation: 'relu' } }] } },
  };
  const shapes = new Map([['a', [5]], ['b', [5]], ['c', [5]]]);

  void it('puts the towers in the shared group and feeds the trunk their concatenation', () => {
    const layout = layoutForData(validateJob(doc(model), 'job.yaml'), shapes);
    assert.deepEqual(layout.inputShape, [5]);
    assert.deepEqual(layout.namedInputs.map((n) => [n.name, n.size]), [['numeric', 3], ['wind', 2]]);
    assert.deepEqual(layout.trunk[0]!.inputShape, [6]);
    assert.deepEqual(
      layout.tensors.filter((t) => t.group === SHARED_GROUP).map((t) => t.name),
      ['numeric_0_dense/kernel', 'numeric_0_dense/bias', 'wind_0_dense/kernel', 'wind_0_dense/bias', 'trunk_0_dense/kernel', 'trunk_0_dense/bias'],
    );
  });

  void it('names the path when the inputs do not add up to the data, or are combined with adapters', () => {
    assert.deepEqual(problems(doc(model), new Map([['a', [6]], ['b', [6]], ['c', [6]]])), ['model.inputs: the named inputs take 5 features per example (numeric: 3, wind: 2), the data has [6]']);
    assert.ok(problems(doc({ ...model, adapters: ADAPTERS })).some((p) => p.startsWith('model.adapters: input adapters cannot be combined with model.inputs')));
  });

  void it('exports one input per name; the model computes what the worker computes from the flat input', async () => {
    const layout = layoutForData(validateJob(doc(model), 'job.yaml'), shapes);
    const runner = new ModelRunner(layout, new Map(['a', 'b', 'c'].map((t) => [t, { loss: 'meanSquaredError' as const, metrics: [] }])), opsModeFor('cpu'));
    const params = initialParameters(layout, 6);
    runner.setWeights(params);
    const exported = buildLayersModel(layout, 'named', params);
    assert.deepEqual(exported.inputNames, ['numeric', 'wind']);
    const rng = new Rng(2);
    const x = Float32Array.from({ length: 4 * 5 }, () => rng.normal());
    const numeric = Float32Array.from({ length: 12 }, (_, k) => x[Math.floor(k / 3) * 5 + (k % 3)]!);
    const wind = Float32Array.from({ length: 8 }, (_, k) => x[Math.floor(k / 2) * 5 + 3 + (k % 2)]!);
    const dir = tempDir('mtl-named-model-');
    await saveLayersModel(exported, dir, {});
    const loaded = await tf.loadLayersModel(fileSystemModel(dir));
    for (const m of [exported, loaded]) {
      const outs = m.predict([tf.tensor(numeric, [4, 3]), tf.tensor(wind, [4, 2])]) as tf.Tensor[];
      ['a', 'b', 'c'].forEach((t, i) => {
        const expected = runner.predict(t, x, 4);
        const got = outs[i]!.dataSync();
        for (let k = 0; k < 4; k++) assert.ok(Math.abs(got[k]! - expected[k]!) < 1e-5, `${t}[${k}]: ${got[k]} vs ${expected[k]}`);
      });
      tf.dispose(outs);
    }
    exported.dispose();
    loaded.dispose();
  });
});
