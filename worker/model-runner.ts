// The model as a worker runs it: the layer stack of the parameter layout applied with tfjs
// ops to weight tensors held here (one set per weights version), the loss of one task and
// the gradients of exactly the tensors that task uses (trunk + its head).
import * as tf from '@tensorflow/tfjs';
import { generalPathOnly, type LossName, type MetricName } from '../common/job-schema.js';
import { pair, unitGradientSize, unitTensorIndices, type ParameterLayout, type PlacedLayer } from '../common/parameter-layout.js';
import { Rng } from '../common/random.js';
import { GradientBuckets, type GradientStream } from './gradient-buckets.js';
import { waitForFloats, type WeightsStream } from './streamed-weights.js';
import { TrunkTape, type TapeEntry } from './trunk-tape.js';
import { applyActivation, conv2dForTraining, matMulForTraining, type OpsMode } from './layer-ops.js';
import { headActivated, taskLoss, metricSum, targetTensor, type HeadOutput } from './losses.js';

export interface TaskObjective {
  loss: LossName;
  metrics: readonly MetricName[];
  /** Target floats per example (default 1; a target of k columns: k). */
  targetWidth?: number;
}

/** The examples in a batch of `targets` of `objective`'s task. */
export function targetCount(objective: TaskObjective, targets: Float32Array): number {
  return targets.length / (objective.targetWidth ?? 1);
}

export interface ForwardOptions {
  training: boolean;
  /**
   * Seed of the dropout mask of a layer (training only). `shared`: whether two or more tasks
   * share the layer (given by the graph path; the YAML path decides by the layer's name).
   */
  dropoutSeed?: (layer: { name: string }, shared?: boolean) => number;
}

export interface GradientResult {
  loss: number;
  /** Trunk gradients then the head's, in layout order (`unitGradientSize` floats). */
  grads: Float32Array;
}

/** One task's part of a shared-batch gradient computation (ModelRunner.sharedGradients). */
export interface SharedBatchTask {
  task: string;
  targets: Float32Array;
  /** Options of the task's head (its dropout masks); the trunk's come from the call. */
  opts: ForwardOptions;
}

export interface RunnerOptions {
  /**
   * The compute fast path (trunk-tape.ts): one trunk forward pass per batch and a hand-written
   * backward per task, for hard parameter sharing. Default true; false keeps tfjs' autodiff
   * for everything (the reference the fast path is tested against).
   */
  fastPath?: boolean;
}

export interface EvaluationResult {
  count: number;
  lossSum: number;
  metricSums: Record<string, number>;
}

/** Gradient tensors, in order, into one flat payload (a unit's result). */
function packGradients(tensors: readonly tf.Tensor[], out: Float32Array): void {
  let offset = 0;
  for (const g of tensors) {
    out.set(g.dataSync(), offset);
    offset += g.size;
  }
}

function must(g: tf.Tensor | undefined, index: number): tf.Tensor {
  if (!g) throw new Error(`the trunk's backward pass left tensor ${index} without a gradient`);
  return g;
}

interface LayerOutput {
  out: tf.Tensor;
  pre: tf.Tensor;
  activation: HeadOutput['activation'];
  /** Dropout's scaled keep mask, when it dropped anything. */
  mask?: tf.Tensor;
}


/** What a worker's unit computations need of a model: ModelRunner (our YAML layers) or GraphRunner (a model of the user's). */
export interface UnitRunner {
  readonly layout: ParameterLayout;
  /** Whether tasks training on the same batch share one trunk forward pass (sharedGradients). */
  readonly fastPath: boolean;
  setWeights(params: Float32Array): void;
  /**
   * Weights still arriving (streamed-weights.ts): each tensor is taken from `stream` when a
   * computation first needs it, waiting for its values if need be. `release` is called once
   * the runner no longer reads `stream` (every tensor taken, or other weights given).
   * Runners without it get the whole version before their next computation.
   */
  beginWeights?(stream: WeightsStream, release: () => void): void;
  /** Loss and the unit's payload (`unitGradientSize` floats: gradient, then the state the forward pass left). */
  gradients(task: string, inputs: Float32Array, targets: Float32Array, opts: ForwardOptions): GradientResult;
  /** With `stream`, each task's payload is also handed out bucket by bucket as the backward makes it (GradientStream). */
  sharedGradients(inputs: Float32Array, trunkOpts: ForwardOptions, tasks: readonly SharedBatchTask[], stream?: GradientStream): GradientResult[];
  loss(task: string, inputs: Float32Array, targets: Float32Array, opts: ForwardOptions): number;
  predict(task: string, inputs: Float32Array, n: number): Float32Array;
  evaluate(task: string, inputs: Float32Array, targets: Float32Array): EvaluationResult;
  dispose(): void;
}

