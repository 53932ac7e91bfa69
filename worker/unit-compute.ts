// What a worker does for one unit: select the unit's examples (a pure function of seed, task,
// step and shard), gather them, and run the model. No I/O here, so tests can call it
// directly and compare with a single-process computation.
import { partRange, EpochSampler } from '../common/datasets/sampler.js';
import { inputSize } from '../common/datasets/types.js';
import type { TaskBinding } from '../common/datasets/index.js';
import type { JobSpec } from '../common/job-spec.js';
import { deriveSeed } from '../common/random.js';
import type { ModelRunner } from './model-runner.js';

/** Held-out examples are evaluated in batches of at most this many. */
export const EVAL_BATCH = 1000;

export interface TrainUnitSpec {
  task: string;
  step: number;
  shard: number;
}

export interface EvalUnitSpec {
  task: string;
  shard: number;
  shardCount: number;
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

export class UnitComputer {
  private readonly sampler = new EpochSampler();

  constructor(
    private readonly job: JobSpec,
    private readonly bindings: ReadonlyMap<string, TaskBinding>,
    private readonly runner: ModelRunner,
  ) {}

  private binding(task: string): TaskBinding {
    const b = this.bindings.get(task);
    if (!b) throw new RangeError(`unknown task ${task}`);
    return b;
  }

  /** The training examples of a unit. */
  trainIndices(unit: TrainUnitSpec): Uint32Array {
    const b = this.binding(unit.task);
    return this.sampler.indices({
      seed: this.job.seed,
      source: b.source,
      size: b.dataset.train.size,
      batchSize: this.job.training.batchSize,
      shards: this.job.training.shardsPerTask,
      step: unit.step,
      shard: unit.shard,
    });
  }

  train(unit: TrainUnitSpec): TrainUnitOutput {
    const b = this.binding(unit.task);
    const indices = this.trainIndices(unit);
    const x = new Float32Array(indices.length * inputSize(b.dataset));
    const y = new Float32Array(indices.length);
    b.dataset.train.inputs(indices, x);
    b.dataset.train.targets(b.target, indices, y);
    // Trunk dropout masks are keyed by the data source (tasks sharing a batch share them);
    // head masks by the task.
    const { loss, grads } = this.runner.gradients(unit.task, x, y, {
      training: true,
      dropoutSeed: (layer) =>
        layer.name.startsWith('trunk_')
          ? deriveSeed(this.job.seed, 'dropout', b.source, unit.step, unit.shard, layer.name)
          : deriveSeed(this.job.seed, 'dropout', unit.task, unit.step, unit.shard, layer.name),
    });
    return { sampleCount: indices.length, loss, grads };
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
      const y = new Float32Array(indices.length);
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
