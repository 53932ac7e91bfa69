// nash-mtl: the Nash bargaining solution between tasks. α > 0 with αᵢ·(Hα)ᵢ = 1 for every task,
// i.e. each task's utility ⟨gᵢ, d⟩ equals 1/αᵢ for d = Σ αⱼ gⱼ; α is the unique minimiser of the
// convex ½αᵀHα − Σ log αᵢ, which we find by damped Newton (self-concordant, so it converges
// globally; in practice 5–30 steps). The direction is then put on the mean scale: weights
// α/Σα, so d(cG) = c·d(G) and a direction is comparable with the mean's.
//
// Differences from LibMTL/TorchJD (both port the official code: ECOS on a sequence of convex
// approximations, 20 iterations, warm-started from the previous α, raw α as weights):
// - we solve the optimality condition itself from a fixed start (to a residual of 1e-10, ~1e-15
//   in practice; near Pareto-stationary points, where cancellation floors the residual, until
//   the Newton decrement stays tiny), so a step's weights depend only on its Gramian, not on
//   the history; and we report normalised weights;
// - max_norm defaults to 0 (off): LibMTL's 1.0 clips the whole shared gradient in absolute
//   units, which is the optimizer's business; when set, d is scaled down to that norm
//   (computed from H, without another pass over P);
// - update_every (1, as LibMTL): between updates the previous weights are reused without
//   computing H (unless max_norm needs it); the last weights and the step counter are the state.
// H is scaled by its mean diagonal and 1e-10 of it added to the diagonal: without it no solution
// exists when a gradient is zero or some positive combination of gradients vanishes (the
// bargaining set is empty); with it, those tasks get large α and d ≈ 0 (with a note).
import { z } from 'zod';
import { AggregationInputError } from '../../../common/errors.js';
import { gramian, weightedSum } from '../gramian.js';
import { checkAggregationInput } from '../input-checks.js';
import { stateRecord } from '../state-codec.js';
import { addToDiagonal, choleskySolve, dot, matVec, regularizedCholesky, scaleGramian } from '../linalg.js';
import type { AggregationResult, AggregatorDefinition } from '../types.js';

const nashOptions = z.strictObject({
  update_every: z.number().int().min(1).default(1),
  max_norm: z.number().min(0).default(0),
});
type NashOptions = z.output<typeof nashOptions>;

const REGULARIZATION = 1e-10;
const MAX_NEWTON_STEPS = 200;
/** Accepted max |αᵢ(Hα)ᵢ − 1| (Newton reaches ~1e-15 when it converges). */
const RESIDUAL_TOLERANCE = 1e-10;
/** A best iterate this close is still used (with a note) when Newton fails. */
const USABLE_RESIDUAL = 1e-3;
/** Squared Newton decrement below which, held for STALL_STEPS steps, we are at rounding level. */
const STALLED_DECREMENT = 1e-8;
const STALL_STEPS = 5;

function logBarrierObjective(a: number[][], alpha: readonly number[]): number {
  return 0.5 * dot(alpha, matVec(a, alpha)) - alpha.reduce((s, v) => s + Math.log(v), 0);
}

