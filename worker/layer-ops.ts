// The forward ops of the layer vocabulary, with the gradients each backend needs.
//
// wasm traps (tfjs 4.22, measured here): a matMul with a transposed operand leaves XNNPACK
// for a slow loop (512²: 29 GFLOP/s plain, 1 GFLOP/s transposed), and there is no
// Conv2DBackpropFilter kernel at all. So on wasm the dense gradient transposes explicitly,
// and the conv filter gradient is computed as im2col + matMul. Other backends keep tfjs'
// own gradients. test/unit/layer-ops.test.ts checks both paths against tfjs' gradients.
import * as tf from '@tensorflow/tfjs';
import type { Activation } from '../common/job-schema.js';

export interface OpsMode {
  /** Dense gradients as matMul(transpose(a), b) instead of matMul(a, b, true, false). */
  explicitTranspose: boolean;
  /** Conv2D filter gradient via im2col + matMul (for backends without Conv2DBackpropFilter). */
  im2colFilterGrad: boolean;
}

export function opsModeFor(backend: string): OpsMode {
  return {
    explicitTranspose: backend === 'wasm',
    im2colFilterGrad: tf.getKernel('Conv2DBackpropFilter', backend) === undefined,
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

/** tfjs' 'same' padding: total = max((out−1)·stride + k − in, 0), the smaller half first. */
function samePadding(size: number, kernel: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/**
 * dL/dkernel of conv2d(x, kernel) as im2col + one matMul: each of the kh·kw kernel taps
 * selects a strided window of x; the windows side by side are the patch matrix P
 * [n·oh·ow, kh·kw·c], and dkernel = Pᵀ · dy, reshaped to [kh, kw, c, f].
 */
export function conv2dFilterGradIm2col(x: tf.Tensor4D, dy: tf.Tensor4D, kernelShape: readonly number[], strides: [number, number], padding: Padding): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const [, oh, ow, f] = dy.shape;
    const [kh, kw] = kernelShape as [number, number];
    const [sh, sw] = strides;
    let xp: tf.Tensor4D = x;
    if (padding === 'same') {
      const ph = samePadding(h, kh, sh);
      const pw = samePadding(w, kw, sw);
      if (ph[0] + ph[1] + pw[0] + pw[1] > 0) xp = tf.pad(x, [[0, 0], ph, pw, [0, 0]]);
    }
    const taps: tf.Tensor4D[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const end = [n, i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1, c];
        taps.push(sh === 1 && sw === 1 ? tf.slice(xp, [0, i, j, 0], [n, oh, ow, c]) : (tf.stridedSlice(xp, [0, i, j, 0], end, [1, sh, sw, 1]) as tf.Tensor4D));
      }
    }
    const patches = tf.reshape(taps.length === 1 ? taps[0]! : tf.concat(taps, 3), [n * oh * ow, kh * kw * c]);
    const grad = tf.matMul(tf.transpose(patches), tf.reshape(dy, [n * oh * ow, f]));
    return tf.reshape(grad, [kh, kw, c, f]);
  });
}

function conv2dIm2colGrad(strides: [number, number], padding: Padding) {
  return tf.customGrad((a: tf.Tensor | tf.GradSaveFunc, b: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
    const x = a as tf.Tensor4D;
    const kernel = b as tf.Tensor4D;
    (save as tf.GradSaveFunc)([x, kernel]);
    return {
      value: tf.conv2d(x, kernel, strides, padding),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ks] = saved as [tf.Tensor4D, tf.Tensor4D];
        const dy4 = dy as tf.Tensor4D;
        return [tf.conv2dTranspose(dy4, ks, xs.shape, strides, padding), conv2dFilterGradIm2col(xs, dy4, ks.shape, strides, padding)];
      },
    };
  });
}

/** conv2d (NHWC, kernel [kh, kw, c, f]) with a gradient every backend can compute. */
export function conv2dForTraining(x: tf.Tensor4D, kernel: tf.Tensor4D, strides: [number, number], padding: Padding, mode: OpsMode): tf.Tensor4D {
  if (!mode.im2colFilterGrad) return tf.conv2d(x, kernel, strides, padding);
  return conv2dIm2colGrad(strides, padding)(x, kernel);
}

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
  }
}
