// famo: Fast Adaptive Multitask Optimization. Task logits w (initially 0) give z = softmax(w);
// the step minimises Σ zᵢ log Dᵢ / c with Dᵢ = Lᵢ + ε and c = Σ zⱼ/Dⱼ held constant, whose
// gradient is Σ λᵢ ∇Lᵢ with λᵢ = zᵢ / (c Dᵢ). Those λ sum to 1 in LibMTL; ours are T times that
// (Σλ = T, λ = 1 is equal weighting). d = (1/T) Σ λᵢ gᵢ, and each head's gradient is scaled by λᵢ.
//
// After the step, w is updated from the observed decrease of the log-losses,
// δᵢ = log Dᵢ(before) − log Dᵢ(after): one Adam step (lr = w_lr, L2 weight decay gamma, as
// torch's Adam(weight_decay=γ)) on the gradient of ⟨softmax(w), δ⟩, i.e. zₖ(δₖ − ⟨z, δ⟩). A
// task whose log-loss fell less than the z-weighted average gains weight.
//
// Which "after" loss: the official code and LibMTL run an extra forward pass on the SAME batch
// after the optimizer step. The coordinator has no such pass, so we use the next step's losses
// (a new batch at the updated parameters): the update of w is applied at the start of the next
// aggregate, before its weights are computed, which is the same sequence of w's with a noisier
// δ. Minimum losses are 0 and ε = 1e-8, as in both implementations.
import { z } from 'zod';
import { AggregationInputError } from '../../../common/errors.js';
import type { Optimizer } from '../../../common/optimizers.js';
import { checkLossWeightingInput, lossWeightedResult, restoreWeightOptimizer, softmax, weightOptimizer, weightOptimizerState } from '../loss-weighting.js';
import { decodeFloat32, encodeFloat32, stateRecord } from '../state-codec.js';
import type { AggregatorDefinition } from '../types.js';

type FamoOptions = { w_lr: number; gamma: number };

const EPSILON = 1e-8;

interface Learned {
  logits: Float32Array;
  optimizer: Optimizer;
  /** The losses the last weights were computed from, until the next step shows their change. */
  previousLosses: number[] | null;
}

/** D = L − min + ε with min = 0; a negative loss (below the assumed minimum) is taken as 0. */
function shiftedLosses(losses: readonly number[], notes: string[]): number[] {
  if (losses.some((l) => l < 0)) notes.push('famo: a loss is below 0, the assumed minimum; it was taken as 0');
  return losses.map((l) => Math.max(0, l) + EPSILON);
}

export const famo: AggregatorDefinition<FamoOptions> = {
  name: 'famo',
  summary: 'loss weights from softmax logits updated after each step from the observed decrease of the log-losses',
  reference: 'B. Liu, Y. Feng, P. Stone, Q. Liu: FAMO: Fast Adaptive Multitask Optimization, NeurIPS 2023',
  options: z.strictObject({
    /** Adam learning rate of the logits (LibMTL and the official code: 0.025). */
    w_lr: z.number().positive().default(0.025),
    /** L2 weight decay of the logits (LibMTL: 1e-3). */
    gamma: z.number().min(0).default(1e-3),
  }),
  create(options) {
    let learned: Learned | undefined;
    return {
      name: 'famo',
      aggregate(input) {
        const p = checkLossWeightingInput(input, 'famo');
        const t = input.grads.length;
        const notes: string[] = [];
        if (learned?.logits.length !== t) {
          if (learned) notes.push(`famo: task count changed to ${t}, logits reset`);
          learned = { logits: new Float32Array(t), optimizer: weightOptimizer(t, options.w_lr), previousLosses: null };
        }
        const { logits, optimizer, previousLosses } = learned;
        const shifted = shiftedLosses(input.losses, notes);

        if (previousLosses) {
          const before = shiftedLosses(previousLosses, []);
          const decrease = before.map((d, i) => Math.log(d) - Math.log(shifted[i]!));
          const z0 = softmax(logits);
          const average = z0.reduce((s, zi, i) => s + zi * decrease[i]!, 0);
          const gradient = Float32Array.from(z0, (zk, k) => zk * (decrease[k]! - average) + options.gamma * logits[k]!);
          optimizer.step(logits, gradient);
        }
        // `+ 0` turns −0 into 0: JSON has no −0, and the state must survive it unchanged.
        learned.previousLosses = input.losses.map((l) => l + 0);

        const zNow = softmax(logits);
        const c = zNow.reduce((s, zi, i) => s + zi / shifted[i]!, 0);
        const lossWeights = zNow.map((zi, i) => (t * (zi / shifted[i]!)) / c);

        return lossWeightedResult(input, p, lossWeights, notes);
      },
      state() {
        if (!learned) return null;
        return {
          logits: encodeFloat32(learned.logits),
          previousLosses: learned.previousLosses?.slice() ?? null,
          adam: weightOptimizerState(learned.optimizer),
        };
      },
      restore(state) {
        if (state === null) {
          learned = undefined;
          return;
        }
        const record = stateRecord(state, 'famo');
        const logits = decodeFloat32(record.logits);
        const previous = record.previousLosses;
        const previousValid = previous === null || (Array.isArray(previous) && previous.length === logits.length && previous.every(Number.isFinite));
        if (!previousValid) throw new AggregationInputError('famo: state has previous losses of the wrong size or non-finite');
        const optimizer = restoreWeightOptimizer(record.adam, logits.length, options.w_lr, 'famo');
        learned = { logits, optimizer, previousLosses: previous === null ? null : (previous as number[]).slice() };
      },
    };
  },
};
