// Gradient kernels that @tensorflow/tfjs-backend-wasm 4.22 does not have, so that plain tfjs
// autodiff (tf.variableGrads over a Layers model) trains on wasm. Found by running the gradient
// of every layer the worker supports on wasm (test/unit/layer-gradients.test.ts): only these four
// were missing. Two kernels wasm has are replaced (WASM_KERNEL_OVERRIDES): its MaxPoolGrad is
// wrong (it drops the gradient of windows whose maximum is ≤ 0; worker/host-gradient-kernels.ts
// has the exact one, the cpu backend's semantics, ties to the first maximum), and its
// Conv2DBackpropInput (the input gradient of Conv2D, the forward pass of Conv2DTranspose) is a
// slow loop: ours is a forward convolution of dy, spread by the strides and padded, with the
// flipped filter (worker/conv-gradients.ts has the numbers: 3–12× faster; a fine-tuned
// pretrained-trunk unit on the graph path 0.57× the time).
//
// - Conv2DBackpropFilter (Conv1D, Conv2D, SeparableConv2D's pointwise step): the filter
//   gradient is itself a forward convolution, with batch and channels swapped and dy as the
//   filter, dilated by the stride. wasm runs that convolution in XNNPACK: 28 ms for a
//   28×28×1→32 3×3 layer at batch 64, against 52 ms for wasm's own Conv3DBackpropFilterV2
//   (given a depth of 1; it is also wrong for strided 'same' padding) and 107 ms for
//   im2col + matMul (measured with tmp scripts, not kept).
// - DepthwiseConv2dNativeBackpropFilter (DepthwiseConv2D, SeparableConv2D): the same idea with
//   a depthwise convolution: each (example, channel) pair becomes a channel of one image, dy
//   the per-channel filter; the examples are summed afterwards.
// - DepthwiseConv2dNativeBackpropInput: the "full" depthwise correlation of dy (zeros inserted
//   between its rows and columns for strides > 1) with the spatially flipped filter, summed
//   over the channel multiplier.
// - UnsortedSegmentSum (the gradient of Gather, so of Embedding): a loop over the data on the
//   host, in double precision. wasm tensors live in host memory, so reading them costs a copy.
//
// The convolution kernels are built from wasm's own ops (pad, transpose, reshape, conv2d,
// depthwiseConv2d, slice, sum) inside tf.tidy, so they leave no intermediate tensor behind.
// Dilations are honoured (tfjs' gradients only ever pass 1; the cpu backend's kernels ignore them).
import * as tf from '@tensorflow/tfjs';
import { flippedKernel, geometryOf, inputGradByConv, inputGradByConvWins, insertStrideZeros, padOrCrop } from './conv-gradients.js';
import { maxPoolGradOnHost, overrideKernel } from './host-gradient-kernels.js';

type Pair = [number, number];

/** The kernels this module can provide for wasm, in registration order. */
export const WASM_GRADIENT_KERNEL_NAMES = [
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'UnsortedSegmentSum',
] as const;

export type WasmGradientKernelName = (typeof WASM_GRADIENT_KERNEL_NAMES)[number];

/** Kernels wasm has but computes wrongly, replaced by registerWasmGradientKernels. */
export const WASM_KERNEL_OVERRIDES = ['MaxPoolGrad', 'Conv2DBackpropInput'] as const;

/** A kernel input as a Tensor: the engine passes Tensors, but a TensorInfo is wrapped (inside a tidy). */
function asTensor(info: tf.TensorInfo | undefined, name: string): tf.Tensor {
  if (info === undefined) throw new Error(`missing kernel input '${name}'`);
  return info instanceof tf.Tensor ? (info as tf.Tensor) : tf.engine().makeTensorFromTensorInfo(info);
}

/**
 * Rows and columns of padding that make a padded input exactly as large as the windows of a
 * convolution need: `top`/`left` as the forward pass padded, the far side cut or extended so
 * that the last window ends at the last row (a rounding mode of 'ceil' can need rows past the
 * forward padding; those read zeros, as in the cpu backend's bounds checks).
 */
