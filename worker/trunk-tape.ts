// The compute fast path (issue 7): the trunk's forward pass runs once per batch and is kept
// (the tape); each task that trains on that batch then brings only its gradient with respect
// to the shared representation, and a hand-written backward pass over the tape turns it into
// the task's trunk gradients. tf.grads would re-run the whole forward pass for every task.
//
// The backward of each layer is the same arithmetic tfjs' autodiff would do, with the
// worker's backend traps avoided (layer-ops.ts): dense gradients transpose explicitly on wasm,
// conv gradients are forward convolutions on wasm (OpsMode.im2colFilterGrad), with the flipped
// kernels the input gradients need made once per batch. The
// pieces tfjs defines well (activations, max pooling, conv on native backends) call tfjs' own
// registered gradient functions (tf.getGradient) with the tensors the tape kept; on wasm, max
// pooling over tiling windows finds each window's maximum once per batch on the host instead.
//
// Determinism: a task's gradients come from the same ops in the same order whether its tape is
// shared with other tasks or not, so grouping units never changes a bit (docs/design.md).
// test/unit/trunk-tape.test.ts checks the result against tf.grads within 1e-5 relative.
import * as tf from '@tensorflow/tfjs';
import { generalPathOnly, type Activation } from '../common/job-schema.js';
import { pair, type PlacedLayer } from '../common/parameter-layout.js';
import { flippedKernel } from './conv-gradients.js';
import { applyActivation, conv2dFilterGradByConv, conv2dInputGrad, maxPoolArgmax, maxPoolGradFromArgmax, poolTiles, type OpsMode } from './layer-ops.js';

/** One trunk layer as the forward pass left it. */
export interface TapeEntry {
  readonly layer: PlacedLayer;
  /** The layer's input, its output before the activation, and its output. */
  readonly x: tf.Tensor;
  readonly pre: tf.Tensor;
  readonly out: tf.Tensor;
  /** Dropout: the scaled keep mask applied (absent when dropout was off). */
  readonly mask?: tf.Tensor;
}


/** Activations that are one tfjs kernel; the others (gelu, swish, ...) are several ops. */
const ACTIVATION_KERNELS: Partial<Record<Exclude<Activation, 'linear'>, string>> = {
  relu: 'Relu',
  sigmoid: 'Sigmoid',
  tanh: 'Tanh',
  softmax: 'Softmax',
  elu: 'Elu',
  softplus: 'Softplus',
  selu: 'Selu',
};

/**
 * The vector-Jacobian product of one kernel as tfjs defines it (its registered gradient),
 * given the tensors that kernel's forward pass saved: its inputs named in `inputsToSave`, then
 * its output where `outputsToSave` asks for it (the engine's own order).
 */
function kernelVjp(kernel: string, inputs: Record<string, tf.Tensor>, output: tf.Tensor, attrs: Record<string, unknown>, dy: tf.Tensor): Record<string, () => tf.Tensor> {
  const config = tf.getGradient(kernel);
  if (!config) throw new Error(`tfjs has no gradient for ${kernel}`);
  const saved = [...(config.inputsToSave ?? []).map((name) => inputs[name]!), ...(config.outputsToSave ?? []).flatMap((keep) => (keep ? [output] : []))];
  return config.gradFunc(dy, saved, attrs as tf.NamedAttrMap);
}

/** dL/dpre from dL/dout for `out = activation(pre)`. */
function activationBackward(activation: Activation, dOut: tf.Tensor, pre: tf.Tensor, out: tf.Tensor): tf.Tensor {
  if (activation === 'linear') return dOut;
  const kernel = ACTIVATION_KERNELS[activation];
  // Several ops: tfjs' autodiff over the same ops the forward pass ran (applyActivation).
  if (!kernel) return tf.grad((p: tf.Tensor) => applyActivation(p, activation))(pre, dOut);
  const attrs = activation === 'softmax' ? { dim: -1 } : {};
  const grads = kernelVjp(kernel, { x: pre, logits: pre }, out, attrs, dOut);
  const input = grads.x ?? grads.logits;
  if (!input) throw new Error(`no input gradient for ${activation}`);
  return input();
}

export class TrunkTape {
  /**
   * Explicit transposes (wasm) every task's backward pass needs: each dense layer's input
   * (for its kernel gradient) and kernel (for its input gradient). Made once, in the caller's
   * tidy scope, when the tape is built: a task's own scope would dispose them under the next.
   */
  private readonly transposes = new Map<tf.Tensor, tf.Tensor2D>();
  /** Where each tiling max pool's maxima are (OpsMode.hostPoolGrad), found once for all tasks. */
  private readonly poolArgmax = new Map<TapeEntry, Int32Array>();
  /**
   * Per conv layer after the first weighted one (OpsMode.im2colFilterGrad): its kernel flipped
   * for the input gradient (conv-gradients.ts flippedKernel), made once for every task.
   */
  private readonly flippedKernels = new Map<TapeEntry, tf.Tensor4D>();
  /** Index of the first entry with weights: no input gradient is needed at or before it. */
  private readonly firstWeighted: number;

