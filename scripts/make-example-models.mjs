#!/usr/bin/env node
// Writes the example TF.js Layers models of examples/models/<name>/ (model.json + weights.bin),
// the models the "bring your own model" examples train (job YAML `model: { layersModel: ... }`).
//
//   npm run build && node scripts/make-example-models.mjs [--only NAME[,NAME...]] [--out DIR]
//
// Every weight comes from an initializer with a fixed seed, and the one trained model is trained
// from seeded data orders, so running the script again writes byte-identical files
// (test/unit/example-models.test.ts regenerates the untrained ones and compares). The untrained
// models are built on the cpu backend (plain JavaScript: the same bits on any machine; the LSTM's
// orthogonal initializer runs a QR decomposition); the CNN trains on wasm, because the cpu
// backend's Conv2DBackpropFilter takes ~1 s per batch of 32 here, 100 times too slow.
// Every layer and input is named: tfjs' automatic names count layers per process, so they would
// change with --only.
//
// The models (inputs → outputs, sizes):
//
//   two-tower        The classic two-input, two-output model, sized for the seattle-weather CSV
//                    (vega-datasets; examples/seattle-weather.yaml) with
//                    `features: [precipitation, temp_min, wind]`: the input `rain` [1] takes the
//                    first feature (precipitation), `temp_wind` [2] the next two (temp_min, wind).
//                    Each goes through its own tower (`rain_tower`, `temp_wind_tower`: dense 8
//                    relu), the towers are concatenated (`towers_concat`) into a shared dense 32
//                    relu (`shared`), and two outputs read it: `out_a` [5] softmax (the weather
//                    type: drizzle, fog, rain, snow, sun) and `out_b` [1] linear (temp_max).
//                    Untrained.
//   mnist-digit-cnn  Input `input` [28, 28, 1] → conv 8 3×3 relu → max pool 2 → conv 16 3×3 relu →
//                    max pool 2 → flatten → dense 64 relu (`features`) → `digit` [10] softmax.
//                    TRAINED single-task on 5000 MNIST digits (the `mnist` package), all from the
//                    train pool of MultiMNIST with its data defaults (seed 0, testFraction 0.15):
//                    cut at `features` it can serve as the trunk of a MultiMNIST job without
//                    having seen any digit of that job's test images. The test accuracy (on the
//                    held-out digits of the MultiMNIST test pool) is in its userDefinedMetadata.
//   mnist-rows-lstm  Input `input` [28, 28, 1] → reshape [28, 28] (`rows`: 28 time steps of 28
//                    pixels) → bidirectional LSTM 16, concatenated (`rows_bilstm`, 32) → dense 64
//                    relu (`features`) → `left` [10] and `right` [10] softmax (MultiMNIST).
//                    Untrained.
//   mnist-bn-trunk   Input `input` [28, 28, 1] → conv 8 3×3, no bias (`conv`) → batch
//                    normalization (`bn`) → relu (`relu`) → max pool 2 → flatten → dense 64 relu
//                    (`features`) → `left` [10] and `right` [10] softmax (MultiMNIST). Untrained
//                    (moving mean 0, moving variance 1).
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (file) => import(path.join(root, 'dist', file));
const { saveLayersModel } = await dist('common/model-files.js');
const { loadMultiMnist, readMnistDigits } = await dist('common/datasets/multimnist.js');
const { deriveSeed, Rng } = await dist('common/random.js');
const { selectBackend } = await dist('worker/backend.js');

const GENERATOR = 'scripts/make-example-models.mjs';
const DIGIT_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/** Seeded initializers: the seed is derived from the model, the layer and the weight. */
const seed = (model, layer, weight) => deriveSeed('example-models', model, layer, weight);
const glorot = (model, layer, weight = 'kernel') => tf.initializers.glorotUniform({ seed: seed(model, layer, weight) });
const orthogonal = (model, layer, weight = 'recurrent_kernel') => tf.initializers.orthogonal({ seed: seed(model, layer, weight), gain: 1 });

function dense(model, name, units, activation) {
  return tf.layers.dense({ name, units, activation, kernelInitializer: glorot(model, name), biasInitializer: 'zeros' });
}

function conv(model, name, filters, options = {}) {
  return tf.layers.conv2d({ name, filters, kernelSize: 3, activation: 'relu', kernelInitializer: glorot(model, name), biasInitializer: 'zeros', ...options });
}

// ---------------------------------------------------------------------------------------------
// (a) two-tower

