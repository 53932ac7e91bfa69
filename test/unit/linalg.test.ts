// The T × T solvers behind the Gramian aggregators, checked by their defining conditions (KKT
// for the QPs, reconstruction for the eigendecomposition) rather than against stored answers.
// Problems are built from seeded random factors so every case is reproducible from its seed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Rng } from '../../common/random.js';
import {
  cholesky,
  choleskySolve,
  matVec,
  nonNegativeQp,
  projectedGradientQp,
  projectOntoSimplex,
  regularizedCholesky,
  scaleGramian,
  simplexQp,
  solveLinear,
  symmetricEigen,
} from '../../coordinator/aggregation/linalg.js';

/** A = MᵀM (+ reg·I) with M of `rank` rows: PSD, singular when rank < n and reg = 0. */
function psd(n: number, rank: number, reg: number, rng: Rng): number[][] {
  const m = Array.from({ length: rank }, () => Array.from({ length: n }, () => rng.normal()));
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => m.reduce((s, row) => s + row[i]! * row[j]!, 0) + (i === j ? reg : 0)),
  );
}

const problem = fc.record({
  n: fc.integer({ min: 1, max: 14 }),
  rank: fc.integer({ min: 1, max: 14 }),
  reg: fc.constantFrom(0, 1e-10, 1e-4, 1),
  seed: fc.integer(),
});

/**
 * A random problem. With `bounded`, a singular A gets b = A·c (in A's range): otherwise
 * min ½λᵀAλ + bᵀλ over λ ≥ 0 can be unbounded below (a null direction λ ≥ 0 with bᵀλ < 0)
 * and has no solution to check. The aggregators only pose bounded ones (b = Ĥu, or A ≻ 0).
 */
function build({ n, rank, reg, seed }: { n: number; rank: number; reg: number; seed: number }, bounded: boolean): { a: number[][]; b: number[] } {
  const rng = new Rng(seed);
  const a = psd(n, rank, reg, rng);
  if (n > 2 && seed % 3 === 0) a[1] = [...a[0]!]; // duplicated variable (rows and columns)
  if (n > 2 && seed % 3 === 0) a.forEach((row) => (row[1] = row[0]!));
  const noise = Array.from({ length: n }, () => rng.normal());
  return { a, b: bounded && reg === 0 ? matVec(a, noise) : noise };
}

/**
 * KKT of min ½xᵀAx + bᵀx on {x ≥ 0} (ν = 0) or on the simplex (ν the multiplier of Σx = 1):
 * x feasible, every reduced gradient gᵢ − ν ≥ −tol, and = 0 (± tol) where xᵢ > 0. The
 * tolerance is relative to the problem's scale (max |A|·max(1, |x|) + max |b|): the active set
 * ends with an exact solve on the support, so only rounding separates it from the solution.
 * Measured over 40 000 problems of this generator: ≤ 2e-16 on the simplex, ≤ 3e-12 for λ ≥ 0
 * (singular A with |x| ~ 1e4); we assert 1e-11.
 */
function assertKkt(a: number[][], b: number[], x: number[], simplex: boolean): void {
  const g = matVec(a, x).map((v, i) => v + b[i]!);
  const nu = simplex ? x.reduce((s, v, i) => s + v * g[i]!, 0) : 0;
  const scale = Math.max(...a.flat().map(Math.abs)) * Math.max(1, ...x.map(Math.abs)) + Math.max(...b.map(Math.abs));
  const tol = 1e-11 * scale;
  x.forEach((xi, i) => {
    assert.ok(xi >= 0, `x[${i}] = ${xi} < 0`);
    assert.ok(g[i]! - nu >= -tol, `reduced gradient ${i}: ${g[i]! - nu} (tol ${tol})`);
    if (xi > 0) assert.ok(Math.abs(g[i]! - nu) <= tol, `complementarity ${i}: x=${xi}, reduced gradient ${g[i]! - nu}`);
  });
  if (simplex) assert.ok(Math.abs(x.reduce((s, v) => s + v, 0) - 1) <= 1e-14 * x.length, 'Σx = 1');
}

