// The Gramian-based aggregators (mgda, cagrad, imtl-g, nash-mtl, aligned-mtl, upgrad, dualproj)
// checked by the properties that define them, on random and adversarial matrices: near-collinear
// rows, duplicated rows, opposite rows, everything or one row scaled by 1e-20 or 1e20, a zero
// row, T from 1 to 10 and P small (P < T included, so H is often singular).
//
// Tolerances. Directions are float32: weightedSum rounds Σ wᵢgᵢ (formed in float64, in groups of
// four rows) to float32, so each component is off by at most ~3·2⁻²⁴ of Σᵢ|wᵢgᵢₖ|, and an inner
// product ⟨gⱼ, d⟩ by at most ~2e-7·‖gⱼ‖·Σᵢ|wᵢ|‖gᵢ‖. We allow 1e-6 of those scales (5× margin);
// float64 work on H and the solvers' 1e-12 KKT accuracy are far below it. Where a method
// regularises on purpose (mgda 1e-10, upgrad/dualproj reg_eps) the tolerance adds the bound
// that regularisation implies, stated at the assertion.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AggregationInputError } from '../../common/errors.js';
import { Rng } from '../../common/random.js';
import { weightedSum } from '../../coordinator/aggregation/gramian.js';
import { symmetricEigen } from '../../coordinator/aggregation/linalg.js';
import { alignedMtl } from '../../coordinator/aggregation/methods/aligned-mtl.js';
import { cagrad } from '../../coordinator/aggregation/methods/cagrad.js';
import { dualproj } from '../../coordinator/aggregation/methods/dualproj.js';
import { imtlG } from '../../coordinator/aggregation/methods/imtl-g.js';
import { mgda } from '../../coordinator/aggregation/methods/mgda.js';
import { nashMtl } from '../../coordinator/aggregation/methods/nash-mtl.js';
import { upgrad } from '../../coordinator/aggregation/methods/upgrad.js';
import type { AggregationInput, AggregationResult, Aggregator, AggregatorDefinition } from '../../coordinator/aggregation/types.js';

type Factory = (options?: Record<string, unknown>) => Aggregator;

function factory<O extends Record<string, unknown>>(definition: AggregatorDefinition<O>): Factory {
  return (options = {}) => definition.create(definition.options.parse(options), { seed: 0 });
}

const methods: ReadonlyArray<[string, Factory]> = [
  ['mgda', factory(mgda)],
  ['cagrad', factory(cagrad)],
  ['imtl-g', factory(imtlG)],
  ['nash-mtl', factory(nashMtl)],
  ['aligned-mtl', factory(alignedMtl)],
  ['upgrad', factory(upgrad)],
  ['dualproj', factory(dualproj)],
];

function run(make: Factory, rows: Float32Array[], options?: Record<string, unknown>): AggregationResult {
  return make(options).aggregate({ grads: rows, losses: rows.map(() => 1), step: 0 });
}

const SHAPES = ['random', 'near-collinear', 'duplicate', 'opposite', 'tiny', 'huge', 'tiny-row', 'huge-row', 'zero-row'] as const;
type Shape = (typeof SHAPES)[number];

/** A T × P float32 matrix of the given shape, reproducible from its seed. */
function buildMatrix(t: number, p: number, shape: Shape, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  const base = Array.from({ length: p }, () => rng.normal());
  let rows = Array.from({ length: t }, () => Array.from({ length: p }, () => rng.normal()));
  const j = rng.nextUint32() % t;
  const k = t > 1 ? (j + 1 + (rng.nextUint32() % (t - 1))) % t : j;
  if (shape === 'near-collinear') rows = rows.map((r) => { const c = rng.uniform(0.2, 3); return r.map((v, q) => c * base[q]! + 1e-4 * v); }); // prettier-ignore
  if (shape === 'duplicate') rows[k] = [...rows[j]!];
  if (shape === 'opposite') rows[k] = rows[j]!.map((v) => -v);
  if (shape === 'tiny' || shape === 'huge') rows = rows.map((r) => r.map((v) => v * (shape === 'tiny' ? 1e-20 : 1e20)));
  if (shape === 'tiny-row') rows[k] = rows[k]!.map((v) => v * 1e-20);
  if (shape === 'huge-row') rows[k] = rows[k]!.map((v) => v * 1e20);
  if (shape === 'zero-row') rows[k] = rows[k]!.map(() => 0);
  return rows.map((r) => Float32Array.from(r));
}

