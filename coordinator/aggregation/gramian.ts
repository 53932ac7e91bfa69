// The two passes over G that every Gramian-based method needs: H = G·Gᵀ, and d = Σ wᵢ gᵢ.
// Both walk memory once: H in blocks of columns that stay in cache while all T(T+1)/2 dot
// products are accumulated (2 rows × 4 rows at a time), d in groups of four rows.
// Accumulation order is fixed, so results are bitwise reproducible.

const BLOCK = 4096;
/** The column block of gramian(): its dot products are summed block by block (block-gramian.ts relies on it). */
export const GRAMIAN_BLOCK = BLOCK;

/**
 * The dot products of every pair of rows over columns [start, end), each summed from 0 in
 * column order, into `out` (T × T, upper triangle i ≤ j). Rows are taken 2 × 4 at a time so the
 * columns stay in registers. H is the sum of these block partials in ascending block order, the
 * same here and in BlockGramian (which computes them as gradients stream in): bitwise one H.
 */
export function blockPartial(rows: readonly ArrayLike<number>[], start: number, end: number, out: Float64Array): void {
  const t = rows.length;
  const row = (i: number) => rows[Math.min(i, t - 1)]!;
  for (let i = 0; i < t; i += 2) {
    const a0 = row(i);
    const a1 = row(i + 1);
    for (let j = i; j < t; j += 4) {
      const b0 = row(j);
      const b1 = row(j + 1);
      const b2 = row(j + 2);
      const b3 = row(j + 3);
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0; // prettier-ignore
      for (let k = start; k < end; k++) {
        const x = a0[k]!;
        const y = a1[k]!;
        const q0 = b0[k]!;
        const q1 = b1[k]!;
        const q2 = b2[k]!;
        const q3 = b3[k]!;
        s00 += x * q0;
        s01 += x * q1;
        s02 += x * q2;
        s03 += x * q3;
        s10 += y * q0;
        s11 += y * q1;
        s12 += y * q2;
        s13 += y * q3;
      }
      // Lanes past the last row repeat it; only real (i', j') pairs with j' >= i' are kept.
      const sums = [s00, s01, s02, s03, s10, s11, s12, s13];
      for (let a = 0; a < 2; a++) {
        for (let b = 0; b < 4; b++) {
          const ii = i + a;
          const jj = j + b;
          if (ii < t && jj < t && jj >= ii) out[ii * t + jj] = sums[a * 4 + b]!;
        }
      }
    }
  }
}

/** H = G·Gᵀ (T × T, symmetric), accumulated in double precision, block by block. */
export function gramian(rows: readonly Float32Array[]): number[][] {
  const t = rows.length;
  const p = t === 0 ? 0 : rows[0]!.length;
  const h = new Float64Array(t * t);
  const partial = new Float64Array(t * t);
  for (let start = 0; start < p; start += BLOCK) {
    blockPartial(rows, start, Math.min(p, start + BLOCK), partial);
    for (let i = 0; i < t; i++) for (let j = i; j < t; j++) h[i * t + j]! += partial[i * t + j]!;
  }
  return Array.from({ length: t }, (_, i) => Array.from({ length: t }, (_, j) => (j >= i ? h[i * t + j]! : h[j * t + i]!)));
}

/**
 * d = Σ wᵢ gᵢ. Rows are taken four at a time and their weighted sum is formed in double
 * precision before one rounding to float32, so for T ≤ 4 the result is the exactly rounded
 * double-precision sum.
 */
export function weightedSum(rows: readonly Float32Array[], weights: readonly number[], p: number, into?: Float32Array): Float32Array {
  if (into !== undefined && into.length !== p) throw new RangeError(`output has length ${into.length}, expected ${p}`);
  const out = into ?? new Float32Array(p);
  const t = rows.length;
  if (t === 0) out.fill(0);
  let first = true;
  for (let i = 0; i < t; i += 4) {
    const n = Math.min(4, t - i);
    const a = rows[i]!;
    const b = rows[i + (n > 1 ? 1 : 0)]!;
    const c = rows[i + (n > 2 ? 2 : 0)]!;
    const d = rows[i + (n > 3 ? 3 : 0)]!;
    const wa = weights[i]!;
    const wb = n > 1 ? weights[i + 1]! : 0;
    const wc = n > 2 ? weights[i + 2]! : 0;
    const wd = n > 3 ? weights[i + 3]! : 0;
    if (first) {
      for (let k = 0; k < p; k++) out[k] = wa * a[k]! + wb * b[k]! + wc * c[k]! + wd * d[k]!;
      first = false;
    } else {
      for (let k = 0; k < p; k++) out[k] = out[k]! + (wa * a[k]! + wb * b[k]! + wc * c[k]! + wd * d[k]!);
    }
  }
  return out;
}
