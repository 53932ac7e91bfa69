// The graph path (a model of the user's): composition with the job, parameter groups from the
// graph, the layout a worker rebuilds from the coordinator's config, seeded initial weights,
// GraphRunner's gradients against tfjs autodiff on the composed model, BatchNormalization state,
// and the errors that name the layer or job path.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { JobSpecError } from '../../common/errors.js';
import { graphModelWithParameters, layoutForGraph } from '../../common/graph-layout.js';
import { validateJob, type JobSpec } from '../../common/job-spec.js';
import { modelFromGraphConfig, trainingConfig, type GraphSpec } from '../../common/model-graph.js';
import { prepareUserModel, readBaseModel } from '../../common/user-model.js';
import { GraphRunner } from '../../worker/graph-runner.js';
import { relativeError } from '../helpers/numeric.js';
import { EXAMPLES } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp-dirs.js';

const EXAMPLE_MODELS = path.join(EXAMPLES, 'models');
const MNIST = { dataset: 'multimnist', target: 'left' } as const;
const SYNTH = { dataset: 'synthetic', target: 1, dim: 7 } as const;

function job(model: Record<string, unknown>, tasks: Record<string, Record<string, unknown>>, seed = 1): JobSpec {
  return validateJob({ name: 'graph', seed, model, tasks, training: { steps: 2, batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.1 } } }, 'test');
}

/** Two inputs, two towers, concatenate, a shared dense with BatchNormalization and dropout, two outputs; out_b reads tower_a only. */
function twoTower(opts: { bn?: boolean; dropout?: number } = {}): tf.LayersModel {
  const a = tf.input({ shape: [4], name: 'xa' });
  const b = tf.input({ shape: [3], name: 'xb' });
  const ta = tf.layers.dense({ units: 5, activation: 'relu', name: 'tower_a' }).apply(a) as tf.SymbolicTensor;
  const tb = tf.layers.dense({ units: 5, activation: 'relu', name: 'tower_b' }).apply(b) as tf.SymbolicTensor;
  let h = tf.layers.concatenate({ name: 'cat' }).apply([ta, tb]) as tf.SymbolicTensor;
  h = tf.layers.dense({ units: 6, activation: 'relu', name: 'shared_dense' }).apply(h) as tf.SymbolicTensor;
  if (opts.bn) h = tf.layers.batchNormalization({ name: 'bn' }).apply(h) as tf.SymbolicTensor;
  if (opts.dropout) h = tf.layers.dropout({ rate: opts.dropout, name: 'drop' }).apply(h) as tf.SymbolicTensor;
  const oa = tf.layers.dense({ units: 3, activation: 'softmax', name: 'out_a' }).apply(h) as tf.SymbolicTensor;
  const ob = tf.layers.dense({ units: 1, name: 'out_b' }).apply(ta) as tf.SymbolicTensor;
  return tf.model({ inputs: [a, b], outputs: [oa, ob], name: 'two_tower' });
}

const OUTPUT_TASKS = {
  a: { output: 'out_a', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: MNIST },
  b: { output: 'out_b', loss: 'meanSquaredError', data: SYNTH },
};
const SHAPES = new Map([
  ['a', [7]],
  ['b', [7]],
]);
const OBJECTIVES = new Map([
  ['a', { loss: 'sparseCategoricalCrossentropy' as const, metrics: ['accuracy' as const] }],
  ['b', { loss: 'meanSquaredError' as const, metrics: [] }],
]);

/** What a worker does with the Welcome: the layout from the coordinator's config (through JSON). */
function workerSide(spec: JobSpec, graph: GraphSpec): GraphRunner {
  const wire = JSON.parse(JSON.stringify(graph)) as GraphSpec;
  const model = modelFromGraphConfig(wire.config);
  const layout = layoutForGraph(spec, model, wire, SHAPES);
  model.dispose();
  return new GraphRunner(layout, OBJECTIVES);
}

const X = Float32Array.from({ length: 4 * 7 }, (_, i) => Math.sin(i + 1));
const YA = Float32Array.from([0, 1, 2, 1]);

function groupsOf(prepared: ReturnType<typeof prepareUserModel>): Record<string, string> {
  return Object.fromEntries(prepared.layout.tensors.map((t) => [t.name, t.group]));
}

