// Plain tfjs autodiff through every layer the worker supports, on wasm (with the kernels of
// worker/wasm-gradient-kernels.ts) against cpu: a tiny model per layer (batch 3), the same
// weights and inputs on both backends, and the gradients of every trainable weight and of each
// float input within 1e-5 relative (‖wasm − cpu‖ / ‖cpu‖), one tensor at a time. The loss,
// Σ r·y + ½ Σ y² with r fixed and random, makes dL/dy depend on y and on the position, so that
// no gradient is trivially uniform (Σ softmax, for one, would have none). Max pooling also runs
// on all-negative inputs and on inputs full of ties, where both backends must agree bit for bit
// (tfjs 4.22's own wasm MaxPoolGrad got windows whose maximum is ≤ 0 wrong; the backends run the
// kernels worker/backend.ts registers). The selected backend is process-global: each case
// switches between cpu and wasm; the file ends on cpu.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Rng } from '../../common/random.js';
import { selectBackend } from '../../worker/backend.js';
import { relativeError } from '../helpers/numeric.js';

const BATCH = 3;
const TOLERANCE = 1e-5;
const L = tf.layers;

interface InputSpec {
  /** Without the batch dimension. */
  shape: number[];
  /** Integer ids in [0, vocab) instead of floats (no gradient). */
  vocab?: number;
}

interface Case {
  name: string;
  inputs: InputSpec[];
  /** The layers between the inputs and the output (merge layers get the inputs as a list). */
  build: (inputs: tf.SymbolicTensor[]) => tf.SymbolicTensor;
  /** Dropout is checked in inference mode; everything else trains. */
  training?: boolean;
  /**
   * The float inputs: z ~ N(0, 1) (default), −(|z| + 0.1) (every window's maximum negative), or
   * values from {−0.5, 0, 0.5} (most windows hold tied maxima).
   */
  values?: 'normal' | 'negative' | 'ties';
  /** wasm's gradients must equal cpu's bit for bit (both are exact: max pooling). */
  exact?: boolean;
}

/** A model of one layer over a single input. */
function single(name: string, shape: number[], layer: () => tf.layers.Layer, options: Pick<Case, 'training' | 'values' | 'exact'> = {}): Case {
  return { name, inputs: [{ shape }], build: ([x]) => layer().apply(x!) as tf.SymbolicTensor, ...options };
}

/** A merge layer over two inputs, one of them through a Dense layer (so a weight's gradient crosses the merge). */
function merge(name: string, layer: () => tf.layers.Layer): Case {
  return {
    name,
    inputs: [{ shape: [4] }, { shape: [4] }],
    build: ([a, b]) => layer().apply([L.dense({ units: 4, activation: 'tanh' }).apply(a!) as tf.SymbolicTensor, b!]) as tf.SymbolicTensor,
  };
}

const ACTIVATIONS = ['elu', 'hardSigmoid', 'linear', 'relu', 'relu6', 'selu', 'sigmoid', 'softmax', 'softplus', 'softsign', 'tanh', 'swish', 'mish', 'gelu', 'gelu_new'] as const;

