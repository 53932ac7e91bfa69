// uw: uncertainty weighting. Each task has a learned sᵢ = log σᵢ²; the training loss is
// Σ λᵢ Lᵢ + sᵢ/2 with λᵢ = 1/(2σᵢ²) = ½ e^(−sᵢ) (LibMTL's form, which drops the paper's separate
// regression/classification constants). λ is LibMTL's loss multiplier, not renormalised (LibMTL
// does not normalise it either): with the initial s = −0.5 every λᵢ = ½e^0.5 ≈ 0.82.
// d = (1/T) Σ λᵢ gᵢ, and each head's gradient is scaled by λᵢ.
//
// s is trained the way LibMTL trains it, by the model's kind of optimizer: our own Adam (the
// same implementation as the model's, common/optimizers.ts), stepped once per aggregate
// with ∂/∂sᵢ = ½(1 − Lᵢ e^(−sᵢ)) from this step's losses, after λ has been used (LibMTL's
// optimizer also steps after the backward pass). The optimum is σᵢ² = Lᵢ, so a task with a
// smaller loss gets a larger weight.
//
// lr default 1e-3: LibMTL uses the model's Adam (its default lr 1e-4 over 100+ epochs); our
// example jobs use Adam 1e-3 for 1500–3000 steps, and with 1e-4 s could move by at most ~0.3
// in such a run, so the weights would hardly adapt. Adam moves s by about lr per step whatever
// the loss scale.
import { z } from 'zod';
import type { Optimizer } from '../../../common/optimizers.js';
import { checkLossWeightingInput, lossWeightedResult, restoreWeightOptimizer, weightOptimizer, weightOptimizerState } from '../loss-weighting.js';
import { decodeFloat32, encodeFloat32, stateRecord } from '../state-codec.js';
import type { AggregatorDefinition } from '../types.js';

type UwOptions = { init: number; lr: number };

/**
 * Bounds on s = log σ². Within them λ stays in [1e-22, 1e21]; past them the loss has gone to
 * (numerically) zero or infinity and further growth of the weight is meaningless.
 */
const S_LIMIT = 50;
/** Gradients beyond this carry no more information to Adam but would overflow its float32 moments. */
const GRADIENT_LIMIT = 1e15;

interface Learned {
  s: Float32Array;
  optimizer: Optimizer;
}

export const uw: AggregatorDefinition<UwOptions> = {
  name: 'uw',
  summary: 'uncertainty weighting: loss weights 1/(2σᵢ²) with learned log σᵢ² (own Adam)',
  reference: 'A. Kendall, Y. Gal, R. Cipolla: Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and Semantics, CVPR 2018',
  options: z.strictObject({
    /** Initial log σ² of every task (LibMTL: −0.5). */
    init: z.number().min(-S_LIMIT).max(S_LIMIT).default(-0.5),
    /** Adam learning rate of log σ² (see the file comment for the default). */
    lr: z.number().positive().default(1e-3),
  }),
  create(options) {
    let learned: Learned | undefined;
    return {
      name: 'uw',
      aggregate(input) {
        const p = checkLossWeightingInput(input, 'uw');
        const t = input.grads.length;
        const notes: string[] = [];
        if (learned?.s.length !== t) {
          if (learned) notes.push(`uw: task count changed to ${t}, log σ² reset`);
          learned = { s: new Float32Array(t).fill(options.init), optimizer: weightOptimizer(t, options.lr) };
        }
        const { s, optimizer } = learned;
        const lossWeights = Array.from(s, (si) => 0.5 * Math.exp(-si));

        const gradient = new Float32Array(t);
        input.losses.forEach((loss, i) => {
          const g = 0.5 * (1 - loss * Math.exp(-s[i]!));
          gradient[i] = Math.max(-GRADIENT_LIMIT, Math.min(GRADIENT_LIMIT, g));
        });
        optimizer.step(s, gradient);
        s.forEach((si, i) => {
          if (Math.abs(si) > S_LIMIT) {
            s[i] = Math.sign(si) * S_LIMIT;
            notes.push(`uw: log σ² of task ${i} reached ±${S_LIMIT} and was held there`);
          }
        });

        return lossWeightedResult(input, p, lossWeights, notes);
      },
      state() {
        if (!learned) return null;
        return { logVariance: encodeFloat32(learned.s), adam: weightOptimizerState(learned.optimizer) };
      },
      restore(state) {
        if (state === null) {
          learned = undefined;
          return;
        }
        const record = stateRecord(state, 'uw');
        const s = decodeFloat32(record.logVariance);
        learned = { s, optimizer: restoreWeightOptimizer(record.adam, s.length, options.lr, 'uw') };
      },
    };
  },
};
