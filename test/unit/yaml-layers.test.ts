// The job-file layer vocabulary: every layer type parses (defaults applied) through the real
// validator, bad options are refused at their path, and tfLayerFor turns each into the tfjs
// layer it stands for, which builds, computes the expected shape and trains (cpu). The fast-path
// five map exactly as the exported model does; the fast-path code refuses the other types.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { JobSpecError } from '../../common/errors.js';
import { ACTIVATIONS, FAST_PATH_LAYER_TYPES, LAYER_TYPES, isFastPathLayer, type LayerSpec, type LayerType } from '../../common/job-schema.js';
import { jobToYaml, parseJobText, trunkLayers, validateJob } from '../../common/job-spec.js';
import { buildLayersModel } from '../../common/model-files.js';
import { allLayers, buildLayout, unitGradientSize } from '../../common/parameter-layout.js';
import { prepareUserModel } from '../../common/user-model.js';
import { tfLayerFor } from '../../common/yaml-layers.js';
import { selectBackend } from '../../worker/backend.js';
import { GraphRunner } from '../../worker/graph-runner.js';
import { applyActivation } from '../../worker/layer-ops.js';
import { jobWithModel, type RawLayer } from '../helpers/unit-jobs.js';

interface Case {
  /** As written in a job file. */
  layer: RawLayer;
  /** Its options with the defaults applied. */
  config: Record<string, unknown>;
  /** tfjs class and the entries its getConfig() must have, in tfjs' own normalised form. */
  className: string;
  tfConfig: Record<string, unknown>;
  /** One example's shape in and out. */
  input: number[];
  output: number[];
  /** The input holds indices below this (embedding). */
  indices?: number;
}

const RECURRENT_DEFAULTS = { activation: 'tanh', recurrentActivation: 'sigmoid', useBias: true, returnSequences: false };