void describe('graph path: a model of the user', () => {
  void it("derives parameter groups from the graph: shared where two tasks reach a weight, a task's where one does, BatchNormalization statistics as state", () => {
    const spec = job({ layersModel: 'm.json' }, OUTPUT_TASKS);
    const prepared = prepareUserModel(spec, { model: twoTower({ bn: true }), weightsLoaded: false }, SHAPES);
    const groups = groupsOf(prepared);
    assert.equal(groups['tower_a/kernel'], 'shared');
    assert.equal(groups['tower_b/kernel'], 'task:a');
    assert.equal(groups['shared_dense/kernel'], 'task:a');
    assert.equal(groups['bn/gamma'], 'task:a');
    assert.equal(groups['out_b/kernel'], 'task:b');
    assert.equal(groups['bn/moving_mean'], 'state');
    assert.equal(groups['bn/moving_variance'], 'state');
    const { layout } = prepared;
    // Order: shared, each task's, frozen, state; each group one contiguous range.
    assert.equal(layout.shared.offset, 0);
    assert.equal(layout.shared.size, 4 * 5 + 5);
    assert.equal(layout.state.size, 12);
    assert.equal(layout.state.offset + layout.state.size, layout.totalSize);
    assert.deepEqual(layout.inputShape, [7]);
    assert.deepEqual(layout.graph!.inputs.map((i) => i.name), ['xa', 'xb']);
    assert.equal(layout.graph!.outputs.get('a')!.activation, 'softmax');
    assert.equal(layout.graph!.outputs.get('b')!.activation, 'linear');
  });

  void it('freezes the layers trainable excludes; YAML heads on a trunk cut at trunkOutput train', () => {
    const heads = { a: [{ dense: { units: 3, activation: 'softmax' } }], b: [{ dense: { units: 4, activation: 'relu' } }, { dense: { units: 1 } }] };
    const tasks = { a: { loss: 'sparseCategoricalCrossentropy', data: MNIST }, b: { loss: 'meanSquaredError', data: SYNTH } };
    const frozen = prepareUserModel(job({ layersModel: 'm.json', trunkOutput: 'shared_dense', trainable: false, heads }, tasks), { model: twoTower(), weightsLoaded: false }, SHAPES);
    const g = groupsOf(frozen);
    for (const name of ['tower_a/kernel', 'tower_b/kernel', 'shared_dense/kernel']) assert.equal(g[name], 'frozen', name);
    assert.equal(g['a/kernel'], 'task:a');
    assert.equal(g['b_0_dense/kernel'], 'task:b');
    assert.equal(frozen.layout.shared.size, 0);
    assert.equal(frozen.layout.graph!.outputs.get('b')!.layer, 'b');
    // The layers the heads do not read (out_a, out_b) are not part of the composition.
    assert.ok(!frozen.layout.tensors.some((t) => t.name.startsWith('out_')));

    const some = prepareUserModel(job({ layersModel: 'm.json', trunkOutput: 'shared_dense', trainable: ['shared_dense'], heads }, tasks), { model: twoTower(), weightsLoaded: false }, SHAPES);
    const s = groupsOf(some);
    assert.equal(s['tower_a/kernel'], 'frozen');
    assert.equal(s['shared_dense/kernel'], 'shared');
  });

  void it('a worker rebuilds the same layout from the JSON config, and the seeded initial weights are a function of the seed', () => {
    const spec = job({ layersModel: 'm.json' }, OUTPUT_TASKS);
    const one = prepareUserModel(spec, { model: twoTower({ bn: true, dropout: 0.5 }), weightsLoaded: false }, SHAPES);
    const two = prepareUserModel(spec, { model: twoTower({ bn: true, dropout: 0.5 }), weightsLoaded: false }, SHAPES);
    assert.ok(one.initialParams.every((v, i) => v === two.initialParams[i]), 'same seed, same initial weights');
    const other = prepareUserModel(job({ layersModel: 'm.json' }, OUTPUT_TASKS, 2), { model: twoTower({ bn: true, dropout: 0.5 }), weightsLoaded: false }, SHAPES);
    assert.ok(!one.initialParams.every((v, i) => v === other.initialParams[i]), 'another seed, other initial weights');
    const runner = workerSide(spec, one.layout.graph!.spec);
    assert.deepEqual(runner.layout.tensors, one.layout.tensors);
    runner.dispose();
  });

  void it("keeps a loaded model's weights and seeds only the layers the job adds", () => {
    const base = twoTower();
    const heads = { a: [{ dense: { units: 3, activation: 'softmax' } }], b: [{ dense: { units: 1 } }] };
    const tasks = { a: { loss: 'sparseCategoricalCrossentropy', data: MNIST }, b: { loss: 'meanSquaredError', data: SYNTH } };
    const spec = job({ layersModel: 'm.json', trunkOutput: 'shared_dense', heads }, tasks);
    const loaded = prepareUserModel(spec, { model: base, weightsLoaded: true }, SHAPES);
    const t = loaded.layout.tensors.find((x) => x.name === 'shared_dense/kernel')!;
    const file = base.getLayer('shared_dense').getWeights()[0]!.dataSync();
    assert.deepEqual(Array.from(loaded.initialParams.subarray(t.offset, t.offset + t.size)), Array.from(file));
    const again = prepareUserModel(spec, { model: twoTower(), weightsLoaded: true }, SHAPES);
    const h = loaded.layout.tensors.find((x) => x.name === 'a/kernel')!;
    assert.deepEqual(Array.from(loaded.initialParams.subarray(h.offset, h.offset + h.size)), Array.from(again.initialParams.subarray(h.offset, h.offset + h.size)), 'the head is seeded, whatever the file');
  });

  void it("computes each task's gradient as tfjs autodiff does on the composed model (softmax left to the loss)", () => {
    const spec = job({ layersModel: 'm.json' }, OUTPUT_TASKS);
    const prepared = prepareUserModel(spec, { model: twoTower(), weightsLoaded: false }, SHAPES);
    const runner = workerSide(spec, prepared.layout.graph!.spec);
    runner.setWeights(prepared.initialParams);
    const got = runner.gradients('a', X, YA, { training: true, dropoutSeed: () => 1 });

    // Reference: the exported model, its softmax output, cross-entropy from probabilities.
    const model = graphModelWithParameters(prepared.layout, prepared.initialParams);
    const xa = tf.tensor2d(Array.from({ length: 4 }, (_, r) => Array.from(X.subarray(r * 7, r * 7 + 4))));
    const xb = tf.tensor2d(Array.from({ length: 4 }, (_, r) => Array.from(X.subarray(r * 7 + 4, r * 7 + 7))));
    const vars = prepared.layout.tensors.filter((t) => t.group === 'shared' || t.group === 'task:a');
    const byName = new Map(model.weights.map((w) => [w.originalName, w.read() as tf.Variable]));
    const { value, grads } = tf.variableGrads(() => {
      const p = (model.predict([xa, xb]) as tf.Tensor[])[0]!;
      return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(tf.tensor1d(YA, 'int32'), 3), tf.log(p)), 1))) as tf.Scalar;
    }, vars.map((t) => byName.get(t.name)!));
    const expected = new Float32Array(got.grads.length);
    let at = 0;
    for (const t of vars) {
      expected.set(grads[byName.get(t.name)!.name]!.dataSync(), at);
      at += t.size;
    }
    assert.ok(Math.abs(got.loss - value.dataSync()[0]!) < 1e-5, `loss ${got.loss} vs ${value.dataSync()[0]}`);
    assert.ok(relativeError(got.grads, expected) < 1e-5, `relative error ${relativeError(got.grads, expected)}`);
    // Task b's unit: the shared tower and its own output only.
    const gb = runner.gradients('b', X, Float32Array.from([0.5, 1, 2, 1]), { training: true, dropoutSeed: () => 1 });
    assert.equal(gb.grads.length, prepared.layout.shared.size + prepared.layout.headGroups.get('b')!.size);
    assert.ok(gb.grads.subarray(0, prepared.layout.shared.size).some((v) => v !== 0));
    runner.dispose();
    model.dispose();
  });

  void it('seeds dropout masks per unit: the same seeds give bitwise the same gradient, others another', () => {
    const spec = job({ layersModel: 'm.json' }, OUTPUT_TASKS);
    const prepared = prepareUserModel(spec, { model: twoTower({ dropout: 0.5 }), weightsLoaded: false }, SHAPES);
    const runner = workerSide(spec, prepared.layout.graph!.spec);
    runner.setWeights(prepared.initialParams);
    const seen: Array<[string, boolean]> = [];
    const seeds = (s: number) => (l: { name: string }, shared?: boolean) => {
      seen.push([l.name, shared ?? false]);
      return s;
    };
    const one = runner.gradients('a', X, YA, { training: true, dropoutSeed: seeds(1) });
    const same = runner.gradients('a', X, YA, { training: true, dropoutSeed: seeds(1) });
    const other = runner.gradients('a', X, YA, { training: true, dropoutSeed: seeds(2) });
    assert.ok(one.grads.every((v, i) => v === same.grads[i]));
    assert.ok(!one.grads.every((v, i) => v === other.grads[i]));
    // The dropout layer feeds only task a: its masks are the task's, not the batch's.
    assert.deepEqual(seen[0], ['drop', false]);
    assert.throws(() => runner.gradients('a', X, YA, { training: true }), /without dropout seeds/);
    runner.dispose();
  });

  void it("reports the BatchNormalization statistics a unit's forward pass leaves, starting every unit from the broadcast's", () => {
    const spec = job({ layersModel: 'm.json' }, OUTPUT_TASKS);
    const prepared = prepareUserModel(spec, { model: twoTower({ bn: true }), weightsLoaded: false }, SHAPES);
    const runner = workerSide(spec, prepared.layout.graph!.spec);
    runner.setWeights(prepared.initialParams);
    const { state } = prepared.layout;
    const first = runner.gradients('a', X, YA, { training: true });
    const second = runner.gradients('a', X, YA, { training: true });
    const tail = (g: Float32Array) => Array.from(g.subarray(g.length - state.size));
    assert.deepEqual(tail(first.grads), tail(second.grads), 'each unit starts from the broadcast state');
    const before = Array.from(prepared.initialParams.subarray(state.offset, state.offset + state.size));
    assert.deepEqual(before.slice(0, 6), [0, 0, 0, 0, 0, 0]);
    assert.deepEqual(before.slice(6), [1, 1, 1, 1, 1, 1]);
    // moving = 0.99·old + 0.01·batch: the mean moved off 0 where the batch mean is not 0.
    assert.ok(tail(first.grads).slice(0, 6).some((v) => v > 0));
    // Task b does not reach the BatchNormalization: its units leave the state as it was.
    const b = runner.gradients('b', X, Float32Array.from([0, 1, 0, 1]), { training: true });
    assert.deepEqual(tail(b.grads), before.map((v) => Math.fround(v)));
    runner.dispose();
  });

  void it('a frozen BatchNormalization runs in inference mode and its statistics are frozen, not state', () => {
    const heads = { a: [{ dense: { units: 3, activation: 'softmax' } }], b: [{ dense: { units: 1 } }] };
    const tasks = { a: { loss: 'sparseCategoricalCrossentropy', data: MNIST }, b: { loss: 'meanSquaredError', data: SYNTH } };
    const spec = job({ layersModel: 'm.json', trunkOutput: 'bn', trainable: false, heads }, tasks);
    const prepared = prepareUserModel(spec, { model: twoTower({ bn: true }), weightsLoaded: false }, SHAPES);
    assert.equal(prepared.layout.state.size, 0);
    assert.equal(groupsOf(prepared)['bn/moving_mean'], 'frozen');
    const config = JSON.stringify(trainingConfig(prepared.layout.graph!));
    assert.match(config, /MtlFrozenBatchNormalization/);
    const runner = workerSide(spec, prepared.layout.graph!.spec);
    runner.setWeights(prepared.initialParams);
    const train = runner.gradients('a', X, YA, { training: true });
    const infer = runner.gradients('a', X, YA, { training: false });
    assert.equal(train.loss, infer.loss, 'the frozen layer normalises with its moving statistics in training too');
    runner.dispose();
  });

  void it('refuses what it cannot train, naming the job path and the layer', () => {
    const refused = (model: Record<string, unknown>, tasks: Record<string, Record<string, unknown>>, base: tf.LayersModel, pattern: RegExp) => {
      assert.throws(
        () => prepareUserModel(job(model, tasks), { model: base, weightsLoaded: false }, SHAPES),
        (err: unknown) => err instanceof JobSpecError && pattern.test(err.message),
      );
    };
    refused({ layersModel: 'm.json' }, { ...OUTPUT_TASKS, a: { ...OUTPUT_TASKS.a, output: 'out_aa' } }, twoTower(), /tasks\.a\.output: the model has no output "out_aa"; did you mean "out_a"\?/);
    const heads = { a: [{ dense: { units: 3 } }], b: [{ dense: { units: 1 } }] };
    const tasks = { a: { loss: 'sparseCategoricalCrossentropy', data: MNIST }, b: { loss: 'meanSquaredError', data: SYNTH } };
    refused({ layersModel: 'm.json', trunkOutput: 'shared_dens', heads }, tasks, twoTower(), /model\.trunkOutput: the model has no layer "shared_dens"; did you mean "shared_dense"\?/);
    refused({ layersModel: 'm.json', heads }, tasks, twoTower(), /model\.trunkOutput: the model has 2 outputs \(out_a, out_b\)/);
    refused({ layersModel: 'm.json', trunkOutput: 'cat', trainable: ['tower_c'], heads }, tasks, twoTower(), /model\.trainable\[0\]: the model has no layer "tower_c"/);
    refused({ layersModel: 'm.json', trunkOutput: 'cat', heads: { out_a: heads.a, b: heads.b } }, { out_a: tasks.a, b: tasks.b }, twoTower(), /model\.heads\.out_a\[0\]: the model already has a layer named "out_a"/);
    // Data of the wrong shape: the message says what the model reads.
    assert.throws(
      () => prepareUserModel(job({ layersModel: 'm.json' }, OUTPUT_TASKS), { model: twoTower(), weightsLoaded: false }, new Map([['a', [8]], ['b', [7]]])),
      /tasks\.a\.data: task a's data has examples of shape \[8\], but the model's inputs \(xa \[4\], xb \[3\]\) read consecutive slices of a flat example of 7 values/,
    );
    // An RNN's own dropout cannot be seeded per unit.
    const x = tf.input({ shape: [5, 2], name: 'seq' });
    const lstm = tf.layers.lstm({ units: 3, dropout: 0.2, name: 'rnn' }).apply(x) as tf.SymbolicTensor;
    const rnn = tf.model({ inputs: x, outputs: [tf.layers.dense({ units: 3, name: 'out_a' }).apply(lstm) as tf.SymbolicTensor, tf.layers.dense({ units: 1, name: 'out_b' }).apply(lstm) as tf.SymbolicTensor] });
    const prepared = prepareUserModel(job({ layersModel: 'm.json' }, OUTPUT_TASKS), { model: rnn, weightsLoaded: false }, new Map([['a', [5, 2]], ['b', [5, 2]]]));
    assert.throws(() => trainingConfig(prepared.layout.graph!), /layer "rnn" \(LSTM\): dropout\/recurrentDropout inside the RNN is not reproducible/);
  });
});

