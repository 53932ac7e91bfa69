// im2col + matMul for the Conv2D filter gradient, kept for bench/conv-grads.ts only: measured
// against the forward-convolution formulation the worker uses, it lost (worker/conv-gradients.ts).
import * as tf from '@tensorflow/tfjs';
import type { ConvGeometry } from '../worker/conv-gradients.js';

type Pair = [number, number];

/**
 * The transposed im2col of x [n, h, w, c] (values `xv`, row-major): PT[(i·kw + j)·c + ch,
 * (b·oh + y)·ow + x] = x[b, y·sh + i − top, x·sw + j − left, ch], zero outside x.
 */
export function patchesTransposed(xv: ArrayLike<number>, xShape: readonly number[], g: ConvGeometry): Float32Array {
  const [n, h, w, c] = xShape as [number, number, number, number];
  const { kh, kw, sh, sw, top, left, oh, ow } = g;
  const m = n * oh * ow;
  const out = new Float32Array(kh * kw * c * m);
  // Output columns x whose input column x·sw + j − left lies inside x, per j.
  const colRange = (j: number): Pair => {
    const first = Math.max(0, Math.ceil((left - j) / sw));
    const last = Math.min(ow - 1, Math.floor((w - 1 + left - j) / sw));
    return [first, last];
  };
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const [x0, x1] = colRange(j);
      for (let ch = 0; ch < c; ch++) {
        let row = ((i * kw + j) * c + ch) * m;
        for (let b = 0; b < n; b++) {
          for (let y = 0; y < oh; y++, row += ow) {
            const r = y * sh + i - top;
            if (r < 0 || r >= h) continue;
            let src = ((b * h + r) * w + x0 * sw + j - left) * c + ch;
            const step = sw * c;
            for (let x = x0; x <= x1; x++, src += step) out[row + x] = xv[src]!;
          }
        }
      }
    }
  }
  return out;
}

/** PT of x as a tensor [kh·kw·c, n·oh·ow] (patchesTransposed), read from x's host values. */
export function patchMatrix(x: tf.Tensor4D, g: ConvGeometry): tf.Tensor2D {
  const [n, , , c] = x.shape;
  return tf.tensor2d(patchesTransposed(x.dataSync(), x.shape, g), [g.kh * g.kw * c, n * g.oh * g.ow]);
}

/** dL/dkernel [kh, kw, c, f] = PT · dy as [n·oh·ow, f]: one matMul without transposes. */
export function filterGradFromPatches(patches: tf.Tensor2D, dy: tf.Tensor4D, kernelShape: readonly number[]): tf.Tensor4D {
  return tf.tidy(() => {
    const f = dy.shape[3];
    return tf.reshape<tf.Rank.R4>(tf.matMul(patches, tf.reshape<tf.Rank.R2>(dy, [-1, f])), kernelShape as [number, number, number, number]);
  });
}

