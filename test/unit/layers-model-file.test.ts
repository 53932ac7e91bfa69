// Reading TF.js Layers model files synchronously: tfjs-saved models (nested Sequential,
// Bidirectional LSTM) round-trip to the same predictions; quantized weights decode to the
// hand-computed values (and to what tf.io.decodeWeights gives); Keras 3 topologies written in
// Keras 3's serialization format build the same model as tfjs' own API; a real converted
// Keras model from another project (@upscalerjs/default-model) predicts as tf.loadLayersModel
// does; and broken files fail with ModelFileError naming the shard, layer, class and path.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { ModelFileError } from '../../common/errors.js';
import { normalizeTopology } from '../../common/keras-topology.js';
import { matchWeights, modelFromTopology, readLayersModelFile, setWeightsByName, type ModelFile, type WeightValues } from '../../common/layers-model-file.js';
import { fileSystemModel } from '../../common/model-files.js';
import { Rng } from '../../common/random.js';
import {
  bytesOf,
  concatBytes,
  k3Dense,
  k3Input,
  k3Layer,
  k3Lstm,
  k3ModelJson,
  k3Node,
  k3Object,
  k3Tensor,
  POLICY,
  saveTfjsModel,
  writeModelFiles,
  type ManifestEntry,
} from '../helpers/layers-model-fixtures.js';
import { EXAMPLES, REPO_ROOT } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp-dirs.js';

function randomValues(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * 0.5);
}

/** Gives every variable of `model` seeded random values (so a wrong wiring shows in the outputs). */
function randomize(model: tf.LayersModel, seed: number): void {
  model.weights.forEach((v, i) => {
    const t = tf.tensor(randomValues(v.shape.reduce((a: number, b) => a * (b ?? 1), 1), seed + i), v.shape as number[]);
    v.write(t);
    t.dispose();
  });
}

function outputs(model: tf.LayersModel, inputs: tf.Tensor[]): Float32Array[] {
  return tf.tidy(() => {
    const y = model.predict(inputs.length === 1 ? inputs[0]! : inputs);
    return (Array.isArray(y) ? y : [y]).map((t) => t.dataSync() as Float32Array);
  });
}

function assertClose(actual: Float32Array[], expected: Float32Array[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, k) => {
    assert.equal(a.length, expected[k]!.length);
    a.forEach((v, i) => assert.ok(Math.abs(v - expected[k]![i]!) <= tol, `output ${k}[${i}]: ${v} vs ${expected[k]![i]}`));
  });
}

/**
 * Builds the file's model and sets its weights; every file weight must find its variable and
 * every variable a weight, and no tensor is left but the variables (and `tfjsLeaks`, what
 * tfjs-layers itself leaves: 4 tensors for each LSTM built with unitForgetBias).
 */
function buildWithWeights(file: ModelFile, tfjsLeaks = 0): tf.LayersModel {
  const before = tf.memory().numTensors;
  const model = modelFromTopology(file.topology, { file: file.path, jsonPath: file.topologyPath });
  assert.equal(tf.memory().numTensors - before, model.weights.length + tfjsLeaks, 'building leaves no tensor but the variables');
  assert.deepEqual(matchWeights(model, file.weights).unset, [], 'every model variable has a weight in the file');
  assert.deepEqual(setWeightsByName(model, file.weights, file.path), [], 'every file weight found its variable');
  assert.equal(tf.memory().numTensors - before, model.weights.length + tfjsLeaks, 'setting the weights leaves no tensor');
  return model;
}

function throwsModelFileError(fn: () => unknown, ...parts: Array<string | RegExp>): ModelFileError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ModelFileError, `expected a ModelFileError, got ${String(caught)}`);
  for (const p of parts) {
    if (typeof p === 'string') assert.ok(caught.message.includes(p), `message ${JSON.stringify(caught.message)} should mention ${JSON.stringify(p)}`);
    else assert.match(caught.message, p);
  }
  return caught;
}

const TINY_TOPOLOGY = {
  class_name: 'Sequential',
  config: { name: 'tiny', layers: [{ class_name: 'Dense', config: { name: 'd', units: 1, batch_input_shape: [null, 2] } }] },
};

before(async () => {
  await tf.setBackend('cpu');
});