// Every type beyond the fast-path five, first with its required options only (the defaults
// show), then with options set.
const CASES: Case[] = [
  {
    layer: { embedding: { inputDim: 10, outputDim: 3 } },
    config: { inputDim: 10, outputDim: 3, maskZero: false },
    className: 'Embedding',
    tfConfig: { inputDim: 10, outputDim: 3, maskZero: false },
    input: [5],
    output: [5, 3],
    indices: 10,
  },
  {
    layer: { embedding: { inputDim: 7, outputDim: 2, maskZero: true } },
    config: { inputDim: 7, outputDim: 2, maskZero: true },
    className: 'Embedding',
    tfConfig: { inputDim: 7, outputDim: 2, maskZero: true },
    input: [4],
    output: [4, 2],
    indices: 7,
  },
  {
    layer: { batchNormalization: {} },
    config: { momentum: 0.99, epsilon: 0.001 },
    className: 'BatchNormalization',
    tfConfig: { momentum: 0.99, epsilon: 0.001, center: true, scale: true, axis: -1 },
    input: [4, 3],
    output: [4, 3],
  },
  {
    layer: { batchNormalization: { momentum: 0.9, epsilon: 1e-5 } },
    config: { momentum: 0.9, epsilon: 1e-5 },
    className: 'BatchNormalization',
    tfConfig: { momentum: 0.9, epsilon: 1e-5 },
    input: [6],
    output: [6],
  },
  {
    layer: { layerNormalization: {} },
    config: { epsilon: 0.001 },
    className: 'LayerNormalization',
    tfConfig: { epsilon: 0.001, center: true, scale: true },
    input: [4, 3],
    output: [4, 3],
  },
  {
    layer: { layerNormalization: { epsilon: 1e-6 } },
    config: { epsilon: 1e-6 },
    className: 'LayerNormalization',
    tfConfig: { epsilon: 1e-6 },
    input: [5],
    output: [5],
  },
  {
    layer: { conv1d: { filters: 2, kernelSize: 3 } },
    config: { filters: 2, kernelSize: 3, strides: 1, padding: 'valid', activation: 'linear', useBias: true },
    className: 'Conv1D',
    tfConfig: { filters: 2, kernelSize: [3], strides: [1], padding: 'valid', activation: 'linear', useBias: true },
    input: [8, 3],
    output: [6, 2],
  },
  {
    layer: { conv1d: { filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'gelu', useBias: false } },
    config: { filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'gelu', useBias: false },
    className: 'Conv1D',
    tfConfig: { filters: 4, kernelSize: [3], strides: [2], padding: 'same', activation: 'gelu', useBias: false },
    input: [8, 3],
    output: [4, 4],
  },
  {
    layer: { depthwiseConv2d: { kernelSize: 3 } },
    config: { kernelSize: 3, depthMultiplier: 1, strides: 1, padding: 'valid', activation: 'linear', useBias: true },
    className: 'DepthwiseConv2D',
    tfConfig: { kernelSize: [3, 3], depthMultiplier: 1, strides: [1, 1], padding: 'valid', activation: 'linear', useBias: true },
    input: [6, 6, 2],
    output: [4, 4, 2],
  },
  {
    layer: { depthwiseConv2d: { kernelSize: [3, 1], depthMultiplier: 2, strides: [1, 2], padding: 'same', activation: 'relu' } },
    config: { kernelSize: [3, 1], depthMultiplier: 2, strides: [1, 2], padding: 'same', activation: 'relu', useBias: true },
    className: 'DepthwiseConv2D',
    tfConfig: { kernelSize: [3, 1], depthMultiplier: 2, strides: [1, 2], padding: 'same', activation: 'relu' },
    input: [6, 6, 2],
    output: [6, 3, 4],
  },
  {
    layer: { separableConv2d: { filters: 3, kernelSize: 3 } },
    config: { filters: 3, kernelSize: 3, strides: 1, padding: 'valid', activation: 'linear', useBias: true },
    className: 'SeparableConv2D',
    tfConfig: { filters: 3, kernelSize: [3, 3], strides: [1, 1], padding: 'valid', activation: 'linear', useBias: true },
    input: [6, 6, 2],
    output: [4, 4, 3],
  },
  {
    layer: { separableConv2d: { filters: 5, kernelSize: 2, strides: 2, padding: 'same', activation: 'swish', useBias: false } },
    config: { filters: 5, kernelSize: 2, strides: 2, padding: 'same', activation: 'swish', useBias: false },
    className: 'SeparableConv2D',
    tfConfig: { filters: 5, kernelSize: [2, 2], strides: [2, 2], padding: 'same', activation: 'swish', useBias: false },
    input: [6, 6, 2],
    output: [3, 3, 5],
  },
  {
    layer: { conv2dTranspose: { filters: 3, kernelSize: 3 } },
    config: { filters: 3, kernelSize: 3, strides: 1, padding: 'valid', activation: 'linear', useBias: true },
    className: 'Conv2DTranspose',
    tfConfig: { filters: 3, kernelSize: [3, 3], strides: [1, 1], padding: 'valid', activation: 'linear', useBias: true },
    input: [4, 4, 2],
    output: [6, 6, 3],
  },
  {
    layer: { conv2dTranspose: { filters: 2, kernelSize: 3, strides: 2, padding: 'same', activation: 'sigmoid' } },
    config: { filters: 2, kernelSize: 3, strides: 2, padding: 'same', activation: 'sigmoid', useBias: true },
    className: 'Conv2DTranspose',
    tfConfig: { filters: 2, kernelSize: [3, 3], strides: [2, 2], padding: 'same', activation: 'sigmoid' },
    input: [4, 4, 2],
    output: [8, 8, 2],
  },
  {
    layer: { zeroPadding2d: {} },
    config: { padding: 1 },
    className: 'ZeroPadding2D',
    tfConfig: { padding: [[1, 1], [1, 1]] },
    input: [4, 4, 2],
    output: [6, 6, 2],
  },
  {
    layer: { zeroPadding2d: { padding: [[0, 1], [2, 3]] } },
    config: { padding: [[0, 1], [2, 3]] },
    className: 'ZeroPadding2D',
    tfConfig: { padding: [[0, 1], [2, 3]] },
    input: [4, 4, 2],
    output: [5, 9, 2],
  },
  {
    layer: { averagePooling2d: {} },
    config: { poolSize: 2, padding: 'valid' },
    className: 'AveragePooling2D',
    tfConfig: { poolSize: [2, 2], strides: [2, 2], padding: 'valid' },
    input: [4, 4, 2],
    output: [2, 2, 2],
  },
  {
    layer: { averagePooling2d: { poolSize: [3, 2], strides: 1, padding: 'same' } },
    config: { poolSize: [3, 2], strides: 1, padding: 'same' },
    className: 'AveragePooling2D',
    tfConfig: { poolSize: [3, 2], strides: [1, 1], padding: 'same' },
    input: [4, 5, 2],
    output: [4, 5, 2],
  },
  {
    layer: { maxPooling1d: {} },
    config: { poolSize: 2, padding: 'valid' },
    className: 'MaxPooling1D',
    tfConfig: { poolSize: [2], strides: [2], padding: 'valid' },
    input: [8, 3],
    output: [4, 3],
  },
  {
    layer: { maxPooling1d: { poolSize: 3, strides: 1, padding: 'same' } },
    config: { poolSize: 3, strides: 1, padding: 'same' },
    className: 'MaxPooling1D',
    tfConfig: { poolSize: [3], strides: [1], padding: 'same' },
    input: [8, 3],
    output: [8, 3],
  },
  {
    layer: { averagePooling1d: {} },
    config: { poolSize: 2, padding: 'valid' },
    className: 'AveragePooling1D',
    tfConfig: { poolSize: [2], strides: [2], padding: 'valid' },
    input: [9, 3],
    output: [4, 3],
  },
  {
    layer: { averagePooling1d: { poolSize: 4, strides: 2 } },
    config: { poolSize: 4, strides: 2, padding: 'valid' },
    className: 'AveragePooling1D',
    tfConfig: { poolSize: [4], strides: [2], padding: 'valid' },
    input: [9, 3],
    output: [3, 3],
  },
  { layer: { globalAveragePooling1d: {} }, config: {}, className: 'GlobalAveragePooling1D', tfConfig: {}, input: [8, 3], output: [3] },
  { layer: { globalAveragePooling2d: {} }, config: {}, className: 'GlobalAveragePooling2D', tfConfig: {}, input: [4, 4, 2], output: [2] },
  { layer: { globalMaxPooling1d: {} }, config: {}, className: 'GlobalMaxPooling1D', tfConfig: {}, input: [8, 3], output: [3] },
  { layer: { globalMaxPooling2d: {} }, config: {}, className: 'GlobalMaxPooling2D', tfConfig: {}, input: [4, 4, 2], output: [2] },
  {
    layer: { upSampling2d: {} },
    config: { size: 2, interpolation: 'nearest' },
    className: 'UpSampling2D',
    tfConfig: { size: [2, 2], interpolation: 'nearest' },
    input: [4, 4, 2],
    output: [8, 8, 2],
  },
  {
    layer: { upSampling2d: { size: [2, 3], interpolation: 'bilinear' } },
    config: { size: [2, 3], interpolation: 'bilinear' },
    className: 'UpSampling2D',
    tfConfig: { size: [2, 3], interpolation: 'bilinear' },
    input: [4, 4, 2],
    output: [8, 12, 2],
  },
  {
    layer: { lstm: { units: 4 } },
    config: { units: 4, ...RECURRENT_DEFAULTS },
    className: 'LSTM',
    tfConfig: { units: 4, ...RECURRENT_DEFAULTS, dropout: 0, recurrentDropout: 0 },
    input: [5, 3],
    output: [4],
  },
  {
    layer: { lstm: { units: 3, returnSequences: true, recurrentActivation: 'hardSigmoid', useBias: false } },
    config: { units: 3, activation: 'tanh', recurrentActivation: 'hardSigmoid', useBias: false, returnSequences: true },
    className: 'LSTM',
    tfConfig: { units: 3, activation: 'tanh', recurrentActivation: 'hardSigmoid', useBias: false, returnSequences: true },
    input: [5, 3],
    output: [5, 3],
  },
  {
    layer: { gru: { units: 4 } },
    config: { units: 4, ...RECURRENT_DEFAULTS },
    className: 'GRU',
    tfConfig: { units: 4, ...RECURRENT_DEFAULTS },
    input: [5, 3],
    output: [4],
  },
  {
    layer: { gru: { units: 2, activation: 'softsign', returnSequences: true } },
    config: { units: 2, activation: 'softsign', recurrentActivation: 'sigmoid', useBias: true, returnSequences: true },
    className: 'GRU',
    tfConfig: { units: 2, activation: 'softsign', returnSequences: true },
    input: [5, 3],
    output: [5, 2],
  },
  {
    layer: { simpleRnn: { units: 4 } },
    config: { units: 4, activation: 'tanh', useBias: true, returnSequences: false },
    className: 'SimpleRNN',
    tfConfig: { units: 4, activation: 'tanh', useBias: true, returnSequences: false },
    input: [5, 3],
    output: [4],
  },
  {
    layer: { simpleRnn: { units: 4, activation: 'relu', returnSequences: true } },
    config: { units: 4, activation: 'relu', useBias: true, returnSequences: true },
    className: 'SimpleRNN',
    tfConfig: { units: 4, activation: 'relu', returnSequences: true },
    input: [5, 3],
    output: [5, 4],
  },
  {
    layer: { bidirectional: { layer: { lstm: { units: 4 } } } },
    config: { layer: { type: 'lstm', config: { units: 4, ...RECURRENT_DEFAULTS } }, mergeMode: 'concat' },
    className: 'Bidirectional',
    tfConfig: { mergeMode: 'concat' },
    input: [5, 3],
    output: [8],
  },
  {
    layer: { bidirectional: { layer: { gru: { units: 4, returnSequences: true } }, mergeMode: 'sum' } },
    config: { layer: { type: 'gru', config: { ...RECURRENT_DEFAULTS, units: 4, returnSequences: true } }, mergeMode: 'sum' },
    className: 'Bidirectional',
    tfConfig: { mergeMode: 'sum' },
    input: [5, 3],
    output: [5, 4],
  },
  {
    layer: { bidirectional: { layer: { simpleRnn: { units: 2 } }, mergeMode: 'ave' } },
    config: { layer: { type: 'simpleRnn', config: { units: 2, activation: 'tanh', useBias: true, returnSequences: false } }, mergeMode: 'ave' },
    className: 'Bidirectional',
    tfConfig: { mergeMode: 'ave' },
    input: [5, 3],
    output: [2],
  },
  { layer: { reshape: { targetShape: [6, 2] } }, config: { targetShape: [6, 2] }, className: 'Reshape', tfConfig: { targetShape: [6, 2] }, input: [4, 3], output: [6, 2] },
  { layer: { permute: { dims: [2, 1] } }, config: { dims: [2, 1] }, className: 'Permute', tfConfig: { dims: [2, 1] }, input: [4, 3], output: [3, 4] },
  { layer: { permute: { dims: [3, 1, 2] } }, config: { dims: [3, 1, 2] }, className: 'Permute', tfConfig: { dims: [3, 1, 2] }, input: [4, 3, 2], output: [2, 4, 3] },
  { layer: { activation: { activation: 'gelu' } }, config: { activation: 'gelu' }, className: 'Activation', tfConfig: { activation: 'gelu' }, input: [4, 3], output: [4, 3] },
  { layer: { leakyRelu: {} }, config: { alpha: 0.3 }, className: 'LeakyReLU', tfConfig: { alpha: 0.3 }, input: [4, 3], output: [4, 3] },
  { layer: { leakyRelu: { alpha: 0.1 } }, config: { alpha: 0.1 }, className: 'LeakyReLU', tfConfig: { alpha: 0.1 }, input: [5], output: [5] },
  { layer: { relu: {} }, config: {}, className: 'ReLU', tfConfig: {}, input: [4, 3], output: [4, 3] },
  { layer: { relu: { maxValue: 6 } }, config: { maxValue: 6 }, className: 'ReLU', tfConfig: { maxValue: 6 }, input: [5], output: [5] },
  { layer: { softmax: {} }, config: {}, className: 'Softmax', tfConfig: { axis: -1 }, input: [4, 3], output: [4, 3] },
];

