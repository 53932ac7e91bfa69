// Inter-task affinity (TAG) as the run records it: the first-order estimate every step, from
// the Gramian, and the exact value every `diagnostics.exactAffinityEvery` steps, measured before
// the step's update: for each active task i, the weights θ − η·gᵢ (shared part; η the stage's learning
// rate) go to the workers as a lookahead version of their own, and every active task j
// evaluates its loss on its batch of this step at them:
//   Z_{i→j} = 1 − L_j(θ − η gᵢ) / L_j(θ).
// Diagnostics only: the update is untouched.
import type { PlannedStage, StagePlan } from '../common/stages.js';
import { meanLoss } from './evaluation.js';
import type { PhaseRunner } from './phase-runner.js';
import type { RunContext } from './run-context.js';
import { AffinityTracker, affinityRecord, firstOrderAffinity, type AffinityMatrix, type AffinityState } from './task-affinity.js';
import { batchUnits } from './units.js';
import type { WeightsBroadcast } from './weights-broadcast.js';

/** Lookahead weights versions are numbered apart from the run's. */
const LOOKAHEAD_VERSION_BASE = 0x8000_0000;
const LOOKAHEAD_VERSIONS = 0x4000_0000;

export interface LookaheadHost {
  readonly params: Float32Array;
  readonly plan: StagePlan;
  readonly phases: PhaseRunner;
  /** Its phases send what it holds to the workers (PhaseRunner's sendWeights). */
  readonly broadcast: WeightsBroadcast;
  /** The run's own weights version (what the broadcast goes back to). */
  version(): number;
}

type AffinityMeans = Record<string, Record<string, number>>;

export interface AffinitySummary {
  estimate: 'first-order';
  steps: number;
  mean: AffinityMeans;
  exact?: { steps: number; mean: AffinityMeans };
}

export class AffinityDiagnostics {
  /** Means over the steps where every task trained (all of them, unless sequential). */
  private readonly firstOrderMean: AffinityTracker;
  private readonly exactMean: AffinityTracker;
  private serial = 0;

  constructor(
    private readonly ctx: RunContext,
    private readonly host: LookaheadHost,
    private readonly tasks: readonly string[],
    resume?: AffinityState,
  ) {
    const lr = ctx.job.training.optimizer.learningRate;
    this.firstOrderMean = new AffinityTracker(tasks.length, lr);
    this.exactMean = new AffinityTracker(tasks.length, lr);
    if (resume) this.firstOrderMean.restore(resume);
    if (resume?.exact) this.exactMean.restore(resume.exact);
  }

  /** The running sums, for a checkpoint. */
  state(): AffinityState {
    return { ...this.firstOrderMean.state(), ...(this.exactMean.observedSteps > 0 ? { exact: this.exactMean.state() } : {}) };
  }

  /** Mean task affinity over the steps so far, `{ from: { to: Z } }`. */
  summary(): AffinitySummary {
    const exact = this.exactMean;
    return {
      estimate: 'first-order',
      steps: this.firstOrderMean.observedSteps,
      mean: affinityRecord(this.tasks, this.firstOrderMean.mean()),
      ...(exact.observedSteps > 0 ? { exact: { steps: exact.observedSteps, mean: affinityRecord(this.tasks, exact.mean()) } } : {}),
    };
  }

  /** This step's first-order estimate for the active tasks, from the Gramian and the losses; `learningRate` is the stage's. */
  firstOrder(active: readonly string[], h: readonly (readonly number[])[], losses: readonly number[], learningRate: number): AffinityMatrix {
    return active.length === this.tasks.length ? this.firstOrderMean.observe(h, losses) : firstOrderAffinity(h, losses, learningRate);
  }

  /** True when `step` measures the exact affinity. */
  exactDue(step: number, active: readonly string[]): boolean {
    const every = this.ctx.job.diagnostics.exactAffinityEvery;
    return every > 0 && step % every === 0 && active.length > 1;
  }

  /** Z for the active tasks (rows: from, columns: to), given their shared gradients and losses at θ. */
  async measure(step: number, stage: PlannedStage, active: readonly string[], rows: readonly Float32Array[], losses: readonly number[]): Promise<number[][]> {
    const { params, plan, phases, broadcast } = this.host;
    const lr = stage.spec.learningRate ?? this.ctx.job.training.optimizer.learningRate;
    const { offset, size } = this.ctx.layout.shared;
    const z: number[][] = [];
    try {
      for (const g of rows) {
        const look = params.slice();
        for (let p = 0; p < size; p++) look[offset + p]! -= lr * g[p]!;
        const version = LOOKAHEAD_VERSION_BASE + (this.serial++ % LOOKAHEAD_VERSIONS);
        // Sent with the lookahead phase's units.
        broadcast.update(look, version);
        const units = batchUnits(plan, step, active, 'lookahead', () => 0);
        await phases.run('lookahead', step, units, version);
        z.push(active.map((task, j) => (losses[j]! > 0 ? 1 - meanLoss(units, task) / losses[j]! : 0)));
      }
    } finally {
      // Workers that join from here on get the run's real weights.
      broadcast.update(params, this.host.version());
    }
    if (active.length === this.tasks.length) this.exactMean.observeMatrix(z);
    return z;
  }
}