void describe('tfjs-saved models', () => {
  void it('a Functional model with a nested Sequential, saved in shards, reads back to the same predictions', async () => {
    const x = tf.input({ shape: [4], name: 'x' });
    const inner = tf.sequential({ name: 'inner', layers: [tf.layers.dense({ units: 3, inputShape: [4], activation: 'relu', name: 'd1' }), tf.layers.dense({ units: 2, name: 'd2' })] });
    const side = tf.layers.dense({ units: 2, activation: 'tanh', name: 'side' }).apply(x) as tf.SymbolicTensor;
    const merged = tf.layers.concatenate({ name: 'merged' }).apply([inner.apply(x) as tf.SymbolicTensor, side]) as tf.SymbolicTensor;
    const head = tf.layers.dense({ units: 1, name: 'head' }).apply(merged) as tf.SymbolicTensor;
    const original = tf.model({ inputs: x, outputs: head, name: 'outer' });
    randomize(original, 10);
    const file = await saveTfjsModel(original, tempDir(), 64);

    const read = readLayersModelFile(path.dirname(file)); // a directory is taken to hold model.json
    assert.equal(read.path, file);
    assert.equal(read.flavour, 'keras2');
    assert.equal(read.topologyPath, 'modelTopology');
    assert.deepEqual(read.missingShards, []);
    const manifest = (JSON.parse(readFileSync(file, 'utf8')) as { weightsManifest: Array<{ paths: string[] }> }).weightsManifest;
    assert.ok(manifest[0]!.paths.length >= 3, 'the weights span several shards');
    assert.deepEqual([...read.weights!.keys()].sort(), original.weights.map((w) => w.originalName).sort());

    const model = buildWithWeights(read);
    const input = tf.tensor(randomValues(3 * 4, 99), [3, 4]);
    assertClose(outputs(model, [input]), outputs(original, [input]), 0);
    assert.equal(model.getLayer('inner').getClassName(), 'Sequential');
  });

  void it('a Bidirectional(LSTM) model reads back to the same predictions', async () => {
    const original = tf.sequential({
      name: 'bi_model',
      layers: [tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 3, name: 'lstm' }), inputShape: [5, 2], name: 'bi' }), tf.layers.dense({ units: 1, name: 'out' })],
    });
    randomize(original, 20);
    const read = readLayersModelFile(await saveTfjsModel(original, tempDir()));
    assert.ok(read.weights!.has('bi/forward_lstm/kernel') && read.weights!.has('bi/backward_lstm/recurrent_kernel'));
    const model = buildWithWeights(read);
    const input = tf.tensor(randomValues(2 * 5 * 2, 98), [2, 5, 2]);
    assertClose(outputs(model, [input]), outputs(original, [input]), 0);
  });
});

