// Checks every method runs before touching its input: T ≥ 1, rows of equal length, finite
// values (gradients and losses). Failures raise AggregationInputError.
import { AggregationInputError } from '../../common/errors.js';
import { firstNonFinite } from '../../common/transfer-assembler.js';
import type { AggregationInput } from './types.js';

/** Returns P, the common row length. */
export function checkAggregationInput(input: AggregationInput): number {
  const { grads, losses } = input;
  if (grads.length === 0) throw new AggregationInputError('no task gradients (T = 0)');
  const p = grads[0]!.length;
  grads.forEach((row, i) => {
    if (row.length !== p) throw new AggregationInputError(`gradient row ${i} has length ${row.length}, row 0 has ${p}`);
    const bad = firstNonFinite(row);
    if (bad >= 0) throw new AggregationInputError(`gradient row ${i} has a non-finite value (${row[bad]}) at index ${bad}`);
  });
  if (losses.length !== 0 && losses.length !== grads.length) {
    throw new AggregationInputError(`${losses.length} losses for ${grads.length} gradient rows`);
  }
  losses.forEach((l, i) => {
    if (!Number.isFinite(l)) throw new AggregationInputError(`loss ${i} is not finite (${l})`);
  });
  return p;
}
