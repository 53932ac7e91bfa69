// Inter-task affinity (TAG: Fifty et al., "Efficiently Identifying Task Groupings for
// Multi-Task Networks", NeurIPS 2021): how much a shared-parameter step on task i alone
// changes task j's loss,
//   Z_{i→j} = 1 − L_j(θ_s − η·g_i) / L_j(θ_s).
// Positive: i's step helps j; negative: it hurts j. The exact value needs a lookahead forward
// pass per (i, j). To second order in η,
//   L_j(θ_s − η·g_i) = L_j − η·⟨g_i, g_j⟩ + ½η²·g_iᵀ ∇²L_j g_i + O(η³),
// so the first-order estimate
//   Z_{i→j} ≈ η·⟨g_i, g_j⟩ / L_j
// differs from the exact value by −½η²·g_iᵀ ∇²L_j g_i / L_j + O(η³): the curvature of L_j
// along g_i sets the size of the difference. The coordinator gets the estimate for free from
// the Gramian H = G·Gᵀ it already computes for the aggregator.
// The step is a plain SGD step θ_s − η·g_i of the configured learning rate η (TAG's
// definition), whatever optimizer trains the run. Adam's step is a preconditioned P·g_i (P
// diagonal and positive), and ⟨P·g_i, g_j⟩ can have the opposite sign of ⟨g_i, g_j⟩: under
// Adam these numbers say what an SGD step would do, not what the run's step does.
// Pure: no I/O; its running sums go into checkpoints so a resumed run reports the same mean.

export type AffinityMatrix = number[][];

export interface AffinityState {
  steps: number;
  /** Row i, column j: Σ over steps of Z_{i→j}. */
  sums: number[][];
  /** The exact lookahead's sums, where it was measured. */
  exact?: AffinityState;
}

/** One step's first-order affinities from the Gramian and the tasks' losses (0 where L_j ≤ 0). */
export function firstOrderAffinity(h: readonly (readonly number[])[], losses: readonly number[], learningRate: number): AffinityMatrix {
  return h.map((row) => row.map((hij, j) => (losses[j]! > 0 ? (learningRate * hij) / losses[j]! : 0)));
}

/** Running mean of the per-step affinity matrices. */
export class AffinityTracker {
  private steps = 0;
  private sums: number[][];

  constructor(
    private readonly tasks: number,
    private readonly learningRate: number,
  ) {
    this.sums = Array.from({ length: tasks }, () => new Array<number>(tasks).fill(0));
  }

  /** Records a measured matrix (the exact lookahead); non-finite ones are left out of the mean. */
  observeMatrix(z: AffinityMatrix): void {
    if (!z.every((row) => row.every(Number.isFinite))) return;
    this.steps++;
    z.forEach((row, i) => row.forEach((v, j) => (this.sums[i]![j]! += v)));
  }

  /** Records one step and returns its matrix. */
  observe(h: readonly (readonly number[])[], losses: readonly number[]): AffinityMatrix {
    const z = firstOrderAffinity(h, losses, this.learningRate);
    if (!z.every((row) => row.every(Number.isFinite))) return z; // recorded per step, kept out of the mean
    this.steps++;
    z.forEach((row, i) => row.forEach((v, j) => (this.sums[i]![j]! += v)));
    return z;
  }

  get observedSteps(): number {
    return this.steps;
  }

  mean(): AffinityMatrix {
    return this.sums.map((row) => row.map((s) => (this.steps > 0 ? s / this.steps : 0)));
  }

  state(): AffinityState {
    return { steps: this.steps, sums: this.sums.map((r) => r.slice()) };
  }

  restore(state: AffinityState): void {
    if (state.sums.length !== this.tasks || state.sums.some((r) => r.length !== this.tasks)) {
      throw new RangeError(`affinity state is for ${state.sums.length} tasks, this run has ${this.tasks}`);
    }
    this.steps = state.steps;
    this.sums = state.sums.map((r) => r.slice());
  }
}

/** `{ from: { to: Z } }` keyed by task name, the shape metrics.jsonl and summary.json use. */
export function affinityRecord(tasks: readonly string[], z: AffinityMatrix): Record<string, Record<string, number>> {
  return Object.fromEntries(tasks.map((from, i) => [from, Object.fromEntries(tasks.map((to, j) => [to, z[i]![j]!]))]));
}
