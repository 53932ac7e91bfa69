// rlw: random loss weighting. Each step draws z ~ N(0, I_T) and weights the task losses by
// softmax(z) (LibMTL's default 'Normal' variant). LibMTL's weights sum to 1; ours are
// λ = T·softmax(z), so λ = 1 is equal weighting, d = (1/T) Σ λᵢ gᵢ = Σ softmax(z)ᵢ gᵢ, and each
// head's gradient is scaled by λᵢ.
//
// z is a pure function of (seed, step), so the weights never depend on timing and a restored
// run draws the same ones: the method has no state.
import { z } from 'zod';
import { AggregationInputError } from '../../../common/errors.js';
import { Rng } from '../../../common/random.js';
import { checkAggregationInput } from '../input-checks.js';
import { lossWeightedResult, softmax } from '../loss-weighting.js';
import type { AggregatorDefinition } from '../types.js';

type RlwOptions = { seed?: number | undefined };

/** T·softmax(z) for the step's draw z ~ N(0, I_T). */
function randomLossWeights(seed: number, step: number, t: number): number[] {
  const rng = Rng.fromKey(seed, 'rlw', step);
  const draws = Array.from({ length: t }, () => rng.normal());
  return softmax(draws, t);
}

export const rlw: AggregatorDefinition<RlwOptions> = {
  name: 'rlw',
  summary: 'random loss weights T·softmax(z), z ~ N(0, I) drawn per step from the seed',
  reference: 'B. Lin, F. Ye, Y. Zhang, I. W. Tsang: Reasonable Effectiveness of Random Weighting: A Litmus Test for Multi-Task Learning, TMLR 2022',
  options: z.strictObject({
    /** Seed of the draws; the run's seed when absent. */
    seed: z.int().nonnegative().optional(),
  }),
  create(options, context) {
    const seed = options.seed ?? context.seed;
    return {
      name: 'rlw',
      aggregate(input) {
        const p = checkAggregationInput(input);
        if (!Number.isSafeInteger(input.step) || input.step < 0) {
          throw new AggregationInputError(`step must be a non-negative integer, got ${input.step}`);
        }
        const t = input.grads.length;
        return lossWeightedResult(input, p, t === 1 ? [1] : randomLossWeights(seed, input.step, t), []);
      },
      state: () => null,
      restore: () => undefined,
    };
  },
};