const anyMatrix = fc
  .record({ t: fc.integer({ min: 1, max: 10 }), p: fc.integer({ min: 1, max: 12 }), shape: fc.constantFrom(...SHAPES), seed: fc.integer() })
  .map(({ t, p, shape, seed }) => ({ rows: buildMatrix(t, p, shape, seed), shape }));

/** Generic matrices: random rows with P ≥ T + 2 (full row rank, well conditioned), T ≥ 2, varied row norms. */
const genericMatrix = fc
  .record({ t: fc.integer({ min: 2, max: 8 }), extra: fc.integer({ min: 2, max: 6 }), seed: fc.integer() })
  .map(({ t, extra, seed }) => {
    const rng = new Rng(seed);
    return buildMatrix(t, t + extra, 'random', seed).map((r) => r.map((v) => v * rng.uniform(0.1, 10)));
  });

const dotf = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let q = 0; q < a.length; q++) s += a[q]! * b[q]!;
  return s;
};
const norm = (a: ArrayLike<number>) => Math.sqrt(dotf(a, a));
/** Σᵢ|wᵢ|‖gᵢ‖: the scale of a weighted sum, and of its rounding error. */
const sumScale = (rows: readonly Float32Array[], w: readonly number[]) => rows.reduce((s, r, i) => s + Math.abs(w[i]!) * norm(r), 0);

/** |a − b| per component within `rel` of Σᵢ|wᵢgᵢₖ| (+ a float32 subnormal-range floor). */
function assertCloseDirections(actual: Float32Array, expected: ArrayLike<number>, rows: readonly Float32Array[], w: readonly number[], rel: number, what: string): void {
  assert.equal(actual.length, expected.length);
  for (let q = 0; q < actual.length; q++) {
    const scale = rows.reduce((s, r, i) => s + Math.abs(w[i]! * r[q]!), 0);
    assert.ok(Math.abs(actual[q]! - expected[q]!) <= rel * scale + 1e-37, `${what}[${q}]: ${actual[q]} vs ${expected[q]} (scale ${scale})`);
  }
}

function assertFiniteResult(r: AggregationResult, p: number, what: string): void {
  assert.equal(r.direction.length, p, `${what}: length`);
  assert.ok(r.direction.every(Number.isFinite), `${what}: non-finite direction`);
  assert.ok(r.weights.every(Number.isFinite), `${what}: non-finite weights ${r.weights.join(', ')}`);
  assert.equal(r.lossWeights, undefined, `${what}: gradient methods return no loss weights`);
}

