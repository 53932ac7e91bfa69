// sum: d = Σ gᵢ, the gradient of the summed losses. The one method off the mean scale: with
// T tasks its steps are T times larger than mean's for the same learning rate.
import { z } from 'zod';
import { weightedSum } from '../gramian.js';
import { checkAggregationInput } from '../input-checks.js';
import type { AggregatorDefinition } from '../types.js';

export const sum: AggregatorDefinition = {
  name: 'sum',
  summary: 'sum of the task gradients (gradient of the summed losses; T× the mean scale)',
  reference: 'the summed loss, off the mean scale by name',
  options: z.strictObject({}),
  create: () => ({
    name: 'sum',
    aggregate(input) {
      const p = checkAggregationInput(input);
      const weights = input.grads.map(() => 1);
      return { direction: weightedSum(input.grads, weights, p, input.out), weights, lossWeights: weights };
    },
    state: () => null,
    restore: () => undefined,
  }),
};
