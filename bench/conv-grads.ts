// The Conv2D gradient formulations of worker/conv-gradients.ts side by side on one backend
// (wasm by default), per layer shape: the filter gradient as a forward convolution (the old
// formulation) against im2col + matMul, both with the patches built in the call (autodiff, the
// graph path's kernel) and with the patches already built (the fast path builds them once per
// batch for every task); the input gradient as wasm's own Conv2DBackpropInput against the
// forward convolution of conv-gradients.ts. Every operand is a fresh tensor in every call (wasm
// keeps an operator per filter tensor, so reusing one would time a cached operator), and the
// variants of a shape run in interleaved rounds. Prints ms and ratios to the old formulation.
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../common/random.js';
import { selectBackend, type BackendChoice } from '../worker/backend.js';
import { convGeometry } from '../worker/conv-gradients.js';
import { conv2dFilterGradByConv, type Padding } from '../worker/layer-ops.js';
import { setWasmConvFormulation, type WasmConvFormulation } from '../worker/wasm-gradient-kernels.js';
import { option, type Bench } from './bench-types.js';
import { filterGradFromPatches, patchMatrix } from './im2col.js';

interface Shape {
  label: string;
  x: [number, number, number, number];
  k: [number, number];
  f: number;
  strides: [number, number];
  padding: Padding;
}

const SHAPES: Shape[] = [
  { label: 'multimnist-cnn conv1', x: [64, 28, 28, 1], k: [5, 5], f: 16, strides: [1, 1], padding: 'valid' },
  { label: 'multimnist-cnn conv2', x: [64, 12, 12, 16], k: [5, 5], f: 32, strides: [1, 1], padding: 'valid' },
  { label: 'pretrained-trunk conv1', x: [64, 28, 28, 1], k: [3, 3], f: 8, strides: [1, 1], padding: 'valid' },
  { label: 'pretrained-trunk conv2', x: [64, 13, 13, 8], k: [3, 3], f: 16, strides: [1, 1], padding: 'valid' },
  { label: 'rgb 32² same', x: [32, 32, 32, 3], k: [3, 3], f: 32, strides: [1, 1], padding: 'same' },
  { label: '16² × 32 same', x: [32, 16, 16, 32], k: [3, 3], f: 64, strides: [1, 1], padding: 'same' },
  { label: '8² × 64 same', x: [32, 8, 8, 64], k: [3, 3], f: 64, strides: [1, 1], padding: 'same' },
  { label: 'stride 2, 28² × 8', x: [64, 28, 28, 8], k: [3, 3], f: 16, strides: [2, 2], padding: 'same' },
  { label: 'stride 2, 14² × 16', x: [64, 14, 14, 16], k: [3, 3], f: 32, strides: [2, 2], padding: 'valid' },
  { label: 'batch 1, 28² × 16', x: [1, 28, 28, 16], k: [3, 3], f: 16, strides: [1, 1], padding: 'same' },
];

function interleavedMedians(fns: ReadonlyArray<() => void>, rounds: number): number[] {
  for (const fn of fns) fn();
  const times = fns.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    fns.forEach((fn, i) => {
      const t = performance.now();
      fn();
      times[i]!.push(performance.now() - t);
    });
  }
  return times.map((ts) => ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)]!);
}

function random(shape: number[], rng: Rng): tf.Tensor {
  return tf.tensor(Float32Array.from({ length: tf.util.sizeFromShape(shape) }, () => rng.uniform(-1, 1)), shape);
}

