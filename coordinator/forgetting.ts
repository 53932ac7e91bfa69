// Protection against forgetting in sequential mode, acting at the coordinator on the shared
// parameters (docs/design.md): the regularisers' gradients are added to the aggregated direction.
//   EWC (Kirkpatrick et al., PNAS 2017): λ/2 Σ_k Σ_p F_k,p (θ_p − θ*_k,p)², F_k the diagonal
//     empirical Fisher of stage k's tasks (summed over them) at θ*_k, the parameters at the
//     end of stage k. Gradient λ Σ_k F_k ⊙ (θ − θ*_k).
//   Online EWC (Schwarz et al., "Progress & Compress", ICML 2018): one penalty anchored at the
//     last θ*, with F = Σ_k decay^(age of k) F_k. Gradient λ F ⊙ (θ − θ*_last).
//   L2-SP (Li, Grandvalet & Davoine, ICML 2018): α/2 ‖θ_s − θ_s⁰‖² on the shared parameters,
//     θ_s⁰ their value when the stage began, plus β/2 ‖θ_h‖² on the stage's own heads.
// Replay needs no penalty: earlier tasks simply train again on a fraction of the batch (see
// common/stages.ts). Pure arithmetic over Float32Arrays, accumulated in double precision.
import type { StageSpec } from '../common/job-schema.js';

export interface ForgettingState {
  json: { stages: number };
  arrays: Record<string, Float32Array>;
}

export class ForgettingPenalties {
  /** Per ended stage, in order: the Fisher of its tasks and the shared parameters it ended with. */
  private readonly ewc: Array<{ fisher: Float32Array; anchor: Float32Array }> = [];
  /** The shared parameters when the current stage began (L2-SP). */
  private start: Float32Array | undefined;

  constructor(private readonly sharedSize: number) {}

  /** Records stage `k`'s Fisher (shared part) and its final shared parameters. */
  addFisher(fisher: Float32Array, anchor: Float32Array): void {
    if (fisher.length !== this.sharedSize || anchor.length !== this.sharedSize) throw new RangeError('Fisher and anchor must cover the shared parameters');
    this.ewc.push({ fisher: fisher.slice(), anchor: anchor.slice() });
  }

  /** A stage begins with these shared parameters (the L2-SP starting point). */
  beginStage(shared: Float32Array): void {
    this.start = shared.slice();
  }

  get fisherCount(): number {
    return this.ewc.length;
  }

  /**
   * Adds the stage's penalty gradients to `trunk` (the shared part of the update, same
   * indexing as `shared`) and returns the penalty's value (for the step record).
   */
  applyShared(protect: StageSpec['protect'], shared: Float32Array, trunk: Float32Array): number {
    let penalty = 0;
    const ewc = protect.ewc;
    if (ewc && !ewc.decoupled && this.ewc.length > 0) {
      const lambda = ewc.lambda;
      if (ewc.online) {
        const last = this.ewc[this.ewc.length - 1]!.anchor;
        for (let p = 0; p < shared.length; p++) {
          const f = this.fisherAt(ewc, p);
          const d = shared[p]! - last[p]!;
          trunk[p]! += lambda * f * d;
          penalty += 0.5 * lambda * f * d * d;
        }
      } else {
        for (const { fisher, anchor } of this.ewc) {
          for (let p = 0; p < shared.length; p++) {
            const d = shared[p]! - anchor[p]!;
            trunk[p]! += lambda * fisher[p]! * d;
            penalty += 0.5 * lambda * fisher[p]! * d * d;
          }
        }
      }
    }
    const l2sp = protect.l2sp;
    if (ewc?.decoupled && this.ewc.length > 0) penalty += this.ewcPenalty(ewc, shared);
    if (l2sp && l2sp.alpha > 0 && this.start) {
      for (let p = 0; p < shared.length; p++) {
        const d = shared[p]! - this.start[p]!;
        trunk[p]! += l2sp.alpha * d;
        penalty += 0.5 * l2sp.alpha * d * d;
      }
    }
    return penalty;
  }

  /** Online EWC's Fisher at parameter p: Σ_k decay^(age of k) F_k,p (0 for the standard variant, which keeps one penalty per stage). */
  private fisherAt(ewc: NonNullable<StageSpec['protect']['ewc']>, p: number): number {
    if (!ewc.online) return 0;
    const n = this.ewc.length;
    let f = 0;
    for (let k = 0; k < n; k++) f += ewc.decay ** (n - 1 - k) * this.ewc[k]!.fisher[p]!;
    return f;
  }

  private ewcPenalty(ewc: NonNullable<StageSpec['protect']['ewc']>, shared: Float32Array): number {
    let penalty = 0;
    if (ewc.online) {
      const last = this.ewc[this.ewc.length - 1]!.anchor;
      for (let p = 0; p < shared.length; p++) penalty += 0.5 * ewc.lambda * this.fisherAt(ewc, p) * (shared[p]! - last[p]!) ** 2;
    } else {
      for (const { fisher, anchor } of this.ewc) for (let p = 0; p < shared.length; p++) penalty += 0.5 * ewc.lambda * fisher[p]! * (shared[p]! - anchor[p]!) ** 2;
    }
    return penalty;
  }

  /**
   * Decoupled EWC, after the optimizer step of learning rate η: the proximal step of the
   * penalty, θ ← argmin_x ½‖x − θ‖² + η·λ/2 Σ_k F_k (x − θ*_k)², per parameter
   * x = (θ + ηλ Σ_k F_k θ*_k) / (1 + ηλ Σ_k F_k): exact for any λ, never overshooting.
   */
  proximalShared(protect: StageSpec['protect'], shared: Float32Array, learningRate: number): void {
    const ewc = protect.ewc;
    if (!ewc?.decoupled || this.ewc.length === 0) return;
    const c = learningRate * ewc.lambda;
    if (ewc.online) {
      const last = this.ewc[this.ewc.length - 1]!.anchor;
      for (let p = 0; p < shared.length; p++) {
        const w = c * this.fisherAt(ewc, p);
        shared[p] = (shared[p]! + w * last[p]!) / (1 + w);
      }
      return;
    }
    for (let p = 0; p < shared.length; p++) {
      let w = 0;
      let pull = 0;
      for (const { fisher, anchor } of this.ewc) {
        w += c * fisher[p]!;
        pull += c * fisher[p]! * anchor[p]!;
      }
      shared[p] = (shared[p]! + pull) / (1 + w);
    }
  }

  state(): ForgettingState {
    const arrays: Record<string, Float32Array> = {};
    this.ewc.forEach((e, k) => {
      arrays[`ewc.${k}.fisher`] = e.fisher;
      arrays[`ewc.${k}.anchor`] = e.anchor;
    });
    if (this.start) arrays['l2sp.start'] = this.start;
    return { json: { stages: this.ewc.length }, arrays };
  }

  restore(state: ForgettingState): void {
    this.ewc.length = 0;
    for (let k = 0; k < state.json.stages; k++) {
      const fisher = state.arrays[`ewc.${k}.fisher`];
      const anchor = state.arrays[`ewc.${k}.anchor`];
      if (!fisher || !anchor) throw new RangeError(`forgetting state lacks the EWC arrays of stage ${k}`);
      this.addFisher(fisher, anchor);
    }
    const start = state.arrays['l2sp.start'];
    this.start = start ? start.slice() : undefined;
  }
}
