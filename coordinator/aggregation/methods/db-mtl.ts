// db-mtl: Dual-Balancing Multi-Task Learning. Loss-scale balancing: each task contributes the
// gradient of log Lᵢ, i.e. gᵢ/Lᵢ. Gradient-magnitude balancing: those are smoothed by an EMA
// bᵢ ← βₜ bᵢ + (1 − βₜ) gᵢ/Lᵢ (βₜ = beta / step^beta_sigma, buffer starting at 0, no bias
// correction, as LibMTL), and each bᵢ is rescaled to the largest norm: d = (1/T) Σ (maxⱼ‖bⱼ‖ / ‖bᵢ‖) bᵢ.
// LibMTL sums instead of averaging; we keep the mean scale of docs/aggregators.md.
//
// Heads: LibMTL back-propagates log(Lᵢ + 1e-8) per task, so each head's gradient is its own
// gradient divided by Lᵢ + 1e-8, and the EMA applies to the shared parameters only. Hence
// lossWeights λᵢ = 1/(Lᵢ + 1e-8), not renormalised (LibMTL does not normalise them). A loss
// below 0 has no logarithm; it is taken as 0 (so 1/1e-8) with a note.
//
// weights are [] (empty) for T > 1: the EMA carries earlier steps' gradients, so d is in general
// not a combination of this step's rows, and a least-squares fit would cost another pass over G
// to report coefficients the method never used.
//
// The T × P buffer is float32 (P = 1e7 and T = 8 already take 320 MB) with a float64 scale per
// row, b = scale · x, and ‖x‖ ≤ 1 (up to rounding): the scale carries the magnitude (1/L and the gradients' own
// scale), so x neither overflows nor underflows in float32 whatever the losses and gradients.
// Choosing that scale needs ‖gᵢ‖ before the update; it comes from the diagonal of the Gramian
// the coordinator passes (else from one extra read of G). Then one pass updates the buffer and
// measures its rows, and one weighted sum over the buffer gives d.
import { z } from 'zod';
import { AggregationInputError } from '../../../common/errors.js';
import { weightedSum } from '../gramian.js';
import { checkLossWeightingInput, squaredNorm } from '../loss-weighting.js';
import { decodeFloat32, encodeFloat32, stateRecord } from '../state-codec.js';
import type { AggregatorDefinition } from '../types.js';

type DbMtlOptions = { beta: number; beta_sigma: number };

const EPSILON = 1e-8;
/** d's entries are bounded by the target norm; past float32's range it would overflow. */
const MAX_NORM = 1e38;

interface Buffer {
  rows: Float32Array[];
  scales: number[];
  /** ‖xᵢ‖ after the last update (recomputed on restore rather than stored). */
  norms: number[];
  /** Steps taken so far (LibMTL's counter; βₜ depends on it when beta_sigma > 0). */
  step: number;
}

