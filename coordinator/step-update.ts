// The update of one step, once every task's gradient is in: the aggregator turns the tasks'
// shared gradients into one direction, each head takes its own task's gradient (scaled by the
// task's loss weight for loss-weighting methods), sequential mode adds its forgetting
// penalties and keeps frozen and inactive parts still, and the optimizer applies it all. Also
// what the step tells about the tasks: conflicts that last, the aggregator's notes.
import { NonFiniteError } from '../common/errors.js';
import { firstNonFinite } from '../common/finite.js';
import { taskNames } from '../common/job-spec.js';
import { createOptimizer, type Optimizer, type OptimizerState } from '../common/optimizers.js';
import type { PlannedStage, StagePlan } from '../common/stages.js';
import { createRunAggregator } from './aggregation/grouped.js';
import type { AggregationResult, Aggregator } from './aggregation/types.js';
import { ConflictMonitor } from './conflict-monitor.js';
import type { RunContext } from './run-context.js';
import type { StageProgress } from './stage-progress.js';
import type { TaskGradient } from './step-math.js';
import type { ParameterLayout } from '../common/parameter-layout.js';

function stateTasks(layout: ParameterLayout): Map<number, readonly string[]> {
  const rows = layout.graph?.rows ?? [];
  return new Map(layout.state.tensors.map((i) => [i, rows.find((r) => r.weights.includes(layout.tensors[i]!.name))?.tasks ?? layout.tasks]));
}

export interface StepGradients {
  step: number;
  stage: PlannedStage;
  /** The tasks that trained this step, in task order. */
  active: readonly string[];
  /** Each active task's combined gradient: shared part, then its head. */
  perTask: readonly TaskGradient[];
  /** The shared parts of `perTask` (the rows of G). */
  rows: Float32Array[];
  losses: number[];
  /** H = G·Gᵀ of `rows`. */
  gramian: number[][];
}

export class StepUpdate {
  private optimizer: Optimizer;
  private aggregator: Aggregator;
  private conflicts: ConflictMonitor;
  /** One update buffer for the whole run: every part of it is overwritten every step. */
  private buffer: Float32Array | undefined;
  private readonly notesSeen = new Set<string>();
  private midUpdate = false;
  /** The tasks whose outputs depend on each state tensor (by layout index). */
  private stateTasks: Map<number, readonly string[]> | undefined;

  /** `optimizer` and `aggregator` are the current stage's, restored from a checkpoint where the run resumes. */
  constructor(
    private readonly ctx: RunContext,
    private readonly plan: StagePlan,
    private readonly stages: StageProgress,
    private readonly params: Float32Array,
    init: { stage: PlannedStage; optimizer: Optimizer; aggregator: Aggregator },
  ) {
    // The optimizer takes the stage's learning rate.
    this.optimizer = this.stageOptimizer(init.stage);
    this.optimizer.restore(init.optimizer.state());
    this.aggregator = init.aggregator;
    this.conflicts = new ConflictMonitor(this.plan.activeTasks(init.stage.start), ctx.job.diagnostics.conflictWindow);
  }

  /**
   * False between the aggregator's update of its own state and the optimizer step: a failure
   * there leaves the two out of step, and no checkpoint may be taken of it.
   */
  get consistent(): boolean {
    return !this.midUpdate;
  }

  /** For a checkpoint. */
  state(): { optimizer: OptimizerState; aggregator: unknown } {
    return { optimizer: this.optimizer.state(), aggregator: this.aggregator.state() };
  }

  /** Sequential mode: a stage starts with a fresh optimizer (its learning rate) and aggregator (its task count). */
  beginStage(stage: PlannedStage): void {
    this.optimizer = this.stageOptimizer(stage);
    const { name, ...options } = this.ctx.job.training.aggregator;
    this.aggregator = createRunAggregator(this.ctx.layout, name, options, { seed: this.ctx.job.seed });
    this.conflicts = new ConflictMonitor(this.plan.activeTasks(stage.start), this.ctx.job.diagnostics.conflictWindow);
  }

  /**
   * The aggregator's direction for the shared parameters (and loss weights, for loss-weighting
   * methods), written into the update buffer. The aggregator's state has moved on: `apply` must follow.
   */
  aggregate(g: StepGradients): AggregationResult {
    const { layout } = this.ctx;
    const { step, active } = g;
    this.buffer ??= new Float32Array(layout.totalSize);
    // The aggregator writes the trunk's direction straight into the buffer; the heads are copied in by `apply`.
    const trunk = this.trunkOf(this.buffer);
    this.midUpdate = true;
    const aggregated = this.aggregator.aggregate({ grads: g.rows, losses: g.losses, step, tasks: active, gramian: g.gramian, out: trunk });
    if (aggregated.direction.length !== layout.shared.size || firstNonFinite(aggregated.direction) >= 0) {
      throw new NonFiniteError(`aggregator ${this.aggregator.name} returned an invalid direction at step ${step}`);
    }
    const lossWeights = aggregated.lossWeights;
    if (lossWeights && (lossWeights.length !== active.length || !lossWeights.every(Number.isFinite))) {
      throw new NonFiniteError(`aggregator ${this.aggregator.name} returned invalid loss weights at step ${step}: [${lossWeights.join(', ')}]`);
    }
    if (aggregated.direction !== trunk) trunk.set(aggregated.direction);
    return aggregated;
  }