const typeOf = (layer: RawLayer): LayerType => Object.keys(layer)[0] as LayerType;
const HEADS = { a: [{ dense: { units: 1 } }] };

/** The layers as the validator normalises them: the case's layer as the whole trunk. */
function specOf(layer: RawLayer): LayerSpec {
  const [spec] = trunkLayers(jobWithModel({ trunk: [layer], heads: HEADS }));
  assert.ok(spec);
  return spec;
}

function issuesOf(trunk: unknown[]): Map<string, string> {
  try {
    validateJob(
      { name: 'bad', model: { trunk, heads: HEADS }, tasks: { a: { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: 0 } } }, training: { steps: 1, batchSize: 2, optimizer: { name: 'sgd', learningRate: 0.1 } } },
      'test',
    );
  } catch (err) {
    assert.ok(err instanceof JobSpecError, `expected a JobSpecError, got ${String(err)}`);
    return new Map(err.issues.map((i) => [i.path, i.message]));
  }
  assert.fail(`accepted: ${JSON.stringify(trunk)}`);
}

function exampleBatch(c: Case, n: number): tf.Tensor {
  const size = c.input.reduce((a, b) => a * b, 1);
  // Fixed, varied values (no random generator): indices cycle through the vocabulary.
  const values = Float32Array.from({ length: n * size }, (_, i) => (c.indices ? (i * 7) % c.indices : Math.sin(i * 1.7) * 2));
  return tf.tensor(values, [n, ...c.input]);
}