void describe('graph path: reading model.layersModel', () => {
  const copy = (mutate?: (json: { weightsManifest: Array<{ paths: string[] }> }, dir: string) => void): string => {
    const dir = tempDir('mtl-layers-model-');
    cpSync(path.join(EXAMPLE_MODELS, 'two-tower'), dir, { recursive: true });
    const file = path.join(dir, 'model.json');
    const json = JSON.parse(readFileSync(file, 'utf8')) as { weightsManifest: Array<{ paths: string[] }> };
    mutate?.(json, dir);
    writeFileSync(file, JSON.stringify(json));
    return dir;
  };
  const spec = job({ layersModel: 'model.json' }, { a: { ...OUTPUT_TASKS.a, output: 'out_a' }, b: { ...OUTPUT_TASKS.b, output: 'out_b' } });

  void it("loads the file's weights when its shards are present, and only the topology when every shard is absent", () => {
    const full = readBaseModel(spec, copy());
    assert.equal(full.weightsLoaded, true);
    const saved = JSON.parse(readFileSync(path.join(EXAMPLE_MODELS, 'two-tower', 'model.json'), 'utf8')) as { weightsManifest: Array<{ weights: Array<{ name: string; shape: number[] }> }> };
    const first = saved.weightsManifest[0]!.weights[0]!;
    const bytes = readFileSync(path.join(EXAMPLE_MODELS, 'two-tower', 'weights.bin'));
    const expected = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + 4 * first.shape.reduce((a, b) => a * b, 1)));
    const variable = full.model.weights.find((w) => w.originalName === first.name)!;
    assert.deepEqual(Array.from(variable.read().dataSync()), Array.from(expected));
    const bare = readBaseModel(spec, copy((_, dir) => rmSync(path.join(dir, 'weights.bin'))));
    assert.equal(bare.weightsLoaded, false);
  });

  void it('refuses a copy with only some of its shards, naming the missing one', () => {
    const dir = copy((json) => json.weightsManifest[0]!.paths.push('./second-shard.bin'));
    assert.throws(() => readBaseModel(spec, dir), /model\.layersModel: .*weight shard\(s\) missing: \.\/second-shard\.bin/);
  });
});
