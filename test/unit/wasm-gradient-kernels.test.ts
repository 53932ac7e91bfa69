// The gradient kernels worker/wasm-gradient-kernels.ts adds to wasm, each against the cpu
// backend's own kernel on the same random inputs (‖wasm − cpu‖ / ‖cpu‖ ≤ 1e-5), over the
// strides, paddings and channel multipliers the layers use. cpu's depthwise kernels ignore
// dilations, so a dilated case is checked against cpu's undilated kernel on the equivalent
// filter (zeros between the taps). The kernels worker/host-gradient-kernels.ts puts in place
// of wrong ones: MaxPoolGrad on wasm bit for bit against cpu's (signed, all-negative and tied
// inputs) and against hand-worked windows; ResizeNearestNeighborGrad on cpu against the adjoint
// of cpu's own forward pass, read off by resizing an image of indices. The selected backend is
// process-global: every test leaves the process on wasm, the file ends on cpu.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Rng } from '../../common/random.js';
import { selectBackend } from '../../worker/backend.js';
import { opsModeFor } from '../../worker/layer-ops.js';
import { maxPoolGradOnHost, registerCpuGradientKernels, resizeNearestNeighborGradOnHost } from '../../worker/host-gradient-kernels.js';
import { registerWasmGradientKernels, setWasmConvFormulation, WASM_GRADIENT_KERNEL_NAMES, WASM_KERNEL_OVERRIDES } from '../../worker/wasm-gradient-kernels.js';
import { relativeError } from '../helpers/numeric.js';

type Shape4 = [number, number, number, number];
type Pad = 'valid' | 'same' | number;

interface Input {
  values: Float32Array | Int32Array;
  shape: number[];
  dtype: 'float32' | 'int32';
}

const TOLERANCE = 1e-5;

function normal(shape: number[], seed: number): Input {
  const rng = new Rng(seed);
  const values = Float32Array.from({ length: tf.util.sizeFromShape(shape) }, () => rng.normal());
  return { values, shape, dtype: 'float32' };
}

/** Runs one kernel on a backend from host data; returns its output's values and shape, leaving no tensor behind. */
async function runOn(backend: 'cpu' | 'wasm', kernel: string, inputs: Record<string, Input>, attrs: object): Promise<{ values: Float32Array | Int32Array; shape: number[]; dtype: string }> {
  assert.ok(await tf.setBackend(backend));
  const before = tf.memory().numTensors;
  const tensors = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.values, v.shape, v.dtype)]));
  const out = tf.engine().runKernel<tf.Tensor>(kernel, tensors, attrs as tf.NamedAttrMap);
  const result = { values: out.dataSync() as Float32Array | Int32Array, shape: out.shape, dtype: out.dtype };
  out.dispose();
  Object.values(tensors).forEach((t) => t.dispose());
  assert.equal(tf.memory().numTensors, before, `${kernel} on ${backend} leaks tensors`);
  return result;
}

async function compare(kernel: string, inputs: Record<string, Input>, attrs: object, reference?: { values: Float32Array | Int32Array; shape: number[] }): Promise<void> {
  const want = reference ?? (await runOn('cpu', kernel, inputs, attrs));
  const got = await runOn('wasm', kernel, inputs, attrs);
  const where = `${kernel} ${JSON.stringify(attrs)}`;
  assert.deepEqual(got.shape, want.shape, where);
  assert.ok(want.values.some((v) => v !== 0), `${where}: the reference is all zeros`);
  const err = relativeError(got.values, want.values);
  assert.ok(err <= TOLERANCE, `${where}: relative error ${err}`);
  if (process.env.MTL_PRINT_ERRORS) console.log(`${where}: ${err.toExponential(2)}`);
}