/**
 * A batch through a one-layer model in training mode, a fixed weighted sum as the loss: the
 * gradient of each trainable weight (by name) and of the input (`input`; not for indices).
 */
function trainingGradients(model: tf.LayersModel, c: Case, n: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  tf.tidy(() => {
    const batch = exampleBatch(c, n);
    const x = c.indices ? batch : tf.variable(batch, true, `input_${model.name}`);
    const loss = () => {
      const y = model.apply(x, { training: true }) as tf.Tensor;
      const w = tf.tensor(Float32Array.from({ length: y.size }, (_, i) => 1 + (i % 5) - 0.3 * (i % 3)), y.shape);
      return tf.sum<tf.Scalar>(tf.mul(y, w));
    };
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { grads } = tf.variableGrads(loss, x instanceof tf.Variable ? [...variables, x] : variables);
    model.trainableWeights.forEach((w, i) => out.set(w.originalName, grads[variables[i]!.name]!.dataSync() as Float32Array));
    if (x instanceof tf.Variable) {
      out.set('input', grads[x.name]!.dataSync() as Float32Array);
      x.dispose();
    }
  });
  return out;
}

function oneLayerModel(c: Case, name: string): tf.Sequential {
  return tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: c.input }), tfLayerFor(specOf(c.layer), name)] });
}

