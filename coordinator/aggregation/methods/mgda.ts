// mgda: the min-norm point of the convex hull of the (optionally normalised) task gradients,
// w* = argmin_{w∈Δ} ‖Σ wᵢ ĝᵢ‖², d = Σ w*ᵢ ĝᵢ with ĝᵢ = gᵢ/nᵢ. Every task's directional
// derivative along d is at least ‖d‖², so a small step decreases all losses (or d = 0 at a
// Pareto-stationary point).
//
// Choices (docs/aggregators.md; LibMTL where it is silent):
// - normalize as LibMTL's mgda_gn: none (default) | l2 (nᵢ = ‖gᵢ‖) | loss (nᵢ = Lᵢ) |
//   loss+ (nᵢ = Lᵢ‖gᵢ‖). The direction is Σ w*ᵢ ĝᵢ as in LibMTL, so with l2 it is on the
//   unit-gradient scale and does not scale with G (d(cG) = d(G)); reported weights are w*ᵢ/nᵢ,
//   relative to the original rows, so direction = Σ weightsᵢ gᵢ still holds.
// - a zero row keeps nᵢ = 1 (it is zero whatever we divide it by). A loss normalisation that
//   needs a loss that is missing or not positive falls back to none for the step, with a note.
// - the QP is solved exactly (active set, linalg.ts) instead of LibMTL's Frank–Wolfe with a
//   1e-5 stopping rule; TorchJD's MGDA options epsilon/max_iters belong to that iteration and
//   have no counterpart here.
// - T = 1 returns g₁ (docs/aggregators.md), even with l2, where LibMTL would return g₁/‖g₁‖.
import { z } from 'zod';
import { aggregateFromGramian } from '../from-gramian.js';
import { addToDiagonal, scaleGramian, simplexQp } from '../linalg.js';
import type { AggregatorDefinition } from '../types.js';

const mgdaOptions = z.strictObject({
  normalize: z.enum(['none', 'l2', 'loss', 'loss+']).default('none'),
});
type MgdaOptions = z.output<typeof mgdaOptions>;

/**
 * Added to the scaled Gramian (mean diagonal 1) before solving. It makes the QP strictly convex,
 * so the weights are unique (duplicate gradients share weight equally and task order does not
 * matter), and it moves each ⟨gᵢ, d⟩ by at most 1e-10 of the mean squared gradient norm.
 */
const UNIQUENESS_REGULARIZATION = 1e-10;

/**
 * Per-row divisors in the units of the scaled Gramian (`unit` converts them back to the original
 * units: the l2 norms of scaled rows are 1/√scale of the real ones). Null when the losses needed
 * are missing or not positive.
 */
function normalizers(mode: MgdaOptions['normalize'], diagonal: readonly number[], losses: readonly number[]): number[] | null {
  const norms = diagonal.map(Math.sqrt);
  const lossOf = (i: number) => (losses.length === diagonal.length ? losses[i]! : Number.NaN);
  const divisors = diagonal.map((d, i) => {
    if (d === 0 || mode === 'none') return 1;
    if (mode === 'l2') return norms[i]!;
    const loss = lossOf(i);
    return mode === 'loss' ? loss : loss * norms[i]!;
  });
  return divisors.every((n) => n > 0 && Number.isFinite(n)) ? divisors : null;
}

export const mgda: AggregatorDefinition<MgdaOptions> = {
  name: 'mgda',
  summary: 'min-norm point of the convex hull of the task gradients (every task decreases)',
  reference: 'Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018',
  options: mgdaOptions,
  create: (options) => ({
    name: 'mgda',
    aggregate(input) {
      return aggregateFromGramian('mgda', input, (h, scale) => {
        const t = input.grads.length;
        const notes: string[] = [];
        const diagonal = h.map((row, i) => row[i]!);
        let divisors = normalizers(options.normalize, diagonal, input.losses);
        let normalized = divisors ? scaleGramian(h.map((row, i) => row.map((v, j) => v / divisors![i]! / divisors![j]!)), t) : null;
        let matrix = h;
        if (!divisors || normalized?.kind !== 'scaled') {
          notes.push(`mgda: normalize=${options.normalize} needs positive, finite losses and norms; solved without normalisation`);
          divisors = diagonal.map(() => 1);
          normalized = null;
        } else {
          matrix = normalized.matrix;
        }
        const unit = options.normalize === 'l2' || options.normalize === 'loss+' ? Math.sqrt(scale) : 1;
        const solution = simplexQp(addToDiagonal(matrix, UNIQUENESS_REGULARIZATION), new Array<number>(t).fill(0));
        if (!solution.converged) {
          notes.push(`mgda: min-norm QP did not converge (relative KKT residual ${solution.kktResidual.toExponential(1)}); used its best feasible point`);
        }
        return { weights: solution.x.map((w, i) => w / (divisors[i]! * unit)), notes };
      });
    },
    state: () => null,
    restore: () => undefined,
  }),
};