void describe('nonNegativeQp', () => {
  void it('satisfies the KKT conditions to ~1e-12 on random PSD problems (singular and duplicated included)', () => {
    fc.assert(
      fc.property(problem, (spec) => {
        const { a, b } = build(spec, true);
        const s = nonNegativeQp(a, b);
        assert.ok(s.converged, `not converged: ${JSON.stringify(s)}`);
        assert.equal(s.method, 'active-set');
        assertKkt(a, b, s.x, false);
      }),
      { numRuns: 400 },
    );
  });

  void it('returns 0 when b ≥ 0 and the unconstrained minimiser when it is positive', () => {
    assert.deepEqual(nonNegativeQp([[2, 0], [0, 1]], [1, 0]).x, [0, 0]);
    const s = nonNegativeQp([[2, 1], [1, 2]], [-3, -3]);
    s.x.forEach((v) => assert.ok(Math.abs(v - 1) < 1e-14));
  });

  void it('never throws: a NaN matrix gives a finite feasible point flagged as not converged', () => {
    const s = nonNegativeQp([[Number.NaN, 0], [0, 1]], [-1, -1]);
    assert.equal(s.converged, false);
    assert.ok(s.x.every((v) => Number.isFinite(v) && v >= 0));
  });
});

void describe('simplexQp', () => {
  void it('satisfies the KKT conditions to ~1e-12 on random PSD problems (singular and duplicated included)', () => {
    fc.assert(
      fc.property(problem, (spec) => {
        const { a, b } = build(spec, false);
        const s = simplexQp(a, b);
        assert.ok(s.converged, `not converged: ${JSON.stringify(s)}`);
        assert.equal(s.method, 'active-set');
        assertKkt(a, b, s.x, true);
      }),
      { numRuns: 400 },
    );
  });

  void it('finds the min-norm point of two opposite vectors (½, ½) and of a vertex', () => {
    const s = simplexQp([[1, -1], [-1, 1]], [0, 0]);
    s.x.forEach((v) => assert.ok(Math.abs(v - 0.5) < 1e-15));
    assert.deepEqual(simplexQp([[1, 2], [2, 5]], [0, 0]).x, [1, 0]);
  });
});

void describe('projectedGradientQp (the fallback)', () => {
  void it('reaches the active-set solution on well-conditioned problems, from an infeasible start', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer(), fc.boolean(), (n, seed, simplex) => {
        const rng = new Rng(seed);
        const a = psd(n, n + 2, 0.5, rng);
        const b = Array.from({ length: n }, () => rng.normal());
        const exact = simplex ? simplexQp(a, b) : nonNegativeQp(a, b);
        const start = Array.from({ length: n }, () => rng.normal());
        const s = projectedGradientQp(a, b, start, simplex, 50000);
        assert.ok(s.converged, `not converged: ${JSON.stringify(s)}`);
        s.x.forEach((v, i) => assert.ok(Math.abs(v - exact.x[i]!) <= 1e-6 * Math.max(1, Math.abs(exact.x[i]!)), `x[${i}] ${v} vs ${exact.x[i]}`));
      }),
      { numRuns: 100 },
    );
  });
});

void describe('symmetricEigen', () => {
  const matrices = fc.record({ n: fc.integer({ min: 1, max: 16 }), seed: fc.integer(), kind: fc.constantFrom('general', 'psd', 'low-rank', 'repeated') });

  void it('reconstructs A = VΛVᵀ with V orthonormal and eigenvalues descending (to 1e-12 of ‖A‖)', () => {
    fc.assert(
      fc.property(matrices, ({ n, seed, kind }) => {
        const rng = new Rng(seed);
        let a: number[][];
        if (kind === 'general') {
          const m = Array.from({ length: n }, () => Array.from({ length: n }, () => rng.normal()));
          a = m.map((row, i) => row.map((v, j) => v + m[j]![i]!));
        } else if (kind === 'repeated') {
          a = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 3 : 0)));
        } else {
          a = psd(n, kind === 'psd' ? n + 1 : Math.max(1, n >> 2), 0, rng);
        }
        const { values, vectors, converged } = symmetricEigen(a);
        assert.ok(converged);
        const norm = Math.sqrt(a.flat().reduce((s, v) => s + v * v, 0)) || 1;
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < n; j++) {
            let rebuilt = 0;
            let gram = 0;
            for (let k = 0; k < n; k++) {
              rebuilt += vectors[i]![k]! * values[k]! * vectors[j]![k]!;
              gram += vectors[k]![i]! * vectors[k]![j]!;
            }
            assert.ok(Math.abs(rebuilt - a[i]![j]!) <= 1e-12 * norm, `A[${i}][${j}]: ${rebuilt} vs ${a[i]![j]}`);
            assert.ok(Math.abs(gram - (i === j ? 1 : 0)) <= 1e-12, `VᵀV[${i}][${j}] = ${gram}`);
          }
        }
        for (let k = 1; k < n; k++) assert.ok(values[k - 1]! >= values[k]!, 'descending');
      }),
      { numRuns: 200 },
    );
  });
});