/** The forward output shape of a convolution (to size dy). */
function outShape(xShape: Shape4, filterShape: Shape4, strides: number | [number, number], pad: Pad, depthwise: boolean, dilations: number | [number, number] = 1, dimRoundingMode?: 'floor' | 'round' | 'ceil'): Shape4 {
  return tf.backend_util.computeConv2DInfo(xShape, filterShape, strides, dilations, pad, dimRoundingMode, depthwise).outShape;
}

/** A [kh, kw, c, m] filter with (d − 1) zeros between its taps: the undilated equivalent of dilation d. */
function dilateFilter(filter: Input, [dh, dw]: [number, number]): Input {
  const [kh, kw, c, m] = filter.shape as Shape4;
  const [eh, ew] = [(kh - 1) * dh + 1, (kw - 1) * dw + 1];
  const values = new Float32Array(eh * ew * c * m);
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) for (let k = 0; k < c * m; k++) values[((i * dh) * ew + j * dw) * c * m + k] = filter.values[(i * kw + j) * c * m + k]!;
  return { values, shape: [eh, ew, c, m], dtype: 'float32' };
}

/** The taps at multiples of the dilation of an undilated [eh, ew, c, m] filter gradient. */
function takeTaps(grad: { values: Float32Array | Int32Array; shape: number[] }, [kh, kw]: [number, number], [dh, dw]: [number, number]): { values: Float32Array; shape: number[] } {
  const [, ew, c, m] = grad.shape as Shape4;
  const values = new Float32Array(kh * kw * c * m);
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) for (let k = 0; k < c * m; k++) values[(i * kw + j) * c * m + k] = grad.values[((i * dh) * ew + j * dw) * c * m + k]!;
  return { values, shape: [kh, kw, c, m] };
}

