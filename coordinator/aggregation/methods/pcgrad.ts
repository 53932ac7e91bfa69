// pcgrad: projecting conflicting gradients. Each task gradient gᵢ is checked, in a seeded random
// order, against every other task's original gradient gⱼ; when they conflict (⟨gᵢ', gⱼ⟩ < 0) the
// component along gⱼ is removed. d is the mean of the projected rows (LibMTL sums them; we keep
// the mean scale of docs/aggregators.md).
//
// Projections are always off the ORIGINAL rows (as in the paper and LibMTL), so every projected
// row is a combination of the original rows: gᵢ' = Σₖ cᵢₖ gₖ. We only track the coefficient
// vectors cᵢ, using ⟨gᵢ', gⱼ⟩ = Σₖ cᵢₖ Hₖⱼ, and form d with one weighted sum over G at the end;
// the T projected copies of G are never materialised.
//
// Differences from LibMTL: its loop also checks gᵢ' against gᵢ itself (a no-op unless gᵢ' has
// been turned against gᵢ); we skip i as the paper's algorithm does. LibMTL adds 1e-8 to ‖gⱼ‖²,
// which silently disables the projection for gradients below ~1e-4; we divide exactly and skip
// only rows that are exactly zero (they conflict with nothing).
import { z } from 'zod';
import { AggregationInputError } from '../../../common/errors.js';
import { Rng } from '../../../common/random.js';
import { weightedSum } from '../gramian.js';
import { checkedGramian } from '../input-checks.js';
import type { AggregatorDefinition } from '../types.js';

type PcgradOptions = { seed?: number | undefined };

/**
 * The projected rows as coefficients over the original rows: result[i] = cᵢ with
 * gᵢ' = Σₖ cᵢₖ gₖ. `orderOf(i)` lists the rows j ≠ i in the order gᵢ is checked against them.
 *
 * What PCGrad guarantees, and no more: right after gᵢ' has been checked against gⱼ,
 * ⟨gᵢ', gⱼ⟩ ≥ 0 (exactly 0, up to rounding, when it was projected). A later projection off
 * another gₖ can make gᵢ' conflict with gⱼ again, and PCGrad does not revisit gⱼ, so only the
 * LAST row in gᵢ's order is certain not to conflict with the final gᵢ'.
 *
 * Exported for tests; methods/index.ts must re-export only the `pcgrad` definition.
 */
export function projectConflicting(h: readonly (readonly number[])[], orderOf: (i: number) => readonly number[]): number[][] {
  const t = h.length;
  return Array.from({ length: t }, (_, i) => {
    const c = new Array<number>(t).fill(0);
    c[i] = 1;
    for (const j of orderOf(i)) {
      const normSq = h[j]![j]!;
      if (!(normSq > 0)) continue; // a zero row conflicts with nothing
      let dot = 0;
      for (let k = 0; k < t; k++) dot += c[k]! * h[k]![j]!;
      if (dot < 0) c[j] = c[j]! - dot / normSq;
    }
    return c;
  });
}

/** The rows other than i, in an order that is a pure function of (seed, method, step, i). */
export function shuffledOthers(seed: number, method: string, step: number, i: number, t: number): number[] {
  const permutation = Rng.fromKey(seed, method, step, i).permutation(t - 1);
  return Array.from(permutation, (k) => (k < i ? k : k + 1));
}

/** Steps key the random streams, so they must be usable as keys. */
export function checkStep(step: number): void {
  if (!Number.isSafeInteger(step) || step < 0) throw new AggregationInputError(`step must be a non-negative integer, got ${step}`);
}

export const pcgrad: AggregatorDefinition<PcgradOptions> = {
  name: 'pcgrad',
  summary: 'projects each task gradient off the task gradients it conflicts with (seeded random order); mean of the projected rows',
  reference: 'T. Yu, S. Kumar, A. Gupta, S. Levine, K. Hausman, C. Finn: Gradient Surgery for Multi-Task Learning, NeurIPS 2020',
  options: z.strictObject({
    /** Seed of the projection orders; the run's seed when absent. */
    seed: z.int().nonnegative().optional(),
  }),
  create(options, context) {
    const seed = options.seed ?? context.seed;
    return {
      name: 'pcgrad',
      aggregate(input) {
        const { p, h } = checkedGramian(input);
        checkStep(input.step);
        const t = input.grads.length;
        if (t === 1) return { direction: weightedSum(input.grads, [1], p, input.out), weights: [1] };
        const coefficients = projectConflicting(h, (i) => shuffledOthers(seed, 'pcgrad', input.step, i, t));
        // d = (1/T) Σᵢ gᵢ' = Σₖ ((1/T) Σᵢ cᵢₖ) gₖ.
        const weights = Array.from({ length: t }, (_, k) => coefficients.reduce((s, c) => s + c[k]!, 0) / t);
        return { direction: weightedSum(input.grads, weights, p, input.out), weights };
      },
      // The order is a pure function of (seed, step): nothing to carry between steps.
      state: () => null,
      restore: () => undefined,
    };
  },
};