  /** Completes the update buffer (heads, penalties, frozen parts) and applies the optimizer to the parameters; returns the penalty's value. */
  apply(g: StepGradients, aggregated: AggregationResult): number {
    const { layout, job } = this.ctx;
    const { stage, active, perTask } = g;
    const sharedSize = layout.shared.size;
    const update = this.buffer!;
    const trunk = this.trunkOf(update);
    const lossWeights = aggregated.lossWeights;
    if (this.plan.sequential) {
      // Heads of tasks not training now stay as they are; so do frozen groups.
      for (const task of taskNames(job)) {
        if (active.includes(task) && !stage.spec.freeze.includes(task)) continue;
        const group = layout.headGroups.get(task)!;
        update.fill(0, group.offset, group.offset + group.size);
      }
    }
    active.forEach((task, i) => {
      if (stage.spec.freeze.includes(task)) return;
      // Methods defined by loss weights scale each head's gradient by its task's weight (as in LibMTL).
      const { offset, size: headSize } = layout.headGroups.get(task)!;
      const head = perTask[i]!.grads.subarray(sharedSize, sharedSize + headSize);
      const lw = lossWeights?.[i] ?? 1;
      if (lw === 1) update.set(head, offset);
      else for (let k = 0; k < head.length; k++) update[offset + k] = lw * head[k]!;
    });
    const penalty = this.plan.sequential ? this.stages.applyPenalties(stage, active, this.params, update) : 0;
    if (stage.spec.freeze.includes('shared')) trunk.fill(0);
    this.optimizer.step(this.params, update);
    if (layout.state.size > 0) this.applyState(active, perTask);
    if (this.plan.sequential && !stage.spec.freeze.includes('shared')) {
      const { offset, size } = layout.shared;
      this.stages.forgetting.proximalShared(stage.spec.protect, this.params.subarray(offset, offset + size), stage.spec.learningRate ?? job.training.optimizer.learningRate);
    }
    this.midUpdate = false;
    return penalty;
  }

  /**
   * The state (BatchNormalization moving statistics) after the step: for each state tensor, the
   * mean, in task order, of what the units of the active tasks that reach it left (each task's
   * shards already combined in shard order). Tensors no active task reaches keep their value.
   */
  private applyState(active: readonly string[], perTask: readonly TaskGradient[]): void {
    const { layout } = this.ctx;
    this.stateTasks ??= stateTasks(layout);
    const state = layout.state;
    for (const index of state.tensors) {
      const t = layout.tensors[index]!;
      const from = active.flatMap((task, i) => (this.stateTasks!.get(index)!.includes(task) ? [i] : []));
      if (from.length === 0) continue;
      const acc = new Float64Array(t.size);
      for (const i of from) {
        const g = perTask[i]!.grads;
        const at = g.length - state.size + (t.offset - state.offset);
        for (let k = 0; k < t.size; k++) acc[k]! += g[at + k]!;
      }
      for (let k = 0; k < t.size; k++) this.params[t.offset + k] = acc[k]! / from.length;
    }
  }

  private trunkOf(update: Float32Array): Float32Array {
    const { offset, size } = this.ctx.layout.shared;
    return update.subarray(offset, offset + size);
  }

  /** Warns about task pairs whose gradients have conflicted for `diagnostics.conflictWindow` steps, and about new aggregator notes. */
  observe(step: number, cosine: readonly (readonly number[])[], notes: readonly string[] = []): void {
    for (const w of this.conflicts.observe(cosine)) {
      const message = `tasks ${w.tasks[0]} and ${w.tasks[1]} have had conflicting gradients (negative cosine, mean ${w.meanCosine.toFixed(3)}) for ${w.steps} steps`;
      this.ctx.log.warn(message, { step });
      this.ctx.emit({ type: 'task-conflict', level: 'warn', message, data: { step, tasks: w.tasks, steps: w.steps, meanCosine: w.meanCosine } });
    }
    for (const note of notes) {
      // A note (e.g. a solver fallback) is logged the first time; every step records it.
      if (!this.notesSeen.has(note)) this.ctx.log.warn(`aggregator ${this.aggregator.name}: ${note}`, { step });
      this.notesSeen.add(note);
    }
  }

  private stageOptimizer(stage: PlannedStage): Optimizer {
    const spec = this.ctx.job.training.optimizer;
    return createOptimizer({ ...spec, learningRate: stage.spec.learningRate ?? spec.learningRate }, this.ctx.layout.totalSize);
  }
}
