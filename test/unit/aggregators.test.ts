import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AggregationInputError, JobSpecError } from '../../common/errors.js';
import { aggregatorNames, createAggregator } from '../../coordinator/aggregation/registry.js';
import type { AggregationInput } from '../../coordinator/aggregation/types.js';

function input(rows: number[][], losses?: number[]): AggregationInput {
  return { grads: rows.map((r) => Float32Array.from(r)), losses: losses ?? rows.map(() => 1), step: 0 };
}

function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** |a − b| small next to the magnitudes that were summed (float32 output of float64 sums). */
function assertCloseVec(actual: Float32Array, expected: ArrayLike<number>, scale: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let j = 0; j < actual.length; j++) {
    const tol = 1e-6 * scale[j]! + 1e-30;
    assert.ok(Math.abs(actual[j]! - expected[j]!) <= tol, `${what}[${j}]: got ${actual[j]}, expected ${expected[j]}`);
  }
}

/** Σ |wᵢ gᵢⱼ| per column: the natural error scale of a weighted sum. */
function absScale(rows: readonly Float32Array[], weights: readonly number[]): Float64Array {
  const s = new Float64Array(rows[0]?.length ?? 0);
  rows.forEach((r, i) => r.forEach((v, j) => (s[j]! += Math.abs(weights[i]! * v))));
  return s;
}

/** T × P matrices of float32 values, T in 1..6, P in 1..16. */
const matrix = fc
  .record({ t: fc.integer({ min: 1, max: 6 }), p: fc.integer({ min: 1, max: 16 }) })
  .chain(({ t, p }) =>
    fc.array(fc.array(fc.float({ min: -1e3, max: 1e3, noNaN: true, noDefaultInfinity: true }), { minLength: p, maxLength: p }), {
      minLength: t,
      maxLength: t,
    }),
  )
  .map((rows) => rows.map((r) => Float32Array.from(r)));

void describe('aggregator registry', () => {
  void it('lists mean and sum, sorted and frozen', () => {
    assert.ok(aggregatorNames.includes('mean'));
    assert.ok(aggregatorNames.includes('sum'));
    assert.deepEqual([...aggregatorNames], [...aggregatorNames].sort());
    assert.ok(Object.isFrozen(aggregatorNames));
  });

  void it('rejects an unknown name with a JobSpecError listing the available ones', () => {
    try {
      createAggregator('nope');
      assert.fail('expected a JobSpecError');
    } catch (err) {
      assert.ok(err instanceof JobSpecError);
      assert.equal(err.issues.length, 1);
      assert.equal(err.issues[0]?.path, 'training.aggregator.name');
      assert.match(err.issues[0]?.message ?? '', /"nope"/);
      for (const name of aggregatorNames) assert.ok(err.issues[0]?.message.includes(name), `lists ${name}`);
    }
  });

  void it('rejects an unknown option at its own path', () => {
    for (const name of ['mean', 'sum']) {
      try {
        createAggregator(name, { foo: 1 });
        assert.fail('expected a JobSpecError');
      } catch (err) {
        assert.ok(err instanceof JobSpecError);
        assert.deepEqual(
          err.issues.map((i) => i.path),
          ['training.aggregator.foo'],
        );
        assert.match(err.issues[0]?.message ?? '', /unknown key/);
      }
    }
  });

  void it('creates each method under its own name', () => {
    for (const name of aggregatorNames) assert.equal(createAggregator(name).name, name);
  });
});