function windowPadding(info: tf.backend_util.Conv2DInfo): { rows: Pair; cols: Pair } {
  const needRows = (info.outHeight - 1) * info.strideHeight + info.effectiveFilterHeight;
  const needCols = (info.outWidth - 1) * info.strideWidth + info.effectiveFilterWidth;
  const { top, left } = info.padInfo;
  return {
    rows: [top, needRows - top - info.inHeight],
    cols: [left, needCols - left - info.inWidth],
  };
}

/** Every `step`-th row and column from the start, `count` of each. */
function takeEvery(t: tf.Tensor4D, count: Pair, step: Pair): tf.Tensor4D {
  const [n, , , c] = t.shape;
  const end: [number, number, number, number] = [n, (count[0] - 1) * step[0] + 1, (count[1] - 1) * step[1] + 1, c];
  if (step[0] === 1 && step[1] === 1) return end[1] === t.shape[1] && end[2] === t.shape[2] ? t : tf.slice(t, [0, 0, 0, 0], end);
  return tf.stridedSlice(t, [0, 0, 0, 0], end, [1, step[0], step[1], 1]) as tf.Tensor4D;
}

/**
 * Which Conv2DBackpropInput wasm runs: 'forward-conv' (ours, the default) or 'wasm' (wasm's
 * own, as before; for benchmarks comparing the two: bench/compute.ts --conv-compare).
 */
export type WasmConvFormulation = 'forward-conv' | 'wasm';
let formulation: WasmConvFormulation = 'forward-conv';

/** Sets which Conv2DBackpropInput wasm runs (benchmarks); returns the previous setting. */
export function setWasmConvFormulation(next: WasmConvFormulation): WasmConvFormulation {
  const previous = formulation;
  formulation = next;
  return previous;
}

/** wasm's own Conv2DBackpropInput, as found before registerWasmGradientKernels replaced it. */
let wasmConv2DBackpropInput: tf.KernelFunc | undefined;

/** NCHW data as NHWC (and back: `toNchw`). */
const toNhwc = (t: tf.Tensor4D): tf.Tensor4D => tf.transpose(t, [0, 2, 3, 1]);
const toNchw = (t: tf.Tensor4D): tf.Tensor4D => tf.transpose(t, [0, 3, 1, 2]);

/**
 * dfilter[i, j, ci, co] = Σ_{n,y,x} xpad[n, y·sh + i, x·sw + j, ci] · dy[n, y, x, co]: a
 * correlation of each input channel (a batch of one image per channel, the examples as its
 * channels) with dy (the examples as input channels), dilated by the stride. (im2col + matMul
 * was measured against it and lost: worker/conv-gradients.ts.)
 */