void describe('Gramian aggregators: properties shared by all seven', () => {
  for (const [name, make] of methods) {
    void it(`${name}: finite, d = Σ wᵢ gᵢ with the reported weights`, () => {
      fc.assert(
        fc.property(anyMatrix, ({ rows, shape }) => {
          const r = run(make, rows);
          assertFiniteResult(r, rows[0]!.length, `${name} ${shape}`);
          assert.equal(r.weights.length, rows.length);
          const expected = Float64Array.from({ length: rows[0]!.length }, (_, q) => rows.reduce((s, g, i) => s + r.weights[i]! * g[q]!, 0));
          assertCloseDirections(r.direction, expected, rows, r.weights, 1e-6, `${name} ${shape} Σ wᵢgᵢ`);
        }),
        { numRuns: 150 },
      );
    });

    void it(`${name}: d(cG) = c·d(G) exactly for c = 2^k on every shape, and closely for any c > 0`, () => {
      fc.assert(
        fc.property(anyMatrix, fc.integer({ min: -20, max: 20 }), ({ rows, shape }, k) => {
          const c = 2 ** k;
          const d = run(make, rows);
          const scaled = run(make, rows.map((r) => r.map((v) => v * c)));
          // Scaling by a power of two is exact in float32 and float64: H, its normalisation and
          // so the weights are bitwise equal; only float32 subnormals could differ.
          assert.deepEqual(scaled.weights, d.weights, `${name} ${shape} weights`);
          assertCloseDirections(scaled.direction, Array.from(d.direction, (v) => c * v), rows, d.weights.map((w) => w * c), 0, `${name} ${shape} c=${c}`);
        }),
        { numRuns: 100 },
      );
      fc.assert(
        fc.property(genericMatrix, fc.double({ min: 1e-3, max: 1e3, noNaN: true }), (rows, c) => {
          const d = run(make, rows);
          const scaled = run(make, rows.map((r) => r.map((v) => v * c)));
          // c·G is rounded to float32 (relative 6e-8), which moves well-conditioned weights by
          // a similar relative amount: 1e-5 of the sum's scale.
          assertCloseDirections(scaled.direction, Array.from(d.direction, (v) => c * v), rows, d.weights.map((w) => w * c), 1e-5, `${name} c=${c}`);
        }),
        { numRuns: 100 },
      );
    });

    void it(`${name}: permuting tasks permutes the weights and leaves d unchanged`, () => {
      const rotate = <T>(xs: readonly T[], by: number) => xs.map((_, i) => xs[(i + by) % xs.length]!);
      fc.assert(
        fc.property(genericMatrix, fc.nat(), (rows, shift) => {
          const by = shift % rows.length;
          const d = run(make, rows);
          const permuted = run(make, rotate(rows, by));
          const scale = Math.max(...d.weights.map(Math.abs));
          rotate(d.weights, by).forEach((w, i) => assert.ok(Math.abs(permuted.weights[i]! - w) <= 1e-6 * scale, `${name} weight ${i}`));
          assertCloseDirections(permuted.direction, d.direction, rows, d.weights, 1e-5, `${name} permuted d`);
        }),
        { numRuns: 100 },
      );
      fc.assert(
        fc.property(anyMatrix, fc.nat(), ({ rows, shape }, shift) => {
          const by = shift % rows.length;
          const d = run(make, rows);
          const permuted = run(make, rotate(rows, by));
          if (d.notes || permuted.notes) return; // a fallback may trip in one order only
          // Degenerate inputs (duplicates, P < T) have non-unique or ill-conditioned weights, so
          // only d is compared, on the scale of the larger of both weight vectors.
          const back = rotate(permuted.weights, rows.length - by);
          const w = d.weights.map((x, i) => Math.max(Math.abs(x), Math.abs(back[i]!)));
          assertCloseDirections(permuted.direction, d.direction, rows, w, 1e-5, `${name} ${shape} permuted d`);
        }),
        { numRuns: 100 },
      );
    });

    void it(`${name}: T = 1 returns g₁ bitwise with weights [1]`, () => {
      for (const g1 of [Float32Array.from([0.5, -2, 4, 1e-3]), Float32Array.from([0, 0]), Float32Array.from([3e-30, -1e30, 7])]) {
        const r = run(make, [g1]);
        assert.deepEqual(r.weights, [1]);
        assert.deepEqual(Buffer.from(r.direction.buffer), Buffer.from(g1.buffer));
      }
    });

    void it(`${name}: an all-zero G returns zeros with finite weights`, () => {
      for (const [t, p] of [[2, 3], [5, 1], [10, 7]] as const) {
        const r = run(make, buildMatrix(t, p, 'random', 1).map((row) => row.map(() => 0)));
        assert.ok(r.direction.every((v) => v === 0));
        assert.ok(r.weights.length === t && r.weights.every(Number.isFinite));
      }
    });

    void it(`${name}: non-finite input throws AggregationInputError`, () => {
      const agg = make();
      const ok = [Float32Array.from([1, 2]), Float32Array.from([3, -4])];
      const bad: Array<[string, AggregationInput]> = [
        ['NaN gradient', { grads: [ok[0]!, Float32Array.from([Number.NaN, 1])], losses: [1, 1], step: 0 }],
        ['Infinity gradient', { grads: [Float32Array.from([1, Number.POSITIVE_INFINITY]), ok[1]!], losses: [1, 1], step: 0 }],
        ['NaN loss', { grads: ok, losses: [Number.NaN, 1], step: 0 }],
        ['non-finite Gramian', { grads: ok, losses: [1, 1], step: 0, gramian: [[5, Number.NaN], [Number.NaN, 25]] }],
        ['Gramian of the wrong size', { grads: ok, losses: [1, 1], step: 0, gramian: [[5]] }],
      ];
      for (const [what, x] of bad) assert.throws(() => agg.aggregate(x), AggregationInputError, what);
    });

    void it(`${name}: a fresh instance restored from JSON state gives the same next output bitwise`, () => {
      const inputs = [0, 1, 2, 3, 4].map((s) => buildMatrix(4, 6, s % 2 === 0 ? 'random' : 'opposite', 100 + s));
      const agg = make();
      agg.aggregate({ grads: inputs[0]!, losses: [1, 1, 1, 1], step: 0 });
      const json = JSON.stringify(agg.state());
      const fresh = make();
      fresh.restore(JSON.parse(json) as unknown);
      for (const g of inputs.slice(1)) {
        const x = { grads: g, losses: [1, 2, 3, 4], step: 1 };
        assert.deepEqual(fresh.aggregate(x), agg.aggregate(x));
      }
    });
  }
});

