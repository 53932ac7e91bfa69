// What every stateless Gramian method does besides its own T × T problem: check the input,
// answer T = 1 and all-zero G, scale H (so 1e-20 and 1e20 gradients pose the same problem),
// and form d = Σ wᵢ gᵢ in the one pass over P that the method costs.
import { AggregationInputError } from '../../common/errors.js';
import { weightedSum } from './gramian.js';
import { checkedGramian } from './input-checks.js';
import { scaleGramian } from './linalg.js';
import type { AggregationInput, AggregationResult } from './types.js';

export interface GramianWeights {
  /** wᵢ with d = Σ wᵢ gᵢ (for the original, unscaled rows). */
  weights: number[];
  notes?: readonly string[];
}

/**
 * Runs a method given as `solve(H / s, s)`, where s is H's mean diagonal: the weights of the
 * rows. T = 1 gives g₁ and a zero Gramian the mean, without calling `solve`.
 */
export function aggregateFromGramian(method: string, input: AggregationInput, solve: (scaled: number[][], scale: number) => GramianWeights): AggregationResult {
  const { p, h } = checkedGramian(input);
  const t = input.grads.length;
  const finish = ({ weights, notes }: GramianWeights): AggregationResult => {
    const result = { direction: weightedSum(input.grads, weights, p, input.out), weights };
    return notes && notes.length > 0 ? { ...result, notes: [...notes] } : result;
  };
  if (t === 1) return finish({ weights: [1] });
  const scaled = scaleGramian(h, t);
  if (scaled.kind === 'invalid') throw new AggregationInputError(`${method}: ${scaled.reason}`);
  if (scaled.kind === 'zero') return finish({ weights: input.grads.map(() => 1 / t) });
  return finish(solve(scaled.matrix, scaled.scale));
}