void describe('projectOntoSimplex', () => {
  const vector = fc.array(fc.double({ min: -1e3, max: 1e3, noNaN: true }), { minLength: 1, maxLength: 20 });

  void it('lands on the simplex, is max(v − θ, 0) for one θ, and is the closest simplex point', () => {
    fc.assert(
      fc.property(vector, fc.integer(), (v, seed) => {
        const p = projectOntoSimplex(v);
        const scale = Math.max(1, ...v.map(Math.abs));
        assert.ok(p.every((x) => x >= 0));
        assert.ok(Math.abs(p.reduce((s, x) => s + x, 0) - 1) <= 1e-12 * scale * v.length);
        // Optimality: vᵢ − pᵢ equals one θ on the support and vᵢ ≤ θ off it.
        const support = p.flatMap((x, i) => (x > 0 ? [i] : []));
        const theta = v[support[0]!]! - p[support[0]!]!;
        v.forEach((x, i) => {
          if (p[i]! > 0) assert.ok(Math.abs(x - p[i]! - theta) <= 1e-12 * scale);
          else assert.ok(x <= theta + 1e-12 * scale);
        });
        // No other simplex point is closer.
        const rng = new Rng(seed);
        const q = projectOntoSimplex(v.map(() => rng.normal()));
        const dist = (w: number[]) => w.reduce((s, x, i) => s + (x - v[i]!) ** 2, 0);
        assert.ok(dist(p) <= dist(q) * (1 + 1e-12) + 1e-12);
      }),
    );
  });

  void it('leaves a point of the simplex where it is', () => {
    assert.deepEqual(projectOntoSimplex([0.25, 0.75, 0]), [0.25, 0.75, 0]);
    assert.deepEqual(projectOntoSimplex([5]), [1]);
  });
});

void describe('linear solves', () => {
  void it('Cholesky solves SPD systems with a small residual and refuses an indefinite matrix', () => {
    const rng = new Rng(3);
    for (const n of [1, 2, 5, 16, 64]) {
      const a = psd(n, n + 3, 0, rng);
      const b = Array.from({ length: n }, () => rng.normal());
      const l = cholesky(a);
      assert.ok(l);
      const x = choleskySolve(l, b);
      matVec(a, x).forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= 1e-9 * (1 + Math.abs(b[i]!)), `n=${n} row ${i}`));
    }
    assert.equal(cholesky([[1, 2], [2, 1]]), null);
  });

  void it('regularizedCholesky shifts a singular matrix just enough', () => {
    const r = regularizedCholesky([[1, 1], [1, 1]]);
    assert.ok(r && r.shift > 0 && r.shift <= 1e-4);
    assert.equal(regularizedCholesky([[2, 0], [0, 3]])?.shift, 0);
    assert.equal(regularizedCholesky([[Number.NaN, 0], [0, 1]]), null);
    assert.equal(regularizedCholesky([[Number.POSITIVE_INFINITY, 0], [0, 1]]), null);
  });

  void it('LU solves general systems and reports singular ones', () => {
    const x = solveLinear([[0, 2], [3, 1]], [4, 5], 1e-12);
    assert.ok(x);
    assert.ok(Math.abs(x[0]! - 1) < 1e-15 && Math.abs(x[1]! - 2) < 1e-15);
    assert.equal(solveLinear([[1, 2], [2, 4]], [1, 1], 1e-12), null);
  });
});

void describe('scaleGramian', () => {
  void it('symmetrises and scales to mean diagonal 1, and classifies zero and invalid input', () => {
    const s = scaleGramian([[4, 2], [2.000001, 0]], 2);
    assert.equal(s.kind, 'scaled');
    if (s.kind === 'scaled') {
      assert.equal(s.scale, 2);
      assert.equal(s.matrix[0]![1], s.matrix[1]![0]);
      assert.equal(s.matrix[0]![0]! + s.matrix[1]![1]!, 2);
    }
    assert.equal(scaleGramian([[0, 0], [0, 0]], 2).kind, 'zero');
    assert.equal(scaleGramian([[1, 0]], 2).kind, 'invalid');
    assert.equal(scaleGramian([[1, Number.NaN], [0, 1]], 2).kind, 'invalid');
    assert.equal(scaleGramian([[-1, 0], [0, 1]], 2).kind, 'invalid');
  });
});