const CASES: Case[] = [
  single('Dense', [5], () => L.dense({ units: 3, activation: 'relu' })),
  single('Conv1D stride 1 same', [8, 2], () => L.conv1d({ filters: 3, kernelSize: 3, padding: 'same' })),
  single('Conv1D stride 2 valid', [9, 2], () => L.conv1d({ filters: 3, kernelSize: 3, strides: 2 })),
  // 8 × 7: 'same' with stride 2 pads the rows unevenly (0, 1) and the columns evenly (1, 1).
  single('Conv2D stride 1 valid', [8, 7, 2], () => L.conv2d({ filters: 3, kernelSize: 3 })),
  single('Conv2D stride 1 same', [8, 7, 2], () => L.conv2d({ filters: 3, kernelSize: 3, padding: 'same' })),
  single('Conv2D stride 2 valid', [8, 7, 2], () => L.conv2d({ filters: 3, kernelSize: 3, strides: 2 })),
  single('Conv2D stride 2 same', [8, 7, 2], () => L.conv2d({ filters: 3, kernelSize: 3, strides: 2, padding: 'same' })),
  single('DepthwiseConv2D stride 1 same, multiplier 2', [8, 7, 2], () => L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same' })),
  single('DepthwiseConv2D stride 2 valid', [8, 7, 2], () => L.depthwiseConv2d({ kernelSize: 3, strides: 2 })),
  single('SeparableConv2D stride 1 same, multiplier 2', [8, 7, 2], () => L.separableConv2d({ filters: 3, kernelSize: 3, depthMultiplier: 2, padding: 'same' })),
  single('SeparableConv2D stride 2 valid', [8, 7, 2], () => L.separableConv2d({ filters: 3, kernelSize: 3, strides: 2 })),
  single('ZeroPadding2D', [4, 3, 2], () => L.zeroPadding2d({ padding: [[1, 2], [0, 1]] })),
  ...(['normal', 'negative', 'ties'] as const).flatMap((values) => [
    single(`MaxPooling1D (${values} inputs)`, [7, 2], () => L.maxPooling1d({ poolSize: 2 }), { values, exact: true }),
    single(`MaxPooling1D overlapping same (${values} inputs)`, [7, 2], () => L.maxPooling1d({ poolSize: 3, strides: 2, padding: 'same' }), { values, exact: true }),
    single(`MaxPooling2D (${values} inputs)`, [5, 5, 2], () => L.maxPooling2d({ poolSize: 2 }), { values, exact: true }),
    single(`MaxPooling2D overlapping same (${values} inputs)`, [6, 5, 2], () => L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }), { values, exact: true }),
    single(`MaxPooling2D overlapping valid, stride 1 (${values} inputs)`, [5, 4, 2], () => L.maxPooling2d({ poolSize: 2, strides: 1 }), { values, exact: true }),
  ]),
  single('AveragePooling1D', [7, 2], () => L.averagePooling1d({ poolSize: 2 })),
  single('AveragePooling1D overlapping same', [7, 2], () => L.averagePooling1d({ poolSize: 3, strides: 2, padding: 'same' })),
  single('AveragePooling2D', [5, 5, 2], () => L.averagePooling2d({ poolSize: 2 })),
  single('AveragePooling2D overlapping same', [6, 5, 2], () => L.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' })),
  single('GlobalAveragePooling1D', [5, 3], () => L.globalAveragePooling1d()),
  single('GlobalAveragePooling2D', [4, 3, 2], () => L.globalAveragePooling2d({})),
  single('GlobalMaxPooling1D', [5, 3], () => L.globalMaxPooling1d()),
  single('GlobalMaxPooling2D', [4, 3, 2], () => L.globalMaxPooling2d({})),
  single('UpSampling2D', [3, 2, 2], () => L.upSampling2d({ size: [2, 3] })),
  single('BatchNormalization (training) over features', [4], () => L.batchNormalization({})),
  single('BatchNormalization (training) over an image', [3, 3, 2], () => L.batchNormalization({})),
  single('LayerNormalization', [2, 4], () => L.layerNormalization({})),
  { name: 'Embedding', inputs: [{ shape: [5], vocab: 7 }], build: ([ids]) => L.embedding({ inputDim: 7, outputDim: 3 }).apply(ids!) as tf.SymbolicTensor },
  single('SimpleRNN (sequences)', [4, 2], () => L.simpleRNN({ units: 3, returnSequences: true })),
  single('LSTM', [4, 2], () => L.lstm({ units: 3 })),
  single('GRU (sequences)', [4, 2], () => L.gru({ units: 3, returnSequences: true })),
  single('Bidirectional(LSTM)', [4, 2], () => L.bidirectional({ layer: L.lstm({ units: 3 }) })),
  merge('Concatenate', () => L.concatenate()),
  merge('Add', () => L.add()),
  merge('Multiply', () => L.multiply()),
  merge('Average', () => L.average()),
  single('Reshape', [6], () => L.reshape({ targetShape: [2, 3] })),
  single('Flatten', [2, 3, 2], () => L.flatten()),
  single('Permute', [2, 3], () => L.permute({ dims: [2, 1] })),
  ...ACTIVATIONS.map((activation) => single(`Activation ${activation}`, [5], () => L.activation({ activation }))),
  single('ReLU', [5], () => L.reLU()),
  single('ReLU maxValue 0.5', [5], () => L.reLU({ maxValue: 0.5 })),
  single('LeakyReLU', [5], () => L.leakyReLU({ alpha: 0.2 })),
  single('Softmax', [2, 4], () => L.softmax({ axis: -1 })),
  single('Dropout (inference)', [5], () => L.dropout({ rate: 0.5 }), { training: false }),
];

interface Data {
  weights: Array<{ name: string; values: Float32Array; shape: number[] }>;
  inputs: Array<{ values: Float32Array | Int32Array; shape: number[]; dtype: 'float32' | 'int32' }>;
  /** The loss's fixed random coefficients, the output's shape. */
  r: { values: Float32Array; shape: number[] };
}

