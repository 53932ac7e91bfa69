// The forward ops of the layer vocabulary, with the gradients each backend needs.
//
// wasm traps (tfjs 4.22, measured here): a matMul with a transposed operand leaves XNNPACK
// for a slow loop (512²: 29 GFLOP/s plain, 1 GFLOP/s transposed), Conv2DBackpropInput is a
// slow loop too, and wasm ships no Conv2DBackpropFilter (worker/wasm-gradient-kernels.ts
// registers one for plain autodiff). So on wasm the dense gradient transposes explicitly,
// and both conv gradients are computed as forward convolutions (worker/conv-gradients.ts; the
// input's for every stride, strides > 1 through a zero-spread dy). Other backends keep tfjs' own
// gradients.
// test/unit/model-runner.test.ts checks both paths against tfjs' gradients.
import * as tf from '@tensorflow/tfjs';
import type { Activation } from '../common/job-schema.js';
import { convGeometry, flippedKernel, inputGradByConv, inputGradByConvWins, samePadding } from './conv-gradients.js';

export interface OpsMode {
  /** Dense gradients as matMul(transpose(a), b) instead of matMul(a, b, true, false). */
  explicitTranspose: boolean;
  /** Conv2D gradients via forward convolutions (on wasm, see above); the name is historical. */
  im2colFilterGrad: boolean;
  /**
   * Max pooling over tiling windows: the backward pass on the host, from each window's
   * maximum found once per batch (maxPoolArgmax), instead of wasm's MaxPoolGrad (7 ms per task
   * for multimnist-cnn's first pool against 1.6 ms once + 1.7 ms per task, measured).
   */
  hostPoolGrad: boolean;
}

export function opsModeFor(backend: string): OpsMode {
  return {
    explicitTranspose: backend === 'wasm',
    // By name, not by whether the backend has Conv2DBackpropFilter: wasm has one once
    // wasm-gradient-kernels.ts registered it, and the fast path keeps its own conv gradients
    // there (the stride-1 input gradient avoids wasm's slow Conv2DBackpropInput).
    im2colFilterGrad: backend === 'wasm',
    // Only where tensor data lives in host memory anyway: elsewhere reading it back costs more.
    hostPoolGrad: backend === 'wasm',
  };
}

const matMulExplicitTranspose = tf.customGrad((a: tf.Tensor | tf.GradSaveFunc, b: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
  const x = a as tf.Tensor2D;
  const w = b as tf.Tensor2D;
  (save as tf.GradSaveFunc)([x, w]);
  return {
    value: tf.matMul(x, w),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
      const dy2 = dy as tf.Tensor2D;
      return [tf.matMul(dy2, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy2)];
    },
  };
});

/** x [n, in] · kernel [in, out]. */
export function matMulForTraining(x: tf.Tensor2D, kernel: tf.Tensor2D, mode: OpsMode): tf.Tensor2D {
  return mode.explicitTranspose ? (matMulExplicitTranspose(x, kernel) as tf.Tensor2D) : tf.matMul(x, kernel);
}

export type Padding = 'valid' | 'same';

/**
 * dL/dkernel of conv2d(x, kernel) from the forward Conv2D kernel, which every backend has
 * (wasm lacks Conv2DBackpropFilter): dkernel[i, j, ci, co] = Σ_{n,y,x} x[n, y·s+i, x·s+j, ci] ·
 * dy[n, y, x, co], a stride-dilated correlation of x with dy over the examples.
 * (Named conv2dFilterGradIm2col until im2col + matMul was measured against it and lost:
 * worker/conv-gradients.ts.)
 */
export function conv2dFilterGradByConv(x: tf.Tensor4D, dy: tf.Tensor4D, kernelShape: readonly number[], strides: [number, number], padding: Padding): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, w, c] = x.shape;
    const [, , , f] = dy.shape;
    const [kh, kw] = kernelShape as [number, number];
    const [sh, sw] = strides;
    let xp: tf.Tensor4D = x;
    if (padding === 'same') {
      const ph = samePadding(h, kh, sh);
      const pw = samePadding(w, kw, sw);
      if (ph[0] + ph[1] + pw[0] + pw[1] > 0) xp = tf.pad(x, [[0, 0], ph, pw, [0, 0]]);
    }
    // The filter gradient is itself a convolution, with batch and channels swapped: correlate
    // each input channel (as a batch of one "image" per channel, the examples as its channels)
    // with dy (the examples as input channels, the filters as output channels), dilated by the
    // stride. One backend Conv2D instead of kh·kw strided slices, a concat and a matMul
    // (measured on wasm for the multimnist CNN: the slices and the concat took ~113 ms of a
    // 237 ms training step).
    const xt = tf.transpose(xp, [3, 1, 2, 0]); // [c, H, W, n]
    const dyt = tf.transpose(dy, [1, 2, 0, 3]); // [oh, ow, n, f]
    const full = tf.conv2d(xt, dyt, 1, 'valid', 'NHWC', [sh, sw]); // [c, ≥kh, ≥kw, f]
    const grad = full.shape[1] === kh && full.shape[2] === kw ? full : tf.slice(full, [0, 0, 0, 0], [c, kh, kw, f]);
    return tf.transpose(grad, [1, 2, 0, 3]);
  });
}

/**
 * dL/dx of conv2d(x, kernel) from the forward Conv2D kernel: the "full" correlation of dy
 * (zeros inserted between rows and columns for strides > 1, padded by the kernel size less one
 * less the forward padding) with the kernel flipped in space and its channel axes swapped
 * (`flipped`, flippedKernel(kernel), when the caller keeps one). On wasm this replaces
 * Conv2DBackpropInput, a slow loop (44 ms of an 85 ms multimnist-cnn step), where it is faster
 * (conv-gradients.ts inputGradByConvWins: strided convolutions of few input channels keep it).
 */