export const dbMtl: AggregatorDefinition<DbMtlOptions> = {
  name: 'db-mtl',
  summary: 'gradients of log-losses, EMA-smoothed, each rescaled to the largest norm, then averaged',
  reference: 'B. Lin, W. Jiang, F. Ye, Y. Zhang, P. Chen, Y.-C. Chen, S. Liu, J. T. Kwok: Dual-Balancing for Multi-Task Learning, arXiv:2308.12029, 2023',
  options: z.strictObject({
    /** EMA rate of the log-loss gradients (LibMTL DB_beta: 0.9). */
    beta: z.number().min(0).lt(1).default(0.9),
    /** βₜ = beta / step^beta_sigma (LibMTL DB_beta_sigma: 0, a constant rate). */
    beta_sigma: z.number().min(0).default(0),
  }),
  create(options) {
    let buffer: Buffer | undefined;
    return {
      name: 'db-mtl',
      aggregate(input) {
        const p = checkLossWeightingInput(input, 'db-mtl');
        const t = input.grads.length;
        const notes: string[] = [];
        if (input.losses.some((l) => l < 0)) notes.push('db-mtl: a loss is below 0 and has no logarithm; it was taken as 0');
        // Not a fallback (it is LibMTL's own guard), but worth seeing: g/(L + 1e-8) then dwarfs the rest.
        if (input.losses.some((l) => l >= 0 && l <= EPSILON)) notes.push('db-mtl: a loss is ≤ 1e-8, so its log-loss gradient g/(L + 1e-8) is amplified up to 1e8×');
        const divisors = input.losses.map((l) => Math.max(0, l) + EPSILON);
        const lossWeights = divisors.map((d) => 1 / d);
        // One task: nothing to balance, so no buffer is kept.
        if (t === 1) return { direction: weightedSum(input.grads, [1], p, input.out), weights: [1], lossWeights: [1], ...(notes.length ? { notes } : {}) };

        if (buffer?.rows.length !== t || buffer.rows[0]!.length !== p) {
          if (buffer) notes.push(`db-mtl: gradient shape changed to ${t} × ${p}, EMA buffer restarted`);
          buffer = { rows: input.grads.map(() => new Float32Array(p)), scales: new Array<number>(t).fill(0), norms: new Array<number>(t).fill(0), step: 0 };
        }
        const buf = buffer;
        buf.step++;
        const decay = options.beta_sigma === 0 ? options.beta : options.beta / buf.step ** options.beta_sigma;

        // b' = decay·b + (1 − decay)·g/L = scale'·x' with scale' = decay·scale·‖x‖ + (1 − decay)‖g‖/L,
        // a bound on ‖b'‖, so ‖x'‖ ≤ 1 and both terms are formed at unit scale.
        const gradientNorms = input.grads.map((g, i) => Math.sqrt(Math.max(0, input.gramian?.[i]?.[i] ?? squaredNorm(g))));
        input.grads.forEach((g, i) => {
          const kept = decay * buf.scales[i]!;
          const fresh = (1 - decay) / divisors[i]!;
          const scale = kept * buf.norms[i]! + fresh * gradientNorms[i]!;
          const x = buf.rows[i]!;
          if (!(scale > 0)) {
            x.fill(0);
            buf.scales[i] = 0;
            buf.norms[i] = 0;
            return;
          }
          const a = kept / scale;
          const b = fresh / scale;
          let sq = 0;
          for (let k = 0; k < p; k++) {
            const v = Math.fround(a * x[k]! + b * g[k]!);
            x[k] = v;
            sq += v * v;
          }
          buf.scales[i] = scale;
          buf.norms[i] = Math.sqrt(sq);
        });
        // The contract's "all-zero G gives zeros": the EMA still decays, but a group with no
        // gradient this step is not moved by the memory of earlier ones.
        if (gradientNorms.every((n) => n === 0)) return { direction: (input.out ?? new Float32Array(p)).fill(0), weights: [], lossWeights, ...(notes.length ? { notes } : {}) };
        let target = Math.max(...buf.norms.map((n, i) => n * buf.scales[i]!));
        if (target > MAX_NORM) {
          notes.push('db-mtl: the largest smoothed log-loss gradient exceeds float32 range; the direction was capped');
          target = MAX_NORM;
        }
        // (1/T) Σ (target/‖bᵢ‖) bᵢ = Σ target/(T‖xᵢ‖) · xᵢ; a row that is still zero adds nothing.
        const coefficients = buf.norms.map((n) => (n > 0 ? target / (t * n) : 0));
        const direction = weightedSum(buf.rows, coefficients, p, input.out);
        return { direction, weights: [], lossWeights, ...(notes.length ? { notes } : {}) };
      },
      state() {
        if (!buffer) return null;
        return { rows: buffer.rows.map(encodeFloat32), scales: buffer.scales.slice(), step: buffer.step };
      },
      restore(state) {
        if (state === null) {
          buffer = undefined;
          return;
        }
        const record = stateRecord(state, 'db-mtl');
        const { rows, scales, step } = record;
        if (!Array.isArray(rows) || rows.length < 2) throw new AggregationInputError('db-mtl: state.rows must list at least two rows');
        const decoded = rows.map((r) => decodeFloat32(r));
        const p = decoded[0]!.length;
        const valid =
          decoded.every((r) => r.length === p) &&
          Array.isArray(scales) &&
          scales.length === decoded.length &&
          scales.every((s) => typeof s === 'number' && s >= 0 && Number.isFinite(s)) &&
          Number.isSafeInteger(step) &&
          (step as number) >= 0;
        if (!valid) throw new AggregationInputError('db-mtl: state has rows of unequal length, bad scales or no step count');
        buffer = { rows: decoded, scales: (scales as number[]).slice(), norms: decoded.map((x) => Math.sqrt(squaredNorm(x))), step: step as number };
      },
    };
  },
};
