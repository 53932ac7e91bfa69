// gradnorm: loss weights learned so that every task's weighted gradient norm λᵢ‖gᵢ‖ tracks the
// common target Ḡ·rᵢ^α, where Ḡ is the mean weighted norm and rᵢ = L̃ᵢ / mean(L̃) the relative
// inverse training rate (L̃ᵢ = Lᵢ / Lᵢ(0)). A task that trains slower (larger rᵢ) is pushed to
// a larger gradient share; α sets how strongly.
//
// As in LibMTL, λ = T·softmax(w) with learned logits w (initially equal), so Σλ = T always (the
// paper's renormalisation, built in). Each step: λ from the current w weights the gradients
// (d = (1/T) Σ λᵢ gᵢ; heads scaled by λᵢ), then w takes one Adam step on the GradNorm loss
// Σᵢ |λᵢ‖gᵢ‖ − Ḡ rᵢ^α| with the target held constant (LibMTL detaches it).
//
// Differences from LibMTL, and why:
//  - Lᵢ(0) is the loss of the first aggregated step (the paper's t = 0); LibMTL uses the mean
//    loss of the first epoch and keeps λ = 1 during it, which needs epochs we do not have.
//  - The GradNorm loss is divided by Ḡ before differentiating. The optimum is unchanged, but
//    Adam's ε would otherwise freeze the weights for gradients of tiny magnitude (1e-20) and
//    the step would depend on the units of the gradients.
//  - Norms come from H's diagonal (the coordinator's Gramian when given, else Σ g² per row).
// lr default 1e-3: LibMTL trains w with the model's Adam; 1e-3 is our example jobs' model lr
// and moves a logit by at most ~1.5–3 over their 1500–3000 steps.
import { z } from 'zod';
import { AggregationInputError } from '../../../common/errors.js';
import type { Optimizer } from '../../../common/optimizers.js';
import { checkLossWeightingInput, lossWeightedResult, restoreWeightOptimizer, softmax, squaredNorm, weightOptimizer, weightOptimizerState } from '../loss-weighting.js';
import { decodeFloat32, encodeFloat32, stateRecord } from '../state-codec.js';
import type { AggregatorDefinition } from '../types.js';

type GradnormOptions = { alpha: number; lr: number };

interface Learned {
  logits: Float32Array;
  optimizer: Optimizer;
  initialLosses: number[];
}

/**
 * rᵢ = L̃ᵢ / mean(L̃), L̃ᵢ = Lᵢ / Lᵢ(0). A ratio that does not exist (initial loss ≤ 0, a
 * negative loss) counts as 1, i.e. "training at the average rate".
 */
function inverseTrainingRates(losses: readonly number[], initial: readonly number[], notes: string[]): number[] {
  const ratios = losses.map((l, i) => {
    const r = l / initial[i]!;
    return initial[i]! > 0 && r >= 0 && Number.isFinite(r) ? r : NaN;
  });
  if (ratios.some(Number.isNaN)) notes.push('gradnorm: a loss ratio L/L(0) is undefined (loss ≤ 0); that task counts as average');
  const valid = ratios.filter((r) => !Number.isNaN(r));
  const average = valid.length ? valid.reduce((s, r) => s + r, 0) / valid.length : 0;
  return ratios.map((r) => (Number.isNaN(r) || !(average > 0) ? 1 : r / average));
}

export const gradnorm: AggregatorDefinition<GradnormOptions> = {
  name: 'gradnorm',
  summary: 'learned loss weights (Σ = T) pulling each weighted gradient norm to mean norm × (relative inverse training rate)^α',
  reference: 'Z. Chen, V. Badrinarayanan, C.-Y. Lee, A. Rabinovich: GradNorm: Gradient Normalization for Adaptive Loss Balancing in Deep Multitask Networks, ICML 2018',
  options: z.strictObject({
    /** Strength of the restoring force towards a common training rate (paper and LibMTL: 1.5). */
    alpha: z.number().min(0).default(1.5),
    /** Adam learning rate of the weight logits (see the file comment for the default). */
    lr: z.number().positive().default(1e-3),
  }),
  create(options) {
    let learned: Learned | undefined;
    return {
      name: 'gradnorm',
      aggregate(input) {
        const p = checkLossWeightingInput(input, 'gradnorm');
        const t = input.grads.length;
        const notes: string[] = [];
        if (learned?.logits.length !== t) {
          if (learned) notes.push(`gradnorm: task count changed to ${t}, weights and initial losses reset`);
          // `+ 0` turns −0 into 0: JSON has no −0, and the state must survive it unchanged.
          learned = { logits: new Float32Array(t), optimizer: weightOptimizer(t, options.lr), initialLosses: input.losses.map((l) => l + 0) };
        }
        const { logits, optimizer, initialLosses } = learned;
        const lossWeights = softmax(logits, logits.length);

        // One Adam step on Σ|λᵢnᵢ − Ḡrᵢ^α| / Ḡ. With λ = T·softmax(w),
        // ∂λᵢ/∂wₖ = λᵢ(δᵢₖ − λₖ/T), so ∂/∂wₖ = uₖλₖ − (λₖ/T) Σᵢ uᵢλᵢ, uᵢ = sign(λᵢnᵢ − targetᵢ)·nᵢ/Ḡ.
        const norms = input.grads.map((row, i) => Math.sqrt(Math.max(0, input.gramian?.[i]?.[i] ?? squaredNorm(row))));
        const weightedNorms = norms.map((n, i) => lossWeights[i]! * n);
        const meanNorm = weightedNorms.reduce((s, v) => s + v, 0) / t;
        if (t > 1 && meanNorm > 0 && Number.isFinite(meanNorm)) {
          const rates = inverseTrainingRates(input.losses, initialLosses, notes);
          const u = weightedNorms.map((g, i) => Math.sign(g - meanNorm * rates[i]! ** options.alpha) * (norms[i]! / meanNorm));
          const coupling = u.reduce((s, ui, i) => s + ui * lossWeights[i]!, 0);
          const gradient = Float32Array.from(lossWeights, (l, k) => u[k]! * l - (l / t) * coupling);
          optimizer.step(logits, gradient);
        }

        return lossWeightedResult(input, p, lossWeights, notes);
      },
      state() {
        if (!learned) return null;
        return {
          logits: encodeFloat32(learned.logits),
          initialLosses: learned.initialLosses.slice(),
          adam: weightOptimizerState(learned.optimizer),
        };
      },
      restore(state) {
        if (state === null) {
          learned = undefined;
          return;
        }
        const record = stateRecord(state, 'gradnorm');
        const logits = decodeFloat32(record.logits);
        const initialLosses = record.initialLosses;
        if (!Array.isArray(initialLosses) || initialLosses.length !== logits.length || !initialLosses.every(Number.isFinite)) {
          throw new AggregationInputError('gradnorm: state has initial losses of the wrong size or non-finite');
        }
        const optimizer = restoreWeightOptimizer(record.adam, logits.length, options.lr, 'gradnorm');
        learned = { logits, optimizer, initialLosses: initialLosses as number[] };
      },
    };
  },
};