void describe('mgda', () => {
  void it('every task decreases along d: ⟨gᵢ, d⟩ ≥ ‖d‖², with equality where wᵢ > 0', () => {
    fc.assert(
      fc.property(anyMatrix, ({ rows, shape }) => {
        const r = run(factory(mgda), rows);
        const maxSq = Math.max(...rows.map((g) => dotf(g, g)));
        // Rounding (above) ≤ ~6e-7·max‖g‖², plus the 1e-10 uniqueness term (×2, mean ≤ max).
        const tol = 1e-6 * maxSq;
        const dd = dotf(r.direction, r.direction);
        assert.ok(Math.abs(r.weights.reduce((s, w) => s + w, 0) - 1) <= 1e-12 && r.weights.every((w) => w >= 0), `${shape}: weights on the simplex`);
        rows.forEach((g, i) => {
          const gd = dotf(g, r.direction);
          assert.ok(gd >= dd - tol, `${shape} task ${i}: ⟨g,d⟩ = ${gd} < ‖d‖² = ${dd}`);
          if (r.weights[i]! > 0) assert.ok(Math.abs(gd - dd) <= tol, `${shape} task ${i} (w=${r.weights[i]}): ⟨g,d⟩ = ${gd} ≠ ‖d‖² = ${dd}`);
        });
      }),
      { numRuns: 300 },
    );
  });

  void it('normalize=l2 solves on unit gradients (d is scale-free) and reports weights for the raw rows', () => {
    fc.assert(
      fc.property(genericMatrix, (rows) => {
        const r = run(factory(mgda), rows, { normalize: 'l2' });
        const units = rows.map((g) => Float32Array.from(g, (v) => v / norm(g)));
        const dd = dotf(r.direction, r.direction);
        units.forEach((u, i) => assert.ok(dotf(u, r.direction) >= dd - 1e-6, `task ${i}`));
        const direct = run(factory(mgda), units);
        assertCloseDirections(r.direction, direct.direction, units, direct.weights, 1e-5, 'same as MGDA on unit rows');
        const doubled = run(factory(mgda), rows.map((g) => g.map((v) => 2 * v)), { normalize: 'l2' });
        assert.deepEqual(doubled.direction, r.direction);
      }),
      { numRuns: 50 },
    );
  });

  void it('normalize=loss divides by the losses; without usable losses it solves unnormalised and says so', () => {
    const rows = buildMatrix(3, 5, 'random', 7);
    const plain = run(factory(mgda), rows);
    const byLoss = factory(mgda)({ normalize: 'loss' }).aggregate({ grads: rows, losses: [1, 4, 0.5], step: 0 });
    const manual = run(factory(mgda), rows.map((g, i) => g.map((v) => v / [1, 4, 0.5][i]!)));
    assertCloseDirections(byLoss.direction, manual.direction, rows, byLoss.weights, 1e-5, 'loss-normalised');
    for (const losses of [[], [1, 0, 2], [1, -3, 2]]) {
      const r = factory(mgda)({ normalize: 'loss' }).aggregate({ grads: rows, losses, step: 0 });
      assert.deepEqual(r.direction, plain.direction);
      assert.match(r.notes?.[0] ?? '', /normalize=loss/);
    }
  });
});