void describe('weights', () => {
  // Codes and the values they stand for, computed by hand from the manifest's rule
  // (float32: code · scale + min; int32: that rounded; float16: IEEE half).
  const entries: ManifestEntry[] = [
    { name: 'q8', shape: [4], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1 } },
    { name: 'q16', shape: [3], dtype: 'float32', quantization: { dtype: 'uint16', scale: 0.001, min: 2 } },
    { name: 'h', shape: [2, 3], dtype: 'float32', quantization: { dtype: 'float16' } },
    { name: 'i8', shape: [3], dtype: 'int32', quantization: { dtype: 'uint8', scale: 2.5, min: -3 } },
    { name: 'plain', shape: [2], dtype: 'float32' },
    { name: 'ints', shape: [2], dtype: 'int32' },
  ];
  const bytes = concatBytes([
    Uint8Array.of(0, 1, 2, 255),
    bytesOf(Uint16Array.of(0, 1000, 65535)),
    bytesOf(Uint16Array.of(0x3c00, 0xc000, 0x3555, 0x0001, 0x7bff, 0xfc00)),
    Uint8Array.of(0, 3, 10),
    bytesOf(Float32Array.of(1.5, -2.25)),
    bytesOf(Int32Array.of(7, -8)),
  ]);
  const expected: Record<string, number[]> = {
    q8: [-1, -0.5, 0, 126.5],
    q16: [2, 3, Math.fround(67.535)],
    h: [1, -2, 0.333251953125, 2 ** -24, 65504, -Infinity],
    i8: [-3, 5, 22],
    plain: [1.5, -2.25],
    ints: [7, -8],
  };

  function quantizedFile(dir: string): string {
    // Two shards cut mid-weight (and the uint8 weights put the others at odd offsets).
    return writeModelFiles(dir, { format: 'layers-model', modelTopology: TINY_TOPOLOGY, weightsManifest: [{ paths: ['a.bin', 'b.bin'], weights: entries }] }, { 'a.bin': bytes.slice(0, 9), 'b.bin': bytes.slice(9) });
  }

  void it('uint8, uint16 and float16 quantization decode to the hand-computed values, int32 stays int32', () => {
    const read = readLayersModelFile(quantizedFile(tempDir()));
    const w = read.weights!;
    for (const [name, values] of Object.entries(expected)) assert.deepEqual([...w.get(name)!.values], values, name);
    assert.deepEqual(w.get('h')!.shape, [2, 3]);
    assert.ok(w.get('i8')!.values instanceof Int32Array && w.get('ints')!.values instanceof Int32Array);
    assert.ok(w.get('q8')!.values instanceof Float32Array && w.get('h')!.values instanceof Float32Array);
    assert.equal(w.get('i8')!.dtype, 'int32');
  });

  void it('decodes as tf.io.decodeWeights does', () => {
    const read = readLayersModelFile(quantizedFile(tempDir()));
    const theirs = tf.io.decodeWeights(bytes.slice().buffer, entries);
    for (const e of entries) {
      assert.deepEqual([...read.weights!.get(e.name)!.values], [...theirs[e.name]!.dataSync()], e.name);
      assert.equal(theirs[e.name]!.dtype, read.weights!.get(e.name)!.dtype);
    }
    tf.dispose(Object.values(theirs));
  });

  void it('a missing shard leaves weights undefined and is listed as the manifest writes it', () => {
    const dir = tempDir();
    const file = quantizedFile(dir);
    rmSync(path.join(dir, 'b.bin'));
    const read = readLayersModelFile(file);
    assert.equal(read.weights, undefined);
    assert.deepEqual(read.missingShards, ['b.bin']);
    assert.equal(read.topology.class_name, 'Sequential', 'the topology is read all the same');
  });

  void it('a truncated shard (or one too long) is an error naming the shard', async () => {
    const original = tf.sequential({ layers: [tf.layers.dense({ units: 8, inputShape: [20], name: 'wide' })] });
    const dir = tempDir();
    const file = await saveTfjsModel(original, dir, 200); // 672 bytes: 200, 200, 200, 72
    truncateSync(path.join(dir, 'group1-shard2of4.bin'), 150);
    throwsModelFileError(() => readLayersModelFile(file), file, 'group1-shard2of4.bin is truncated', 'has 150 bytes, 200 expected');

    const dir2 = tempDir();
    const file2 = await saveTfjsModel(original, dir2, 200);
    truncateSync(path.join(dir2, 'group1-shard4of4.bin'), 70);
    throwsModelFileError(() => readLayersModelFile(file2), 'group1-shard4of4.bin is truncated', 'has 70 bytes, 72 expected');

    writeFileSync(path.join(dir2, 'group1-shard4of4.bin'), new Uint8Array(80));
    throwsModelFileError(() => readLayersModelFile(file2), 'group1-shard4of4.bin is longer than its weights', 'has 80 bytes, 72 expected');
  });

  void it('setWeightsByName: returns the names no variable takes, refuses a wrong shape', () => {
    const model = modelFromTopology(TINY_TOPOLOGY);
    const weights: WeightValues = new Map([
      ['d/kernel', { shape: [2, 1], dtype: 'float32', values: Float32Array.of(2, 3) }],
      ['d/bias', { shape: [1], dtype: 'float32', values: Float32Array.of(0.5) }],
      ['stray/kernel', { shape: [1], dtype: 'float32', values: Float32Array.of(1) }],
    ]);
    assert.deepEqual(setWeightsByName(model, weights), ['stray/kernel']);
    assert.deepEqual([...outputs(model, [tf.tensor([[1, 1]])])[0]!], [5.5]);
    assert.deepEqual(setWeightsByName(model, undefined), []);
    const partial = matchWeights(model, new Map([['d/bias', weights.get('d/bias')!]]));
    assert.deepEqual(partial.unset, ['d/kernel']);
    weights.set('d/kernel', { shape: [1, 2], dtype: 'float32', values: Float32Array.of(2, 3) });
    throwsModelFileError(() => setWeightsByName(model, weights, 'm.json'), 'm.json', 'weight "d/kernel" is float32 [1, 2] in the file', 'd/kernel is float32 [2, 1]');
  });
});