export const convGradsBench: Bench = {
  name: 'conv-grads',
  description: 'Conv2D filter and input gradients: the forward-convolution formulations against im2col + matMul, per layer shape',
  async run(args, progress) {
    const backend = await selectBackend((option(args, 'backend') ?? 'wasm') as BackendChoice);
    tf.enableProdMode();
    const rounds = Number(option(args, 'reps') ?? 11);
    const rows: Array<Record<string, number | string>> = [];
    const rng = new Rng(5);
    for (const s of SHAPES) {
      const kernelShape = [s.k[0], s.k[1], s.x[3], s.f];
      const x0 = random(s.x, rng) as tf.Tensor4D;
      const k0 = random(kernelShape, rng) as tf.Tensor4D;
      const g = convGeometry(s.x, kernelShape, s.strides, s.padding);
      const dy0 = random([s.x[0], g.oh, g.ow, s.f], rng) as tf.Tensor4D;
      const built = patchMatrix(x0, g);
      // Fresh copies: a new tensor (and so no cached wasm operator) in every call.
      const fresh = <T extends tf.Tensor>(t: T): T => tf.mul(t, 1);
      const time = (fn: () => tf.Tensor) => () => tf.tidy(() => void fn().dataSync());
      const inputGrad = (f: WasmConvFormulation) => () => {
        const previous = setWasmConvFormulation(f);
        try {
          return tf.conv2dTranspose(fresh(dy0), fresh(k0), s.x, s.strides, s.padding);
        } finally {
          setWasmConvFormulation(previous);
        }
      };
      const [copies, byConv, patchesInCall, patchesBuilt, inputOld, inputNew] = interleavedMedians(
        [
          time(() => tf.addN([fresh(x0).sum(), fresh(dy0).sum(), fresh(k0).sum()])),
          time(() => conv2dFilterGradByConv(fresh(x0), fresh(dy0), kernelShape, s.strides, s.padding)),
          time(() => filterGradFromPatches(patchMatrix(fresh(x0), g), fresh(dy0), kernelShape)),
          time(() => filterGradFromPatches(built, fresh(dy0), kernelShape)),
          time(inputGrad('wasm')),
          time(inputGrad('forward-conv')),
        ],
        rounds,
      );
      tf.dispose([x0, k0, dy0, built]);
      const flops = 2 * s.x[0] * g.oh * g.ow * kernelShape.reduce((a, b) => a * b, 1);
      const row = { shape: s.label, x: s.x.join('×'), kernel: kernelShape.join('×'), strides: s.strides.join('×'), padding: s.padding, mflop: flops / 1e6, copiesMs: copies!, byConvMs: byConv!, patchesInCallMs: patchesInCall!, patchesBuiltMs: patchesBuilt!, inputOldMs: inputOld!, inputNewMs: inputNew! };
      rows.push(row);
      progress(`conv-grads: ${s.label}: filter ${byConv!.toFixed(1)} ms by conv, ${patchesInCall!.toFixed(1)} ms im2col + matMul, ${patchesBuilt!.toFixed(1)} ms matMul on built patches; input ${inputOld!.toFixed(1)} ms wasm's, ${inputNew!.toFixed(1)} ms by conv`);
    }
    const r = (a: number | string, b: number | string) => `${((a as number) / (b as number)).toFixed(2)}×`;
    const text = [
      `conv-grads: Conv2D gradient formulations, ${backend.name} backend, medians of ${rounds} interleaved rounds, ms per call (operand copies included, 'copies' alone)`,
      '',
      '| shape | x | kernel | strides | padding | MFLOP | copies | filter: conv | im2col+matMul | matMul on built patches | input: wasm own | input: conv |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...rows.map((w) => `| ${w.shape} | ${w.x} | ${w.kernel} | ${w.strides} | ${w.padding} | ${(w.mflop as number).toFixed(1)} | ${(w.copiesMs as number).toFixed(1)} | ${(w.byConvMs as number).toFixed(1)} | ${(w.patchesInCallMs as number).toFixed(1)} (${r(w.patchesInCallMs!, w.byConvMs!)}) | ${(w.patchesBuiltMs as number).toFixed(1)} (${r(w.patchesBuiltMs!, w.byConvMs!)}) | ${(w.inputOldMs as number).toFixed(1)} | ${(w.inputNewMs as number).toFixed(1)} (${r(w.inputNewMs!, w.inputOldMs!)}) |`),
    ].join('\n');
    return { text, json: { backend: backend.name, rounds, results: rows } };
  },
};