export function conv2dInputGrad(dy: tf.Tensor4D, kernel: tf.Tensor4D, xShape: [number, number, number, number], strides: [number, number], padding: Padding, flipped?: tf.Tensor4D): tf.Tensor4D {
  if (!inputGradByConvWins(strides, xShape[3])) return tf.conv2dTranspose(dy, kernel, xShape, strides, padding);
  return tf.tidy(() => inputGradByConv(dy, flipped ?? flippedKernel(kernel), xShape, convGeometry(xShape, kernel.shape, strides, padding)));
}

function conv2dIm2colGrad(strides: [number, number], padding: Padding, inputGrad: boolean) {
  return tf.customGrad((a: tf.Tensor | tf.GradSaveFunc, b: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
    const x = a as tf.Tensor4D;
    const kernel = b as tf.Tensor4D;
    (save as tf.GradSaveFunc)([x, kernel]);
    return {
      value: tf.conv2d(x, kernel, strides, padding),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ks] = saved as [tf.Tensor4D, tf.Tensor4D];
        const dy4 = dy as tf.Tensor4D;
        // The model's input needs no gradient: skip the (on wasm, slow) Conv2DBackpropInput there.
        const dx = inputGrad ? conv2dInputGrad(dy4, ks, xs.shape, strides, padding) : tf.zerosLike(xs);
        return [dx, conv2dFilterGradByConv(xs, dy4, ks.shape, strides, padding)];
      },
    };
  });
}

/**
 * conv2d (NHWC, kernel [kh, kw, c, f]) with a gradient every backend can compute. With
 * `inputGrad` false (x is the model's input), the gradient with respect to x is reported as zeros.
 */
export function conv2dForTraining(x: tf.Tensor4D, kernel: tf.Tensor4D, strides: [number, number], padding: Padding, mode: OpsMode, inputGrad = true): tf.Tensor4D {
  if (!mode.im2colFilterGrad) return tf.conv2d(x, kernel, strides, padding);
  return conv2dIm2colGrad(strides, padding, inputGrad)(x, kernel);
}

/** Whether max pooling with these settings tiles its input: each position is in at most one window. */
export function poolTiles(poolSize: [number, number], strides: [number, number], padding: Padding, inputShape: readonly number[]): boolean {
  const [ph, pw] = poolSize;
  if (strides[0] !== ph || strides[1] !== pw) return false;
  // 'same' pads only where the windows do not divide the input.
  return padding === 'valid' || (inputShape[1]! % ph === 0 && inputShape[2]! % pw === 0);
}

/**
 * For tiling max pooling of x [n, h, w, c] (NHWC data): the flat index into x of each output's
 * maximum, output order. Among tied maxima the first in row-major window order wins, as in
 * tfjs' cpu backend and in the MaxPoolGrad registered for wasm (worker/host-gradient-kernels.ts),
 * so the fast path agrees with autodiff on ties. Rows and columns past the last whole window
 * ('valid' padding) belong to no window.
 */
export function maxPoolArgmax(x: Float32Array, shape: readonly number[], poolSize: [number, number]): Int32Array {
  const [n, h, w, c] = shape as [number, number, number, number];
  const [ph, pw] = poolSize;
  const [oh, ow] = [Math.floor(h / ph), Math.floor(w / pw)];
  const argmax = new Int32Array(n * oh * ow * c);
  let out = 0;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const corner = ((b * h + i * ph) * w + j * pw) * c;
        for (let ch = 0; ch < c; ch++) {
          let best = corner + ch;
          let bestValue = x[best]!;
          for (let di = 0; di < ph; di++) {
            for (let dj = 0; dj < pw; dj++) {
              const at = corner + (di * w + dj) * c + ch;
              if (x[at]! > bestValue) {
                bestValue = x[at]!;
                best = at;
              }
            }
          }
          argmax[out++] = best;
        }
      }
    }
  }
  return argmax;
}

/** dL/dx of tiling max pooling: each output's gradient goes to its maximum (maxPoolArgmax), zeros elsewhere. */
export function maxPoolGradFromArgmax(argmax: Int32Array, dy: Float32Array, xSize: number): Float32Array {
  if (dy.length !== argmax.length) throw new RangeError(`dy has ${dy.length} values for ${argmax.length} windows`);
  const dx = new Float32Array(xSize);
  for (let k = 0; k < argmax.length; k++) dx[argmax[k]!] = dy[k]!;
  return dx;
}

/**
 * `activation(x)` with the ops tfjs-layers uses for it (so that the exported model computes
 * the same values); test/unit/yaml-layers.test.ts checks each against tf.layers.activation.
 */
export function applyActivation(x: tf.Tensor, activation: Activation): tf.Tensor {
  switch (activation) {
    case 'linear':
      return x;
    case 'relu':
      return tf.relu(x);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'tanh':
      return tf.tanh(x);
    case 'softmax':
      return tf.softmax(x);
    case 'elu':
      return tf.elu(x);
    case 'softplus':
      return tf.softplus(x);
    case 'selu':
      return tf.selu(x);
    case 'gelu':
      return tf.mul(x, tf.mul(0.5, tf.add(1, tf.erf(tf.div(x, Math.SQRT2)))));
    case 'swish':
      return tf.mul(tf.sigmoid(x), x);
    case 'mish':
      return tf.mul(x, tf.tanh(tf.softplus(x)));
    case 'relu6':
      return tf.minimum(6, tf.relu(x));
    case 'softsign':
      return tf.div(x, tf.add(tf.abs(x), 1));
    case 'hardSigmoid':
      return tf.clipByValue(tf.add(0.5, tf.mul(0.2, x)), 0, 1);
  }
}
