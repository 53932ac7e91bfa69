import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { combineShards, gradientDiagnostics, gramian, l2norm, type ShardResult } from '../../coordinator/step-math.js';

function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

const shardList = fc.integer({ min: 1, max: 12 }).chain((p) =>
  fc.array(
    fc.record({
      sampleCount: fc.integer({ min: 1, max: 500 }),
      loss: fc.double({ min: 0, max: 50, noNaN: true }),
      grads: fc.array(fc.float({ min: -1e4, max: 1e4, noNaN: true, noDefaultInfinity: true }), { minLength: p, maxLength: p }).map((a) => Float32Array.from(a)),
    }),
    { minLength: 1, maxLength: 6 },
  ),
);

void describe('combineShards', () => {
  void it('is the sample-weighted mean, computed in float64 and rounded once to float32', () => {
    fc.assert(
      fc.property(shardList, (shards) => {
        const r = combineShards(shards);
        const total = shards.reduce((n, s) => n + s.sampleCount, 0);
        assert.equal(r.samples, total);
        const p = shards[0]!.grads.length;
        assert.equal(r.grads.length, p);
        assert.ok(r.grads instanceof Float32Array);
        let loss = 0;
        for (const s of shards) loss += s.sampleCount * s.loss;
        assert.ok(Math.abs(r.loss - loss / total) <= 1e-12 * (loss / total) + 1e-300, `loss ${r.loss} vs ${loss / total}`);
        for (let j = 0; j < p; j++) {
          let sum = 0;
          let scale = 0;
          for (const s of shards) {
            sum += s.sampleCount * s.grads[j]!;
            scale += s.sampleCount * Math.abs(s.grads[j]!);
          }
          const expected = Math.fround(sum / total);
          // One float32 rounding of the float64 mean (plus float64 noise next to the summed magnitudes).
          const tol = Math.abs(expected) * 2 ** -23 + (scale / total) * 1e-12 + 2 ** -149;
          assert.ok(Math.abs(r.grads[j]! - expected) <= tol, `[${j}] got ${r.grads[j]}, expected ${expected}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  void it('weights shards by sample count, exactly on representable values', () => {
    const r = combineShards([
      { sampleCount: 1, loss: 2, grads: Float32Array.from([1, 2, -8]) },
      { sampleCount: 3, loss: 6, grads: Float32Array.from([5, 6, 0]) },
    ]);
    assert.deepEqual(r.grads, Float32Array.from([4, 5, -2]));
    assert.equal(r.loss, 5);
    assert.equal(r.samples, 4);
  });

  void it('keeps precision a float32 accumulation would lose', () => {
    // 2^24 + 1 is not a float32, but the mean of these two shards is exactly representable.
    const big = 2 ** 24;
    const r = combineShards([
      { sampleCount: 1, loss: 0, grads: Float32Array.from([big]) },
      { sampleCount: 1, loss: 0, grads: Float32Array.from([2]) },
    ]);
    assert.equal(r.grads[0], big / 2 + 1);
  });

  void it('returns a single shard unchanged', () => {
    const grads = Float32Array.from([0.1, -3.3, 7e-8]);
    const before = Buffer.from(bytesOf(grads));
    const r = combineShards([{ sampleCount: 17, loss: 0.75, grads }]);
    assert.ok(bytesOf(r.grads).equals(before));
    assert.equal(r.loss, 0.75);
    assert.equal(r.samples, 17);
  });

  void it('throws when there is nothing to average', () => {
    const zero: ShardResult = { sampleCount: 0, loss: 1, grads: Float32Array.from([1]) };
    assert.throws(() => combineShards([]), RangeError);
    assert.throws(() => combineShards([zero]), RangeError);
    assert.throws(() => combineShards([zero, { ...zero }]), RangeError);
  });

  void it('throws on shards of different lengths', () => {
    assert.throws(
      () =>
        combineShards([
          { sampleCount: 1, loss: 1, grads: new Float32Array(3) },
          { sampleCount: 1, loss: 1, grads: new Float32Array(2) },
        ]),
      RangeError,
    );
  });
});

void describe('gradientDiagnostics', () => {
  void it('gives norms and cosines of known vectors', () => {
    const d = gradientDiagnostics(
      gramian([
        Float32Array.from([3, 4, 0]), // norm 5
        Float32Array.from([-4, 3, 0]), // orthogonal to the first
        Float32Array.from([-6, -8, 0]), // opposite to the first
        Float32Array.from([0, 0, 0]), // zero
        Float32Array.from([6, 8, 0]), // same direction as the first
      ]),
    );
    assert.deepEqual(d.norms, [5, 5, 10, 0, 10]);
    const c = d.cosine;
    assert.equal(c[0]?.[1], 0);
    assert.ok(Math.abs(c[0][2]! + 1) < 1e-12, `opposite → -1, got ${c[0]?.[2]}`);
    assert.ok(Math.abs(c[0][4]! - 1) < 1e-12, `same direction → 1, got ${c[0]?.[4]}`);
    for (let i = 0; i < 5; i++) {
      assert.equal(c[3]?.[i], 0, 'a zero gradient has cosine 0 with everything');
      assert.equal(c[i]?.[3], 0);
      if (i !== 3) assert.ok(Math.abs(c[i]![i]! - 1) < 1e-12, 'self-cosine 1');
      for (let j = 0; j < 5; j++) assert.equal(c[i]?.[j], c[j]?.[i], 'symmetric');
    }
  });

  void it('stays within [-1, 1] and matches l2norm', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }).chain((p) =>
          fc.array(fc.array(fc.float({ min: -100, max: 100, noNaN: true, noDefaultInfinity: true }), { minLength: p, maxLength: p }), { minLength: 1, maxLength: 5 }),
        ),
        (raw) => {
          const rows = raw.map((r) => Float32Array.from(r));
          const d = gradientDiagnostics(gramian(rows));
          rows.forEach((r, i) => assert.ok(Math.abs(d.norms[i]! - l2norm(r)) <= 1e-12 * l2norm(r)));
          for (const row of d.cosine) for (const v of row) assert.ok(v >= -1 - 1e-12 && v <= 1 + 1e-12, `cosine ${v}`);
        },
      ),
    );
  });

  void it('gramian holds the pairwise dot products', () => {
    assert.deepEqual(gramian([Float32Array.from([1, 2]), Float32Array.from([3, -1])]), [
      [5, 1],
      [1, 10],
    ]);
    assert.deepEqual(gramian([]), []);
  });
});