// ---------------------------------------------------------------------------------------------
// Keras 3

/**
 * A Keras 3 Functional model, written as Keras 3 serializes it: inputs x and y; a nested
 * Sequential on x and a nested Functional on y, concatenated, LeakyReLU, a Dense head. Its
 * outputs are the head and both nested models' outputs, so the node numbering of nested
 * models (Keras 3 counts their calls from 0, tfjs from 1; output_layers offsets a Functional
 * only) decides whether it loads.
 */
function keras3Functional(): Record<string, unknown> {
  const inner = k3Layer(
    'Sequential',
    { name: 'inner', layers: [k3Input('inner_in', [null, 4]), k3Layer('Dense', k3Dense('inner_dense', 3, 'relu', { kernel_regularizer: k3Object('keras.regularizers', 'L2', { l2: 0.01 }) }))], build_input_shape: [null, 4] },
    [k3Node([k3Tensor('x', [null, 4])], { mask: null })],
    'keras',
  );
  const innerFn = k3Layer(
    'Functional',
    {
      name: 'inner_fn',
      layers: [k3Input('fn_in', [null, 4]), k3Layer('Dense', k3Dense('fn_dense', 2, 'linear', { kernel_initializer: k3Object('keras.initializers', 'LecunNormal', { seed: null }) }), [k3Node([k3Tensor('fn_in', [null, 4])])])],
      input_layers: ['fn_in', 0, 0],
      output_layers: ['fn_dense', 0, 0],
    },
    [k3Node([k3Tensor('y', [null, 4])])],
    'keras.src.models.functional',
  );
  return {
    module: 'keras.src.models.functional',
    class_name: 'Functional',
    config: {
      name: 'k3_functional',
      trainable: true,
      layers: [
        k3Input('x', [null, 4]),
        k3Input('y', [null, 4]),
        inner,
        innerFn,
        k3Layer('Concatenate', { name: 'concat', axis: -1 }, [k3Node([[k3Tensor('inner', [null, 3]), k3Tensor('inner_fn', [null, 2])]])]),
        k3Layer('LeakyReLU', { name: 'leaky', negative_slope: 0.15 }, [k3Node([k3Tensor('concat', [null, 5])])]),
        k3Layer('Dense', k3Dense('head', 1, 'sigmoid', { kernel_initializer: k3Object('keras.initializers', 'VarianceScaling', { scale: 1.0, mode: 'fan_in', distribution: 'truncated_normal', seed: null }) }), [k3Node([k3Tensor('leaky', [null, 5])])]),
      ],
      input_layers: [['x', 0, 0], ['y', 0, 0]],
      output_layers: [['head', 0, 0], ['inner', 0, 0], ['inner_fn', 1, 0]],
    },
    registered_name: null,
    build_config: { input_shape: null },
  };
}

/** The same model through tfjs' own API. */
function tfjsFunctional(): tf.LayersModel {
  const x = tf.input({ shape: [4], name: 'x' });
  const y = tf.input({ shape: [4], name: 'y' });
  const inner = tf.sequential({ name: 'inner', layers: [tf.layers.dense({ units: 3, activation: 'relu', inputShape: [4], name: 'inner_dense' })] });
  const fnIn = tf.input({ shape: [4], name: 'fn_in' });
  const innerFn = tf.model({ inputs: fnIn, outputs: tf.layers.dense({ units: 2, name: 'fn_dense' }).apply(fnIn) as tf.SymbolicTensor, name: 'inner_fn' });
  const a = inner.apply(x) as tf.SymbolicTensor;
  const b = innerFn.apply(y) as tf.SymbolicTensor;
  const c = tf.layers.concatenate({ name: 'concat' }).apply([a, b]) as tf.SymbolicTensor;
  const d = tf.layers.leakyReLU({ alpha: 0.15, name: 'leaky' }).apply(c) as tf.SymbolicTensor;
  const head = tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'head' }).apply(d) as tf.SymbolicTensor;
  return tf.model({ inputs: [x, y], outputs: [head, a, b], name: 'reference' });
}

