// The blocked Gramian and the grouped weighted sum against plain double-precision loops.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { gramian, weightedSum } from '../../coordinator/aggregation/gramian.js';
import { Rng } from '../../common/random.js';

function rows(t: number, p: number, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: t }, () => Float32Array.from({ length: p }, () => rng.normal()));
}

function naiveDot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k]! * b[k]!;
  return s;
}

void describe('gramian', () => {
  void it('equals the pairwise dot products for every T (lane edge cases) and P across block boundaries', () => {
    for (const t of [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 16]) {
      for (const p of [1, 7, 4096, 4097, 10000]) {
        const g = rows(t, p, t * 100 + p);
        const h = gramian(g);
        assert.equal(h.length, t);
        for (let i = 0; i < t; i++) {
          for (let j = 0; j < t; j++) {
            const want = naiveDot(g[i]!, g[j]!);
            assert.ok(Math.abs(h[i]![j]! - want) <= 1e-9 * Math.max(1, Math.abs(want)), `T=${t} P=${p} H[${i}][${j}] ${h[i]![j]} vs ${want}`);
            assert.equal(h[i]![j], h[j]![i]);
          }
        }
      }
    }
  });

  void it('is empty for no rows', () => {
    assert.deepEqual(gramian([]), []);
  });
});

void describe('weightedSum', () => {
  void it('for T <= 4 is the double-precision sum rounded once', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 50 }), fc.integer(), (t, p, seed) => {
        const g = rows(t, p, seed);
        const rng = new Rng(seed ^ 7);
        const w = Array.from({ length: t }, () => rng.normal());
        const got = weightedSum(g, w, p);
        for (let k = 0; k < p; k++) {
          let acc = 0;
          for (let i = 0; i < t; i++) acc += w[i]! * g[i]![k]!;
          assert.equal(got[k], Math.fround(acc));
        }
      }),
    );
  });

  void it('for larger T agrees with the double-precision sum to float precision, and is deterministic', () => {
    const g = rows(13, 5000, 1);
    const w = Array.from({ length: 13 }, (_, i) => (i % 3) - 0.7);
    const got = weightedSum(g, w, 5000);
    for (let k = 0; k < 5000; k++) {
      let acc = 0;
      for (let i = 0; i < 13; i++) acc += w[i]! * g[i]![k]!;
      assert.ok(Math.abs(got[k]! - acc) <= 1e-5 * (1 + Math.abs(acc)));
    }
    assert.deepEqual(weightedSum(g, w, 5000), got);
  });
});
