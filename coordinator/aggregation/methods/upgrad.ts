// upgrad: unconflicting projection of gradients. Each gᵢ is projected onto the dual cone
// {x : ⟨gⱼ, x⟩ ≥ 0 for all j} (the directions that conflict with no task) and d is the mean of
// the projections, so ⟨gⱼ, d⟩ ≥ 0 for every task and d = g₀ when nothing conflicts.
//
// The projection of Gᵀu is Gᵀ(u + λ) with λ the solution of the dual QP
//   λ = argmin_{λ≥0} ½λᵀ(Ĥ + εI)λ + λᵀĤu,   Ĥ = H / tr(H),
// (for gᵢ, u = eᵢ), solved exactly by the active set in linalg.ts; weights = (1/T)Σᵢ(eᵢ + λ⁽ⁱ⁾).
//
// reg_eps: ε = 1e-4 as TorchJD, on the same scale as TorchJD's: H is divided by its trace
// (‖G‖²_F) before ε is added to the diagonal, so the regularisation is 1e-4·‖G‖²_F in
// absolute terms and 1e-20 and 1e20 gradients give the same weights. It bounds any residual
// conflict: ⟨gⱼ, d⟩ ≥ −ε·tr(H)·(wⱼ − 1/T). TorchJD puts ε in the linear term too (it minimises
// (u+λ)ᵀ(Ĥ+εI)(u+λ)); we keep Ĥ there, the exact dual of the projection, so λ = 0 (no change)
// whenever gᵢ conflicts with no task. The two differ by O(ε).
// norm_eps (TorchJD, 1e-4): below that absolute ‖G‖²_F TorchJD zeroes the Gramian and returns
// the mean. We do not copy it: it would make every step with ‖G‖_F < 0.01 plain averaging and
// break d(cG) = c·d(G); only an exactly zero G is special (zeros, uniform weights).
import { z } from 'zod';
import { aggregateFromGramian } from '../from-gramian.js';
import { addToDiagonal, matVec, nonNegativeQp } from '../linalg.js';
import type { AggregatorDefinition } from '../types.js';

const upgradOptions = z.strictObject({
  reg_eps: z.number().min(0).default(1e-4),
});
type UpgradOptions = z.output<typeof upgradOptions>;

/**
 * Weights u + λ of the projection of Gᵀu onto the dual cone of the rows of G, given the
 * trace-normalised Gramian `h` (tr = 1) and the regularisation ε. `converged` is false when the
 * QP ended on its fallback (λ is then its best feasible point).
 */
export function dualConeWeights(h: number[][], u: readonly number[], regEps: number): { weights: number[]; converged: boolean; residual: number } {
  const solution = nonNegativeQp(addToDiagonal(h, regEps), matVec(h, u));
  return { weights: u.map((v, i) => v + solution.x[i]!), converged: solution.converged, residual: solution.kktResidual };
}

/** H / tr(H) from the mean-diagonal-scaled Gramian (whose trace is T). */
export function traceNormalized(scaledMatrix: number[][]): number[][] {
  const t = scaledMatrix.length;
  return scaledMatrix.map((row) => row.map((v) => v / t));
}

export const upgrad: AggregatorDefinition<UpgradOptions> = {
  name: 'upgrad',
  summary: 'mean of the task gradients each projected onto the dual cone (no task conflicts with d)',
  reference: 'Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", arXiv 2024 (TorchJD)',
  options: upgradOptions,
  create: (options) => ({
    name: 'upgrad',
    aggregate(input) {
      return aggregateFromGramian('upgrad', input, (scaled) => {
        const t = input.grads.length;
        const h = traceNormalized(scaled);
        const weights = new Array<number>(t).fill(0);
        const unsolved: string[] = [];
        for (let i = 0; i < t; i++) {
          const unit = weights.map((_, j) => (j === i ? 1 : 0));
          const projection = dualConeWeights(h, unit, options.reg_eps);
          if (!projection.converged) unsolved.push(`${i} (residual ${projection.residual.toExponential(1)})`);
          projection.weights.forEach((w, j) => (weights[j] = weights[j]! + w / t));
        }
        if (unsolved.length === 0) return { weights };
        return { weights, notes: [`upgrad: the projection QP of task(s) ${unsolved.join(', ')} ended on its fallback; used its best feasible point`] };
      });
    },
    state: () => null,
    restore: () => undefined,
  }),
};
