// cagrad: conflict-averse gradient. Among directions within c‖g₀‖ of the mean gradient g₀, take
// the one that most improves the worst task. Its dual is
//   w* = argmin_{w∈Δ} ⟨g_w, g₀⟩ + c‖g₀‖·‖g_w‖,   g_w = Σ wᵢ gᵢ,
// and d = g₀ + (c‖g₀‖/‖g_w*‖)·g_w*, divided by (1 + c²) when rescale = 1 (LibMTL's default),
// by (1 + c) when rescale = 2, left as is when rescale = 0.
//
// Defaults: c = 0.5 and rescale = 1, as LibMTL (calpha, rescale). TorchJD's CAGrad has no
// rescale (our rescale = 0) and no default c.
//
// How we solve it (objective convex but not a QP). Writing ‖g_w‖ = min_{τ>0} ‖g_w‖²/(2τ) + τ/2,
// the optimal w is the solution of the simplex QP
//   w(τ) = argmin_{w∈Δ} ½wᵀHw + (τ/(c‖g₀‖))·wᵀH·1/T
// at the τ where τ = ‖g_{w(τ)}‖. τ − ‖g_{w(τ)}‖ is increasing in τ (partial minimisation of a
// jointly convex function), so we bracket the root on [1e-9, 1]·max‖gᵢ‖ and find it by the
// Illinois method on log τ; each evaluation is an exact active-set QP (linalg.ts). ~20 QPs.
//
// Near a Pareto-stationary point g_w* → 0 and c‖g₀‖/‖g_w*‖ blows up; LibMTL adds 1e-8 (absolute)
// under the square root and to the norm, TorchJD returns zero weights. We add 1e-10 of the mean
// squared gradient norm to H (relative, so 1e-20 and 1e20 gradients behave alike): the norm in
// the objective becomes √(‖g_w‖² + 1e-10‖w‖²), which keeps d = g₀ + c‖g₀‖·g_w/that-norm inside
// the ball and continuous, and changes nothing measurable when ‖g_w‖² ≫ 1e-10.
// c = 0 (and g₀ = 0) give exactly the mean: weights 1/T.
import { z } from 'zod';
import { aggregateFromGramian } from '../from-gramian.js';
import { addToDiagonal, dot, matVec, simplexQp } from '../linalg.js';
import type { AggregatorDefinition } from '../types.js';

const cagradOptions = z.strictObject({
  c: z.number().min(0).default(0.5),
  rescale: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(1),
});
type CagradOptions = z.output<typeof cagradOptions>;

const NORM_SMOOTHING = 1e-10;
const LOWEST_TAU = 1e-9;
const MAX_ROOT_STEPS = 100;

interface Evaluation {
  logTau: number;
  tau: number;
  /** The smoothed ‖g_w‖ of w(τ). */
  norm: number;
  gap: number;
  w: number[];
  converged: boolean;
}

/** The conflict-averse weights on the scaled Gramian (before rescaling), plus any notes. */
function conflictAverseWeights(h: number[][], c: number): { weights: number[]; notes: string[] } {
  const t = h.length;
  const mean = new Array<number>(t).fill(1 / t);
  const towardMean = matVec(h, mean); // ⟨gᵢ, g₀⟩
  const radius = c * Math.sqrt(Math.max(0, dot(mean, towardMean)));
  if (!(radius > 0)) return { weights: mean, notes: [] };
  const a = addToDiagonal(h, NORM_SMOOTHING);
  const notes: string[] = [];
  let unsolved = 0;
  const evaluate = (logTau: number): Evaluation => {
    const tau = Math.exp(logTau);
    const solution = simplexQp(
      a,
      towardMean.map((v) => (v * tau) / radius),
    );
    if (!solution.converged) unsolved++;
    const norm = Math.sqrt(Math.max(0, dot(solution.x, matVec(a, solution.x))));
    return { logTau, tau, norm, gap: tau - norm, w: solution.x, converged: solution.converged };
  };
  const largestNorm = Math.sqrt(Math.max(...a.map((row, i) => row[i]!)));
  let lo = evaluate(Math.log(largestNorm * LOWEST_TAU));
  let hi = evaluate(Math.log(largestNorm));
  let best = Math.abs(lo.gap) < Math.abs(hi.gap) ? lo : hi;
  if (lo.gap >= 0) {
    notes.push('cagrad: the combination g_w vanishes (gradients nearly Pareto-stationary); used the smallest trust radius');
  } else if (hi.gap > 0) {
    // Illinois: regula falsi on log τ, halving the stale end's gap so both ends move.
    let [loGap, hiGap] = [lo.gap, hi.gap];
    let lastSide = 0;
    let solved = false;
    for (let step = 0; step < MAX_ROOT_STEPS && !solved; step++) {
      const guess = (lo.logTau * hiGap - hi.logTau * loGap) / (hiGap - loGap);
      const next = evaluate(guess > lo.logTau && guess < hi.logTau ? guess : (lo.logTau + hi.logTau) / 2);
      if (Math.abs(next.gap) < Math.abs(best.gap)) best = next;
      solved = Math.abs(next.gap) <= 1e-12 * next.tau || hi.logTau - lo.logTau <= 1e-13;
      if (next.gap > 0) {
        [hi, hiGap] = [next, next.gap];
        if (lastSide === 1) loGap /= 2;
        lastSide = 1;
      } else {
        [lo, loGap] = [next, next.gap];
        if (lastSide === -1) hiGap /= 2;
        lastSide = -1;
      }
    }
    if (!solved) notes.push(`cagrad: radius search stopped after ${MAX_ROOT_STEPS} steps (relative gap ${(best.gap / best.tau).toExponential(1)})`);
  }
  if (unsolved > 0) notes.push(`cagrad: ${unsolved} inner QP(s) ended on the projected-gradient fallback`);
  // At the root τ = ‖g_w‖; max() keeps d inside the ball when the bracket ended elsewhere.
  const gain = radius / Math.max(best.tau, best.norm);
  return { weights: best.w.map((w) => 1 / t + gain * w), notes };
}

export const cagrad: AggregatorDefinition<CagradOptions> = {
  name: 'cagrad',
  summary: 'conflict-averse gradient: best worst-task improvement within c·‖g₀‖ of the mean',
  reference: 'Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient Descent for Multi-task Learning", NeurIPS 2021',
  options: cagradOptions,
  create: (options) => ({
    name: 'cagrad',
    aggregate(input) {
      return aggregateFromGramian('cagrad', input, (h) => {
        // c = 0 is the mean by definition.
        if (options.c === 0) return { weights: input.grads.map(() => 1 / input.grads.length) };
        const { weights: raw, notes } = conflictAverseWeights(h, options.c);
        const divisor = options.rescale === 1 ? 1 + options.c ** 2 : options.rescale === 2 ? 1 + options.c : 1;
        return { weights: raw.map((w) => w / divisor), notes };
      });
    },
    state: () => null,
    restore: () => undefined,
  }),
};
