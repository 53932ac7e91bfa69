// Checks every method runs before touching its input: T ≥ 1, rows of equal length, finite
// values (gradients and losses). Failures raise AggregationInputError.
//
// Finite gradients cost a full pass over G to check, as much as a method's own work. When
// the caller hands over the Gramian (the coordinator does, every step), its diagonal
// answers the question for free: Hᵢᵢ = Σ gᵢₖ² is finite exactly when row i is (float32
// values squared and summed in double precision cannot overflow). Only without a Gramian
// are the rows scanned.
import { AggregationInputError } from '../../common/errors.js';
import { firstNonFinite } from '../../common/finite.js';
import { gramian } from './gramian.js';
import type { AggregationInput } from './types.js';

function checkGramian(h: readonly (readonly number[])[], t: number): void {
  if (h.length !== t || h.some((row) => row.length !== t)) throw new AggregationInputError(`the Gramian must be ${t} × ${t}`);
  for (let i = 0; i < t; i++) {
    const d = h[i]![i]!;
    if (!Number.isFinite(d)) throw new AggregationInputError(`gradient row ${i} has non-finite values (its squared norm is ${d})`);
    if (d < 0) throw new AggregationInputError(`the Gramian has a negative diagonal entry at ${i} (${d})`);
    for (let j = 0; j < t; j++) {
      if (!Number.isFinite(h[i]![j]!)) throw new AggregationInputError(`the Gramian has a non-finite entry at (${i}, ${j})`);
    }
  }
}

/** Returns P, the common row length. */
export function checkAggregationInput(input: AggregationInput): number {
  const { grads, losses } = input;
  if (grads.length === 0) throw new AggregationInputError('no task gradients (T = 0)');
  const p = grads[0]!.length;
  grads.forEach((row, i) => {
    if (row.length !== p) throw new AggregationInputError(`gradient row ${i} has length ${row.length}, row 0 has ${p}`);
  });
  if (!Number.isSafeInteger(input.step) || input.step < 0) throw new AggregationInputError(`step must be a non-negative integer, got ${input.step}`);
  if (losses.length !== 0 && losses.length !== grads.length) {
    throw new AggregationInputError(`${losses.length} losses for ${grads.length} gradient rows`);
  }
  losses.forEach((l, i) => {
    if (!Number.isFinite(l)) throw new AggregationInputError(`loss ${i} is not finite (${l})`);
  });
  if (input.out !== undefined && input.out.length !== p) throw new AggregationInputError(`output buffer has length ${input.out.length}, expected ${p}`);
  if (input.gramian !== undefined) {
    checkGramian(input.gramian, grads.length);
  } else {
    grads.forEach((row, i) => {
      const bad = firstNonFinite(row);
      if (bad >= 0) throw new AggregationInputError(`gradient row ${i} has a non-finite value (${row[bad]}) at index ${bad}`);
    });
  }
  return p;
}

/**
 * For methods that need H anyway: checks the input and returns P and H, computing H first
 * when it is not supplied, so that its diagonal (not a separate scan) checks the rows.
 */
export function checkedGramian(input: AggregationInput): { p: number; h: number[][] } {
  const lengths = input.grads.every((row) => row.length === input.grads[0]?.length);
  const h = input.gramian ?? (lengths ? gramian(input.grads) : undefined);
  const p = checkAggregationInput(h === undefined ? input : { ...input, gramian: h });
  return { p, h: h! };
}