export class ModelRunner implements UnitRunner {
  /** The current version's tensors, layout order; a streamed version's are filled as they are first needed. */
  private weights: Array<tf.Tensor | undefined> = [];
  /** A streamed version's source, until every tensor is taken from it. */
  private streamed: { stream: WeightsStream; taken: number; release: () => void } | undefined;
  /** Whether tasks training on the same batch share one trunk forward pass (see sharedGradients). */
  readonly fastPath: boolean;

  constructor(
    readonly layout: ParameterLayout,
    private readonly objectives: ReadonlyMap<string, TaskObjective>,
    private readonly mode: OpsMode,
    options: RunnerOptions = {},
  ) {
    // Adapters, named-input towers and experts make what a head reads depend on the task:
    // there is no one shared representation to keep.
    this.fastPath = (options.fastPath ?? true) && !layout.experts && layout.adapters.size === 0 && layout.namedInputs.length === 0;
  }

  /** Replaces the weights with `params` (all tensors, layout order). The array is copied. */
  setWeights(params: Float32Array): void {
    if (params.length !== this.layout.totalSize) {
      throw new RangeError(`expected ${this.layout.totalSize} parameters, got ${params.length}`);
    }
    const next = this.layout.tensors.map((t) => tf.tensor(params.slice(t.offset, t.offset + t.size), [...t.shape]));
    this.disposeWeights();
    this.weights = next;
  }

  beginWeights(stream: WeightsStream, release: () => void): void {
    if (stream.params.length !== this.layout.totalSize) {
      throw new RangeError(`expected ${this.layout.totalSize} parameters, got ${stream.params.length}`);
    }
    this.disposeWeights();
    this.weights = this.layout.tensors.map(() => undefined);
    this.streamed = { stream, taken: 0, release };
  }

  private weight(index: number, overrides?: ReadonlyMap<number, tf.Tensor>): tf.Tensor {
    const w = overrides?.get(index) ?? this.weights[index] ?? this.take(index);
    if (!w) throw new Error(`weight ${index} is not loaded`);
    return w;
  }

  /** Tensor `index` of a streamed version, once its values are in (kept: it may be first needed inside a tidy). */
  private take(index: number): tf.Tensor | undefined {
    const streamed = this.streamed;
    const t = this.layout.tensors[index];
    if (!streamed || !t) return undefined;
    waitForFloats(streamed.stream, t.offset + t.size);
    const w = tf.keep(tf.tensor(streamed.stream.params.slice(t.offset, t.offset + t.size), [...t.shape]));
    this.weights[index] = w;
    if (++streamed.taken === this.layout.tensors.length) this.releaseStream();
    return w;
  }

  private releaseStream(): void {
    const streamed = this.streamed;
    this.streamed = undefined;
    streamed?.release();
  }

