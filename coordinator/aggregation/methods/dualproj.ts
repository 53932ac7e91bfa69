// dualproj: the mean gradient g₀ projected onto the dual cone {x : ⟨gⱼ, x⟩ ≥ 0 for all j}, the
// closest direction to g₀ that conflicts with no task (GEM's projection, applied to the tasks
// of one step). d = g₀ when g₀ conflicts with no task.
//
// Same dual QP, regularisation and scale as upgrad (see upgrad.ts): weights = 1/T + λ with
// λ = argmin_{λ≥0} ½λᵀ(Ĥ + εI)λ + λᵀĤ·1/T, Ĥ = H/tr(H); reg_eps ε = 1e-4 as TorchJD's
// DualProj, relative to ‖G‖²_F; TorchJD's absolute norm_eps is not copied (see upgrad.ts).
import { z } from 'zod';
import { aggregateFromGramian } from '../from-gramian.js';
import type { AggregatorDefinition } from '../types.js';
import { dualConeWeights, traceNormalized } from './upgrad.js';

const dualprojOptions = z.strictObject({
  reg_eps: z.number().min(0).default(1e-4),
});
type DualprojOptions = z.output<typeof dualprojOptions>;

export const dualproj: AggregatorDefinition<DualprojOptions> = {
  name: 'dualproj',
  summary: 'mean gradient projected onto the dual cone of the task gradients (no task conflicts with d)',
  reference:
    'Lopez-Paz & Ranzato, "Gradient Episodic Memory for Continual Learning", NeurIPS 2017 (the projection); as DualProj in Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", arXiv 2024 (TorchJD)',
  options: dualprojOptions,
  create: (options) => ({
    name: 'dualproj',
    aggregate(input) {
      return aggregateFromGramian('dualproj', input, (h) => {
        const uniform = input.grads.map(() => 1 / input.grads.length);
        const projection = dualConeWeights(traceNormalized(h), uniform, options.reg_eps);
        if (projection.converged) return { weights: projection.weights };
        return {
          weights: projection.weights,
          notes: [`dualproj: the projection QP ended on its fallback (residual ${projection.residual.toExponential(1)}); used its best feasible point`],
        };
      });
    },
    state: () => null,
    restore: () => undefined,
  }),
};