void describe('cagrad', () => {
  void it('c = 0 is exactly the mean (bitwise), whatever rescale', () => {
    fc.assert(
      fc.property(anyMatrix, fc.constantFrom(0, 1, 2), ({ rows }, rescale) => {
        const r = run(factory(cagrad), rows, { c: 0, rescale });
        const uniform = rows.map(() => 1 / rows.length);
        assert.deepEqual(r.weights, uniform);
        assert.deepEqual(r.direction, weightedSum(rows, uniform, rows[0]!.length));
      }),
      { numRuns: 100 },
    );
  });

  void it('stays within c‖g₀‖ of g₀ and improves the worst task over the mean (rescale 0)', () => {
    fc.assert(
      fc.property(anyMatrix, fc.double({ min: 0.05, max: 2, noNaN: true }), ({ rows, shape }, c) => {
        const r = run(factory(cagrad), rows, { c, rescale: 0 });
        const t = rows.length;
        const g0 = Float64Array.from({ length: rows[0]!.length }, (_, q) => rows.reduce((s, g) => s + g[q]!, 0) / t);
        const maxNorm = Math.max(...rows.map(norm));
        const tol = 1e-6 * maxNorm * sumScale(rows, r.weights);
        const offset = Float64Array.from(g0, (v, q) => r.direction[q]! - v);
        assert.ok(norm(offset) <= c * norm(g0) * (1 + 1e-6) + 1e-6 * sumScale(rows, r.weights), `${shape}: ‖d − g₀‖ = ${norm(offset)} > c‖g₀‖ = ${c * norm(g0)}`);
        const worst = (v: ArrayLike<number>) => Math.min(...rows.map((g) => dotf(g, v)));
        assert.ok(worst(r.direction) >= worst(g0) - tol, `${shape}: worst task ${worst(r.direction)} < mean's ${worst(g0)}`);
      }),
      { numRuns: 200 },
    );
  });
});

void describe('imtl-g', () => {
  void it('gives equal projections ⟨d, uᵢ⟩ on every unit gradient for non-degenerate inputs', () => {
    fc.assert(
      fc.property(genericMatrix, (rows) => {
        const r = run(factory(imtlG), rows);
        assert.equal(r.notes, undefined);
        const projections = rows.map((g) => dotf(g, r.direction) / norm(g));
        const spread = Math.max(...projections) - Math.min(...projections);
        // ⟨d, uᵢ⟩ is off by at most the float32 rounding of d: ~2e-7·Σ|wⱼ|‖gⱼ‖.
        assert.ok(spread <= 1e-6 * sumScale(rows, r.weights), `spread ${spread} of ${projections.join(', ')}`);
      }),
      { numRuns: 200 },
    );
  });

  void it('weights sum to 1 on every input; degenerate ones fall back to the mean with a note', () => {
    fc.assert(
      fc.property(anyMatrix, ({ rows }) => {
        const r = run(factory(imtlG), rows);
        const total = r.weights.reduce((s, w) => s + w, 0);
        assert.ok(Math.abs(total - 1) <= 1e-9 * Math.max(1, ...r.weights.map(Math.abs)), `Σw = ${total}`);
        if (r.notes) assert.deepEqual(r.weights, rows.map(() => 1 / rows.length));
      }),
      { numRuns: 200 },
    );
    const zeroRow = run(factory(imtlG), buildMatrix(3, 4, 'zero-row', 5));
    assert.match(zeroRow.notes?.[0] ?? '', /zero/);
  });
});