function twoTower() {
  const m = 'two-tower';
  const rain = tf.input({ name: 'rain', shape: [1] });
  const tempWind = tf.input({ name: 'temp_wind', shape: [2] });
  const towers = [dense(m, 'rain_tower', 8, 'relu').apply(rain), dense(m, 'temp_wind_tower', 8, 'relu').apply(tempWind)];
  const merged = tf.layers.concatenate({ name: 'towers_concat', axis: -1 }).apply(towers);
  const shared = dense(m, 'shared', 32, 'relu').apply(merged);
  const outA = dense(m, 'out_a', 5, 'softmax').apply(shared);
  const outB = dense(m, 'out_b', 1, 'linear').apply(shared);
  return {
    model: tf.model({ name: 'two_tower', inputs: [rain, tempWind], outputs: [outA, outB] }),
    metadata: {
      description:
        'Two inputs with a tower each, concatenated into a shared dense layer, two outputs. Sized for ' +
        'seattle-weather.csv with features [precipitation, temp_min, wind]: rain = [precipitation], ' +
        'temp_wind = [temp_min, wind]; out_a = weather type (drizzle, fog, rain, snow, sun), out_b = temp_max.',
      inputs: { rain: ['precipitation'], temp_wind: ['temp_min', 'wind'] },
      outputs: { out_a: { target: 'weather', kind: 'classification', classes: ['drizzle', 'fog', 'rain', 'snow', 'sun'] }, out_b: { target: 'temp_max', kind: 'regression' } },
      trunkOutput: 'shared',
      trained: false,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// (b) mnist-digit-cnn

/** The MultiMNIST data defaults (common/job-schema.ts): its pools decide what is held out. */
const MULTIMNIST_DEFAULTS = { dataset: 'multimnist', target: 'left', trainSize: 60000, testSize: 10000, shift: 4, testFraction: 0.15, seed: 0 };
const TRAIN_DIGITS = 5000;
const EVAL_DIGITS = 500;
const EPOCHS = 6;
const BATCH = 32;
const LEARNING_RATE = 0.002;

function mnistDigits() {
  const require = createRequire(import.meta.url);
  return readMnistDigits(path.join(path.dirname(require.resolve('mnist/package.json')), 'src', 'digits'));
}

/** Distinct digit ids the images of a MultiMNIST split overlay, in order of first appearance. */
function digitsOf(split, digits) {
  const ids = new Set();
  for (let i = 0; i < split.size; i++) {
    const { left, right } = split.digitPair(i);
    ids.add(digits.offsets[left.digit] + left.index);
    ids.add(digits.offsets[right.digit] + right.index);
  }
  return [...ids];
}

function digitBatch(digits, ids) {
  const x = new Float32Array(ids.length * 784);
  const y = new Int32Array(ids.length);
  ids.forEach((id, j) => {
    for (let k = 0; k < 784; k++) x[j * 784 + k] = digits.palette[digits.codes[id * 784 + k]];
    y[j] = digits.labels[id];
  });
  return { x, y };
}

function accuracy(model, digits, ids) {
  const { x, y } = digitBatch(digits, ids);
  const predicted = tf.tidy(() => model.predict(tf.tensor4d(x, [ids.length, 28, 28, 1]), { batchSize: 250 }).argMax(-1).dataSync());
  let correct = 0;
  for (let j = 0; j < ids.length; j++) if (predicted[j] === y[j]) correct++;
  return correct / ids.length;
}

/**
 * The gradient of Conv2D for this script's process: wasm has no Conv2DBackpropFilter kernel, so
 * for the unit-stride, unpadded, undilated convolutions of the CNN the filter's gradient is
 * computed as a forward convolution (exact up to float rounding: 1e-6 relative to the cpu
 * kernel): dW[i,j,c,o] = Σ_{b,y,x} x[b,y+i,x+j,c]·dy[b,y,x,o] is x with its channels as the
 * batch and its batch as the channels, convolved with dy as the filter. Other convolutions keep
 * tfjs' own gradient. Registered here rather than relying on a kernel registered elsewhere, so
 * that the trained weights do not depend on what the wasm backend gains.
 */
function registerConvGradient() {
  const original = tf.getGradient('Conv2D');
  tf.registerGradient({
    kernelName: 'Conv2D',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved;
      const ones = (v) => (Array.isArray(v) ? v : [v, v]).every((n) => n === 1);
      const plain = ones(attrs.strides) && ones(attrs.dilations) && attrs.pad === 'valid' && attrs.dataFormat === 'NHWC';
      if (!plain) return original.gradFunc(dy, saved, attrs);
      return {
        x: () => tf.conv2dTranspose(dy, filter, x.shape, 1, 'valid'),
        filter: () => tf.transpose(tf.conv2d(tf.transpose(x, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]), 1, 'valid'), [1, 2, 0, 3]),
      };
    },
  });
}

async function mnistDigitCnn() {
  const m = 'mnist-digit-cnn';
  const input = tf.input({ name: 'input', shape: [28, 28, 1] });
  let h = conv(m, 'conv1', 8).apply(input);
  h = tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }).apply(h);
  h = conv(m, 'conv2', 16).apply(h);
  h = tf.layers.maxPooling2d({ name: 'pool2', poolSize: 2 }).apply(h);
  h = tf.layers.flatten({ name: 'flatten' }).apply(h);
  const features = dense(m, 'features', 64, 'relu').apply(h);
  const digit = dense(m, 'digit', 10, 'softmax').apply(features);
  const model = tf.model({ name: 'mnist_digit_cnn', inputs: input, outputs: digit });
  registerConvGradient();

  const digits = mnistDigits();
  const pool = digitsOf(loadMultiMnist(MULTIMNIST_DEFAULTS).train, digits);
  const order = Rng.fromKey(m, 'train-digits').permutation(pool.length);
  const train = Array.from(order.subarray(0, TRAIN_DIGITS), (k) => pool[k]);
  const heldOut = digitsOf(loadMultiMnist({ ...MULTIMNIST_DEFAULTS, trainSize: 1 }).test, digits);

  model.compile({ optimizer: tf.train.adam(LEARNING_RATE), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    // fit's own shuffle draws from Math.random: the epoch's order is drawn here instead.
    const perm = Rng.fromKey(m, 'epoch', epoch).permutation(train.length);
    const { x, y } = digitBatch(digits, Array.from(perm, (k) => train[k]));
    const xs = tf.tensor4d(x, [train.length, 28, 28, 1]);
    const ys = tf.tensor1d(y, 'float32');
    const history = await model.fit(xs, ys, { epochs: 1, batchSize: BATCH, shuffle: false, verbose: 0 });
    tf.dispose([xs, ys]);
    console.error(`${m}: epoch ${epoch + 1}/${EPOCHS} loss ${history.history.loss[0].toFixed(4)} train accuracy ${history.history.acc[0].toFixed(4)}`);
  }
  const testAccuracy = accuracy(model, digits, heldOut);
  const evalAccuracy = accuracy(model, digits, heldOut.slice(0, EVAL_DIGITS));
  console.error(`${m}: accuracy ${testAccuracy.toFixed(4)} on the ${heldOut.length} held-out digits, ${evalAccuracy.toFixed(4)} on the first ${EVAL_DIGITS}`);
  return {
    model,
    metadata: {
      description:
        'A small CNN trained single-task on MNIST digits; cut at `features` (dense 64) it is a trunk for ' +
        'MultiMNIST (input [28, 28, 1]) with two heads.',
      outputs: { digit: { kind: 'classification', classes: DIGIT_CLASSES } },
      trunkOutput: 'features',
      trained: {
        data:
          `${TRAIN_DIGITS} digits of the mnist package, drawn from the MultiMNIST train pool ` +
          `(seed ${MULTIMNIST_DEFAULTS.seed}, testFraction ${MULTIMNIST_DEFAULTS.testFraction})`,
        epochs: EPOCHS,
        batchSize: BATCH,
        optimizer: { name: 'adam', learningRate: LEARNING_RATE },
        backend: 'wasm',
        testDigits: heldOut.length,
        testAccuracy: Number(testAccuracy.toFixed(4)),
        [`accuracyOnFirst${EVAL_DIGITS}TestDigits`]: Number(evalAccuracy.toFixed(4)),
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// (c) mnist-rows-lstm

function mnistRowsLstm() {
  const m = 'mnist-rows-lstm';
  const units = 16;
  const input = tf.input({ name: 'input', shape: [28, 28, 1] });
  const rows = tf.layers.reshape({ name: 'rows', targetShape: [28, 28] }).apply(input);
  const lstm = tf.layers.lstm({ name: 'rows_lstm', units, kernelInitializer: glorot(m, 'forward'), recurrentActivation: 'sigmoid', recurrentInitializer: orthogonal(m, 'forward'), biasInitializer: 'zeros', unitForgetBias: true });
  const bilstm = tf.layers.bidirectional({ name: 'rows_bilstm', layer: lstm, mergeMode: 'concat' });
  const features = dense(m, 'features', 64, 'relu').apply(bilstm.apply(rows));
  const left = dense(m, 'left', 10, 'softmax').apply(features);
  const right = dense(m, 'right', 10, 'softmax').apply(features);
  const model = tf.model({ name: 'mnist_rows_lstm', inputs: input, outputs: [left, right] });
  // The backward LSTM is built from the forward one's config, seeds included, so it would start
  // as its copy: its kernels get values of their own, from seeded initializers too.
  const [kernel, recurrent, bias] = bilstm.getWeights().slice(3);
  const backward = tf.tidy(() => [glorot(m, 'backward').apply(kernel.shape), orthogonal(m, 'backward').apply(recurrent.shape), bias.clone()]);
  bilstm.setWeights([...bilstm.getWeights().slice(0, 3), ...backward]);
  tf.dispose(backward);
  return {
    model,
    metadata: {
      description: 'MultiMNIST images read as 28 time steps of 28 pixels by a bidirectional LSTM; two 10-way outputs (left and right digit).',
      outputs: { left: { target: 'left', kind: 'classification', classes: DIGIT_CLASSES }, right: { target: 'right', kind: 'classification', classes: DIGIT_CLASSES } },
      trunkOutput: 'features',
      trained: false,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// (d) mnist-bn-trunk

function mnistBnTrunk() {
  const m = 'mnist-bn-trunk';
  const input = tf.input({ name: 'input', shape: [28, 28, 1] });
  let h = conv(m, 'conv', 8, { activation: 'linear', useBias: false }).apply(input);
  h = tf.layers.batchNormalization({ name: 'bn' }).apply(h);
  h = tf.layers.reLU({ name: 'relu' }).apply(h);
  h = tf.layers.maxPooling2d({ name: 'pool', poolSize: 2 }).apply(h);
  h = tf.layers.flatten({ name: 'flatten' }).apply(h);
  const features = dense(m, 'features', 64, 'relu').apply(h);
  const left = dense(m, 'left', 10, 'softmax').apply(features);
  const right = dense(m, 'right', 10, 'softmax').apply(features);
  return {
    model: tf.model({ name: 'mnist_bn_trunk', inputs: input, outputs: [left, right] }),
    metadata: {
      description: 'A MultiMNIST trunk with batch normalization (conv → BN → relu → pool → dense), two 10-way outputs.',
      outputs: { left: { target: 'left', kind: 'classification', classes: DIGIT_CLASSES }, right: { target: 'right', kind: 'classification', classes: DIGIT_CLASSES } },
      trunkOutput: 'features',
      trained: false,
    },
  };
}

// ---------------------------------------------------------------------------------------------

export const MODELS = { 'two-tower': twoTower, 'mnist-digit-cnn': mnistDigitCnn, 'mnist-rows-lstm': mnistRowsLstm, 'mnist-bn-trunk': mnistBnTrunk };

/**
 * Builds (for mnist-digit-cnn: trains) the model `name` and writes it to `<out>/<name>/`. Selects
 * the backend the model is made on (and leaves it selected). Exported for the test, which
 * regenerates the untrained models in its own process.
 */
export async function writeExampleModel(name, out) {
  if (!Object.hasOwn(MODELS, name)) throw new Error(`unknown model ${name} (models: ${Object.keys(MODELS).join(', ')})`);
  await selectBackend(name === 'mnist-digit-cnn' ? 'wasm' : 'cpu');
  const { model, metadata } = await MODELS[name]();
  const dir = path.join(out, name);
  await saveLayersModel(model, dir, { exampleModel: name, generatedBy: GENERATOR, ...metadata });
  const params = model.countParams();
  model.dispose();
  return { dir, params };
}

async function main() {
  const { values } = parseArgs({ options: { only: { type: 'string', multiple: true }, out: { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) {
    console.log(`usage: node ${GENERATOR} [--only NAME[,NAME...]] [--out DIR]\nmodels: ${Object.keys(MODELS).join(', ')}\nDIR defaults to examples/models`);
    return;
  }
  const names = values.only ? values.only.flatMap((s) => s.split(',')).filter((s) => s !== '') : Object.keys(MODELS);
  const unknown = names.filter((n) => !(n in MODELS));
  if (unknown.length > 0) {
    console.error(`unknown model ${unknown.join(', ')} (models: ${Object.keys(MODELS).join(', ')})`);
    process.exitCode = 2;
    return;
  }
  const out = path.resolve(values.out ?? path.join(root, 'examples', 'models'));
  tf.enableProdMode();
  for (const name of names) {
    const started = performance.now();
    const { dir, params } = await writeExampleModel(name, out);
    console.error(`${name}: ${params} parameters → ${path.relative(process.cwd(), dir) || '.'} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
