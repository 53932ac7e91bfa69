// The training plan as stages: simultaneous mode is one stage with every task; sequential
// mode (docs/training-modes.md) trains its stages one after another. Pure functions of the job, used by
// the coordinator (which units a step has) and by workers (how big a unit's batch is), so
// the two agree without the protocol carrying batch sizes.
import type { JobSpec } from './job-spec.js';
import type { StageSpec } from './job-schema.js';

export interface PlannedStage {
  index: number;
  name: string;
  /** Tasks trained with the full batch. */
  tasks: readonly string[];
  /** Earlier tasks rehearsed this stage (replay), with their smaller batch. */
  replay: readonly string[];
  replayBatch: number;
  /** First step (0-based) and one past the last. */
  start: number;
  end: number;
  spec: StageSpec;
}

export interface TrainUnitShape {
  /** Examples of the whole unit set of this task at this step (before sharding). */
  batchSize: number;
  shards: number;
}

export class StagePlan {
  readonly stages: readonly PlannedStage[];
  readonly sequential: boolean;

  constructor(private readonly job: JobSpec) {
    const training = job.training;
    this.sequential = training.mode === 'sequential';
    const specs: StageSpec[] = training.stages ?? [{ tasks: Object.keys(job.tasks), steps: training.steps, freeze: [], protect: {} }];
    let start = 0;
    const seen: string[] = [];
    this.stages = specs.map((spec, index) => {
      const replay = spec.protect.replay ? seen.slice() : [];
      const stage: PlannedStage = {
        index,
        name: spec.name ?? (this.sequential ? `stage-${index + 1}` : 'all'),
        tasks: spec.tasks,
        replay,
        replayBatch: spec.protect.replay ? Math.max(1, Math.ceil(spec.protect.replay.fraction * training.batchSize)) : 0,
        start,
        end: start + spec.steps,
        spec,
      };
      start += spec.steps;
      seen.push(...spec.tasks);
      return stage;
    });
  }

  /** The stage step `step` (0-based) belongs to; the last stage for steps past the end. */
  stageAt(step: number): PlannedStage {
    return this.stages.find((s) => step < s.end) ?? this.stages[this.stages.length - 1]!;
  }

  /** Tasks that compute gradients at `step`, in the job's task order (the rows of G). */
  activeTasks(step: number): string[] {
    const stage = this.stageAt(step);
    return Object.keys(this.job.tasks).filter((t) => stage.tasks.includes(t) || stage.replay.includes(t));
  }

  /** Batch and shard count of task `task`'s training units at `step`; undefined when it does not train then. */
  unitShape(step: number, task: string): TrainUnitShape | undefined {
    const stage = this.stageAt(step);
    const { batchSize, shardsPerTask } = this.job.training;
    if (stage.tasks.includes(task)) return { batchSize, shards: shardsPerTask };
    if (stage.replay.includes(task)) return { batchSize: stage.replayBatch, shards: Math.min(shardsPerTask, stage.replayBatch) };
    return undefined;
  }

  /**
   * Examples per task for the EWC Fisher estimated when the stage ending at `step` is over:
   * the first later stage with EWC sets it; undefined when no later stage uses EWC.
   */
  fisherSamplesAt(step: number): number | undefined {
    const ended = this.stages.findIndex((s) => s.end === step);
    if (ended < 0) return undefined;
    return this.stages.slice(ended + 1).find((s) => s.spec.protect.ewc)?.spec.protect.ewc?.samples;
  }

  /** Which Fisher the EWC estimate at `step` is (see `fisherSamplesAt`). */
  fisherKindAt(step: number): 'sampled' | 'empirical' | undefined {
    const ended = this.stages.findIndex((s) => s.end === step);
    if (ended < 0) return undefined;
    return this.stages.slice(ended + 1).find((s) => s.spec.protect.ewc)?.spec.protect.ewc?.fisher;
  }

  /** Tasks trained (not just rehearsed) in stages before `stage`. */
  earlierTasks(stage: PlannedStage): string[] {
    return this.stages.slice(0, stage.index).flatMap((s) => s.tasks);
  }
}
