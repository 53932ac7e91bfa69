// What a worker does for one unit: select the unit's examples (a pure function of seed, task,
// step and shard), gather them, and run the model. No I/O here, so tests can call it
// directly and compare with a single-process computation.
import { partRange, EpochSampler, type BatchRequest } from '../common/datasets/sampler.js';
import { BlockSampler } from '../common/datasets/block-sampler.js';
import { inputSize } from '../common/datasets/types.js';
import { bindingTargetWidth, type TaskBinding } from '../common/datasets/index.js';
import type { JobSpec } from '../common/job-spec.js';
import { deriveSeed, Rng } from '../common/random.js';
import { StagePlan } from '../common/stages.js';
import type { GradientStream } from './gradient-buckets.js';
import type { UnitRunner } from './model-runner.js';

/** Held-out examples are evaluated in batches of at most this many. */
export const EVAL_BATCH = 1000;

export interface TrainUnitSpec {
  task: string;
  step: number;
  shard: number;
}

export interface FisherUnitSpec {
  task: string;
  /** The step at which the stage ends (= the boundary the Fisher belongs to). */
  step: number;
  shard: number;
  shardCount: number;
}

export interface EvalUnitSpec {
  task: string;
  shard: number;
  shardCount: number;
}

/** A GradientStream that also learns each unit's example count when its loss is known. */
export interface UnitStream extends Omit<GradientStream, 'begin'> {
  begin(unit: number, sampleCount: number, loss: number, size: number): void;
}

export interface TrainUnitOutput {
  sampleCount: number;
  loss: number;
  grads: Float32Array;
}

export interface EvalUnitOutput {
  sampleCount: number;
  loss: number;
  metrics: Record<string, number>;
}

/**
 * Whether two training units read the same examples: same step, shard and data source, and the
 * same batch shape (the sampler is a function of these), with the runner's fast path on. Units
 * that do can share one trunk forward pass (UnitComputer.trainGroup). A function of the job, the
 * tasks' data sources and the fast path only: the session thread decides it without the data.
 */
export class BatchSharing {
  private readonly plan: StagePlan;

  constructor(
    job: JobSpec,
    private readonly sources: ReadonlyMap<string, string>,
    private readonly fastPath: boolean,
  ) {
    this.plan = new StagePlan(job);
  }

  private source(task: string): string {
    const s = this.sources.get(task);
    if (s === undefined) throw new RangeError(`unknown task ${task}`);
    return s;
  }

  shares(a: TrainUnitSpec, b: TrainUnitSpec): boolean {
    if (!this.fastPath || a.step !== b.step || a.shard !== b.shard || this.source(a.task) !== this.source(b.task)) return false;
    const [sa, sb] = [this.plan.unitShape(a.step, a.task), this.plan.unitShape(b.step, b.task)];
    return sa !== undefined && sb !== undefined && sa.batchSize === sb.batchSize && sa.shards === sb.shards;
  }
}

export class UnitComputer {
  private readonly epochSampler = new EpochSampler();
  private readonly blockSampler = new BlockSampler();
  private readonly plan: StagePlan;
  /** Each task's data source key. */
  readonly sources: ReadonlyMap<string, string>;
  private readonly sharing: BatchSharing;

  constructor(
    private readonly job: JobSpec,
    readonly bindings: ReadonlyMap<string, TaskBinding>,
    private readonly runner: UnitRunner,
  ) {
    this.plan = new StagePlan(job);
    this.sources = new Map([...bindings].map(([task, b]) => [task, b.source]));
    this.sharing = new BatchSharing(job, this.sources, runner.fastPath);
  }

  /** A unit's examples: a block shuffle for a streamed dataset, else a permutation of all of them. */
  private sample(b: TaskBinding, req: BatchRequest): Uint32Array {
    const sampling = b.dataset.sampling;
    return sampling ? this.blockSampler.indices(req, sampling) : this.epochSampler.indices(req);
  }

  private binding(task: string): TaskBinding {
    const b = this.bindings.get(task);
    if (!b) throw new RangeError(`unknown task ${task}`);
    return b;
  }

  /** The training examples of a unit. */
  trainIndices(unit: TrainUnitSpec): Uint32Array {
    const b = this.binding(unit.task);
    // Sequential mode: a rehearsed (replayed) task trains on a smaller batch than the stage's own.
    const shape = this.plan.unitShape(unit.step, unit.task);
    if (!shape) throw new RangeError(`task ${unit.task} does not train at step ${unit.step}`);
    if (unit.shard >= shape.shards) throw new RangeError(`task ${unit.task} has ${shape.shards} shards at step ${unit.step}, got shard ${unit.shard}`);
    return this.sample(b, {
      seed: this.job.seed,
      source: b.source,
      size: b.dataset.train.size,
      batchSize: shape.batchSize,
      shards: shape.shards,
      step: unit.step,
      shard: unit.shard,
    });
  }