void describe('wasm gradient kernels', () => {
  before(async () => {
    tf.enableProdMode();
    await selectBackend('cpu');
    await selectBackend('wasm');
  });
  after(async () => {
    await selectBackend('cpu');
  });

  void it('selectBackend registered the four missing kernels and the three replacements; registering again adds none, and the fast path still picks its own conv gradient', () => {
    for (const name of WASM_GRADIENT_KERNEL_NAMES) assert.ok(tf.getKernel(name, 'wasm') !== undefined, name);
    assert.deepEqual([...WASM_KERNEL_OVERRIDES], ['MaxPoolGrad', 'Conv2DBackpropInput']);
    assert.equal(tf.getKernel('MaxPoolGrad', 'wasm')?.kernelFunc, maxPoolGradOnHost);
    assert.equal(tf.getKernel('ResizeNearestNeighborGrad', 'cpu')?.kernelFunc, resizeNearestNeighborGradOnHost);
    assert.deepEqual(registerWasmGradientKernels(), []);
    assert.deepEqual(registerCpuGradientKernels(), []);
    // Taken away, they come back, and a second call is a no-op again.
    for (const name of [...WASM_GRADIENT_KERNEL_NAMES, ...WASM_KERNEL_OVERRIDES]) tf.unregisterKernel(name, 'wasm');
    assert.deepEqual(registerWasmGradientKernels(), [...WASM_GRADIENT_KERNEL_NAMES, ...WASM_KERNEL_OVERRIDES]);
    assert.deepEqual(registerWasmGradientKernels(), []);
    // A kernel in MaxPoolGrad's place (as wasm's own is at start) is replaced, once.
    const stand = () => {
      throw new Error('not the registered MaxPoolGrad');
    };
    tf.unregisterKernel('MaxPoolGrad', 'wasm');
    tf.registerKernel({ kernelName: 'MaxPoolGrad', backendName: 'wasm', kernelFunc: stand });
    assert.deepEqual(registerWasmGradientKernels(), ['MaxPoolGrad']);
    assert.equal(tf.getKernel('MaxPoolGrad', 'wasm')?.kernelFunc, maxPoolGradOnHost);
    // A missing kernel wasm has is never replaced; cpu keeps its own MaxPoolGrad and Conv2DBackpropFilter.
    assert.equal(tf.getKernel('Conv2DBackpropFilter', 'cpu')?.backendName, 'cpu');
    assert.notEqual(tf.getKernel('MaxPoolGrad', 'cpu')?.kernelFunc, maxPoolGradOnHost);
    assert.equal(opsModeFor('wasm').im2colFilterGrad, true);
    assert.equal(opsModeFor('cpu').im2colFilterGrad, false);
  });

  void it('Conv2DBackpropFilter equals cpu (strides 1, 2, [2, 3]; valid, same, explicit; ceil rounding; NCHW)', async () => {
    const cases: Array<{ x: Shape4; k: [number, number]; f: number; strides: number | [number, number]; pad: Pad; dimRoundingMode?: 'ceil'; nchw?: boolean }> = [
      { x: [3, 9, 9, 2], k: [3, 3], f: 4, strides: 1, pad: 'valid' },
      { x: [3, 9, 8, 2], k: [3, 3], f: 4, strides: 1, pad: 'same' },
      { x: [3, 9, 9, 3], k: [3, 3], f: 5, strides: 2, pad: 'same' },
      { x: [3, 10, 10, 3], k: [3, 3], f: 5, strides: 2, pad: 'same' },
      { x: [3, 10, 9, 2], k: [3, 3], f: 4, strides: 2, pad: 'valid' },
      { x: [2, 11, 10, 2], k: [2, 4], f: 3, strides: [2, 3], pad: 'same' },
      { x: [2, 9, 9, 2], k: [1, 1], f: 6, strides: 1, pad: 'valid' }, // SeparableConv2D's pointwise step
      { x: [3, 1, 12, 2], k: [1, 3], f: 4, strides: 1, pad: 'same' }, // Conv1D as a conv2d of height 1
      { x: [2, 8, 8, 2], k: [3, 3], f: 3, strides: 2, pad: 1, dimRoundingMode: 'ceil' },
      { x: [2, 7, 7, 3], k: [3, 3], f: 2, strides: 1, pad: 2 },
      { x: [2, 3, 8, 8], k: [3, 3], f: 4, strides: 2, pad: 'same', nchw: true },
    ];
    let seed = 1;
    for (const c of cases) {
      const filterShape: Shape4 = [c.k[0], c.k[1], c.nchw ? c.x[1] : c.x[3], c.f];
      const nhwc: Shape4 = c.nchw ? [c.x[0], c.x[2], c.x[3], c.x[1]] : c.x;
      const [n, oh, ow, f] = outShape(nhwc, filterShape, c.strides, c.pad, false, 1, c.dimRoundingMode);
      const dyShape = c.nchw ? [n, f, oh, ow] : [n, oh, ow, f];
      const attrs = { strides: c.strides, pad: c.pad, dataFormat: c.nchw ? 'NCHW' : 'NHWC', dimRoundingMode: c.dimRoundingMode, filterShape };
      await compare('Conv2DBackpropFilter', { x: normal(c.x, seed++), dy: normal(dyShape, seed++) }, attrs);
    }
  });

  const inputGradCases: Array<{ x: Shape4; k: [number, number]; f: number; strides: number | [number, number]; pad: Pad; dimRoundingMode?: 'ceil'; nchw?: boolean }> = [
    { x: [3, 9, 9, 2], k: [3, 3], f: 4, strides: 1, pad: 'valid' },
    { x: [1, 9, 8, 2], k: [3, 3], f: 4, strides: 1, pad: 'same' },
    { x: [4, 12, 12, 16], k: [5, 5], f: 8, strides: 1, pad: 'valid' },
    { x: [1, 10, 10, 3], k: [5, 5], f: 2, strides: 1, pad: 'same' },
    { x: [3, 9, 9, 3], k: [3, 3], f: 5, strides: 2, pad: 'same' },
    { x: [1, 10, 10, 3], k: [3, 3], f: 5, strides: 2, pad: 'same' },
    { x: [3, 10, 9, 2], k: [3, 3], f: 4, strides: 2, pad: 'valid' },
    { x: [2, 11, 10, 2], k: [2, 4], f: 3, strides: [2, 3], pad: 'same' },
    { x: [2, 9, 9, 2], k: [1, 1], f: 6, strides: 1, pad: 'valid' },
    { x: [3, 1, 12, 2], k: [1, 3], f: 4, strides: 1, pad: 'same' },
    { x: [2, 8, 8, 2], k: [3, 3], f: 3, strides: 2, pad: 1, dimRoundingMode: 'ceil' },
    { x: [2, 7, 7, 3], k: [3, 3], f: 2, strides: 1, pad: 2 },
    { x: [2, 3, 8, 8], k: [3, 3], f: 4, strides: 2, pad: 'same', nchw: true },
    { x: [1, 4, 7, 7], k: [3, 3], f: 2, strides: 1, pad: 'valid', nchw: true },
    // Strided with ≥ 8 input channels: ours (fewer keep wasm's own, conv-gradients.ts inputGradByConvWins).
    { x: [2, 9, 9, 8], k: [3, 3], f: 3, strides: 2, pad: 'same' },
    { x: [1, 10, 10, 8], k: [3, 3], f: 4, strides: 2, pad: 'valid' },
    { x: [2, 11, 10, 9], k: [2, 4], f: 3, strides: [2, 3], pad: 'same' },
    { x: [2, 8, 8, 8], k: [3, 3], f: 3, strides: 2, pad: 1, dimRoundingMode: 'ceil' },
    { x: [2, 8, 9, 9], k: [3, 3], f: 4, strides: 2, pad: 'same', nchw: true },
  ];

  /** Runs Conv2DBackpropInput over inputGradCases on wasm and cpu. */
  async function compareInputGrads(): Promise<void> {
    let seed = 60;
    for (const c of inputGradCases) {
      const filterShape: Shape4 = [c.k[0], c.k[1], c.nchw ? c.x[1] : c.x[3], c.f];
      const nhwc: Shape4 = c.nchw ? [c.x[0], c.x[2], c.x[3], c.x[1]] : c.x;
      const [n, oh, ow, f] = outShape(nhwc, filterShape, c.strides, c.pad, false, 1, c.dimRoundingMode);
      const dyShape = c.nchw ? [n, f, oh, ow] : [n, oh, ow, f];
      const attrs = { strides: c.strides, pad: c.pad, dataFormat: c.nchw ? 'NCHW' : 'NHWC', dimRoundingMode: c.dimRoundingMode, inputShape: c.x };
      await compare('Conv2DBackpropInput', { dy: normal(dyShape, seed++), filter: normal(filterShape, seed++) }, attrs);
    }
  }

  void it('Conv2DBackpropInput (replaced on wasm) equals cpu (strides 1, 2, [2, 3]; valid, same, explicit; ceil rounding; NCHW; kernels 1×1 to 5×5; 1 to 16 channels; batch 1 and more)', async () => {
    await compareInputGrads();
  });

  void it("with setWasmConvFormulation('wasm') (the benchmarks' baseline: wasm's own Conv2DBackpropInput) the kernel agrees with cpu too", async () => {
    // wasm's loop happens to add in the order XNNPACK's GEMM does (the bits agree with ours), so
    // the switch shows in time only: bench/compute.ts --conv-compare, bench/conv-grads.ts.
    const previous = setWasmConvFormulation('wasm');
    try {
      await compareInputGrads();
    } finally {
      assert.equal(setWasmConvFormulation(previous), 'wasm');
    }
    assert.equal(previous, 'forward-conv');
  });

  void it('Conv2DBackpropFilter stays within 1e-5 of a double-precision sum at a training batch size (64 × 28 × 28 × 1 → 32)', async () => {
    // Each entry is a sum of 64·26·26 = 43264 products, which wasm adds in float32. The
    // reference is the definition, summed in double precision (cpu's kernel takes 14 s here).
    const [n, h, w, f, k] = [64, 28, 28, 32, 3];
    const [oh, ow] = [h - k + 1, w - k + 1];
    const x = normal([n, h, w, 1], 40);
    const dy = normal([n, oh, ow, f], 41);
    const want = new Float32Array(k * k * f);
    const sums = new Float64Array(f);
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        sums.fill(0);
        for (let b = 0; b < n; b++) {
          for (let y = 0; y < oh; y++) {
            for (let z = 0; z < ow; z++) {
              const xv = x.values[(b * h + y + i) * w + z + j]!;
              const at = ((b * oh + y) * ow + z) * f;
              for (let o = 0; o < f; o++) sums[o]! += xv * dy.values[at + o]!;
            }
          }
        }
        want.set(sums, (i * k + j) * f);
      }
    }
    await compare('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'valid', dataFormat: 'NHWC', filterShape: [k, k, 1, f] }, { values: want, shape: [k, k, 1, f] });
  });

  const depthwiseCases: Array<{ x: Shape4; k: [number, number]; m: number; strides: number | [number, number]; pad: Pad }> = [
    { x: [3, 8, 8, 2], k: [3, 3], m: 1, strides: 1, pad: 'valid' },
    { x: [3, 8, 7, 2], k: [3, 3], m: 2, strides: 1, pad: 'same' },
    { x: [3, 9, 9, 3], k: [3, 3], m: 1, strides: 2, pad: 'same' },
    { x: [3, 10, 10, 2], k: [3, 3], m: 3, strides: 2, pad: 'same' },
    { x: [3, 10, 9, 2], k: [3, 3], m: 2, strides: 2, pad: 'valid' },
    { x: [2, 11, 10, 2], k: [2, 4], m: 2, strides: [2, 3], pad: 'same' },
    { x: [2, 7, 7, 3], k: [3, 3], m: 1, strides: 1, pad: 1 },
  ];

  void it('DepthwiseConv2dNativeBackpropFilter equals cpu (strides 1, 2, [2, 3]; valid, same, explicit; multipliers 1–3)', async () => {
    let seed = 100;
    for (const c of depthwiseCases) {
      const filterShape: Shape4 = [c.k[0], c.k[1], c.x[3], c.m];
      const attrs = { strides: c.strides, dilations: 1, pad: c.pad, filterShape };
      await compare('DepthwiseConv2dNativeBackpropFilter', { x: normal(c.x, seed++), dy: normal(outShape(c.x, filterShape, c.strides, c.pad, true), seed++) }, attrs);
    }
  });

  void it('DepthwiseConv2dNativeBackpropInput equals cpu (the same cases)', async () => {
    let seed = 200;
    for (const c of depthwiseCases) {
      const filterShape: Shape4 = [c.k[0], c.k[1], c.x[3], c.m];
      const attrs = { strides: c.strides, dilations: 1, pad: c.pad, inputShape: c.x };
      await compare('DepthwiseConv2dNativeBackpropInput', { dy: normal(outShape(c.x, filterShape, c.strides, c.pad, true), seed++), filter: normal(filterShape, seed++) }, attrs);
    }
  });

  void it('the depthwise kernels honour dilations: they equal cpu on the undilated equivalent filter', async () => {
    const cases: Array<{ x: Shape4; k: [number, number]; m: number; dilations: [number, number]; pad: Pad }> = [
      { x: [2, 9, 9, 2], k: [3, 3], m: 2, dilations: [2, 2], pad: 'valid' },
      { x: [2, 9, 8, 2], k: [3, 2], m: 1, dilations: [2, 3], pad: 'same' },
    ];
    let seed = 300;
    for (const c of cases) {
      const filter = normal([c.k[0], c.k[1], c.x[3], c.m], seed++);
      const wide = dilateFilter(filter, c.dilations);
      const dy = normal(outShape(c.x, filter.shape as Shape4, 1, c.pad, true, c.dilations), seed++);
      const x = normal(c.x, seed++);
      const wideAttrs = { strides: 1, dilations: 1, pad: c.pad };
      // 'same' pads by the effective (dilated) filter size on both sides of the equivalence.
      const wideFilterGrad = await runOn('cpu', 'DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...wideAttrs, filterShape: wide.shape });
      await compare('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { strides: 1, dilations: c.dilations, pad: c.pad, filterShape: filter.shape }, takeTaps(wideFilterGrad, c.k, c.dilations));
      const wideInputGrad = await runOn('cpu', 'DepthwiseConv2dNativeBackpropInput', { dy, filter: wide }, { ...wideAttrs, inputShape: c.x });
      await compare('DepthwiseConv2dNativeBackpropInput', { dy, filter }, { strides: 1, dilations: c.dilations, pad: c.pad, inputShape: c.x }, wideInputGrad);
    }
  });

  void it('UnsortedSegmentSum equals cpu (repeated ids, unused segments, ids out of range, rank-3 data, int32 data)', async () => {
    const rng = new Rng(400);
    const ids = (count: number, numSegments: number) => Int32Array.from({ length: count }, () => rng.int(numSegments));
    // Embedding's gradient: one row per id, 7 of 9 segments used at most.
    await compare('UnsortedSegmentSum', { x: normal([40, 5], 401), segmentIds: { values: ids(40, 7), shape: [40], dtype: 'int32' } }, { numSegments: 9 });
    // Ids −1 and numSegments are dropped, as on cpu.
    const outOfRange = ids(12, 4);
    outOfRange[0] = -1;
    outOfRange[5] = 4;
    await compare('UnsortedSegmentSum', { x: normal([12, 3], 402), segmentIds: { values: outOfRange, shape: [12], dtype: 'int32' } }, { numSegments: 4 });
    // Rows that are matrices.
    await compare('UnsortedSegmentSum', { x: normal([6, 4, 2], 403), segmentIds: { values: ids(6, 5), shape: [6], dtype: 'int32' } }, { numSegments: 5 });
    // int32 data sums exactly and stays int32 on wasm.
    const ints: Input = { values: Int32Array.from({ length: 30 }, () => rng.int(1000) - 500), shape: [10, 3], dtype: 'int32' };
    const segmentIds: Input = { values: ids(10, 3), shape: [10], dtype: 'int32' };
    const want = await runOn('cpu', 'UnsortedSegmentSum', { x: ints, segmentIds }, { numSegments: 3 });
    const got = await runOn('wasm', 'UnsortedSegmentSum', { x: ints, segmentIds }, { numSegments: 3 });
    assert.equal(got.dtype, 'int32');
    assert.deepEqual(Array.from(got.values), Array.from(want.values));
  });

  /** MaxPoolGrad's inputs for x (the forward output computed on cpu) and a random dy. */
  async function maxPoolInputs(x: Input, filterSize: number | [number, number], strides: number | [number, number], pad: Pad, seed: number, dimRoundingMode?: 'ceil'): Promise<Record<string, Input>> {
    const forward = await runOn('cpu', 'MaxPool', { x }, { filterSize, strides, pad, dimRoundingMode });
    return { dy: normal(forward.shape, seed), input: x, output: { values: forward.values, shape: forward.shape, dtype: 'float32' } };
  }

  void it('MaxPoolGrad (replaced on wasm) equals cpu bit for bit: signed, all-negative and tied inputs; tiling, overlapping, same, explicit and ceil-rounded windows; 1D pooling', async () => {
    const cases: Array<{ x: Shape4; filter: number | [number, number]; strides: number | [number, number]; pad: Pad; dimRoundingMode?: 'ceil' }> = [
      { x: [3, 7, 9, 2], filter: 2, strides: 2, pad: 'valid' },
      { x: [3, 7, 9, 2], filter: 3, strides: 2, pad: 'same' },
      { x: [2, 6, 5, 3], filter: [3, 2], strides: [1, 2], pad: 'same' },
      { x: [2, 6, 6, 2], filter: 2, strides: 1, pad: 'valid' },
      { x: [2, 8, 8, 2], filter: 3, strides: 2, pad: 1, dimRoundingMode: 'ceil' },
      { x: [3, 9, 1, 4], filter: [3, 1], strides: [2, 1], pad: 'same' }, // MaxPooling1D: a pool of width 1
    ];
    let seed = 600;
    for (const c of cases) {
      const size = tf.util.sizeFromShape(c.x);
      const rng = new Rng(seed++);
      const inputs: Array<[string, Float32Array]> = [
        ['signed', normal(c.x, seed++).values as Float32Array],
        ['all negative', Float32Array.from({ length: size }, () => -Math.abs(rng.normal()) - 0.1)],
        ['ties', Float32Array.from({ length: size }, () => 0.5 * (rng.int(3) - 1))],
      ];
      for (const [kind, values] of inputs) {
        const kernelInputs = await maxPoolInputs({ values, shape: c.x, dtype: 'float32' }, c.filter, c.strides, c.pad, seed++, c.dimRoundingMode);
        const attrs = { filterSize: c.filter, strides: c.strides, pad: c.pad, dimRoundingMode: c.dimRoundingMode };
        const want = await runOn('cpu', 'MaxPoolGrad', kernelInputs, attrs);
        const got = await runOn('wasm', 'MaxPoolGrad', kernelInputs, attrs);
        assert.ok(want.values.some((v) => v !== 0), `${kind} ${JSON.stringify(c)}: the reference is all zeros`);
        assert.deepEqual(got, want, `MaxPoolGrad ${kind} ${JSON.stringify(c)}`);
      }
    }
  });

  void it('MaxPoolGrad on wasm sends each window to its first maximum in row-major order, worked by hand', async () => {
    const grad = async (x: number[], shape: Shape4, filter: number, strides: number, pad: Pad, dy: number[]) => {
      const inputs = await maxPoolInputs({ values: Float32Array.from(x), shape, dtype: 'float32' }, filter, strides, pad, 0);
      inputs.dy = { values: Float32Array.from(dy), shape: inputs.dy!.shape, dtype: 'float32' };
      return Array.from((await runOn('wasm', 'MaxPoolGrad', inputs, { filterSize: filter, strides, pad })).values);
    };
    // One window, maximum −1 twice: the first (row 0, column 1) takes it.
    assert.deepEqual(await grad([-3, -1, -1, -2], [1, 2, 2, 1], 2, 2, 'valid', [5]), [0, 5, 0, 0]);
    // Four tiling windows of equal values: each window's top-left corner.
    assert.deepEqual(await grad(new Array<number>(16).fill(1), [1, 4, 4, 1], 2, 2, 'valid', [1, 2, 3, 4]), [1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0]);
    // Overlapping windows (stride 1) over zeros: window (i, j) starts at (i, j), so each corner takes one.
    assert.deepEqual(await grad(new Array<number>(9).fill(0), [1, 3, 3, 1], 2, 1, 'valid', [1, 2, 3, 4]), [1, 2, 0, 3, 4, 0, 0, 0, 0]);
    // Overlapping windows sharing their maximum add up; 'same' padding never wins over a negative value.
    assert.deepEqual(await grad([-5, -4, -6, -1, -7, -8, -9, -3, -2], [1, 3, 3, 1], 2, 1, 'same', [1, 2, 4, 8, 16, 32, 64, 128, 256]), [0, 2, 4, 1 + 8, 0, 0, 0, 64, 16 + 32 + 128 + 256]);
    // Two channels pick independently.
    assert.deepEqual(await grad([1, -1, 2, -2, 2, -1, 0, -3], [1, 2, 2, 2], 2, 2, 'valid', [7, 9]), [0, 9, 7, 0, 0, 0, 0, 0]);
  });

  void it('ResizeNearestNeighborGrad (replaced on cpu) is the adjoint of the forward resize, for every example of a batch; wasm agrees', async () => {
    const cases: Array<{ images: Shape4; size: [number, number]; alignCorners: boolean; halfPixelCenters: boolean; wasm: boolean }> = [
      { images: [3, 3, 2, 2], size: [6, 6], alignCorners: false, halfPixelCenters: false, wasm: true }, // UpSampling2D size [2, 3]
      { images: [2, 4, 4, 3], size: [8, 8], alignCorners: false, halfPixelCenters: false, wasm: true },
      { images: [2, 3, 5, 2], size: [7, 4], alignCorners: false, halfPixelCenters: false, wasm: true },
      { images: [2, 3, 5, 2], size: [7, 4], alignCorners: true, halfPixelCenters: false, wasm: false },
      { images: [2, 3, 5, 2], size: [7, 4], alignCorners: false, halfPixelCenters: true, wasm: false },
    ];
    let seed = 700;
    for (const c of cases) {
      // Resizing an image whose values are their own flat indices tells where each output came from.
      const count = tf.util.sizeFromShape(c.images);
      const index: Input = { values: Float32Array.from({ length: count }, (_, i) => i), shape: c.images, dtype: 'float32' };
      const source = await runOn('cpu', 'ResizeNearestNeighbor', { images: index }, { size: c.size, alignCorners: c.alignCorners, halfPixelCenters: c.halfPixelCenters });
      const dy = normal(source.shape, seed++);
      const sums = new Float64Array(count);
      source.values.forEach((from, j) => (sums[from]! += dy.values[j]!));
      const want = { values: Float32Array.from(sums), shape: c.images };
      // The example after the first is where tfjs 4.22's cpu kernel read the wrong dy.
      assert.ok(want.values.subarray(count / c.images[0]).some((v) => v !== 0));
      const attrs = { alignCorners: c.alignCorners, halfPixelCenters: c.halfPixelCenters };
      const images = normal(c.images, seed++);
      const cpu = await runOn('cpu', 'ResizeNearestNeighborGrad', { images, dy }, attrs);
      assert.deepEqual({ values: cpu.values, shape: cpu.shape }, want, `cpu ResizeNearestNeighborGrad ${JSON.stringify(c)}`);
      if (c.wasm) await compare('ResizeNearestNeighborGrad', { images, dy }, attrs, want);
    }
  });

  void it('gradients through the kernels leak no tensors on wasm', async () => {
    assert.ok(await tf.setBackend('wasm'));
    const x = tf.tensor4d(normal([2, 6, 6, 2], 500).values, [2, 6, 6, 2]);
    const k = tf.tensor4d(normal([3, 3, 2, 3], 501).values, [3, 3, 2, 3]);
    const dk = tf.tensor4d(normal([3, 3, 2, 2], 502).values, [3, 3, 2, 2]);
    const table = tf.tensor(normal([6, 3], 503).values, [6, 3]);
    const ids = tf.tensor1d([0, 2, 2, 5], 'int32');
    const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, d: tf.Tensor) =>
      tf.add(tf.add(tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'))), tf.sum(tf.square(tf.depthwiseConv2d(a as tf.Tensor4D, c as tf.Tensor4D, 1, 'same')))), tf.sum(tf.square(tf.gather(d, ids))));
    tf.dispose(tf.grads(loss)([x, k, dk, table])); // warm-up: anything cached is cached now
    const before = tf.memory().numTensors;
    const grads = tf.grads(loss)([x, k, dk, table]);
    assert.equal(tf.memory().numTensors, before + 4);
    tf.dispose(grads);
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, k, dk, table, ids]);
  });
});
