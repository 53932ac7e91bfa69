// Sequential mode's bookkeeping at the coordinator: which stages are over, the matrix
// R[stage][task] of every task's metric after each stage and its summaries, and the
// forgetting penalties (EWC, L2-SP) applied to each step's update. Pure: the step loop
// (training-run.ts) runs the evaluations and the Fisher units and hands the results here.
import type { JobSpec } from '../common/job-spec.js';
import type { ParameterLayout } from '../common/parameter-layout.js';
import type { PlannedStage, StagePlan } from '../common/stages.js';
import type { CheckpointExtras } from './checkpoints.js';
import { ForgettingPenalties, type ForgettingState } from './forgetting.js';
import type { EvalRecord } from './run-records.js';

export interface ContinualSummary {
  /** The metric R is made of, per task (its first metric, else the loss). */
  metric: Record<string, string>;
  stages: string[];
  /** R[stage][task] after each stage. */
  matrix: Array<Record<string, number>>;
  average?: number | null;
  backwardTransfer?: number | null;
  forwardTransfer?: number | null;
  retention?: Record<string, number>;
}

/** The JSON part of a sequential run's checkpoint extras. */
interface ProgressJson {
  stagesDone: number;
  /** R[k][task]: the task's metric after stage k. */
  rows: Array<Record<string, number>>;
  forgetting: ForgettingState['json'];
}

export class StageProgress {
  /** Stages whose end (evaluation, Fisher, switch to the next stage) has been processed. */
  stagesDone = 0;
  private readonly rows: Array<Record<string, number>> = [];
  readonly forgetting: ForgettingPenalties;
  private readonly tasks: string[];

  constructor(
    private readonly job: JobSpec,
    private readonly plan: StagePlan,
    private readonly layout: ParameterLayout,
  ) {
    this.tasks = Object.keys(job.tasks);
    this.forgetting = new ForgettingPenalties(layout.shared.size);
  }

  /** Continues from a checkpoint's extras. */
  restore(extras: CheckpointExtras): void {
    const progress = extras.json as ProgressJson;
    this.stagesDone = progress.stagesDone;
    this.rows.splice(0, this.rows.length, ...progress.rows);
    this.forgetting.restore({ json: progress.forgetting, arrays: extras.arrays });
  }

  /** For a checkpoint: copies, so the run may go on changing its own. */
  extras(): CheckpointExtras {
    const f = this.forgetting.state();
    const progress: ProgressJson = { stagesDone: this.stagesDone, rows: this.rows.map((r) => ({ ...r })), forgetting: f.json };
    return { json: progress, arrays: Object.fromEntries(Object.entries(f.arrays).map(([k, v]) => [k, v.slice()])) };
  }

  /** The metric R[stage][task] is made of: the task's first metric, else its loss. */
  metric(task: string): string {
    return this.job.tasks[task]!.metrics[0] ?? 'loss';
  }

  /** Records the evaluation after `stage` as R's row; returns the row. */
  recordRow(stage: PlannedStage, record: EvalRecord): Record<string, number> {
    const row = Object.fromEntries(
      this.tasks.map((t) => {
        const e = record.tasks[t]!;
        const m = this.metric(t);
        return [t, m === 'loss' ? e.loss : e.metrics[m]!];
      }),
    );
    this.rows[stage.index] = row;
    return row;
  }

  /** EWC and L2-SP gradients added to a step's update (shared part; L2-SP's β on the stage's heads); returns the penalty. */
  applyPenalties(stage: PlannedStage, active: readonly string[], params: Float32Array, update: Float32Array): number {
    const { offset, size } = this.layout.shared;
    let penalty = this.forgetting.applyShared(stage.spec.protect, params.subarray(offset, offset + size), update.subarray(offset, offset + size));
    const beta = stage.spec.protect.l2sp?.beta ?? 0;
    if (beta > 0) {
      for (const task of active.filter((t) => stage.tasks.includes(t) && !stage.spec.freeze.includes(t))) {
        const g = this.layout.headGroups.get(task)!;
        for (let k = g.offset; k < g.offset + g.size; k++) {
          update[k]! += beta * params[k]!;
          penalty += 0.5 * beta * params[k]! * params[k]!;
        }
      }
    }
    return penalty;
  }

  /**
   * R[stage][task] and its summaries (Lopez-Paz & Ranzato 2017): average of the last row;
   * backward transfer, mean over tasks of earlier stages of R[last][t] − R[own][t]; forward
   * transfer, mean over tasks of later stages of R[own][t] − baseline[t] (configured
   * single-task values); retention, R[last][t] / R[own][t].
   */
  summary(): ContinualSummary | undefined {
    if (!this.plan.sequential || this.rows.length === 0) return undefined;
    const stages = this.plan.stages;
    const rows = this.rows;
    const last = rows[rows.length - 1]!;
    const own = (t: string): number => stages.findIndex((s) => s.tasks.includes(t));
    const mean = (xs: number[]): number | null => (xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
    const earlier = this.tasks.filter((t) => own(t) < stages.length - 1);
    const baselines = this.job.training.baselines ?? {};
    const later = this.tasks.filter((t) => own(t) > 0 && baselines[t] !== undefined);
    return {
      metric: Object.fromEntries(this.tasks.map((t) => [t, this.metric(t)])),
      stages: stages.map((s) => s.name),
      matrix: rows.map((r) => ({ ...r })),
      ...(rows.length === stages.length
        ? {
            average: mean(this.tasks.map((t) => last[t]!)),
            backwardTransfer: mean(earlier.map((t) => last[t]! - rows[own(t)]![t]!)),
            forwardTransfer: mean(later.map((t) => rows[own(t)]![t]! - baselines[t]!)),
            retention: Object.fromEntries(earlier.map((t) => [t, last[t]! / rows[own(t)]![t]!])),
          }
        : {}),
    };
  }
}