void describe('job-file layer vocabulary', () => {
  before(async () => {
    tf.enableProdMode();
    await selectBackend('cpu');
  });
  after(async () => {
    await selectBackend('cpu');
  });

  void it('has a case here for every layer type beyond the fast-path five, and those five are layer types', () => {
    const covered = new Set(CASES.map((c) => typeOf(c.layer)));
    const general = LAYER_TYPES.filter((t) => !(FAST_PATH_LAYER_TYPES as readonly string[]).includes(t));
    assert.deepEqual(general.filter((t) => !covered.has(t)), []);
    for (const t of FAST_PATH_LAYER_TYPES) assert.ok((LAYER_TYPES as readonly string[]).includes(t), t);
    assert.equal(new Set(LAYER_TYPES).size, LAYER_TYPES.length, 'no type listed twice');
  });

  void it('every type parses with its defaults applied, in trunk, heads and expert layers', () => {
    for (const c of CASES) {
      const type = typeOf(c.layer);
      const spec = specOf(c.layer);
      assert.equal(spec.type, type);
      assert.deepEqual(spec.config, c.config, JSON.stringify(c.layer));
      assert.equal(isFastPathLayer(spec), false, type);
    }
    // The same layers are accepted wherever a layer list is (adapters, heads, experts).
    const job = validateJob(
      {
        name: 'everywhere',
        model: {
          trunk: [{ dense: { units: 4 } }],
          experts: { type: 'mmoe', shared: 2, layers: [{ layerNormalization: {} }] },
          heads: { a: [{ leakyRelu: {} }, { dense: { units: 1 } }] },
        },
        tasks: { a: { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: 0 } } },
        training: { steps: 1, batchSize: 2, optimizer: { name: 'sgd', learningRate: 0.1 } },
      },
      'test',
    );
    assert.deepEqual(job.model.heads?.a?.[0], { leakyRelu: { alpha: 0.3 } });
    assert.deepEqual(job.model.experts!.layers[0], { layerNormalization: { epsilon: 0.001 } });
    const adapted = jobWithModel({ trunk: [{ dense: { units: 2 } }], heads: HEADS });
    const withAdapter = validateJob({ ...adapted, model: { ...adapted.model, adapters: { a: [{ batchNormalization: {} }, { dense: { units: 6 } }] } } }, 'test');
    assert.deepEqual(withAdapter.model.adapters.a![0], { batchNormalization: { momentum: 0.99, epsilon: 0.001 } });
  });

  void it('the fast-path five are fast-path layers', () => {
    const five: RawLayer[] = [{ dense: { units: 2, activation: 'gelu' } }, { conv2d: { filters: 2, kernelSize: 3 } }, { maxPooling2d: {} }, { flatten: {} }, { dropout: { rate: 0.5 } }];
    assert.deepEqual(
      five.map((l) => isFastPathLayer(specOf(l))),
      [true, true, true, true, true],
    );
  });

  void it('a job file in YAML with every new type survives jobToYaml and parses back equal', () => {
    const text = [
      'name: vocabulary',
      'model:',
      '  trunk:',
      ...CASES.map((c) => `    - ${JSON.stringify(c.layer)}`),
      '  heads:',
      '    a: [ { dense: { units: 1 } } ]',
      'tasks:',
      '  a: { loss: meanSquaredError, data: { dataset: synthetic, target: 0 } }',
      'training: { steps: 1, batchSize: 2, optimizer: { name: sgd, learningRate: 0.1 } }',
    ].join('\n');
    const job = parseJobText(text, 'vocabulary.yaml');
    assert.deepEqual(
      trunkLayers(job).map((l) => l.config),
      CASES.map((c) => c.config),
    );
    assert.deepEqual(parseJobText(jobToYaml(job), 'resolved.yaml'), job);
  });

  void it('bad options are refused at their path, each with its own message', () => {
    const cases: Array<[unknown, string, string | RegExp]> = [
      [{ embedding: { inputDim: 10 } }, 'model.trunk[0].embedding.outputDim', 'required a number is missing'],
      [{ embedding: { inputDim: 0, outputDim: 2 } }, 'model.trunk[0].embedding.inputDim', 'expected a positive number, got 0'],
      [{ batchNormalization: { momentum: 1.5 } }, 'model.trunk[0].batchNormalization.momentum', 'expected a number <= 1, got 1.5'],
      [{ layerNormalization: { epsilon: 0 } }, 'model.trunk[0].layerNormalization.epsilon', 'expected a positive number, got 0'],
      [{ conv1d: { filters: 2, kernelSize: 3, padding: 'causal' } }, 'model.trunk[0].conv1d.padding', 'expected "valid" or "same", got "causal"'],
      [{ conv1d: { filters: 2, kernelSize: 3, dilationRate: 2 } }, 'model.trunk[0].conv1d.dilationRate', /^unknown key \(expected one of: filters, kernelSize, strides, padding, activation, useBias\)$/],
      [{ depthwiseConv2d: { kernelSize: 3, depthMultiplier: 0 } }, 'model.trunk[0].depthwiseConv2d.depthMultiplier', 'expected a positive number, got 0'],
      [{ separableConv2d: { kernelSize: 3 } }, 'model.trunk[0].separableConv2d.filters', 'required a number is missing'],
      [{ conv2dTranspose: { filters: 2, kernelSize: 3, activation: 'gelu_new' } }, 'model.trunk[0].conv2dTranspose.activation', /^expected "linear" or .* got "gelu_new"$/],
      [{ zeroPadding2d: { padding: [[1, 1], [1]] } }, 'model.trunk[0].zeroPadding2d.padding', 'expected n, [rows, columns] or [[top, bottom], [left, right]] (integers >= 0), got [[1,1],[1]]'],
      [{ averagePooling2d: { poolSize: 0 } }, 'model.trunk[0].averagePooling2d.poolSize', /expected/],
      [{ maxPooling1d: { poolSize: [2, 2] } }, 'model.trunk[0].maxPooling1d.poolSize', 'expected a number, got a list'],
      [{ averagePooling1d: { strides: 0 } }, 'model.trunk[0].averagePooling1d.strides', 'expected a positive number, got 0'],
      [{ globalMaxPooling1d: { keepDims: true } }, 'model.trunk[0].globalMaxPooling1d.keepDims', 'unknown key'],
      [{ upSampling2d: { interpolation: 'cubic' } }, 'model.trunk[0].upSampling2d.interpolation', 'expected "nearest" or "bilinear", got "cubic"'],
      [{ lstm: { units: 4, dropout: 0.2 } }, 'model.trunk[0].lstm.dropout', /^unknown key \(expected one of: units, activation, recurrentActivation, useBias, returnSequences\)$/],
      [{ gru: { units: 4, recurentActivation: 'sigmoid' } }, 'model.trunk[0].gru.recurentActivation', 'unknown key; did you mean `recurrentActivation`?'],
      [{ simpleRnn: { units: 4, recurrentActivation: 'sigmoid' } }, 'model.trunk[0].simpleRnn.recurrentActivation', /^unknown key/],
      [{ bidirectional: { layer: { lstm: { units: 4 }, gru: { units: 4 } } } }, 'model.trunk[0].bidirectional.layer', 'expected exactly one recurrent layer (lstm, gru, simpleRnn), got lstm and gru'],
      [{ bidirectional: { layer: {} } }, 'model.trunk[0].bidirectional.layer', 'expected exactly one recurrent layer (lstm, gru, simpleRnn), got none'],
      [{ bidirectional: { layer: { dense: { units: 4 } } } }, 'model.trunk[0].bidirectional.layer.dense', 'unknown key (expected one of: lstm, gru, simpleRnn)'],
      [{ bidirectional: { layer: { lstmm: { units: 4 } } } }, 'model.trunk[0].bidirectional.layer.lstmm', 'unknown key; did you mean `lstm`?'],
      [{ bidirectional: { layer: { lstm: { units: 0 } } } }, 'model.trunk[0].bidirectional.layer.lstm.units', 'expected a positive number, got 0'],
      [{ bidirectional: { layer: { lstm: { units: 4 } }, mergeMode: 'max' } }, 'model.trunk[0].bidirectional.mergeMode', 'expected "concat" or "sum" or "mul" or "ave", got "max"'],
      [{ reshape: { targetShape: [-1, 2] } }, 'model.trunk[0].reshape.targetShape[0]', 'expected a positive number, got -1'],
      [{ permute: { dims: [1, 3] } }, 'model.trunk[0].permute.dims', 'expected a permutation of 1..2, got [1, 3]'],
      [{ activation: {} }, 'model.trunk[0].activation.activation', /^expected "linear" or .* got nothing$/],
      [{ leakyRelu: { alpha: -1 } }, 'model.trunk[0].leakyRelu.alpha', 'expected a number >= 0, got -1'],
      [{ relu: { maxValue: 0 } }, 'model.trunk[0].relu.maxValue', 'expected a positive number, got 0'],
      [{ softmax: { axis: 1 } }, 'model.trunk[0].softmax.axis', 'unknown key'],
      [{ batchNormalization: { center: false } }, 'model.trunk[0].batchNormalization.center', 'unknown key (expected one of: momentum, epsilon)'],
      [{ layerNormalization: { scale: false } }, 'model.trunk[0].layerNormalization.scale', 'unknown key (expected one of: epsilon)'],
      [{ separableConv2d: { filters: 2, kernelSize: 3, depthMultiplier: 2 } }, 'model.trunk[0].separableConv2d.depthMultiplier', /^unknown key/],
      [{ Embedding: { inputDim: 3, outputDim: 2 } }, 'model.trunk[0].Embedding', '`Embedding` is not a layer; did you mean `embedding`?'],
      [{ globalAveragePooling2D: {} }, 'model.trunk[0].globalAveragePooling2D', '`globalAveragePooling2D` is not a layer; did you mean `globalAveragePooling2d`?'],
      [{ lstm: { units: 4 }, relu: {} }, 'model.trunk[0]', /^expected exactly one layer type \(dense, conv2d, .*, softmax\), got lstm and relu$/],
    ];
    for (const [layer, path, message] of cases) {
      const found = issuesOf([layer]);
      const got = found.get(path);
      assert.ok(got !== undefined, `${JSON.stringify(layer)}: no issue at ${path} (issues: ${[...found].join('; ')})`);
      if (typeof message === 'string') assert.equal(got, message, JSON.stringify(layer));
      else assert.match(got, message, JSON.stringify(layer));
      assert.equal(found.size, 1, `${JSON.stringify(layer)}: one issue, got ${[...found].join('; ')}`);
    }
  });

  void it('a bad layer in a head or an expert is reported at its own path', () => {
    const doc = (model: Record<string, unknown>) => ({
      name: 'bad',
      model: { trunk: [{ dense: { units: 4 } }], ...model },
      tasks: { a: { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: 0 } } },
      training: { steps: 1, batchSize: 2, optimizer: { name: 'sgd', learningRate: 0.1 } },
    });
    const issues = (model: Record<string, unknown>) => {
      try {
        validateJob(doc(model), 'test');
      } catch (err) {
        assert.ok(err instanceof JobSpecError);
        return err.issues;
      }
      assert.fail('accepted');
    };
    assert.deepEqual(issues({ heads: { a: [{ gru: { units: 2, returnSequences: 'yes' } }, { dense: { units: 1 } }] } }), [
      { path: 'model.heads.a[0].gru.returnSequences', message: 'expected true or false, got "yes"' },
    ]);
    assert.deepEqual(issues({ heads: { a: [{ dense: { units: 1 } }] }, experts: { type: 'mmoe', shared: 2, layers: [{ permute: { dims: [2, 2] } }] } }), [
      { path: 'model.experts.layers[0].permute.dims', message: 'expected a permutation of 1..2, got [2, 2]' },
    ]);
  });

  void it('tfLayerFor gives the tfjs layer with the job\'s options in its getConfig(), and no seed', () => {
    for (const c of CASES) {
      const name = `t_${typeOf(c.layer)}`;
      const layer = tfLayerFor(specOf(c.layer), name);
      const config = layer.getConfig();
      assert.equal(layer.getClassName(), c.className, JSON.stringify(c.layer));
      assert.equal(config.name, name);
      for (const [key, value] of Object.entries(c.tfConfig)) assert.deepEqual(config[key], value, `${JSON.stringify(c.layer)}: ${key}`);
      // Same spec, same layer: nothing in the configuration varies between calls.
      assert.deepEqual(tfLayerFor(specOf(c.layer), name).getConfig(), config);
      assert.doesNotMatch(JSON.stringify(config), /"seed":\d/, `${JSON.stringify(c.layer)}: an initializer with a seed`);
    }
    // A bidirectional layer wraps the recurrent layer as configured, under its own name.
    const bi = tfLayerFor(specOf({ bidirectional: { layer: { gru: { units: 3, activation: 'relu' } }, mergeMode: 'mul' } }), 'enc').getConfig();
    const inner = bi.layer as { className: string; config: Record<string, unknown> };
    assert.equal(inner.className, 'GRU');
    assert.deepEqual([inner.config.name, inner.config.units, inner.config.activation, inner.config.recurrentActivation], ['enc_gru', 3, 'relu', 'sigmoid']);
  });

  void it('for the fast-path five, tfLayerFor gives exactly the layers of the exported model', () => {
    const job = jobWithModel({
      trunk: [
        { conv2d: { filters: 3, kernelSize: [3, 2], strides: [1, 2], padding: 'same', activation: 'relu' } },
        { maxPooling2d: { poolSize: 2, strides: 1 } },
        { conv2d: { filters: 2, kernelSize: 2, useBias: false, activation: 'gelu' } },
        { maxPooling2d: {} },
        { flatten: {} },
        { dropout: { rate: 0.25 } },
        { dense: { units: 5, activation: 'swish' } },
      ],
      heads: { a: [{ dense: { units: 3, activation: 'softmax', useBias: false } }], b: [{ dense: { units: 1 } }] },
    });
    const layout = buildLayout(job, [10, 10, 1]);
    const model = buildLayersModel(layout, 'exported');
    const placed = allLayers(layout);
    assert.equal(placed.length, 9);
    for (const p of placed) {
      assert.deepEqual(tfLayerFor(p.spec, p.name).getConfig(), model.getLayer(p.name).getConfig(), p.name);
      assert.equal(tfLayerFor(p.spec, p.name).getClassName(), model.getLayer(p.name).getClassName(), p.name);
    }
    model.dispose();
  });

  void it('the fast-path code refuses the other types at the layer\'s path: they run on the general path only', () => {
    const err = (() => {
      try {
        buildLayout(jobWithModel({ trunk: [{ dense: { units: 4 } }], heads: { a: [{ lstm: { units: 2 } }, { dense: { units: 1 } }] } }), [6]);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof JobSpecError, String(err));
    assert.deepEqual(err.issues, [{ path: 'model.heads.a[0].lstm', message: 'lstm runs on the general path only' }]);
    for (const c of CASES) {
      const type = typeOf(c.layer);
      assert.throws(
        () => buildLayout(jobWithModel({ trunk: [c.layer], heads: HEADS }), c.input),
        (e: unknown) => e instanceof JobSpecError && e.issues.length === 1 && e.issues[0]!.path === `model.trunk[0].${type}` && e.issues[0]!.message === `${type} runs on the general path only`,
        type,
      );
    }
  });

  void it('a one-layer tf.sequential of each type computes the expected output shape, known when the model is built', () => {
    for (const c of CASES) {
      const where = JSON.stringify(c.layer);
      const model = oneLayerModel(c, `s_${typeOf(c.layer)}`);
      assert.deepEqual(model.outputs[0]!.shape, [null, ...c.output], where);
      const y = tf.tidy(() => {
        const out = model.predict(exampleBatch(c, 3)) as tf.Tensor;
        return { shape: out.shape, values: out.dataSync() };
      });
      assert.deepEqual(y.shape, [3, ...c.output], where);
      assert.ok(y.values.every(Number.isFinite), `${where}: a value is not finite`);
      model.dispose();
    }
  });

  void it('softmax is over the last axis (tfjs\' own layer default is axis 1)', () => {
    const c = { ...CASES.find((k) => typeOf(k.layer) === 'softmax')!, input: [4, 3] };
    const model = oneLayerModel(c, 'sm');
    const rows = tf.tidy(() => tf.sum(model.predict(exampleBatch(c, 2)) as tf.Tensor, -1).dataSync());
    assert.equal(rows.length, 2 * 4);
    for (const s of rows) assert.ok(Math.abs(s - 1) < 1e-6, `a row sums to ${s}`);
    model.dispose();
  });

  void it('every layer trains on cpu: each trainable weight, and the input, gets a gradient, not all zero', () => {
    for (const c of CASES) {
      const where = JSON.stringify(c.layer);
      const model = oneLayerModel(c, `g_${typeOf(c.layer)}`);
      const grads = trainingGradients(model, c, 3);
      assert.equal(grads.size, model.trainableWeights.length + (c.indices ? 0 : 1), where);
      for (const [name, g] of grads) assert.ok(g.some((v) => v !== 0) && g.every(Number.isFinite), `${where}: ${name} has no usable gradient`);
      model.dispose();
    }
  });

  void it('every layer survives save and tf.loadLayersModel: same configuration, bitwise the same outputs', async () => {
    for (const c of CASES) {
      const where = JSON.stringify(c.layer);
      const model = oneLayerModel(c, `r_${typeOf(c.layer)}`);
      let artifacts: tf.io.ModelArtifacts | undefined;
      await model.save(
        tf.io.withSaveHandler((a) => {
          artifacts = a;
          return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
        }),
      );
      const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
      const layer = loaded.layers.at(-1)!;
      assert.equal(layer.getClassName(), c.className, where);
      for (const [key, value] of Object.entries(c.tfConfig)) assert.deepEqual(layer.getConfig()[key], value, `${where}: ${key}`);
      const [a, b] = tf.tidy(() => {
        const x = exampleBatch(c, 2);
        return [(model.predict(x) as tf.Tensor).dataSync(), (loaded.predict(x) as tf.Tensor).dataSync()];
      });
      assert.deepEqual(b, a, where);
      model.dispose();
      loaded.dispose();
    }
  });

  void it("on wasm (tfjs 4.22 plus our registered kernels), every layer's backward finds its kernels", async () => {
    // What the general path must route around on wasm workers (measured, not wished): the
    // kernels a training step runs on cpu (tf.profile) that wasm has not registered. The
    // fast path's conv2d avoids Conv2DBackpropFilter with its own im2col gradient.
    // worker/wasm-gradient-kernels.ts registers every kernel these layers' backward passes need on wasm.
    const expected: Record<string, string[]> = {};
    // One case per type (the first): the other cases' options do not change the kernels.
    const firsts = CASES.filter((c, i) => CASES.findIndex((k) => typeOf(k.layer) === typeOf(c.layer)) === i);
    await selectBackend('wasm'); // registers wasm's kernels
    await selectBackend('cpu');
    const missing: Record<string, string[]> = {};
    for (const c of firsts) {
      const type = typeOf(c.layer);
      const model = oneLayerModel(c, `p_${type}`);
      const profile = await tf.profile(() => {
        trainingGradients(model, c, 2);
      });
      // (kernelNames also lists some ops by name, e.g. fusedMatMul__op: kernels are what cpu registers.)
      const lacking = [...new Set(profile.kernelNames)].filter((k) => tf.getKernel(k, 'cpu') !== undefined && tf.getKernel(k, 'wasm') === undefined).sort();
      if (lacking.length > 0) missing[type] = [...new Set([...(missing[type] ?? []), ...lacking])].sort();
      model.dispose();
    }
    assert.deepEqual(missing, expected);
    await selectBackend('wasm');
    try {
      for (const c of firsts) {
        const type = typeOf(c.layer);
        const model = oneLayerModel(c, `w_${type}`);
        let failure: string | undefined;
        try {
          trainingGradients(model, c, 2);
        } catch (err) {
          failure = /Kernel '(\w+)' not registered for backend 'wasm'/.exec(String(err))?.[1] ?? String(err);
        }
        model.dispose();
        if (expected[type]) assert.ok(failure !== undefined && expected[type].includes(failure), `${JSON.stringify(c.layer)}: ${failure ?? 'trained'}`);
        else assert.equal(failure, undefined, JSON.stringify(c.layer));
      }
    } finally {
      await selectBackend('cpu');
    }
  });

  void it("on a model of the user's (graph path), YAML heads of the new types compose, get their parameter groups and train", () => {
    const x = tf.input({ shape: [6], name: 'x' });
    const shared = tf.layers.dense({ units: 8, activation: 'relu', name: 'shared' }).apply(x) as tf.SymbolicTensor;
    const base = () => tf.model({ inputs: x, outputs: tf.layers.dense({ units: 1, name: 'out' }).apply(shared) as tf.SymbolicTensor, name: 'user' });
    const spec = (seed: number) =>
      validateJob(
        {
          name: 'graph-heads',
          seed,
          model: {
            layersModel: 'm.json',
            trunkOutput: 'shared',
            heads: {
              a: [{ reshape: { targetShape: [4, 2] } }, { bidirectional: { layer: { gru: { units: 3 } } } }, { dense: { units: 3 } }],
              b: [{ batchNormalization: {} }, { leakyRelu: {} }, { dense: { units: 1 } }],
            },
          },
          tasks: {
            a: { loss: 'sparseCategoricalCrossentropy', data: { dataset: 'multimnist', target: 'left' } },
            b: { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: 0 } },
          },
          training: { steps: 1, batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.1 } },
        },
        'test',
      );
    const shapes = new Map([
      ['a', [6]],
      ['b', [6]],
    ]);
    const prepared = prepareUserModel(spec(1), { model: base(), weightsLoaded: false }, shapes);
    const groups = new Map(prepared.layout.tensors.map((t) => [t.name, t.group]));
    assert.equal(groups.get('shared/kernel'), 'shared');
    const recurrent = [...groups.keys()].filter((n) => n.startsWith('a_1_bidirectional/'));
    assert.deepEqual(recurrent.map((n) => n.replace(/\/(forward|backward)_\w+\//, '/$1/')).sort(), ['a_1_bidirectional/backward/bias', 'a_1_bidirectional/backward/kernel', 'a_1_bidirectional/backward/recurrent_kernel', 'a_1_bidirectional/forward/bias', 'a_1_bidirectional/forward/kernel', 'a_1_bidirectional/forward/recurrent_kernel']);
    for (const n of recurrent) assert.equal(groups.get(n), 'task:a', n);
    assert.equal(groups.get('b_0_batchNormalization/gamma'), 'task:b');
    assert.equal(groups.get('b_0_batchNormalization/moving_mean'), 'state');
    // Seeded initializers (the GRU's orthogonal recurrent kernel too): a function of the job's seed.
    const again = prepareUserModel(spec(1), { model: base(), weightsLoaded: false }, shapes);
    assert.deepEqual(again.initialParams, prepared.initialParams);
    assert.notDeepEqual(prepareUserModel(spec(2), { model: base(), weightsLoaded: false }, shapes).initialParams, prepared.initialParams);

    const objectives = new Map([
      ['a', { loss: 'sparseCategoricalCrossentropy' as const, metrics: [] }],
      ['b', { loss: 'meanSquaredError' as const, metrics: [] }],
    ]);
    const runner = new GraphRunner(prepared.layout, objectives);
    runner.setWeights(prepared.initialParams);
    const inputs = Float32Array.from({ length: 4 * 6 }, (_, i) => Math.sin(i + 1));
    for (const [task, targets] of [['a', Float32Array.from([0, 1, 2, 1])], ['b', Float32Array.from([0.5, -1, 2, 0])]] as const) {
      const r = runner.gradients(task, inputs, targets, { training: true, dropoutSeed: () => 1 });
      assert.equal(r.grads.length, unitGradientSize(prepared.layout, task), task);
      assert.ok(Number.isFinite(r.loss) && r.grads.every(Number.isFinite), task);
      const head = prepared.layout.headGroups.get(task)!;
      const own = r.grads.subarray(prepared.layout.shared.size, prepared.layout.shared.size + head.size);
      assert.ok(own.some((v) => v !== 0) && r.grads.subarray(0, prepared.layout.shared.size).some((v) => v !== 0), `${task}: zero gradients`);
    }
    runner.dispose();
  });

  void it('the fast path computes every activation with the ops tfjs-layers uses (bitwise, cpu and wasm)', async () => {
    const values = Float32Array.from([-8, -6, -2.5, -1, -0.5, -1e-3, 0, 1e-3, 0.5, 1, 2.5, 3, 6, 7.5]);
    for (const backend of ['cpu', 'wasm'] as const) {
      await selectBackend(backend);
      try {
        for (const a of ACTIVATIONS) {
          const [got, want] = tf.tidy(() => {
            const x = tf.tensor2d(values, [2, 7]);
            return [applyActivation(x, a).dataSync(), (tf.layers.activation({ activation: a }).apply(x) as tf.Tensor).dataSync()];
          });
          assert.deepEqual(got, want, `${backend} ${a}`);
        }
      } finally {
        await selectBackend('cpu');
      }
    }
  });
});