  /** The examples of a Fisher unit: a fixed sample of the task's training split per stage boundary. */
  fisherIndices(unit: FisherUnitSpec): Uint32Array {
    const b = this.binding(unit.task);
    const samples = this.plan.fisherSamplesAt(unit.step);
    if (samples === undefined) throw new RangeError(`no EWC Fisher is estimated at step ${unit.step}`);
    if (unit.shardCount < 1 || unit.shard >= unit.shardCount) throw new RangeError(`shard ${unit.shard} of ${unit.shardCount}`);
    return this.sample(b, {
      seed: this.job.seed,
      source: `${b.source}#fisher`,
      size: b.dataset.train.size,
      batchSize: Math.min(samples, b.dataset.train.size),
      shards: unit.shardCount,
      step: unit.step,
      shard: unit.shard,
    });
  }

  /**
   * Diagonal empirical Fisher of one task on one shard: the mean of the squared per-example
   * gradients (shared then head, layout order), without dropout. One backward pass per example.
   */
  fisher(unit: FisherUnitSpec): TrainUnitOutput {
    const b = this.binding(unit.task);
    const indices = this.fisherIndices(unit);
    if (indices.length === 0) throw new RangeError(`Fisher unit of task ${unit.task} has no examples in shard ${unit.shard}`);
    const size = inputSize(b.dataset);
    const x = new Float32Array(size);
    const y = new Float32Array(bindingTargetWidth(b));
    const lossName = this.job.tasks[unit.task]!.loss;
    const sampled = this.plan.fisherKindAt(unit.step) === 'sampled' && (lossName === 'sparseCategoricalCrossentropy' || lossName === 'binaryCrossentropy');
    let acc: Float64Array | undefined;
    let lossSum = 0;
    for (const index of indices) {
      b.dataset.train.inputs([index], x);
      b.dataset.train.targets(b.target, [index], y);
      if (sampled) this.sampleLabels(unit, index, lossName, this.runner.predict(unit.task, x, 1), y);
      const { loss, grads } = this.runner.gradients(unit.task, x, y, { training: false });
      acc ??= new Float64Array(grads.length);
      for (let k = 0; k < grads.length; k++) acc[k]! += grads[k]! * grads[k]!;
      lossSum += loss;
    }
    const n = indices.length;
    const grads = Float32Array.from(acc!, (v) => v / n);
    // The payload's state part (BatchNormalization statistics) means nothing for a Fisher.
    grads.fill(0, grads.length - this.runner.layout.state.size);
    return { sampleCount: n, loss: lossSum / n, grads };
  }

  /** The examples of a training unit, gathered: inputs, targets and the task's binding. */
  private trainBatch(unit: TrainUnitSpec): { b: TaskBinding; indices: Uint32Array; x: Float32Array; y: Float32Array } {
    const b = this.binding(unit.task);
    const indices = this.trainIndices(unit);
    if (indices.length === 0) throw new RangeError(`task ${unit.task} has no examples in shard ${unit.shard} at step ${unit.step}`);
    const x = new Float32Array(indices.length * inputSize(b.dataset));
    const y = new Float32Array(indices.length * bindingTargetWidth(b));
    b.dataset.train.inputs(indices, x);
    b.dataset.train.targets(b.target, indices, y);
    return { b, indices, x, y };
  }

  train(unit: TrainUnitSpec): TrainUnitOutput {
    return this.trainGroup([unit])[0]!;
  }

  /** Whether two training units read the same examples (BatchSharing). */
  sharesBatch(a: TrainUnitSpec, b: TrainUnitSpec): boolean {
    return this.sharing.shares(a, b);
  }