  private applyLayer(layer: PlacedLayer, x: tf.Tensor, opts: ForwardOptions, overrides: ReadonlyMap<number, tf.Tensor> | undefined, last: boolean): LayerOutput {
    const n = x.shape[0];
    const spec = layer.spec;
    switch (spec.type) {
      case 'dense': {
        const inDim = layer.inputShape[layer.inputShape.length - 1]!;
        const x2 = x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, inDim]);
        let y: tf.Tensor = matMulForTraining(x2 as tf.Tensor2D, this.weight(layer.tensors[0]!, overrides) as tf.Tensor2D, this.mode);
        if (spec.config.useBias) y = tf.add(y, this.weight(layer.tensors[1]!, overrides));
        if (x.rank !== 2) y = tf.reshape(y, [n, ...layer.outputShape]);
        return { pre: y, out: last ? y : applyActivation(y, spec.config.activation), activation: spec.config.activation };
      }
      case 'conv2d': {
        const kernel = this.weight(layer.tensors[0]!, overrides) as tf.Tensor4D;
        // The first trunk layer reads the model's input (unless adapters or named-input towers
        // come before it): no gradient is needed there.
        const readsInput = layer === this.layout.trunk[0] && this.layout.adapters.size === 0 && this.layout.namedInputs.length === 0;
        let y: tf.Tensor = conv2dForTraining(x as tf.Tensor4D, kernel, pair(spec.config.strides), spec.config.padding, this.mode, !readsInput);
        if (spec.config.useBias) y = tf.add(y, this.weight(layer.tensors[1]!, overrides));
        return { pre: y, out: last ? y : applyActivation(y, spec.config.activation), activation: spec.config.activation };
      }
      case 'maxPooling2d': {
        const y = tf.maxPool(x as tf.Tensor4D, pair(spec.config.poolSize), pair(spec.config.strides ?? spec.config.poolSize), spec.config.padding);
        return { pre: y, out: y, activation: 'linear' };
      }
      case 'flatten': {
        const y = tf.reshape(x, [n, -1]);
        return { pre: y, out: y, activation: 'linear' };
      }
      case 'dropout': {
        const rate = spec.config.rate;
        if (!opts.training || rate === 0) return { pre: x, out: x, activation: 'linear' };
        if (!opts.dropoutSeed) throw new Error('training forward pass without dropout seeds');
        const rng = new Rng(opts.dropoutSeed(layer));
        const mask = new Float32Array(x.size);
        const keep = 1 / (1 - rate);
        for (let i = 0; i < mask.length; i++) mask[i] = rng.next() >= rate ? keep : 0;
        const maskTensor = tf.tensor(mask, x.shape);
        const y = tf.mul(x, maskTensor);
        return { pre: y, out: y, activation: 'linear', mask: maskTensor };
      }
      default:
        throw new Error(`layer ${layer.name}: ${generalPathOnly(spec.type)}`);
    }
  }

  /** The shared representation of a batch. */
  trunk(x: tf.Tensor, opts: ForwardOptions, overrides?: ReadonlyMap<number, tf.Tensor>): tf.Tensor {
    let h = x;
    for (const layer of this.layout.trunk) h = this.applyLayer(layer, h, opts, overrides, false).out;
    return h;
  }

  /**
   * What task `task`'s head reads: the trunk's output, or with mixture-of-experts layers the
   * task's gated mixture of experts, level by level (see ExpertsLayout).
   */
  features(task: string, x: tf.Tensor, opts: ForwardOptions, overrides?: ReadonlyMap<number, tf.Tensor>): tf.Tensor {
    const adapter = this.layout.adapters.get(task) ?? [];
    const stackOn = (layers: readonly PlacedLayer[], input: tf.Tensor) => layers.reduce((y, layer) => this.applyLayer(layer, y, opts, overrides, false).out, input);
    let input = stackOn(adapter, x);
    if (this.layout.namedInputs.length > 0) {
      // Named inputs: each tower reads its slice of the flat input; the trunk reads them side by side.
      let from = 0;
      const towers = this.layout.namedInputs.map((n) => {
        const slice = tf.slice(input, [0, from], [-1, n.size]);
        from += n.size;
        return stackOn(n.tower, slice);
      });
      input = towers.length === 1 ? towers[0]! : tf.concat(towers, 1);
    }
    const h = this.trunk(input, opts, overrides);
    const experts = this.layout.experts;
    if (!experts) return h;
    const stack = (layers: readonly PlacedLayer[], input: tf.Tensor) => layers.reduce((y, layer) => this.applyLayer(layer, y, opts, overrides, false).out, input);
    const mix = (gate: PlacedLayer, input: tf.Tensor, outputs: tf.Tensor[]) => {
      const g = this.applyLayer(gate, input, opts, overrides, false).out; // [n, E], softmax
      return tf.squeeze(tf.matMul(tf.expandDims(g, 1), tf.stack(outputs, 1)), [1]); // [n, D]
    };
    let sharedIn = h;
    const taskIn = new Map(this.layout.tasks.map((t) => [t, h]));
    for (const level of experts.levels) {
      const shared = level.shared.map((e) => stack(e, sharedIn));
      // Other tasks' experts matter only where a shared gate mixes them.
      const needed = level.sharedGate ? this.layout.tasks : [task];
      const own = new Map(needed.map((t) => [t, level.perTask.get(t)!.map((e) => stack(e, taskIn.get(t)!))]));
      for (const t of needed) taskIn.set(t, mix(level.gates.get(t)!, taskIn.get(t)!, [...shared, ...own.get(t)!]));
      if (level.sharedGate) sharedIn = mix(level.sharedGate, sharedIn, [...shared, ...needed.flatMap((t) => own.get(t)!)]);
    }
    return taskIn.get(task)!;
  }

  /** A task's head on the shared representation; the last layer's activation is left to the loss. */
  head(task: string, features: tf.Tensor, opts: ForwardOptions, overrides?: ReadonlyMap<number, tf.Tensor>): HeadOutput {
    const layers = this.layout.heads.get(task);
    if (!layers) throw new RangeError(`unknown task ${task}`);
    let h = features;
    let result: HeadOutput = { pre: h as tf.Tensor2D, activation: 'linear' };
    layers.forEach((layer, i) => {
      const r = this.applyLayer(layer, h, opts, overrides, i === layers.length - 1);
      h = r.out;
      result = { pre: (r.pre.rank === 2 ? r.pre : tf.reshape(r.pre, [r.pre.shape[0], -1])) as tf.Tensor2D, activation: r.activation };
    });
    return result;
  }

  private objective(task: string): TaskObjective {
    const o = this.objectives.get(task);
    if (!o) throw new RangeError(`unknown task ${task}`);
    return o;
  }

  /** Loss of `task` on a batch and its gradients with respect to the trunk and the task's head. */
  gradients(task: string, inputs: Float32Array, targets: Float32Array, opts: ForwardOptions): GradientResult {
    if (this.fastPath) return this.sharedGradients(inputs, opts, [{ task, targets, opts }])[0]!;
    return this.autodiffGradients(task, inputs, targets, opts);
  }

  /**
   * The gradients of several tasks on one batch of inputs (each with its own targets), from
   * one trunk forward pass: each task's head gives the gradient of its loss with respect to
   * the shared representation, and the trunk's backward pass runs from there (TrunkTape).
   * The trunk's dropout masks come from `trunkOpts`. Each result is bitwise what `gradients`
   * returns for that task alone. Requires `fastPath`. With `stream`, each task's loss, then its
   * payload bucket by bucket (head, then trunk layers last first), go to the stream as they are
   * made; the results are the same.
   */
  sharedGradients(inputs: Float32Array, trunkOpts: ForwardOptions, tasks: readonly SharedBatchTask[], stream?: GradientStream): GradientResult[] {
    if (!this.fastPath) throw new Error('sharedGradients needs the fast path (hard parameter sharing, fastPath on)');
    const first = tasks[0];
    if (!first) return [];
    const n = targetCount(this.objective(first.task), first.targets);
    if (tasks.some((t) => targetCount(this.objective(t.task), t.targets) !== n)) throw new RangeError('tasks sharing a batch need the targets of every example each');
    const results: GradientResult[] = [];
    // tidy() walks what its function returns: the results leave through `results`, not the
    // return value (walking a Float32Array of 10⁵ floats costs more than the step).
    tf.tidy(() => {
      const x = tf.tensor(inputs, [n, ...this.layout.inputShape]);
      const tape = this.trunkTape(x, trunkOpts);
      for (const { task, targets, opts } of tasks) {
        const objective = this.objective(task);
        const headIndices = this.layout.headGroups.get(task)!.tensors;
        const grads = new Float32Array(unitGradientSize(this.layout, task));
        const loss = tf.tidy(() => {
          const y = targetTensor(targets, objective.targetWidth);
          const f = (h: tf.Tensor, ...ws: tf.Tensor[]) => {
            const overrides = new Map(headIndices.map((idx, i) => [idx, ws[i]!] as const));
            return taskLoss(objective.loss, this.head(task, h, opts, overrides), y);
          };
          const { value, grads: gs } = tf.valueAndGrads(f)([tape.output, ...headIndices.map((i) => this.weight(i))]);
          if (!stream) {
            const trunk = tape.backward(gs[0]!);
            packGradients([...this.layout.shared.tensors.map((i) => must(trunk.get(i), i)), ...gs.slice(1)], grads);
            return value.dataSync()[0]!;
          }
          const taskLossValue = value.dataSync()[0]!;
          stream.begin(results.length, taskLossValue, grads.length);
          const buckets = new GradientBuckets(grads, this.payloadOffsets(task), stream, results.length);
          buckets.add(headIndices.map((idx, i) => [idx, gs[i + 1]!] as const));
          tape.backward(gs[0]!, (layerGrads) => buckets.add(layerGrads));
          buckets.finish();
          return taskLossValue;
        });
        results.push({ loss, grads });
      }
    });
    return results;
  }

  /** Where each tensor of a task's unit payload goes: shared tensors, then the head's, in layout order. */
  private payloadOffsets(task: string): Map<number, number> {
    const offsets = new Map<number, number>();
    let at = 0;
    for (const i of unitTensorIndices(this.layout, task)) {
      offsets.set(i, at);
      at += this.layout.tensors[i]!.size;
    }
    return offsets;
  }

  /** The trunk's forward pass with every layer's input and outputs kept for TrunkTape. */
  private trunkTape(x: tf.Tensor, opts: ForwardOptions): TrunkTape {
    const entries: TapeEntry[] = [];
    let h = x;
    for (const layer of this.layout.trunk) {
      const { out, pre, mask } = this.applyLayer(layer, h, opts, undefined, false);
      entries.push({ layer, x: h, pre, out, mask });
      h = out;
    }
    return new TrunkTape(entries, x, (i) => this.weight(i), this.mode);
  }

  /** tfjs autodiff over the whole model (adapters, named inputs, experts; the fast path's reference). */
  private autodiffGradients(task: string, inputs: Float32Array, targets: Float32Array, opts: ForwardOptions): GradientResult {
    const objective = this.objective(task);
    const n = targetCount(objective, targets);
    const indices = unitTensorIndices(this.layout, task);
    const grads = new Float32Array(unitGradientSize(this.layout, task));
    const loss = tf.tidy(() => {
      const x = tf.tensor(inputs, [n, ...this.layout.taskInputShapes.get(task)!]);
      const y = targetTensor(targets, objective.targetWidth);
      const f = (...ws: tf.Tensor[]) => {
        const overrides = new Map(indices.map((idx, i) => [idx, ws[i]!] as const));
        return taskLoss(objective.loss, this.head(task, this.features(task, x, opts, overrides), opts, overrides), y);
      };
      const { value, grads: gs } = tf.valueAndGrads(f)(indices.map((i) => this.weight(i)));
      packGradients(gs, grads);
      return value.dataSync()[0]!;
    });
    return { loss, grads };
  }

  /** Mean loss of `task` on a batch, forward only. */
  loss(task: string, inputs: Float32Array, targets: Float32Array, opts: ForwardOptions): number {
    const objective = this.objective(task);
    const n = targetCount(objective, targets);
    return tf.tidy(() => {
      const x = tf.tensor(inputs, [n, ...this.layout.taskInputShapes.get(task)!]);
      return taskLoss(objective.loss, this.head(task, this.features(task, x, opts), opts), targetTensor(targets, objective.targetWidth)).dataSync()[0]!;
    });
  }

  /** The head's activated output for a batch (class probabilities for softmax heads), without dropout. */
  predict(task: string, inputs: Float32Array, n: number): Float32Array {
    return tf.tidy(() => {
      const x = tf.tensor(inputs, [n, ...this.layout.taskInputShapes.get(task)!]);
      const opts = { training: false };
      return headActivated(this.head(task, this.features(task, x, opts), opts)).dataSync() as Float32Array;
    });
  }

  /** Sums of the loss and of each metric over a batch, without dropout. */
  evaluate(task: string, inputs: Float32Array, targets: Float32Array): EvaluationResult {
    const objective = this.objective(task);
    const n = targetCount(objective, targets);
    return tf.tidy(() => {
      const x = tf.tensor(inputs, [n, ...this.layout.taskInputShapes.get(task)!]);
      const y = targetTensor(targets, objective.targetWidth);
      const opts = { training: false };
      const out = this.head(task, this.features(task, x, opts), opts);
      const lossSum = taskLoss(objective.loss, out, y).dataSync()[0]! * n;
      const metricSums: Record<string, number> = {};
      for (const m of objective.metrics) metricSums[m] = metricSum(m, objective.loss, out, y).dataSync()[0]!;
      return { count: n, lossSum, metricSums };
    });
  }

  private disposeWeights(): void {
    this.releaseStream();
    for (const w of this.weights) w?.dispose();
    this.weights = [];
  }

  dispose(): void {
    this.disposeWeights();
  }
}