/** Writes the reference model's weights under `names` (reference variable name → file weight name). */
function writeKeras3Model(config: Record<string, unknown>, reference: tf.LayersModel, names: Record<string, string>): string {
  const entries: ManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  for (const v of reference.weights) {
    const name = names[v.originalName];
    assert.ok(name !== undefined, `a file name for ${v.originalName}`);
    entries.push({ name, shape: v.shape as number[], dtype: 'float32' });
    parts.push(bytesOf(v.read().dataSync()));
  }
  return writeModelFiles(tempDir(), k3ModelJson(config, entries, ['group1-shard1of1.bin']), { 'group1-shard1of1.bin': concatBytes(parts) });
}

void describe('Keras 3 model files', () => {
  void it('a Functional model with a nested Sequential and a nested Functional builds the model tfjs builds', () => {
    const reference = tfjsFunctional();
    randomize(reference, 30);
    // Keras 3 variable paths, as the converter writes them from a Keras 3 .h5.
    const file = writeKeras3Model(keras3Functional(), reference, {
      'inner_dense/kernel': 'inner/inner_dense/kernel',
      'inner_dense/bias': 'inner/inner_dense/bias',
      'fn_dense/kernel': 'inner_fn/fn_dense/kernel',
      'fn_dense/bias': 'inner_fn/fn_dense/bias',
      'head/kernel': 'head/kernel',
      'head/bias': 'head/bias',
    });
    const read = readLayersModelFile(file);
    assert.equal(read.flavour, 'keras3');
    assert.equal(read.topologyPath, 'modelTopology.model_config');
    const text = JSON.stringify(read.topology);
    for (const gone of ['DTypePolicy', '__keras_tensor__', 'batch_shape', 'negative_slope', '"L2"', 'build_config', 'LecunNormal']) assert.ok(!text.includes(gone), `normalized away: ${gone}`);

    const model = buildWithWeights(read);
    const inputs = [tf.tensor(randomValues(8, 1), [2, 4]), tf.tensor(randomValues(8, 2), [2, 4])];
    assertClose(outputs(model, inputs), outputs(reference, inputs));
    assert.deepEqual(
      model.outputs.map((o) => o.shape),
      [
        [null, 1],
        [null, 3],
        [null, 2],
      ],
    );
    const dense = (model.getLayer('inner') as tf.LayersModel).getLayer('inner_dense').getConfig();
    assert.deepEqual(dense.kernelRegularizer, { className: 'L1L2', config: { l1: 0, l2: 0.01 } });
    // tfjs' VarianceScaling draws a truncated normal for 'normal' (and a uniform for anything else).
    assert.deepEqual(model.getLayer('head').getConfig().kernelInitializer, { className: 'VarianceScaling', config: { scale: 1, mode: 'fanIn', distribution: 'normal', seed: null } });
  });

  void it('the raw Keras 3 topology builds too, and normalizing twice changes nothing', () => {
    const raw = keras3Functional();
    const model = modelFromTopology(raw);
    assert.deepEqual(model.inputNames, ['x', 'y']);
    assert.deepEqual(model.outputNames, ['head', 'inner', 'inner_fn']);
    const once = normalizeTopology(raw, { file: 'f', jsonPath: 't' });
    const twice = normalizeTopology(once.topology, { file: 'f', jsonPath: 't' });
    assert.deepEqual(twice.topology, once.topology);
    assert.equal(once.flavour, 'keras3');
  });

  void it('references as Keras writes them: one [layer, node, tensor], a dict (flattened in key order), a flattened Keras 2 node', () => {
    const dense = (name: string, node: unknown) => ({ class_name: 'Dense', name, config: { name, units: 2 }, inbound_nodes: [node] });
    const raw = {
      class_name: 'Model',
      config: {
        name: 'm',
        layers: [{ class_name: 'InputLayer', name: 'in', config: { name: 'in', batch_input_shape: [null, 3] }, inbound_nodes: [] }, dense('b', ['in', 0, 0, {}]), dense('a', [['in', 0, 0, {}]])],
        input_layers: ['in', 0, 0],
        output_layers: { z: ['b', 0, 0], y: ['a', 0, 0] },
      },
    };
    const { topology } = normalizeTopology(raw, { file: 'f', jsonPath: 't' });
    const config = topology.config as { layers: Array<{ inbound_nodes: unknown }>; input_layers: unknown; output_layers: unknown };
    assert.deepEqual(config.input_layers, [['in', 0, 0]]);
    assert.deepEqual(config.output_layers, [['a', 0, 0], ['b', 0, 0]]);
    assert.deepEqual(config.layers[1]!.inbound_nodes, [[['in', 0, 0, {}]]]);
    assert.deepEqual(modelFromTopology(raw).outputNames, ['a', 'b']);
  });

  void it('a Bidirectional(LSTM) Sequential with weights named as a .keras file saves them', () => {
    const reference = tf.sequential({
      name: 'reference_bi',
      layers: [tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 3, recurrentActivation: 'sigmoid', name: 'lstm' }), inputShape: [5, 2], name: 'bidirectional' }), tf.layers.dense({ units: 1, name: 'dense' })],
    });
    randomize(reference, 40);
    const config = {
      module: 'keras',
      class_name: 'Sequential',
      config: {
        name: 'bilstm',
        trainable: true,
        dtype: POLICY,
        layers: [
          { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 5, 2], dtype: 'float32', sparse: false, ragged: false, name: 'seq_in', optional: false }, registered_name: null },
          k3Layer('Bidirectional', { name: 'bidirectional', merge_mode: 'concat', layer: k3Lstm('forward_lstm', 3, false), backward_layer: k3Lstm('backward_lstm', 3, true) }),
          k3Layer('Dense', k3Dense('dense', 1, 'linear')),
        ],
        build_input_shape: [null, 5, 2],
      },
      registered_name: null,
    };
    const file = writeKeras3Model(config, reference, {
      'bidirectional/forward_lstm/kernel': 'layers/bidirectional/forward_layer/cell/vars/0',
      'bidirectional/forward_lstm/recurrent_kernel': 'layers/bidirectional/forward_layer/cell/vars/1',
      'bidirectional/forward_lstm/bias': 'layers/bidirectional/forward_layer/cell/vars/2',
      'bidirectional/backward_lstm/kernel': 'layers/bidirectional/backward_layer/cell/vars/0',
      'bidirectional/backward_lstm/recurrent_kernel': 'layers/bidirectional/backward_layer/cell/vars/1',
      'bidirectional/backward_lstm/bias': 'layers/bidirectional/backward_layer/cell/vars/2',
      'dense/kernel': 'layers/dense/vars/0',
      'dense/bias': 'layers/dense/vars/1',
    });
    const read = readLayersModelFile(file);
    assert.equal(read.flavour, 'keras3');
    const model = buildWithWeights(read, 2 * 4); // both directions' LSTMs have unit_forget_bias
    assert.ok(model.weights.some((w) => w.originalName === 'bidirectional/forward_lstm/kernel'), 'the forward layer keeps its tfjs name');
    const input = tf.tensor(randomValues(2 * 5 * 2, 3), [2, 5, 2]);
    assertClose(outputs(model, [input]), outputs(reference, [input]));
  });

  void it("refuses Keras 3's hard_sigmoid (another function than tfjs') and a backward layer unlike the forward one", () => {
    const sequential = (layer: Record<string, unknown>) => ({ module: 'keras', class_name: 'Sequential', config: { name: 's', layers: [k3Input('in', [null, 5, 2]), layer] }, registered_name: null });
    const hard = k3Layer('Dense', k3Dense('hard', 1, 'hard_sigmoid'));
    throwsModelFileError(() => modelFromTopology(sequential(hard), { file: 'h.json' }), 'h.json', 'layer "hard" (Dense)', 'config.layers[1].config.activation', 'hard_sigmoid');
    const odd = k3Layer('Bidirectional', { name: 'bi', merge_mode: 'concat', layer: k3Lstm('forward_lstm', 3, false), backward_layer: k3Lstm('backward_lstm', 4, true) });
    throwsModelFileError(() => modelFromTopology(sequential(odd)), 'layer "bi" (Bidirectional)', 'backward layer unlike its forward layer (units)');
  });
});