function dataFor(model: tf.LayersModel, c: Case, seed: number): Data {
  const rng = new Rng(seed);
  const normal = (size: number, scale: number) => Float32Array.from({ length: size }, () => scale * rng.normal());
  const weights = model.weights.map((w) => {
    const shape = w.shape.map((d) => d!);
    const size = tf.util.sizeFromShape(shape);
    // A moving variance must be positive (training mode does not read it, but let it be sane).
    const values = w.name.includes('moving_variance') ? Float32Array.from({ length: size }, () => rng.uniform(0.5, 1.5)) : normal(size, 0.6);
    return { name: w.name, values, shape };
  });
  const inputs = c.inputs.map((spec) => {
    const shape = [BATCH, ...spec.shape];
    const size = tf.util.sizeFromShape(shape);
    if (spec.vocab !== undefined) return { values: Int32Array.from({ length: size }, () => rng.int(spec.vocab!)), shape, dtype: 'int32' as const };
    if (c.values === 'ties') return { values: Float32Array.from({ length: size }, () => 0.5 * (rng.int(3) - 1)), shape, dtype: 'float32' as const };
    const values = normal(size, 1);
    return { values: c.values === 'negative' ? values.map((v) => -Math.abs(v) - 0.1) : values, shape, dtype: 'float32' as const };
  });
  const out = model.outputs[0]!.shape.map((d) => d ?? BATCH);
  return { weights, inputs, r: { values: normal(tf.util.sizeFromShape(out), 1), shape: out } };
}

type Gradients = Map<string, Float32Array>;

/** Gradients (by name: each trainable weight, then `input i` for each float input) on one backend. */
async function gradientsOn(backend: 'cpu' | 'wasm', model: tf.LayersModel, data: Data, training: boolean): Promise<Gradients> {
  assert.ok(await tf.setBackend(backend));
  const values = data.weights.map((w) => tf.tensor(w.values, w.shape));
  model.setWeights(values);
  tf.dispose(values);
  const before = tf.memory().numTensors;
  const named: Gradients = new Map();
  const inputs = data.inputs.map((x) => (x.dtype === 'float32' ? tf.tidy(() => tf.variable(tf.tensor(x.values, x.shape), true)) : tf.tensor(x.values, x.shape, 'int32')));
  const floatInputs = inputs.filter((x): x is tf.Variable => x instanceof tf.Variable);
  tf.tidy(() => {
    const r = tf.tensor(data.r.values, data.r.shape);
    const weights = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { grads } = tf.variableGrads(() => {
      const y = model.apply(inputs.length === 1 ? inputs[0]! : inputs, { training }) as tf.Tensor;
      return tf.add(tf.sum(tf.mul(r, y)), tf.mul(0.5, tf.sum(tf.square(y))));
    }, [...weights, ...floatInputs]);
    model.trainableWeights.forEach((w, i) => named.set(w.name, grads[weights[i]!.name]!.dataSync() as Float32Array));
    floatInputs.forEach((x, i) => named.set(`input ${i}`, grads[x.name]!.dataSync() as Float32Array));
  });
  tf.dispose(inputs);
  assert.equal(tf.memory().numTensors, before, `${backend}: the gradient computation leaks tensors`);
  return named;
}

/** Builds the case's model and returns each gradient's relative error, wasm against cpu (asserting bitwise equality for an exact case). */
async function errors(c: Case, seed: number): Promise<Map<string, number>> {
  assert.ok(await tf.setBackend('cpu'));
  const inputs = c.inputs.map((spec) => tf.input({ shape: spec.shape, dtype: spec.vocab === undefined ? 'float32' : 'int32' }));
  const model = tf.model({ inputs, outputs: c.build(inputs) });
  try {
    const data = dataFor(model, c, seed);
    const training = c.training ?? true;
    const cpu = await gradientsOn('cpu', model, data, training);
    const wasm = await gradientsOn('wasm', model, data, training);
    assert.equal(cpu.size, model.trainableWeights.length + c.inputs.filter((s) => s.vocab === undefined).length);
    assert.ok(cpu.size > 0, `${c.name}: nothing to compare`);
    const result = new Map<string, number>();
    for (const [name, want] of cpu) {
      assert.ok(want.some((v) => v !== 0), `${c.name}: the cpu gradient of ${name} is all zeros`);
      if (c.exact) assert.deepEqual(wasm.get(name), want, `${c.name}: the gradient of ${name} differs from cpu's`);
      result.set(name, relativeError(wasm.get(name)!, want));
    }
    return result;
  } finally {
    model.dispose();
  }
}

const measured: Array<[string, number]> = [];

void describe('layer gradients: wasm equals cpu within 1e-5 for every supported layer', () => {
  before(async () => {
    tf.enableProdMode();
    await selectBackend('cpu'); // registers cpu's replaced ResizeNearestNeighborGrad
    await selectBackend('wasm'); // sets the .wasm paths and registers the gradient kernels
  });
  after(async () => {
    await selectBackend('cpu');
    if (process.env.MTL_PRINT_ERRORS) for (const [name, err] of measured) console.log(`${name}: ${err.toExponential(2)}`);
  });

  CASES.forEach((c, index) => {
    void it(c.name, async () => {
      let worst = 0;
      for (const [name, err] of await errors(c, 1000 + index)) {
        assert.ok(err <= TOLERANCE, `${c.name}: ${name} relative error ${err}`);
        worst = Math.max(worst, err);
      }
      measured.push([c.name, worst]);
    });
  });
});