void describe('mean and sum', () => {
  const g = [
    [1, 2, -3, 0.5],
    [3, -2, 1, 0.25],
    [-1, 6, 8, 2],
  ];

  void it('mean returns the row mean with weights 1/T', () => {
    const r = createAggregator('mean').aggregate(input(g));
    assert.deepEqual(r.weights, [1 / 3, 1 / 3, 1 / 3]);
    assertCloseVec(r.direction, [1, 2, 2, 2.75 / 3], [5, 10, 12, 2.75], 'mean');
    assert.deepEqual(createAggregator('mean').aggregate(input([[2, 4], [6, 8]])).direction, Float32Array.from([4, 6]));
  });

  void it('sum returns the row sum with weights 1', () => {
    const r = createAggregator('sum').aggregate(input(g));
    assert.deepEqual(r.weights, [1, 1, 1]);
    assert.deepEqual(r.direction, Float32Array.from([3, 6, 6, 2.75]));
  });

  for (const name of ['mean', 'sum']) {
    void it(`${name}: T = 1 returns g₁ bitwise`, () => {
      const g1 = Float32Array.from([0.1, -7.25, 3e-7, 123456.79]);
      const r = createAggregator(name).aggregate({ grads: [g1], losses: [0.3], step: 4 });
      assert.ok(bytesOf(r.direction).equals(bytesOf(g1)));
      assert.deepEqual(r.weights, [1]);
    });

    void it(`${name}: d = Σ wᵢ gᵢ, d(cG) = c·d(G), and task order only permutes the weights`, () => {
      fc.assert(
        fc.property(matrix, fc.double({ min: -8, max: 8, noNaN: true }), fc.nat(), (rows, c, shift) => {
          const agg = createAggregator(name);
          const { direction, weights } = agg.aggregate({ grads: rows, losses: rows.map(() => 1), step: 0 });
          assert.equal(weights.length, rows.length);
          const p = rows[0]!.length;
          const expected = new Float64Array(p);
          rows.forEach((r, i) => r.forEach((v, j) => (expected[j]! += weights[i]! * v)));
          const scale = absScale(rows, weights);
          assertCloseVec(direction, expected, scale, 'Σ wᵢ gᵢ');

          const cRows = rows.map((r) => r.map((v) => v * c));
          const scaled = agg.aggregate({ grads: cRows, losses: rows.map(() => 1), step: 1 }).direction;
          const cExpected = Array.from(direction, (v) => c * v);
          // c·G is rounded to float32 before aggregation: allow for that rounding too.
          assertCloseVec(scaled, cExpected, Array.from(scale, (s) => Math.abs(c) * s * 2 + 1e-30), 'd(cG)');

          const k = shift % rows.length;
          const perm = rows.map((_, i) => (i + k) % rows.length);
          const permuted = agg.aggregate({ grads: perm.map((i) => rows[i]!), losses: perm.map(() => 1), step: 2 });
          assertCloseVec(permuted.direction, direction, scale, 'permuted d');
          assert.deepEqual(
            permuted.weights,
            perm.map((i) => weights[i]),
          );
        }),
        { numRuns: 200 },
      );
    });
  }
});

void describe('every method', () => {
  for (const name of aggregatorNames) {
    void it(`${name}: T = 1 returns g₁`, () => {
      const g1 = Float32Array.from([0.5, -2, 4, 1e-3]);
      const d = createAggregator(name).aggregate({ grads: [g1], losses: [1.5], step: 0 }).direction;
      assertCloseVec(d, g1, Array.from(g1, Math.abs), `${name} T=1`);
    });

    void it(`${name}: an all-zero G returns zeros`, () => {
      const d = createAggregator(name).aggregate(input([[0, 0, 0], [0, 0, 0]])).direction;
      assert.equal(d.length, 3);
      assert.ok(d.every((v) => v === 0), `got ${Array.from(d).join(', ')}`);
    });

    void it(`${name}: bad input throws AggregationInputError`, () => {
      const agg = createAggregator(name);
      const bad: Array<[string, AggregationInput]> = [
        ['T = 0', { grads: [], losses: [], step: 0 }],
        ['ragged rows', input([[1, 2, 3], [1, 2]])],
        ['NaN in a gradient', input([[1, 2], [Number.NaN, 1]])],
        ['-Infinity in a gradient', input([[1, Number.NEGATIVE_INFINITY], [0, 1]])],
        ['Infinity loss', input([[1, 2], [3, 4]], [1, Number.POSITIVE_INFINITY])],
        ['NaN loss', input([[1, 2], [3, 4]], [Number.NaN, 1])],
        ['losses for another T', input([[1, 2], [3, 4]], [1, 2, 3])],
      ];
      for (const [what, x] of bad) assert.throws(() => agg.aggregate(x), AggregationInputError, what);
    });

    void it(`${name}: state() is JSON-serialisable and restores`, () => {
      const agg = createAggregator(name);
      agg.aggregate(input([[1, 2], [3, -4]]));
      const state = agg.state();
      const json = JSON.stringify(state);
      assert.equal(typeof json, 'string');
      assert.deepEqual(JSON.parse(json) as unknown, state);
      const fresh = createAggregator(name);
      fresh.restore(JSON.parse(json) as unknown);
      const next = input([[0.5, 1], [2, -1]]);
      assert.deepEqual(fresh.aggregate(next), agg.aggregate(next));
    });
  }
});