void describe('nash-mtl', () => {
  void it('solves the bargaining condition: wᵢ·⟨gᵢ, d⟩ is the same for every task, weights sum to 1', () => {
    fc.assert(
      fc.property(genericMatrix, (rows) => {
        const r = run(factory(nashMtl), rows);
        assert.equal(r.notes, undefined);
        assert.ok(Math.abs(r.weights.reduce((s, w) => s + w, 0) - 1) <= 1e-12);
        // α ∝ w with αᵢ(Hα)ᵢ = 1 gives wᵢ⟨gᵢ, d⟩ = 1/(Σα)² for all i. Each product is off by
        // wᵢ‖gᵢ‖ times the float32 rounding of d (~2e-7·Σ|wⱼ|‖gⱼ‖).
        const products = rows.map((g, i) => r.weights[i]! * dotf(g, r.direction));
        const tol = 1e-6 * Math.max(...rows.map((g, i) => r.weights[i]! * norm(g))) * sumScale(rows, r.weights);
        assert.ok(Math.max(...products) - Math.min(...products) <= tol, `products ${products.join(', ')}`);
      }),
      { numRuns: 200 },
    );
  });

  void it('update_every = 3 reuses the weights for two steps; restoring at any step continues bitwise', () => {
    const make = factory(nashMtl);
    const inputs = [0, 1, 2, 3, 4, 5, 6, 7].map((s) => ({ grads: buildMatrix(3, 5, 'random', 40 + s), losses: [1, 1, 1], step: s }));
    const reference = make({ update_every: 3 });
    const outputs = inputs.map((x) => reference.aggregate(x));
    assert.deepEqual(outputs[1]!.weights, outputs[0]!.weights);
    assert.deepEqual(outputs[2]!.weights, outputs[0]!.weights);
    assert.notDeepEqual(outputs[3]!.weights, outputs[0]!.weights);
    assert.deepEqual(outputs[5]!.weights, outputs[3]!.weights);
    for (let cut = 0; cut < inputs.length; cut++) {
      const first = make({ update_every: 3 });
      inputs.slice(0, cut).forEach((x) => first.aggregate(x));
      const resumed = make({ update_every: 3 });
      resumed.restore(JSON.parse(JSON.stringify(first.state())) as unknown);
      inputs.slice(cut).forEach((x, i) => {
        const out = resumed.aggregate(x);
        assert.deepEqual(out.weights, outputs[cut + i]!.weights, `cut ${cut} step ${cut + i}`);
        assert.deepEqual(Buffer.from(out.direction.buffer), Buffer.from(outputs[cut + i]!.direction.buffer));
      });
    }
    assert.throws(() => make().restore({ step: -1, weights: null }), AggregationInputError);
    assert.throws(() => make().restore({ step: 2, weights: ['x'] }), AggregationInputError);
  });

  void it('max_norm scales d down to that norm and leaves shorter directions alone', () => {
    const rows = buildMatrix(3, 6, 'random', 9).map((g) => g.map((v) => v * 100));
    const free = run(factory(nashMtl), rows);
    const clipped = run(factory(nashMtl), rows, { max_norm: 1 });
    assert.ok(Math.abs(norm(clipped.direction) - 1) < 1e-5);
    const loose = run(factory(nashMtl), rows, { max_norm: 1e9 });
    assert.deepEqual(loose.direction, free.direction);
  });

  void it('a zero or cancelling gradient gives d ≈ 0 with a note', () => {
    for (const shape of ['zero-row', 'opposite'] as const) {
      const rows = buildMatrix(2, 4, shape, 3);
      const r = run(factory(nashMtl), rows);
      assert.ok(norm(r.direction) <= 1e-3 * Math.max(...rows.map(norm)), `${shape}: ‖d‖ = ${norm(r.direction)}`);
      assert.match(r.notes?.[0] ?? '', /Pareto-stationary/);
    }
  });
});

void describe('aligned-mtl', () => {
  void it('duplicates act as one task, opposite rows cancel', () => {
    const g = Float32Array.from([1, -2, 3]);
    const duplicated = run(factory(alignedMtl), [g, g]);
    assertCloseDirections(duplicated.direction, g, [g, g], duplicated.weights, 1e-6, 'duplicate');
    const cancelled = run(factory(alignedMtl), [g, g.map((v) => -v)]);
    assert.ok(norm(cancelled.direction) <= 1e-6 * norm(g));
  });

  void it('aligns G to equal singular values: for full-rank G, ‖d‖² = λ_min(H)/T', () => {
    fc.assert(
      fc.property(genericMatrix, (rows) => {
        // B·H·B = λ_min·I when H has full rank, so with w = B·1/T, ‖d‖² = wᵀHw = λ_min/T.
        const r = run(factory(alignedMtl), rows);
        const t = rows.length;
        const lambdaMin = Math.min(...symmetricEigen(rows.map((a) => rows.map((b) => dotf(a, b)))).values);
        const dd = dotf(r.direction, r.direction);
        // ‖d‖² moves by ≤ 2‖d‖ times the float32 rounding of d (~2e-7·Σ|wᵢ|‖gᵢ‖ in norm).
        const tol = 1e-6 * norm(r.direction) * sumScale(rows, r.weights);
        assert.ok(Math.abs(dd - lambdaMin / t) <= tol, `‖d‖² = ${dd}, λ_min/T = ${lambdaMin / t}`);
      }),
      { numRuns: 100 },
    );
  });
});

