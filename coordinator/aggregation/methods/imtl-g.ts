// imtl-g: impartial gradient. Weights summing to 1 such that d = Σ wᵢ gᵢ has the same
// projection ⟨d, uᵢ⟩ on every unit gradient uᵢ = gᵢ/‖gᵢ‖, so no task is favoured by the size
// of its gradient.
//
// Closed form (as LibMTL's IMTL, from H only): write w = (1 − Σa, a₂ … a_T), so
// d = g₁ − Σⱼ aⱼ(g₁ − gⱼ); the T − 1 conditions ⟨d, u₁ − uⱼ⟩ = 0 are the linear system
// Mᵀa = r with Mᵢⱼ = ⟨g₁ − gᵢ, u₁ − uⱼ⟩ and rⱼ = ⟨g₁, u₁ − uⱼ⟩, every entry a combination of
// Hᵢⱼ/‖gⱼ‖. We solve it by LU with partial pivoting and then check the equal-projection
// conditions on the result.
//
// Degenerate inputs (a zero gradient, duplicated or exactly parallel gradients, a singular
// system): the mean, with a note (the brief's rule). For parallel gradients the mean already has
// equal projections; TorchJD instead solves H·v = ‖g‖ with a pseudo-inverse, which also handles
// duplicates but gives unequal projections elsewhere. No options (LibMTL and TorchJD have none;
// LibMTL's learned loss scales belong to IMTL-L, not implemented here).
import { z } from 'zod';
import { aggregateFromGramian } from '../from-gramian.js';
import { matVec, solveLinear } from '../linalg.js';
import type { AggregatorDefinition } from '../types.js';

const imtlOptions = z.strictObject({});
type ImtlOptions = z.output<typeof imtlOptions>;

/**
 * Pivots below this (in units of the scaled gradients, whose mean squared norm is 1) count as
 * singular: entries of M are ~θ² for gradients at an angle θ, and float32 gradients only fix
 * angles to ~1e-7, so smaller pivots are rounding noise.
 */
const PIVOT_FLOOR = 1e-13;
/** Relative spread of the projections accepted, against Σ|wⱼ|‖gⱼ‖ (a bound on ‖d‖). */
const PROJECTION_SPREAD = 1e-8;

/** The impartial weights on the scaled Gramian, or why there are none. */
function impartialWeights(h: number[][]): { weights: number[] } | { reason: string } {
  const t = h.length;
  const norms = h.map((row, i) => Math.sqrt(row[i]!));
  if (norms.some((n) => n === 0)) return { reason: 'a task gradient is zero, so its unit vector is undefined' };
  const first = (j: number) => h[0]![0]! / norms[0]! - h[0]![j]! / norms[j]!; // ⟨g₁, u₁ − uⱼ⟩
  const r = Array.from({ length: t - 1 }, (_, j) => first(j + 1));
  // Mᵀ directly: (Mᵀ)ⱼᵢ = Mᵢⱼ = ⟨g₁ − gᵢ, u₁ − uⱼ⟩ for i, j = 2 … T.
  const mTransposed = Array.from({ length: t - 1 }, (_, j) =>
    Array.from({ length: t - 1 }, (_, i) => first(j + 1) - (h[i + 1]![0]! / norms[0]! - h[i + 1]![j + 1]! / norms[j + 1]!)),
  );
  const a = solveLinear(mTransposed, r, PIVOT_FLOOR * Math.max(...norms));
  if (!a) return { reason: 'the equal-projection system is singular (duplicate or parallel gradients)' };
  const weights = [1 - a.reduce((s, v) => s + v, 0), ...a];
  const projections = matVec(h, weights).map((v, i) => v / norms[i]!);
  const spread = Math.max(...projections) - Math.min(...projections);
  const bound = weights.reduce((s, w, i) => s + Math.abs(w) * norms[i]!, 0);
  if (!(spread <= PROJECTION_SPREAD * bound)) return { reason: 'the equal-projection system is too ill-conditioned to solve' };
  return { weights };
}

export const imtlG: AggregatorDefinition<ImtlOptions> = {
  name: 'imtl-g',
  summary: 'impartial gradient: equal projection of the direction on every unit task gradient',
  reference: 'Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021',
  options: imtlOptions,
  create: () => ({
    name: 'imtl-g',
    aggregate(input) {
      return aggregateFromGramian('imtl-g', input, (h) => {
        const solved = impartialWeights(h);
        if ('reason' in solved) return { weights: input.grads.map(() => 1 / input.grads.length), notes: [`imtl-g: ${solved.reason}; used the mean`] };
        return { weights: solved.weights };
      });
    },
    state: () => null,
    restore: () => undefined,
  }),
};