/** Normalised bargaining weights on the scaled Gramian (mean diagonal 1), plus any notes. */
function bargainingWeights(h: number[][]): { weights: number[]; notes: string[] } {
  const t = h.length;
  const a = addToDiagonal(h, REGULARIZATION);
  // Start on the ray through 1 at the point where Σ αᵢ(Hα)ᵢ = T.
  const total = a.reduce((s, row) => s + row.reduce((u, v) => u + v, 0), 0);
  let alpha = new Array<number>(t).fill(Math.sqrt(t / total));
  let best = { alpha, residual: Number.POSITIVE_INFINITY };
  let stalledSteps = 0;
  let converged = false;
  for (let step = 0; step <= MAX_NEWTON_STEPS && !converged; step++) {
    const products = matVec(a, alpha).map((v, i) => v * alpha[i]!);
    const residual = Math.max(...products.map((v) => Math.abs(v - 1)));
    if (residual < best.residual) best = { alpha, residual };
    converged = residual <= RESIDUAL_TOLERANCE || stalledSteps >= STALL_STEPS;
    if (converged || step === MAX_NEWTON_STEPS) break;
    // Newton in the scaled variable y = Δα/α: (D·A·D + I)·y = 1 − α∘(Aα), D = diag(α). The
    // matrix is ≥ I, so the system is always well posed whatever the conditioning of H.
    const system = a.map((row, i) => row.map((v, j) => alpha[i]! * v * alpha[j]! + (i === j ? 1 : 0)));
    const factor = regularizedCholesky(system);
    if (!factor) break;
    const rhs = products.map((v) => 1 - v);
    const y = choleskySolve(factor.factor, rhs);
    const slope = -dot(rhs, y); // −(Newton decrement)²: the directional derivative along Δα
    if (!(slope < 0)) break;
    // Near a Pareto-stationary point α is large along a near-null direction of H and α∘(Hα)
    // cancels: the residual floors at rounding (~1e-4) while the decrement, which bounds the
    // objective's gap, is tiny. A decrement that stays below 1e-8 means we are there.
    stalledSteps = -slope < STALLED_DECREMENT ? stalledSteps + 1 : 0;
    // Below 1/16 (decrement < 1/4) the full step is safe for this self-concordant objective
    // and converges quadratically; there, objective differences are below rounding, so
    // backtracking on them would stall.
    if (-slope < 1 / 16) {
      alpha = alpha.map((v, i) => v * (1 + y[i]!));
      continue;
    }
    let length = Math.min(1, ...y.map((v) => (v < 0 ? -0.99 / v : 1)));
    const current = logBarrierObjective(a, alpha);
    let next = alpha.map((v, i) => v * (1 + length * y[i]!));
    while (length > 1e-12 && !(logBarrierObjective(a, next) <= current + 1e-4 * length * slope)) {
      length /= 2;
      next = alpha.map((v, i) => v * (1 + length * y[i]!));
    }
    if (length <= 1e-12) break;
    alpha = next;
  }
  const notes: string[] = [];
  let weighted = best.alpha;
  if (!converged) {
    if (best.residual <= USABLE_RESIDUAL) {
      notes.push(`nash-mtl: Newton stopped at residual ${best.residual.toExponential(1)}; used its best iterate`);
    } else {
      notes.push(`nash-mtl: Newton did not converge (residual ${best.residual.toExponential(1)}); used the mean`);
      weighted = new Array<number>(t).fill(1);
    }
  }
  if (weighted.some((v) => REGULARIZATION * v * v > 0.5)) {
    notes.push('nash-mtl: a gradient is zero or the gradients are nearly Pareto-stationary; the regularised bargaining direction is ≈ 0');
  }
  const sum = weighted.reduce((s, v) => s + v, 0);
  return { weights: weighted.map((v) => v / sum), notes };
}

function restoreWeights(value: unknown): number[] | null {
  if (value === null) return null;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new AggregationInputError('nash-mtl: state.weights must be null or an array of finite numbers');
  }
  return value as number[];
}

export const nashMtl: AggregatorDefinition<NashOptions> = {
  name: 'nash-mtl',
  summary: 'Nash bargaining between tasks: αᵢ⟨gᵢ, d⟩ = 1, weights normalised to the mean scale',
  reference: 'Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022',
  options: nashOptions,
  create: (options) => {
    let step = 0;
    let lastWeights: number[] | null = null;
    return {
      name: 'nash-mtl',
      aggregate(input): AggregationResult {
        const p = checkAggregationInput(input);
        const t = input.grads.length;
        const update = step % options.update_every === 0 || lastWeights?.length !== t;
        step++;
        if (t === 1) {
          lastWeights = [1];
          return { direction: weightedSum(input.grads, [1], p, input.out), weights: [1] };
        }
        const needGramian = update || options.max_norm > 0;
        const scaled = needGramian ? scaleGramian(input.gramian ?? gramian(input.grads), t) : null;
        if (scaled?.kind === 'invalid') throw new AggregationInputError(`nash-mtl: ${scaled.reason}`);
        const notes: string[] = [];
        let weights: number[];
        if (update) {
          const solved = scaled?.kind === 'scaled' ? bargainingWeights(scaled.matrix) : { weights: input.grads.map(() => 1 / t), notes: [] };
          weights = solved.weights;
          notes.push(...solved.notes);
          lastWeights = [...weights];
        } else {
          weights = lastWeights ? [...lastWeights] : input.grads.map(() => 1 / t);
        }
        if (options.max_norm > 0 && scaled?.kind === 'scaled') {
          const norm = Math.sqrt(Math.max(0, dot(weights, matVec(scaled.matrix, weights))) * scaled.scale);
          if (norm > options.max_norm) weights = weights.map((w) => (w * options.max_norm) / norm);
        }
        const result = { direction: weightedSum(input.grads, weights, p, input.out), weights };
        return notes.length > 0 ? { ...result, notes } : result;
      },
      state: () => ({ step, weights: lastWeights }),
      restore(state) {
        const record = stateRecord(state, 'nash-mtl');
        if (typeof record.step !== 'number' || !Number.isSafeInteger(record.step) || record.step < 0) {
          throw new AggregationInputError('nash-mtl: state.step must be a non-negative integer');
        }
        lastWeights = restoreWeights(record.weights);
        step = record.step;
      },
    };
  },
};
