// mean: d = (1/T) Σ gᵢ, the plain multi-task gradient on the reference scale.
import { z } from 'zod';
import { weightedSum } from '../gramian.js';
import { checkAggregationInput } from '../input-checks.js';
import type { AggregatorDefinition } from '../types.js';

export const mean: AggregatorDefinition = {
  name: 'mean',
  summary: 'row mean of the task gradients (equal weighting)',
  reference: 'equal weighting (the usual multi-task baseline)',
  options: z.strictObject({}),
  create: () => ({
    name: 'mean',
    aggregate(input) {
      const p = checkAggregationInput(input);
      const weights = input.grads.map(() => 1 / input.grads.length);
      return { direction: weightedSum(input.grads, weights, p, input.out), weights, lossWeights: input.grads.map(() => 1) };
    },
    state: () => null,
    restore: () => undefined,
  }),
};
