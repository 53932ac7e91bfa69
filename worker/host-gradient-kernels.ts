// Exact replacements, as loops over host memory, for two tfjs 4.22 gradient kernels that give
// wrong results, and the registration that puts them in place of a backend's own:
//
// - MaxPoolGrad (MaxPooling1D/2D): wasm's drops the gradient of every window whose maximum
//   is ≤ 0 (it lands on the window's first position or nowhere). Replaced on wasm
//   (worker/wasm-gradient-kernels.ts). The semantics are the cpu backend's: each window's
//   gradient goes to the FIRST maximum of the window in row-major order (strict >, so a
//   NaN or a window of −∞ takes none), padding never wins, and where windows overlap an
//   input's gradient is the sum, in double precision in window order, rounded once: bitwise
//   what cpu computes.
// - ResizeNearestNeighborGrad (UpSampling2D, nearest): cpu's reads dy at the images' batch
//   offset instead of dy's, so every example after the first gets a wrong gradient. Replaced
//   on cpu (registerCpuGradientKernels). This one is the exact adjoint of cpu's forward
//   ResizeNearestNeighbor (alignCorners and halfPixelCenters as it maps them), summed the
//   same way; for the first example it is bitwise cpu's own.
//
// Both read their inputs with readSync (wasm and cpu tensors live in host memory) and work on
// NHWC data, as the kernels they replace.
import * as tf from '@tensorflow/tfjs';

type KernelArgs = Parameters<tf.KernelFunc>[0];

function hostValues(args: KernelArgs, name: string): { info: tf.TensorInfo; values: tf.TypedArray } {
  const info = args.inputs[name];
  if (info === undefined) throw new Error(`missing kernel input '${name}'`);
  return { info, values: (args.backend as tf.KernelBackend).readSync(info.dataId) as tf.TypedArray };
}

/** dx of max pooling: dy of each window added to the window's first maximum (see the file comment). */
export function maxPoolGradOnHost(args: KernelArgs): tf.TensorInfo {
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as tf.MaxPoolGradAttrs;
  const { info: input, values: x } = hostValues(args, 'input');
  const { values: dy } = hostValues(args, 'dy');
  if (input.shape.length !== 4) throw new Error(`MaxPoolGrad: input of rank ${input.shape.length}, expected 4 (NHWC)`);
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth, strideHeight, strideWidth } = info;
  if (dy.length !== batchSize * outHeight * outWidth * channels) throw new Error(`MaxPoolGrad: dy has ${dy.length} values, the pooling gives ${batchSize}×${outHeight}×${outWidth}×${channels}`);
  const { top, left } = info.padInfo;
  const sums = new Float64Array(x.length);
  const rowStride = inWidth * channels;
  let out = 0;
  for (let b = 0; b < batchSize; b++) {
    const image = b * inHeight * rowStride;
    for (let yr = 0; yr < outHeight; yr++) {
      const r0 = yr * strideHeight - top;
      const rFrom = Math.max(r0, 0);
      const rTo = Math.min(inHeight, r0 + info.effectiveFilterHeight);
      for (let yc = 0; yc < outWidth; yc++) {
        const c0 = yc * strideWidth - left;
        const cFrom = Math.max(c0, 0);
        const cTo = Math.min(inWidth, c0 + info.effectiveFilterWidth);
        for (let d = 0; d < channels; d++, out++) {
          let best = -1;
          let bestValue = Number.NEGATIVE_INFINITY;
          for (let r = rFrom; r < rTo; r++) {
            for (let c = cFrom; c < cTo; c++) {
              const at = image + r * rowStride + c * channels + d;
              if (x[at]! > bestValue) {
                bestValue = x[at]!;
                best = at;
              }
            }
          }
          if (best >= 0) sums[best]! += dy[out]!;
        }
      }
    }
  }
  return tf.tensor(Float32Array.from(sums), input.shape, 'float32');
}

/** The source index of output position `i` along one axis, as cpu's forward ResizeNearestNeighbor computes it. */
function nearestSource(i: number, ratio: number, inSize: number, alignCorners: boolean, halfPixelCenters: boolean): number {
  const frac = halfPixelCenters ? ratio * (i + 0.5) : ratio * i;
  const nearest = Math.min(inSize - 1, alignCorners ? Math.round(frac) : Math.floor(frac));
  return halfPixelCenters ? Math.max(0, nearest) : nearest;
}

/** dimages of nearest-neighbour resizing: each dy value added to the pixel the forward pass copied it from. */
export function resizeNearestNeighborGradOnHost(args: KernelArgs): tf.TensorInfo {
  const { alignCorners, halfPixelCenters } = args.attrs as unknown as tf.ResizeNearestNeighborGradAttrs;
  const { info: images } = hostValues(args, 'images');
  const { info: dyInfo, values: dy } = hostValues(args, 'dy');
  const [batch, inHeight, inWidth, depth] = images.shape as [number, number, number, number];
  const [dyBatch, outHeight, outWidth, dyDepth] = dyInfo.shape as [number, number, number, number];
  if (dyBatch !== batch || dyDepth !== depth) throw new Error(`ResizeNearestNeighborGrad: dy [${dyInfo.shape.join(', ')}] does not match images [${images.shape.join(', ')}]`);
  // Absent when the kernel is run directly (the gradient passes the forward's attrs).
  const half = halfPixelCenters === true;
  // The forward pass's ratios: with alignCorners the corners' pixels map onto each other.
  const ratio = (inSize: number, outSize: number) => (alignCorners && outSize > 1 ? (inSize - 1) / (outSize - 1) : inSize / outSize);
  const rows = Int32Array.from({ length: outHeight }, (_, r) => nearestSource(r, ratio(inHeight, outHeight), inHeight, alignCorners, half));
  const cols = Int32Array.from({ length: outWidth }, (_, c) => nearestSource(c, ratio(inWidth, outWidth), inWidth, alignCorners, half));
  const sums = new Float64Array(batch * inHeight * inWidth * depth);
  let at = 0;
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < outHeight; r++) {
      const row = (b * inHeight + rows[r]!) * inWidth;
      for (let c = 0; c < outWidth; c++) {
        const to = (row + cols[c]!) * depth;
        for (let d = 0; d < depth; d++) sums[to + d]! += dy[at++]!;
      }
    }
  }
  return tf.tensor(Float32Array.from(sums), images.shape, 'float32');
}

/**
 * Registers `kernelFunc` as `kernelName` on `backendName`, in place of the kernel there (tfjs
 * refuses to register over one, so it is unregistered first). Idempotent: false, and nothing
 * done, when that kernel is already `kernelFunc`.
 */
export function overrideKernel(kernelName: string, backendName: string, kernelFunc: tf.KernelFunc): boolean {
  const current = tf.getKernel(kernelName, backendName);
  if (current?.kernelFunc === kernelFunc) return false;
  if (current !== undefined) tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({ kernelName, backendName, kernelFunc });
  return true;
}

/** The cpu kernels replaced by registerCpuGradientKernels. */
export const CPU_KERNEL_OVERRIDES = ['ResizeNearestNeighborGrad'] as const;

/** Puts the exact kernels in place of cpu's wrong ones (see the file comment). Idempotent; returns the names it registered. */
export function registerCpuGradientKernels(): string[] {
  return overrideKernel('ResizeNearestNeighborGrad', 'cpu', resizeNearestNeighborGradOnHost) ? ['ResizeNearestNeighborGrad'] : [];
}