  /**
   * Training units whose batches are the same (`sharesBatch` with the first): the batch is
   * gathered once and the trunk's forward pass runs once for all of them (the compute fast
   * path). Each output is bitwise what `train` gives for that unit alone. With `stream` (fast
   * path only; without it nothing is streamed and the caller sends the outputs whole), each
   * unit's loss and payload buckets go there as the backward pass makes them.
   */
  trainGroup(units: readonly TrainUnitSpec[], stream?: UnitStream): TrainUnitOutput[] {
    const first = units[0];
    if (!first) return [];
    const rest = units.slice(1);
    if (rest.some((u) => !this.sharesBatch(first, u))) throw new RangeError('trainGroup needs units that share one batch');
    const { b, indices, x, y } = this.trainBatch(first);
    if (!this.runner.fastPath) {
      const { loss, grads } = this.runner.gradients(first.task, x, y, { training: true, dropoutSeed: this.dropoutSeeds(first, b) });
      return [{ sampleCount: indices.length, loss, grads }];
    }
    const tasks = units.map((u) => {
      const bu = this.binding(u.task);
      let targets = y;
      if (u !== first) {
        targets = new Float32Array(indices.length * bindingTargetWidth(bu));
        bu.dataset.train.targets(bu.target, indices, targets);
      }
      return { task: u.task, targets, opts: { training: true, dropoutSeed: this.dropoutSeeds(u, bu) } };
    });
    const n = indices.length;
    const gradientStream: GradientStream | undefined = stream && { bucketBytes: stream.bucketBytes, begin: (k, loss, size) => stream.begin(k, n, loss, size), piece: (k, offset, data) => stream.piece(k, offset, data), end: (k) => stream.end(k) };
    return this.runner.sharedGradients(x, tasks[0]!.opts, tasks, gradientStream).map(({ loss, grads }) => ({ sampleCount: n, loss, grads }));
  }

  /** Trunk dropout masks are keyed by the data source (tasks sharing a batch share them); head masks by the task. */
  private dropoutSeeds(unit: TrainUnitSpec, b: TaskBinding): (layer: { name: string }, shared?: boolean) => number {
    return (layer, shared = layer.name.startsWith('trunk_')) =>
      shared
        ? deriveSeed(this.job.seed, 'dropout', b.source, unit.step, unit.shard, layer.name)
        : deriveSeed(this.job.seed, 'dropout', unit.task, unit.step, unit.shard, layer.name);
  }

  /**
   * Labels drawn from the model's predictive distribution into `y`, seeded by (seed, task,
   * boundary, example): a class, or (binary) one 0/1 label per output of the head.
   */
  private sampleLabels(unit: FisherUnitSpec, index: number, loss: string, p: Float32Array, y: Float32Array): void {
    const rng = new Rng(deriveSeed(this.job.seed, 'fisher-label', unit.task, unit.step, index));
    if (loss === 'binaryCrossentropy') {
      for (let k = 0; k < y.length; k++) y[k] = rng.next() < p[k]! ? 1 : 0;
      return;
    }
    const u = rng.next();
    let c = 0;
    for (let k = 0, cum = 0; k < p.length; k++) {
      cum += p[k]!;
      c = k;
      if (u < cum) break;
    }
    y[0] = c;
  }

  /**
   * Exact task affinity: the loss on the unit's training batch (the TRAIN unit's examples and
   * dropout masks) at the weights the runner holds (the coordinator's lookahead weights).
   */
  lookahead(unit: TrainUnitSpec): { sampleCount: number; loss: number } {
    const { b, indices, x, y } = this.trainBatch(unit);
    const loss = this.runner.loss(unit.task, x, y, { training: true, dropoutSeed: this.dropoutSeeds(unit, b) });
    return { sampleCount: indices.length, loss };
  }

  /** Loss and metric means over one shard of the task's held-out split. */
  evaluate(unit: EvalUnitSpec): EvalUnitOutput {
    const b = this.binding(unit.task);
    const [start, end] = partRange(b.dataset.test.size, unit.shardCount, unit.shard);
    let lossSum = 0;
    const sums: Record<string, number> = {};
    const size = inputSize(b.dataset);
    for (let from = start; from < end; from += EVAL_BATCH) {
      const to = Math.min(end, from + EVAL_BATCH);
      const indices = new Uint32Array(to - from);
      for (let i = 0; i < indices.length; i++) indices[i] = from + i;
      const x = new Float32Array(indices.length * size);
      const y = new Float32Array(indices.length * bindingTargetWidth(b));
      b.dataset.test.inputs(indices, x);
      b.dataset.test.targets(b.target, indices, y);
      const r = this.runner.evaluate(unit.task, x, y);
      lossSum += r.lossSum;
      for (const [k, v] of Object.entries(r.metricSums)) sums[k] = (sums[k] ?? 0) + v;
    }
    const count = end - start;
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(sums)) metrics[k] = count > 0 ? v / count : 0;
    return { sampleCount: count, loss: count > 0 ? lossSum / count : 0, metrics };
  }
}