// ---------------------------------------------------------------------------------------------
// Refusals

void describe('files and topologies that cannot be used', () => {
  void it('a graph model is refused: only Layers models can be trained', () => {
    const file = writeModelFiles(tempDir(), { format: 'graph-model', generatedBy: '2.8.0', modelTopology: { node: [{ name: 'x', op: 'Placeholder' }] }, weightsManifest: [] });
    throwsModelFileError(() => readLayersModelFile(file), file, 'graph model', 'only Layers models');
    const unmarked = writeModelFiles(tempDir(), { modelTopology: { node: [], library: {} }, weightsManifest: [] });
    throwsModelFileError(() => readLayersModelFile(unmarked), 'graph model');
  });

  void it('unreadable files, bad JSON and shard paths outside the model directory are errors naming the file', () => {
    const dir = tempDir();
    throwsModelFileError(() => readLayersModelFile(path.join(dir, 'absent.json')), 'absent.json', 'cannot read');
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, '{"format": "layers-model",');
    throwsModelFileError(() => readLayersModelFile(bad), bad, 'not JSON');
    const escaping = writeModelFiles(tempDir(), { format: 'layers-model', modelTopology: TINY_TOPOLOGY, weightsManifest: [{ paths: ['../elsewhere.bin'], weights: [] }] });
    throwsModelFileError(() => readLayersModelFile(escaping), 'weightsManifest[0].paths[0]', 'not a file beside the model');
    const badDtype = writeModelFiles(tempDir(), { format: 'layers-model', modelTopology: TINY_TOPOLOGY, weightsManifest: [{ paths: [], weights: [{ name: 's', shape: [1], dtype: 'string' }] }] });
    throwsModelFileError(() => readLayersModelFile(badDtype), 'weightsManifest[0].weights[0]', 'dtype "string" is not supported');
  });

  const functional = (layers: unknown[], outputs: unknown[] = [['out', 0, 0]]) => ({
    class_name: 'Functional',
    config: { name: 'f', layers: [{ class_name: 'InputLayer', name: 'in', config: { name: 'in', batch_input_shape: [null, 4] }, inbound_nodes: [] }, ...layers], input_layers: [['in', 0, 0]], output_layers: outputs },
  });

  void it('a layer class tfjs-layers lacks names the layer, its class and the JSON path, with a short hint', () => {
    const group = k3Layer('GroupNormalization', { name: 'norm', groups: 2 }, [k3Node([k3Tensor('in', [null, 4])])]);
    const out = k3Layer('Dense', k3Dense('out', 1, 'linear'), [k3Node([k3Tensor('norm', [null, 4])])]);
    const err = throwsModelFileError(() => modelFromTopology(functional([group, out]), { file: 'k.json', jsonPath: 'modelTopology.model_config' }), 'k.json', 'layer "norm" (GroupNormalization) at modelTopology.model_config.config.layers[1]', 'Keras has it (keras.layers), tfjs-layers 4.22 does not');
    assert.deepEqual(err.location, { layer: 'norm', className: 'GroupNormalization', jsonPath: 'modelTopology.model_config.config.layers[1]' });
    assert.equal(err.code, 'MODEL_FILE_INVALID');

    const lambda = { class_name: 'Lambda', config: { name: 'fn', function: ['4wEAAAAA', null, null] }, name: 'fn', inbound_nodes: [[['in', 0, 0, {}]]] };
    throwsModelFileError(() => modelFromTopology(functional([lambda], [['fn', 0, 0]])), 'layer "fn" (Lambda)', 'Python code');
  });

  void it('a custom layer not registered is refused with the hint to register it; registered, it builds', () => {
    const custom = { module: 'my_project.layers', class_name: 'TimesTwoH2', config: { name: 'twice', trainable: true, dtype: POLICY }, registered_name: 'MyProject>TimesTwoH2', name: 'twice', inbound_nodes: [k3Node([k3Tensor('in', [null, 4])])] };
    const out = k3Layer('Dense', k3Dense('out', 1, 'linear'), [k3Node([k3Tensor('twice', [null, 4])])]);
    throwsModelFileError(() => modelFromTopology(functional([custom, out])), 'layer "twice" (TimesTwoH2)', 'custom layer, register it with `model: { module: ... }`');

    class TimesTwoH2 extends tf.layers.Layer {
      static readonly className = 'TimesTwoH2';
      override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
        return tf.mul(Array.isArray(inputs) ? inputs[0]! : inputs, 2);
      }
    }
    tf.serialization.registerClass(TimesTwoH2);
    const model = modelFromTopology(functional([custom, out]));
    assert.equal(model.getLayer('twice').getClassName(), 'TimesTwoH2');
  });

  void it('inputs from a layer the model lacks, a node that never exists, or a cycle are errors, not a hang', () => {
    const dense = (name: string, from: string, node = 0) => ({ class_name: 'Dense', name, config: { name, units: 4 }, inbound_nodes: [[[from, node, 0, {}]]] });
    throwsModelFileError(() => modelFromTopology(functional([dense('out', 'nowhere')])), 'layer "out" (Dense)', 'layers[1].inbound_nodes[0][0]', 'a layer "nowhere" that this model does not have');
    throwsModelFileError(() => modelFromTopology(functional([dense('a', 'in'), dense('out', 'a', 1)])), 'layer "out" (Dense)', 'node 1 of layer "a", which never exists');
    throwsModelFileError(() => modelFromTopology(functional([dense('a', 'out'), dense('out', 'a')])), 'layer "a" (Dense)', 'a cycle');
    throwsModelFileError(() => modelFromTopology(functional([dense('out', 'in')], [['out', 1, 0]])), 'output_layers[0]', 'node 1 of the layer, which never exists');
  });

  void it('a layer config tfjs rejects is reported with that layer', () => {
    const gru = { class_name: 'GRU', name: 'gru', config: { name: 'gru', units: 2, reset_after: true }, inbound_nodes: [[['seq', 0, 0, {}]]] };
    const topology = { class_name: 'Functional', config: { name: 'g', layers: [{ class_name: 'InputLayer', name: 'seq', config: { name: 'seq', batch_input_shape: [null, 3, 2] }, inbound_nodes: [] }, gru], input_layers: [['seq', 0, 0]], output_layers: [['gru', 0, 0]] } };
    throwsModelFileError(() => modelFromTopology(topology, { file: 'g.json', jsonPath: 'modelTopology' }), 'g.json', 'layer "gru" (GRU) at modelTopology.config.layers[1]', 'reset_after');
  });
});

