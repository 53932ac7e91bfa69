// Every layer class of issue 16's item 3 trained end to end: two model modules of the user's,
// an image model on MultiMNIST (convolutions of every kind, padding, pooling, upsampling,
// normalization, merges, reshaping, activations, dropout) and a sequence model on token ids
// (Embedding on an int32 input, SimpleRNN, GRU, LSTM, Bidirectional), each trained for a few
// steps by `mtl run` with real wasm worker processes. Checked: the run succeeds with finite
// losses, every trainable weight of the exported model moved off its initial value (the
// coordinator's, computed here by the same code), BatchNormalization's moving statistics
// moved, and the export loads in plain tfjs and predicts. Between them the two models hold
// every class of the list (the last test checks the union).
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Rng } from '../../common/random.js';
import { writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';
import { initialWeights, loadExportedModel, stepLosses, trainJob, weightsByName } from '../helpers/training-runs.js';

/** Issue 16, item 3: the layers real multi-task models use (tfjs-layers class names). */
const ITEM_3_CLASSES = [
  'Dense', 'Conv1D', 'Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'ZeroPadding2D',
  'MaxPooling1D', 'MaxPooling2D', 'AveragePooling1D', 'AveragePooling2D',
  'GlobalAveragePooling1D', 'GlobalAveragePooling2D', 'GlobalMaxPooling1D', 'GlobalMaxPooling2D',
  'UpSampling2D', 'BatchNormalization', 'LayerNormalization', 'Embedding',
  'SimpleRNN', 'LSTM', 'GRU', 'Bidirectional', 'Concatenate', 'Add', 'Multiply', 'Average',
  'Reshape', 'Flatten', 'Permute', 'Activation', 'ReLU', 'LeakyReLU', 'Softmax', 'Dropout',
];

/**
 * Two branches over a MultiMNIST image: a 2D one (conv → BN → ReLU → pad → depthwise →
 * LeakyReLU → separable, linear so that max pooling sees negative windows → 'same' overlapping
 * max pool → upsample → average pool → global pools) and a 1D one (the image's columns as a
 * sequence: Reshape, Permute → Conv1D → LayerNormalization → 1D pools → global pools), merged
 * with Add, Multiply, Average and Concatenate, then Dense → tanh, a softmax gate, Dropout and
 * one output per digit.
 */
const IMAGE_MODULE = `
export default function build(tf) {
  const L = tf.layers;
  const image = tf.input({ shape: [28, 28, 1], name: 'image' });
  let a = L.conv2d({ filters: 4, kernelSize: 3, strides: 2, name: 'conv2d' }).apply(image);
  a = L.batchNormalization({ name: 'batch_norm' }).apply(a);
  a = L.reLU({ name: 'relu' }).apply(a);
  a = L.zeroPadding2d({ padding: 1, name: 'zero_padding' }).apply(a);
  a = L.depthwiseConv2d({ kernelSize: 3, strides: 2, name: 'depthwise' }).apply(a);
  a = L.leakyReLU({ alpha: 0.1, name: 'leaky_relu' }).apply(a);
  a = L.separableConv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'separable' }).apply(a);
  a = L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'max_pool_2d' }).apply(a);
  a = L.upSampling2d({ size: [2, 2], name: 'up_sampling' }).apply(a);
  a = L.averagePooling2d({ poolSize: 2, name: 'avg_pool_2d' }).apply(a);
  const a1 = L.globalAveragePooling2d({ name: 'gap_2d' }).apply(a);
  const a2 = L.globalMaxPooling2d({ name: 'gmp_2d' }).apply(a);
  const flat = L.flatten({ name: 'flatten' }).apply(a);
  let b = L.reshape({ targetShape: [28, 28], name: 'rows' }).apply(image);
  b = L.permute({ dims: [2, 1], name: 'columns' }).apply(b);
  b = L.conv1d({ filters: 4, kernelSize: 3, strides: 2, name: 'conv1d' }).apply(b);
  b = L.layerNormalization({ name: 'layer_norm' }).apply(b);
  b = L.maxPooling1d({ poolSize: 2, name: 'max_pool_1d' }).apply(b);
  b = L.averagePooling1d({ poolSize: 2, name: 'avg_pool_1d' }).apply(b);
  const b1 = L.globalAveragePooling1d({ name: 'gap_1d' }).apply(b);
  const b2 = L.globalMaxPooling1d({ name: 'gmp_1d' }).apply(b);
  const sum = L.add({ name: 'add' }).apply([a1, a2]);
  const product = L.multiply({ name: 'multiply' }).apply([b1, b2]);
  const mean = L.average({ name: 'average' }).apply([sum, product]);
  let h = L.concatenate({ name: 'concatenate' }).apply([mean, flat]);
  h = L.dense({ units: 16, name: 'features' }).apply(h);
  h = L.activation({ activation: 'tanh', name: 'tanh' }).apply(h);
  const gate = L.softmax({ name: 'softmax' }).apply(L.dense({ units: 16, name: 'gate_logits' }).apply(h));
  h = L.multiply({ name: 'gated' }).apply([h, gate]);
  h = L.dropout({ rate: 0.2, name: 'dropout' }).apply(h);
  const left = L.dense({ units: 10, activation: 'softmax', name: 'digit_left' }).apply(h);
  const right = L.dense({ units: 10, activation: 'softmax', name: 'digit_right' }).apply(h);
  return tf.model({ inputs: image, outputs: [left, right], name: 'every_image_layer' });
}
`;

const SEQUENCE_LENGTH = 8;
const VOCABULARY = 10;

/** Token ids (an int32 input) through Embedding and four recurrent layers; a class and a value out. */
const SEQUENCE_MODULE = `
export default function build(tf) {
  const L = tf.layers;
  const tokens = tf.input({ shape: [${SEQUENCE_LENGTH}], dtype: 'int32', name: 'tokens' });
  let h = L.embedding({ inputDim: ${VOCABULARY}, outputDim: 4, name: 'embedding' }).apply(tokens);
  h = L.simpleRNN({ units: 4, returnSequences: true, name: 'simple_rnn' }).apply(h);
  h = L.gru({ units: 4, returnSequences: true, name: 'gru' }).apply(h);
  h = L.lstm({ units: 4, returnSequences: true, name: 'lstm' }).apply(h);
  h = L.bidirectional({ layer: L.lstm({ units: 3 }), name: 'bidirectional' }).apply(h);
  const order = L.dense({ units: 2, activation: 'softmax', name: 'order' }).apply(h);
  const total = L.dense({ units: 1, name: 'total' }).apply(h);
  return tf.model({ inputs: tokens, outputs: [order, total], name: 'every_sequence_layer' });
}
`;

const TRAINING = { steps: 3, batchSize: 8, shardsPerTask: 1, optimizer: { name: 'adam', learningRate: 0.01 } };

function imageJob(dir: string): string {
  writeFileSync(path.join(dir, 'image-model.mjs'), IMAGE_MODULE);
  const data = (target: string) => ({ dataset: 'multimnist', target, trainSize: 200, testSize: 50 });
  return writeJob(
    {
      name: 'every-image-layer',
      seed: 3,
      model: { module: './image-model.mjs' },
      tasks: {
        left: { output: 'digit_left', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: data('left') },
        right: { output: 'digit_right', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: data('right') },
      },
      training: TRAINING,
    },
    dir,
  );
}

/**
 * A CSV of token sequences t0…t7 (integers in [0, 10), read unnormalized into the int32 input)
 * with two targets: whether the sequence ends higher than it starts, and a tenth of its sum.
 */
function sequenceJob(dir: string): string {
  const rng = new Rng(11);
  const columns = Array.from({ length: SEQUENCE_LENGTH }, (_, i) => `t${i}`);
  const rows = Array.from({ length: 120 }, () => {
    const tokens = columns.map(() => rng.int(VOCABULARY));
    const sum = tokens.reduce((a, b) => a + b, 0);
    return [...tokens, tokens[SEQUENCE_LENGTH - 1]! > tokens[0]! ? 'up' : 'down', (sum / 10).toFixed(1)].join(',');
  });
  writeFileSync(path.join(dir, 'tokens.csv'), [[...columns, 'direction', 'total'].join(','), ...rows].join('\n') + '\n');
  writeFileSync(path.join(dir, 'sequence-model.mjs'), SEQUENCE_MODULE);
  const data = (target: string) => ({ dataset: 'csv', path: 'tokens.csv', features: columns, target, normalize: false });
  return writeJob(
    {
      name: 'every-sequence-layer',
      seed: 4,
      model: { module: './sequence-model.mjs' },
      tasks: {
        direction: { output: 'order', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: data('direction') },
        total: { output: 'total', loss: 'meanSquaredError', metrics: ['mae'], data: data('total') },
      },
      training: TRAINING,
    },
    dir,
  );
}

/** The layer classes of a model, wrapped layers included. */
function layerClasses(model: tf.LayersModel): string[] {
  return model.layers.flatMap((l) => {
    const wrapped = (l as unknown as { layer?: tf.layers.Layer }).layer;
    return wrapped ? [l.getClassName(), wrapped.getClassName()] : [l.getClassName()];
  });
}

/**
 * Trains the job with `workers` wasm workers and checks the run and its export (see the file
 * comment). Returns the exported model's layer classes.
 */
async function trainAndCheck(jobFile: string, workers: number, predictInput: () => tf.Tensor): Promise<string[]> {
  const initial = initialWeights(jobFile);
  const { out } = await trainJob(jobFile, workers, ['--backend', 'wasm']);
  const losses = stepLosses(out);
  assert.equal(losses.length, TRAINING.steps, 'one metrics line per step');
  for (const [step, byTask] of losses.entries()) {
    assert.ok(Object.keys(byTask).length === 2, `step ${step + 1}: a loss per task`);
    for (const [task, loss] of Object.entries(byTask)) assert.ok(Number.isFinite(loss), `step ${step + 1}, task ${task}: loss ${loss}`);
  }

  const model = await loadExportedModel(out);
  try {
    const trained = weightsByName(model);
    const listed = new Set(ITEM_3_CLASSES);
    let checked = 0;
    for (const layer of model.layers) {
      const cls = layer.getClassName();
      const trainable = new Set(layer.trainableWeights);
      for (const w of layer.weights) {
        const where = `${layer.name} (${cls}): ${w.originalName}`;
        assert.ok(listed.has(cls), `${where}: a layer outside the list has weights`);
        const before = initial.get(w.originalName);
        assert.ok(before, `${where}: no initial value`);
        const after = trained.get(w.originalName)!;
        assert.equal(after.length, before.length, where);
        assert.ok(after.every(Number.isFinite), `${where}: not finite after training`);
        // Only BatchNormalization's moving statistics do not train (they are state, and move too).
        const state = cls === 'BatchNormalization' && /moving_(mean|variance)$/.test(w.originalName);
        assert.ok(state || trainable.has(w), `${where}: not trainable`);
        assert.ok(after.some((v, i) => v !== before[i]), `${where}: did not change in training`);
        if (!state) checked++;
      }
    }
    assert.equal(checked, model.trainableWeights.length, 'every trainable weight was checked');

    const x = predictInput();
    const outputs = model.predict(x) as tf.Tensor[];
    for (const [i, y] of outputs.entries()) {
      const name = model.outputNames[i]!;
      assert.equal(y.shape[0], x.shape[0], `${name}: one prediction per example`);
      const values = y.dataSync();
      assert.ok(values.every(Number.isFinite), `${name}: predictions are finite`);
      if (y.shape[1]! > 1) for (const s of tf.sum(y, 1).dataSync()) assert.ok(Math.abs(s - 1) < 1e-5, `${name}: the export keeps the softmax`);
    }
    tf.dispose([x, ...outputs]);
    return layerClasses(model);
  } finally {
    model.dispose();
  }
}

void describe('every layer of issue 16 item 3 trains end to end (mtl run, wasm workers)', () => {
  const seen = new Set<string>();

  void it('an image model: Conv1D/2D, depthwise, separable, zero padding, every pooling, upsampling, BatchNormalization, LayerNormalization, merges, Reshape/Permute/Flatten, activations, Dropout', async () => {
    const classes = await trainAndCheck(imageJob(tempDir('mtl-every-image-')), 2, () => tf.randomUniform([3, 28, 28, 1], 0, 1, 'float32', 1));
    classes.forEach((c) => seen.add(c));
  });

  void it('a sequence model on token ids: Embedding (int32 input), SimpleRNN, GRU, LSTM, Bidirectional', async () => {
    const classes = await trainAndCheck(sequenceJob(tempDir('mtl-every-sequence-')), 1, () => tf.tensor2d([[0, 1, 2, 3, 4, 5, 6, 9], [9, 9, 0, 0, 3, 3, 1, 2]], [2, SEQUENCE_LENGTH], 'int32'));
    classes.forEach((c) => seen.add(c));
  });

  void it('between them, the two models hold every class of the list', () => {
    assert.deepEqual(ITEM_3_CLASSES.filter((c) => !seen.has(c)), []);
  });
});