function conv2dBackpropFilter({ inputs, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  return tf.tidy(() => {
    let x = asTensor(inputs.x, 'x') as tf.Tensor4D;
    let dy = asTensor(inputs.dy, 'dy') as tf.Tensor4D;
    if (dataFormat === 'NCHW') {
      x = toNhwc(x);
      dy = toNhwc(dy);
    }
    const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
    const [kh, kw, c, f] = info.filterShape;
    const { rows, cols } = windowPadding(info);
    const xp = padOrCrop(x, rows, cols);
    const xt = tf.transpose(xp, [3, 1, 2, 0]); // [c, H, W, n]
    const dyt = tf.transpose(dy, [1, 2, 0, 3]); // [oh, ow, n, f]
    const full = tf.conv2d(xt, dyt, 1, 'valid', 'NHWC', [info.strideHeight, info.strideWidth]); // [c, kh, kw, f]
    const grad = full.shape[1] === kh && full.shape[2] === kw ? full : tf.slice(full, [0, 0, 0, 0], [c, kh, kw, f]);
    return tf.transpose(grad, [1, 2, 0, 3]);
  });
}

/**
 * dx of conv2d: dy spread by the strides, padded for a "full" correlation, correlated with the
 * filter flipped in space and its channel axes swapped, by the forward Conv2D (conv-gradients.ts
 * inputGradByConv). In place of wasm's own, a slow loop (see the file comment), where it is
 * faster (inputGradByConvWins); wasm's own runs the others.
 */
function conv2dBackpropInput(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo | tf.TensorInfo[] {
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const nchw = dataFormat === 'NCHW';
  const channels = inputShape[nchw ? 1 : 3];
  const stridePair: [number, number] = typeof strides === 'number' ? [strides, strides] : strides;
  if ((formulation === 'wasm' || !inputGradByConvWins(stridePair, channels)) && wasmConv2DBackpropInput) return wasmConv2DBackpropInput(args);
  return tf.tidy(() => {
    let dy = asTensor(args.inputs.dy, 'dy') as tf.Tensor4D;
    const filter = asTensor(args.inputs.filter, 'filter') as tf.Tensor4D;
    if (nchw) dy = toNhwc(dy);
    const xShape: [number, number, number, number] = nchw ? [inputShape[0], inputShape[2], inputShape[3], inputShape[1]] : inputShape;
    const info = tf.backend_util.computeConv2DInfo(xShape, filter.shape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
    const dx = inputGradByConv(dy, flippedKernel(filter), xShape, geometryOf(info));
    return nchw ? toNchw(dx) : dx;
  });
}

/**
 * dfilter[i, j, c, m] = Σ_{n,y,x} xpad[n, y·sh + i·dh, x·sw + j·dw, c] · dy[n, y, x, c·M + m]:
 * one depthwise correlation over an image whose channels are the (example, channel) pairs,
 * with dy as the per-channel filter (dilated by the stride), then a sum over the examples.
 */
function depthwiseConv2dNativeBackpropFilter({ inputs, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const { strides, dilations, pad, dimRoundingMode, filterShape } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  return tf.tidy(() => {
    const x = asTensor(inputs.x, 'x') as tf.Tensor4D;
    const dy = asTensor(inputs.dy, 'dy') as tf.Tensor4D;
    const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, dilations, pad, dimRoundingMode, true);
    const [kh, kw, c, m] = info.filterShape;
    const [n, oh, ow] = dy.shape;
    const { rows, cols } = windowPadding(info);
    const xp = padOrCrop(x, rows, cols);
    const [, hp, wp] = xp.shape;
    const image = tf.reshape<tf.Rank.R4>(tf.transpose(xp, [1, 2, 0, 3]), [1, hp, wp, n * c]);
    const filter = tf.reshape<tf.Rank.R4>(tf.transpose(dy, [1, 2, 0, 3]), [oh, ow, n * c, m]);
    const full = tf.depthwiseConv2d(image, filter, 1, 'valid', 'NHWC', [info.strideHeight, info.strideWidth]);
    const taps = takeEvery(full, [kh, kw], [info.dilationHeight, info.dilationWidth]); // [1, kh, kw, n·c·m]
    return tf.reshape(tf.sum(tf.reshape(taps, [kh, kw, n, c * m]), 2), [kh, kw, c, m]);
  });
}

/**
 * dx[n, p, q, c] = Σ dy[n, y, x, c·M + m] · filter[i, j, c, m] over y·sh + i·dh = p + top,
 * x·sw + j·dw = q + left: dy spread by the strides, padded for a "full" correlation, correlated
 * channel by channel with the flipped filter (dilated as in the forward pass), summed over m.
 */
function depthwiseConv2dNativeBackpropInput({ inputs, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  return tf.tidy(() => {
    const dy = asTensor(inputs.dy, 'dy') as tf.Tensor4D;
    const filter = asTensor(inputs.filter, 'filter') as tf.Tensor4D;
    const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape, strides, dilations, pad, dimRoundingMode, true);
    const [n, h, w, c] = inputShape;
    const [kh, kw, , m] = filter.shape;
    const spread = insertStrideZeros(dy, info.strideHeight, info.strideWidth);
    const [, sh, sw] = spread.shape;
    // Padded-input row P takes spread rows P − (kh−1)·dh … P; the rows wanted are top … top + h − 1.
    const before: Pair = [info.effectiveFilterHeight - 1 - info.padInfo.top, info.effectiveFilterWidth - 1 - info.padInfo.left];
    const rows: Pair = [before[0], h + info.effectiveFilterHeight - 1 - sh - before[0]];
    const cols: Pair = [before[1], w + info.effectiveFilterWidth - 1 - sw - before[1]];
    const padded = padOrCrop(spread, rows, cols);
    const flipped = tf.reshape<tf.Rank.R4>(tf.reverse(filter, [0, 1]), [kh, kw, c * m, 1]);
    const dx = tf.depthwiseConv2d(padded, flipped, 1, 'valid', 'NHWC', [info.dilationHeight, info.dilationWidth]); // [n, h, w, c·m]
    return m === 1 ? dx : tf.sum(tf.reshape(dx, [n, h, w, c, m]), 4);
  });
}

/**
 * out[s, ...] = Σ_{i : ids[i] = s} x[i, ...], ids out of [0, numSegments) dropped (as on cpu).
 * The segment ids' shape is a prefix of x's; summed in double precision, rounded once.
 */
function unsortedSegmentSum({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const { numSegments } = attrs as unknown as tf.UnsortedSegmentSumAttrs;
  const { x, segmentIds } = inputs;
  if (x === undefined || segmentIds === undefined) throw new Error('UnsortedSegmentSum needs x and segmentIds');
  const values = (backend as tf.KernelBackend).readSync(x.dataId) as tf.TypedArray;
  const ids = (backend as tf.KernelBackend).readSync(segmentIds.dataId) as tf.TypedArray;
  const inner = tf.util.sizeFromShape(x.shape.slice(segmentIds.shape.length));
  const sums = new Float64Array(numSegments * inner);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i]!;
    if (!(s >= 0 && s < numSegments)) continue;
    const from = i * inner;
    const to = s * inner;
    for (let j = 0; j < inner; j++) sums[to + j]! += values[from + j]!;
  }
  const shape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  return x.dtype === 'int32' ? tf.tensor(Int32Array.from(sums), shape, 'int32') : tf.tensor(Float32Array.from(sums), shape, 'float32');
}

const KERNELS: Record<WasmGradientKernelName, tf.KernelFunc> = {
  Conv2DBackpropFilter: conv2dBackpropFilter,
  DepthwiseConv2dNativeBackpropFilter: depthwiseConv2dNativeBackpropFilter,
  DepthwiseConv2dNativeBackpropInput: depthwiseConv2dNativeBackpropInput,
  UnsortedSegmentSum: unsortedSegmentSum,
};

/**
 * Registers, for the 'wasm' backend only, each kernel of WASM_GRADIENT_KERNEL_NAMES that wasm
 * does not have yet (a kernel a later wasm brings is kept), and puts the exact kernel of each
 * of WASM_KERNEL_OVERRIDES in place of wasm's. Idempotent: a second call registers nothing.
 * Returns the names it registered.
 */
export function registerWasmGradientKernels(): string[] {
  const registered: string[] = [];
  for (const kernelName of WASM_GRADIENT_KERNEL_NAMES) {
    if (tf.getKernel(kernelName, 'wasm') !== undefined) continue;
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: KERNELS[kernelName] });
    registered.push(kernelName);
  }
  if (overrideKernel('MaxPoolGrad', 'wasm', maxPoolGradOnHost)) registered.push('MaxPoolGrad');
  const own = tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc;
  if (own !== undefined && own !== conv2dBackpropInput) wasmConv2DBackpropInput = own;
  if (overrideKernel('Conv2DBackpropInput', 'wasm', conv2dBackpropInput)) registered.push('Conv2DBackpropInput');
  return registered;
}
