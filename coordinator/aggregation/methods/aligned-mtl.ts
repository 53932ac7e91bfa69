// aligned-mtl: align the task gradients into an orthogonal system with equal singular values
// before averaging. From H = VΛVᵀ (eigenvalues above a rank tolerance kept),
// B = √λ_min · V Λ^{-1/2} Vᵀ maps G to rows whose Gramian B·H·Bᵀ = λ_min·VVᵀ has condition
// number 1; d is the mean of the rows of B·G, i.e. weights = B·1/T (TorchJD's mean-preference
// form; LibMTL returns B·1, T times larger, off the mean scale).
//
// Rank tolerance as LibMTL and TorchJD: λ > λ_max · T · ε with ε the float32 machine epsilon
// (2⁻²³). Both use torch's default-dtype epsilon, and here the gradients themselves are float32,
// so eigenvalues below that are indistinguishable from rounding of the data. With rank r < T
// only the r kept directions are equalised: duplicate gradients act as one, opposite gradients
// cancel (d = 0), an all-zero G gives the mean (TorchJD: B = I when nothing is kept).
// No options (neither library has any beyond TorchJD's preference vector, fixed to the mean).
import { z } from 'zod';
import { aggregateFromGramian } from '../from-gramian.js';
import { symmetricEigen } from '../linalg.js';
import type { AggregatorDefinition } from '../types.js';

const alignedOptions = z.strictObject({});
type AlignedOptions = z.output<typeof alignedOptions>;

const FLOAT32_EPSILON = 2 ** -23;

/** weights = B·1/T on the scaled Gramian, or null when the eigen-solver did not converge. */
function alignedWeights(h: number[][]): number[] | null {
  const t = h.length;
  const { values, vectors, converged } = symmetricEigen(h);
  if (!converged) return null;
  const tolerance = values[0]! * t * FLOAT32_EPSILON;
  const kept = values.flatMap((v, k) => (v > tolerance ? [k] : []));
  if (kept.length === 0) return new Array<number>(t).fill(1 / t);
  const smallest = values[kept[kept.length - 1]!]!;
  // B·1 = √λ_min Σₖ vₖ (vₖᵀ1)/√λₖ over the kept eigenpairs.
  const weights = new Array<number>(t).fill(0);
  for (const k of kept) {
    const coefficient = (Math.sqrt(smallest / values[k]!) * vectors.reduce((s, row) => s + row[k]!, 0)) / t;
    vectors.forEach((row, i) => (weights[i] = weights[i]! + coefficient * row[k]!));
  }
  return weights;
}

export const alignedMtl: AggregatorDefinition<AlignedOptions> = {
  name: 'aligned-mtl',
  summary: 'aligned gradients: equalise the singular values of G, then average (condition number 1)',
  reference: 'Senushkin et al., "Independent Component Alignment for Multi-Task Learning", CVPR 2023',
  options: alignedOptions,
  create: () => ({
    name: 'aligned-mtl',
    aggregate(input) {
      return aggregateFromGramian('aligned-mtl', input, (h) => {
        const weights = alignedWeights(h);
        const uniform = input.grads.map(() => 1 / input.grads.length);
        return weights ? { weights } : { weights: uniform, notes: ['aligned-mtl: eigendecomposition did not converge; used the mean'] };
      });
    },
    state: () => null,
    restore: () => undefined,
  }),
};
