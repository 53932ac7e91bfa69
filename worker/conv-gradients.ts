// Conv2D input gradients for wasm built on the forward Conv2D (XNNPACK), shared by the fast path
// (trunk-tape.ts, layer-ops.ts) and the Conv2DBackpropInput registered for plain autodiff
// (wasm-gradient-kernels.ts). NHWC data, kernels [kh, kw, c, f].
//
// dx is the forward convolution of dy (zeros inserted between its rows and columns for strides
// > 1) padded for a "full" correlation, with the kernel flipped in space and its channel axes
// swapped (flipped on the host: tf.reverse + tf.transpose cost ~3 ms a call on wasm for
// multimnist-cnn's second kernel). wasm's own Conv2DBackpropInput is a slow loop: measured
// (bench/conv-grads.ts, 2 shared cores under load, batch 64 unless said) 178 → 30 ms for
// multimnist-cnn's second conv, 385 → 44 ms for 16²×32→64 3×3 'same', 68 → 47 ms for a
// stride-2 28²×8→16 'same', 8.5 → 0.7 ms at batch 1. For strides > 1 the zero-spread dy makes
// the convolution do sh·sw times the work, and a dx of few channels (the GEMM's narrow side)
// runs XNNPACK poorly: inputGradByConvWins keeps wasm's own there.
//
// Not here: the filter gradient as im2col + matMul (the proposal). Measured against the
// forward-convolution formulation (layer-ops.ts conv2dFilterGradByConv, the same XNNPACK GEMM
// with the im2col done by its indirection buffer, no copy), over ten layer shapes: the host loop
// that builds the patch matrix [kh·kw·c, n·oh·ow] costs more than the whole convolution
// (multimnist-cnn conv2: 74 ms with the patches built in the call against 27 ms; 17 ms for the
// matMul alone on patches built beforehand), and building it once per batch for every task on
// the fast path still lost with two tasks (multimnist-cnn, fast path sharing the batch: 446 ms
// against 326 ms per batch, bench/compute.ts). tf.gather and kh·kw slices + a concat build it
// slower still on wasm. bench/conv-grads.ts keeps the comparison.
import * as tf from '@tensorflow/tfjs';

type Pair = [number, number];

/** tfjs' 'same' padding: total = max((out−1)·stride + k − in, 0), the smaller half first. */
export function samePadding(size: number, kernel: number, stride: number): Pair {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/**
 * Pads (positive amounts) or crops (negative amounts) the two spatial axes of an NHWC tensor:
 * `rows` and `cols` are [before, after].
 */
export function padOrCrop(t: tf.Tensor4D, rows: Pair, cols: Pair): tf.Tensor4D {
  const [n, h, w, c] = t.shape;
  const grow = (v: number) => Math.max(v, 0);
  let out = t;
  if (rows.some((v) => v > 0) || cols.some((v) => v > 0)) {
    out = tf.pad(t, [[0, 0], [grow(rows[0]), grow(rows[1])], [grow(cols[0]), grow(cols[1])], [0, 0]]);
  }
  if (rows.some((v) => v < 0) || cols.some((v) => v < 0)) {
    const top = grow(-rows[0]);
    const left = grow(-cols[0]);
    const height = h + rows[0] + rows[1];
    const width = w + cols[0] + cols[1];
    // Crop from the padded tensor: what was padded on one side stays, what is cut goes.
    out = tf.slice(out, [0, top, left, 0], [n, height, width, c]);
  }
  return out;
}

/**
 * dy with (stride − 1) zeros inserted between its rows and between its columns: the gradient of
 * a strided window sum is the unstrided one over this.
 */
export function insertStrideZeros(dy: tf.Tensor4D, strideHeight: number, strideWidth: number): tf.Tensor4D {
  if (strideHeight === 1 && strideWidth === 1) return dy;
  const [n, h, w, c] = dy.shape;
  const spread = tf.pad(tf.reshape(dy, [n, h, 1, w, 1, c]), [[0, 0], [0, 0], [0, strideHeight - 1], [0, 0], [0, strideWidth - 1], [0, 0]]);
  // The trailing zeros after the last row and column are not part of the spread dy.
  const flat = tf.reshape<tf.Rank.R4>(spread, [n, h * strideHeight, w * strideWidth, c]);
  return tf.slice(flat, [0, 0, 0, 0], [n, (h - 1) * strideHeight + 1, (w - 1) * strideWidth + 1, c]);
}

/** Where a convolution's windows lie: what im2col and the input gradient need of a Conv2DInfo. */
export interface ConvGeometry {
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  /** Padding before the first row and column (the far side follows from the output size). */
  top: number;
  left: number;
  oh: number;
  ow: number;
}

export function geometryOf(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  return { kh: info.filterHeight, kw: info.filterWidth, sh: info.strideHeight, sw: info.strideWidth, top: info.padInfo.top, left: info.padInfo.left, oh: info.outHeight, ow: info.outWidth };
}

/** The geometry of conv2d(x, kernel [kh, kw, ...], strides, padding) as tfjs computes it (NHWC). */
export function convGeometry(xShape: readonly number[], kernelShape: readonly number[], strides: Pair, padding: 'valid' | 'same'): ConvGeometry {
  const [kh, kw] = kernelShape as [number, number];
  return geometryOf(tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], [kh, kw, xShape[3]!, 1], strides, 1, padding));
}

/** kernel [kh, kw, c, f] flipped in space with its channel axes swapped: [kh, kw, f, c], on the host. */
export function flippedKernel(kernel: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw, c, f] = kernel.shape;
  const v = kernel.dataSync();
  const out = new Float32Array(v.length);
  let src = 0;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const to = ((kh - 1 - i) * kw + (kw - 1 - j)) * f * c;
      for (let ci = 0; ci < c; ci++) for (let fi = 0; fi < f; fi++) out[to + fi * c + ci] = v[src++]!;
    }
  }
  return tf.tensor4d(out, [kh, kw, f, c]);
}

/**
 * Whether inputGradByConv beats wasm's own Conv2DBackpropInput for an input of `channels`
 * channels. Measured (medians of 15–21 interleaved rounds, batch 64 unless said): stride 1 wins
 * everywhere (0.08–0.86× the time, 1 to 64 channels); stride 2 wins from 8 channels (28²×8: 0.70×,
 * 14²×16: 0.65×, 12²×16 2×2: 0.50×, 16²×32 at batch 32: 0.44×) and loses below (1: 5.96×,
 * 2: 2.55×, 3 (32² RGB, batch 32): 1.58×, 4: 1.13×).
 */
export function inputGradByConvWins(strides: readonly [number, number], channels: number): boolean {
  return (strides[0] === 1 && strides[1] === 1) || channels >= 8;
}

/**
 * dL/dx [n, h, w, c] of a convolution with this geometry, from dy and the flipped kernel
 * (flippedKernel): dy spread by the strides and padded so that padded-input row P reads spread
 * rows P − kh + 1 … P, correlated with the flipped kernel by the forward Conv2D.
 */
export function inputGradByConv(dy: tf.Tensor4D, flipped: tf.Tensor4D, xShape: readonly number[], g: ConvGeometry): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, w] = xShape as [number, number, number, number];
    const spread = insertStrideZeros(dy, g.sh, g.sw);
    const [, spreadH, spreadW] = spread.shape;
    const before: Pair = [g.kh - 1 - g.top, g.kw - 1 - g.left];
    const padded = padOrCrop(spread, [before[0], h + g.kh - 1 - spreadH - before[0]], [before[1], w + g.kw - 1 - spreadW - before[1]]);
    return tf.conv2d(padded, flipped, 1, 'valid');
  });
}