  constructor(
    readonly entries: readonly TapeEntry[],
    /** The model's input, as the first entry read it. */
    readonly input: tf.Tensor,
    private readonly weight: (index: number) => tf.Tensor,
    private readonly mode: OpsMode,
  ) {
    this.firstWeighted = entries.findIndex((e) => e.layer.tensors.length > 0);
    entries.forEach((entry, i) => {
      const spec = entry.layer.spec;
      if (spec.type === 'maxPooling2d' && mode.hostPoolGrad && i > this.firstWeighted) {
        const poolSize = pair(spec.config.poolSize);
        if (poolTiles(poolSize, pair(spec.config.strides ?? spec.config.poolSize), spec.config.padding, entry.x.shape)) {
          this.poolArgmax.set(entry, maxPoolArgmax(entry.x.dataSync() as Float32Array, entry.x.shape, poolSize));
        }
      }
      if (spec.type === 'conv2d' && mode.im2colFilterGrad && i > this.firstWeighted) this.flippedKernels.set(entry, flippedKernel(this.weight(entry.layer.tensors[0]!) as tf.Tensor4D));
      if (spec.type !== 'dense' || !mode.explicitTranspose || i < this.firstWeighted) return;
      this.transposes.set(entry.x, tf.transpose(TrunkTape.rows(entry.x)));
      if (i > this.firstWeighted) {
        const kernel = this.weight(entry.layer.tensors[0]!);
        this.transposes.set(kernel, tf.transpose(kernel as tf.Tensor2D));
      }
    });
  }

  /** A dense layer's input as a matrix: one row per position. */
  private static rows(x: tf.Tensor): tf.Tensor2D {
    return (x.rank === 2 ? x : tf.reshape(x, [-1, x.shape[x.rank - 1]!])) as tf.Tensor2D;
  }

  /** The shared representation the heads read. */
  get output(): tf.Tensor {
    return this.entries.length > 0 ? this.entries[this.entries.length - 1]!.out : this.input;
  }

  private transposed(t: tf.Tensor): tf.Tensor2D {
    const tt = this.transposes.get(t);
    if (!tt) throw new Error('no transpose was kept for this tensor');
    return tt;
  }

  /**
   * The gradients of every trunk tensor (by tensor index) for a loss whose gradient with
   * respect to the shared representation is `dOutput`. Call inside tf.tidy. `onLayer` sees each
   * weighted layer's gradients as soon as they are made (last layer first), while the pass goes on.
   */
  backward(dOutput: tf.Tensor, onLayer?: (grads: ReadonlyMap<number, tf.Tensor>) => void): Map<number, tf.Tensor> {
    const grads = new Map<number, tf.Tensor>();
    let dy = dOutput;
    for (let i = this.entries.length - 1; i >= 0 && i >= this.firstWeighted; i--) {
      const entry = this.entries[i]!;
      const inputGrad = i > this.firstWeighted;
      const layerGrads = new Map<number, tf.Tensor>();
      const dx = this.layerBackward(entry, dy, inputGrad, layerGrads);
      for (const [index, g] of layerGrads) grads.set(index, g);
      if (onLayer && layerGrads.size > 0) onLayer(layerGrads);
      if (!inputGrad) break;
      dy = dx!;
    }
    return grads;
  }

  private layerBackward(entry: TapeEntry, dOut: tf.Tensor, inputGrad: boolean, grads: Map<number, tf.Tensor>): tf.Tensor | undefined {
    const { layer, x, pre, out } = entry;
    const spec = layer.spec;
    switch (spec.type) {
      case 'dense': {
        const dPre = activationBackward(spec.config.activation, dOut, pre, out);
        const d2 = TrunkTape.rows(dPre);
        const kernel = this.weight(layer.tensors[0]!) as tf.Tensor2D;
        grads.set(layer.tensors[0]!, this.mode.explicitTranspose ? tf.matMul(this.transposed(x), d2) : tf.matMul(TrunkTape.rows(x), d2, true, false));
        if (spec.config.useBias) grads.set(layer.tensors[1]!, tf.sum(d2, 0));
        if (!inputGrad) return undefined;
        const dx = this.mode.explicitTranspose ? tf.matMul(d2, this.transposed(kernel)) : tf.matMul(d2, kernel, false, true);
        return x.rank === 2 ? dx : tf.reshape(dx, x.shape);
      }
      case 'conv2d': {
        const dPre = activationBackward(spec.config.activation, dOut, pre, out) as tf.Tensor4D;
        const x4 = x as tf.Tensor4D;
        const kernel = this.weight(layer.tensors[0]!) as tf.Tensor4D;
        const strides = pair(spec.config.strides);
        const padding = spec.config.padding;
        if (spec.config.useBias) grads.set(layer.tensors[1]!, tf.sum(dPre, [0, 1, 2]));
        if (this.mode.im2colFilterGrad) {
          grads.set(layer.tensors[0]!, conv2dFilterGradByConv(x4, dPre, kernel.shape, strides, padding));
          return inputGrad ? conv2dInputGrad(dPre, kernel, x4.shape, strides, padding, this.flippedKernels.get(entry)) : undefined;
        }
        const vjp = kernelVjp('Conv2D', { x: x4, filter: kernel }, pre, { strides, pad: padding, dataFormat: 'NHWC', dilations: [1, 1] }, dPre);
        grads.set(layer.tensors[0]!, vjp.filter!());
        return inputGrad ? vjp.x!() : undefined;
      }
      case 'maxPooling2d': {
        const argmax = this.poolArgmax.get(entry);
        if (argmax) return tf.tensor(maxPoolGradFromArgmax(argmax, dOut.dataSync() as Float32Array, x.size), x.shape);
        const poolSize = pair(spec.config.poolSize);
        const attrs = { filterSize: poolSize, strides: pair(spec.config.strides ?? spec.config.poolSize), pad: spec.config.padding };
        return kernelVjp('MaxPool', { x }, out, attrs, dOut).x!();
      }
      case 'flatten':
        return tf.reshape(dOut, x.shape);
      case 'dropout':
        return entry.mask ? tf.mul(dOut, entry.mask) : dOut;
      default:
        throw new Error(`layer ${layer.name}: ${generalPathOnly(spec.type)}`);
    }
  }
}