// ---------------------------------------------------------------------------------------------
// The repository's example models

void describe('the example models (examples/models)', () => {
  const dirs = readdirSync(path.join(EXAMPLES, 'models')).map((d) => path.join(EXAMPLES, 'models', d));
  for (const dir of dirs) {
    void it(`${path.basename(dir)} reads synchronously and predicts as tf.loadLayersModel does`, async () => {
      const read = readLayersModelFile(dir);
      const model = buildWithWeights(read, countUnitForgetBias(read.topology) * 4);
      const reference = await tf.loadLayersModel(fileSystemModel(dir));
      const inputs = model.inputs.map((input, k) => tf.randomUniform(input.shape.map((d) => d ?? 2), 0, 1, 'float32', k + 1));
      assertClose(outputs(model, inputs), outputs(reference, inputs), 0);
      tf.dispose(inputs);
    });
  }
});

/** LSTMs built with unitForgetBias (tfjs leaks 4 tensors building each; a Bidirectional builds two). */
function countUnitForgetBias(node: unknown): number {
  if (Array.isArray(node)) return node.reduce((n: number, v) => n + countUnitForgetBias(v), 0);
  if (typeof node !== 'object' || node === null) return 0;
  const o = node as Record<string, unknown>;
  const own = o.class_name === 'LSTM' && (o.config as Record<string, unknown> | undefined)?.unit_forget_bias === true ? 1 : 0;
  const twice = o.class_name === 'Bidirectional' ? 2 : 1;
  return own + twice * Object.values(o).reduce((n: number, v) => n + countUnitForgetBias(v), 0);
}

// ---------------------------------------------------------------------------------------------
// A converted Keras model from another project

const UPSCALER = path.join(REPO_ROOT, 'node_modules', '@upscalerjs', 'default-model', 'models', 'model.json');

void describe('a Keras model converted by another project (@upscalerjs/default-model 1.0.0)', () => {
  void it('reads (topology and weights), builds, and predicts as tf.loadLayersModel does', async () => {
    const read = readLayersModelFile(UPSCALER);
    assert.equal(read.flavour, 'keras2');
    assert.equal(read.generatedBy, 'keras v2.10.0');
    assert.equal(read.convertedBy, 'TensorFlow.js Converter v1.2.6');
    assert.equal(read.weights!.size, 24);
    const model = buildWithWeights(read);
    assert.equal(model.countParams(), 222075);

    const input = tf.randomUniform([1, 8, 8, 3], 0, 1, 'float32', 7);
    const ours = outputs(model, [input]);
    assert.equal(ours[0]!.length, 16 * 16 * 3, 'the model doubles the resolution');
    const reference = await tf.loadLayersModel(fileSystemModel(UPSCALER));
    assertClose(ours, outputs(reference, [input]), 0);
    tf.dispose([input]);
  });
});