void describe('upgrad and dualproj', () => {
  for (const [name, make] of methods.filter(([n]) => n === 'upgrad' || n === 'dualproj')) {
    void it(`${name}: no task conflicts with d: ⟨gⱼ, d⟩ ≥ −tol for every task`, () => {
      fc.assert(
        fc.property(anyMatrix, fc.constantFrom(1e-4, 1e-8), ({ rows, shape }, regEps) => {
          const r = run(make, rows, { reg_eps: regEps });
          const t = rows.length;
          const trace = rows.reduce((s, g) => s + dotf(g, g), 0);
          const rounding = 1e-6 * Math.max(...rows.map(norm)) * sumScale(rows, r.weights);
          rows.forEach((g, j) => {
            // The regularised dual allows ⟨gⱼ, d⟩ ≥ −ε·tr(H)·(wⱼ − 1/T) (upgrad.ts), plus rounding.
            const tol = regEps * trace * Math.max(0, r.weights[j]! - 1 / t) + rounding;
            assert.ok(dotf(g, r.direction) >= -tol, `${shape} task ${j}: ⟨g,d⟩ = ${dotf(g, r.direction)} < −${tol}`);
          });
          assert.equal(r.notes, undefined, `${shape}: ${r.notes?.join('; ')}`);
        }),
        { numRuns: 300 },
      );
    });

    void it(`${name}: leaves the mean alone when no gradients conflict`, () => {
      const rows = [Float32Array.from([1, 0, 1]), Float32Array.from([0, 2, 1]), Float32Array.from([1, 1, 0])];
      assert.deepEqual(run(make, rows).weights, [1 / 3, 1 / 3, 1 / 3]);
    });
  }
});

void describe('TorchJD’s documented example J = [[-4, 1, 1], [6, 1, 1]]', () => {
  const rows = [Float32Array.from([-4, 1, 1]), Float32Array.from([6, 1, 1])];
  // [method, options, TorchJD's printed output, tolerance]. CAGrad: TorchJD has no rescale (0).
  // DualProj to 1e-3: TorchJD also puts ε in the linear term of the dual (see upgrad.ts); with
  // reg_eps = 0 we get the exact projection of g₀ = (1, 1, 1), g₀ + (2/18)·g₁ = (5/9, 10/9, 10/9).
  const cases: Array<[string, Factory, Record<string, unknown>, number[], number]> = [
    ['mgda', factory(mgda), {}, [0, 1, 1], 1e-4],
    ['cagrad', factory(cagrad), { rescale: 0 }, [0.1835, 1.2041, 1.2041], 1e-4],
    ['cagrad /(1 + c²)', factory(cagrad), {}, [0.1835 / 1.25, 1.2041 / 1.25, 1.2041 / 1.25], 1e-4],
    ['imtl-g', factory(imtlG), {}, [0.0767, 1, 1], 1e-4],
    ['aligned-mtl', factory(alignedMtl), {}, [0.2133, 0.9673, 0.9673], 1e-4],
    ['upgrad', factory(upgrad), {}, [0.2929, 1.9004, 1.9004], 1e-4],
    ['dualproj', factory(dualproj), {}, [0.5563, 1.1109, 1.1109], 1e-3],
    ['dualproj reg_eps 0', factory(dualproj), { reg_eps: 0 }, [5 / 9, 10 / 9, 10 / 9], 1e-6],
  ];
  for (const [what, make, options, expected, tol] of cases) {
    void it(`${what} gives ${expected.map((v) => v.toFixed(4)).join(', ')}`, () => {
      const d = run(make, rows, options).direction;
      expected.forEach((v, q) => assert.ok(Math.abs(d[q]! - v) <= tol, `${what}[${q}]: ${d[q]} vs ${v}`));
    });
  }
});

void describe('P = 10⁷, T = 8 (one shared G of 320 MB)', () => {
  let shared: Float32Array[] | undefined;
  /** Built once, lazily: rows share a component and conflict pairwise, values from a cheap LCG. */
  const bigG = (): Float32Array[] => {
    if (shared) return shared;
    const p = 10_000_000;
    let state = 12345;
    const next = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 31) - 1;
    const common = Float32Array.from({ length: p }, next);
    shared = Array.from({ length: 8 }, (_, i) => {
      const row = new Float32Array(p);
      const sign = i % 2 === 0 ? 1 : -0.6;
      for (let q = 0; q < p; q++) row[q] = sign * common[q]! + 0.5 * next();
      return row;
    });
    return shared;
  };

  for (const [name, make] of methods) {
    void it(`${name}: finite direction and weights`, () => {
      const rows = bigG();
      const r = make().aggregate({ grads: rows, losses: rows.map(() => 1), step: 0 });
      assertFiniteResult(r, rows[0]!.length, name);
      assert.equal(r.notes, undefined, `${name}: ${r.notes?.join('; ')}`);
      assert.ok(norm(r.direction) > 0);
    });
  }
});
