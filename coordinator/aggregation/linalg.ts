// Dense float64 linear algebra for the T × T problems of the Gramian-based aggregators
// (T is the number of tasks: at most a few dozen).
//
// Decision: we solve in-house, with no dependency. The problems are tiny (a 64 × 64 QP costs
// less than one pass over one gradient row). The npm candidates (`quadprog`, a port of R's
// Fortran quadprog, and `quadprog-js`) are general dense Goldfarb–Idnani solvers: strictly
// convex problems only (our Gramians are often singular), 1-based arrays, failure as an
// exception. We need two special shapes (λ ≥ 0; the simplex), and owning the code lets every
// solver return whether it converged so a method can fall back and say so. Why this is safe:
// - callers hand over H scaled by its mean diagonal (scaleGramian), so gradients of 1e-20 or
//   1e20 produce the same O(1) problem and thresholds below are relative to O(1) numbers;
// - the QP solvers expect a positive-definite matrix (callers add a small multiple of I) and
//   still retry a failed Cholesky with a growing diagonal shift;
// - every loop has an iteration cap; the active-set solvers end with an explicit KKT check and
//   fall back to accelerated projected gradient, which only ever returns feasible points.

type Mat = readonly (readonly number[])[];

/** How a QP ended. `kktResidual` is relative to the problem's scale (max |A| and |b|). */
export interface QpSolution {
  x: number[];
  converged: boolean;
  method: 'active-set' | 'projected-gradient';
  iterations: number;
  kktResidual: number;
}

export function dot(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export function matVec(a: Mat, x: readonly number[]): number[] {
  return a.map((row) => dot(row, x));
}

function maxAbs(values: Iterable<number>): number {
  let m = 0;
  for (const v of values) m = Math.max(m, Math.abs(v));
  return m;
}

function maxAbsMatrix(a: Mat): number {
  return a.reduce((m, row) => Math.max(m, maxAbs(row)), 0);
}

/** A copy of `a` with `shift` added to its diagonal. */
export function addToDiagonal(a: Mat, shift: number): number[][] {
  return a.map((row, i) => row.map((v, j) => (i === j ? v + shift : v)));
}

/**
 * The input of every Gramian method: H made symmetric and divided by its mean diagonal (so the
 * average squared gradient norm is 1). `zero` means every gradient is zero; `invalid` means a
 * caller-supplied Gramian has the wrong shape or non-finite or negative-diagonal entries.
 */
export type ScaledGramian =
  | { kind: 'scaled'; matrix: number[][]; scale: number }
  | { kind: 'zero' }
  | { kind: 'invalid'; reason: string };

export function scaleGramian(h: Mat, t: number): ScaledGramian {
  if (h.length !== t || h.some((row) => row.length !== t)) return { kind: 'invalid', reason: `the Gramian is not ${t} × ${t}` };
  if (h.some((row) => row.some((v) => !Number.isFinite(v)))) return { kind: 'invalid', reason: 'the Gramian has a non-finite entry' };
  let trace = 0;
  for (let i = 0; i < t; i++) {
    const d = h[i]![i]!;
    if (d < 0) return { kind: 'invalid', reason: `the Gramian has a negative diagonal entry (${d})` };
    trace += d;
  }
  if (trace === 0) return { kind: 'zero' };
  const scale = trace / t;
  const matrix = h.map((row, i) => row.map((v, j) => (v + h[j]![i]!) / 2 / scale));
  if (matrix.some((row) => row.some((v) => !Number.isFinite(v)))) return { kind: 'invalid', reason: 'the Gramian overflows once scaled' };
  return { kind: 'scaled', matrix, scale };
}

/**
 * Lower-triangular L with A + shift·I = L·Lᵀ, or null when a pivot is not clearly positive
 * (below a relative 1e-14 of its diagonal entry, which also catches NaN).
 */
export function cholesky(a: Mat, shift = 0): number[][] | null {
  const n = a.length;
  const l = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let j = 0; j < n; j++) {
    const diagonal = a[j]![j]! + shift;
    let s = diagonal;
    for (let k = 0; k < j; k++) s -= l[j]![k]! ** 2;
    if (!(s > 1e-14 * Math.abs(diagonal))) return null;
    const pivot = Math.sqrt(s);
    l[j]![j] = pivot;
    for (let i = j + 1; i < n; i++) {
      let v = a[i]![j]!;
      for (let k = 0; k < j; k++) v -= l[i]![k]! * l[j]![k]!;
      l[i]![j] = v / pivot;
    }
  }
  return l;
}

/** Solves L·Lᵀ·x = b. */
export function choleskySolve(l: Mat, b: readonly number[]): number[] {
  const n = b.length;
  const y = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[i]![k]! * y[k]!;
    y[i] = s / l[i]![i]!;
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < n; k++) s -= l[k]![i]! * y[k]!;
    y[i] = s / l[i]![i]!;
  }
  return y;
}

/**
 * Factorises a symmetric (semi)definite A, adding the smallest diagonal shift from 0, 1e-13,
 * 1e-12, … 1e-4 (relative to max |Aᵢᵢ|) that makes Cholesky succeed. Null when none does.
 */
export function regularizedCholesky(a: Mat): { factor: number[][]; shift: number } | null {
  const size = Math.max(...a.map((row, i) => Math.abs(row[i]!)), Number.MIN_VALUE);
  for (let exponent = -14; exponent <= -4; exponent++) {
    const shift = exponent === -14 ? 0 : 10 ** exponent * size;
    const factor = cholesky(a, shift);
    if (factor) return { factor, shift };
  }
  return null;
}

/** Solves a general square system by LU with partial pivoting; null when a pivot is ≤ `pivotFloor`. */
export function solveLinear(a: Mat, b: readonly number[], pivotFloor: number): number[] | null {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let col = 0; col < n; col++) {
    let best = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[best]![col]!)) best = r;
    if (!(Math.abs(m[best]![col]!) > pivotFloor)) return null;
    [m[col], m[best]] = [m[best]!, m[col]!];
    const pivotRow = m[col]!;
    for (let r = col + 1; r < n; r++) {
      const row = m[r]!;
      const f = row[col]! / pivotRow[col]!;
      for (let k = col; k <= n; k++) row[k] = row[k]! - f * pivotRow[k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    const row = m[i]!;
    let s = row[n]!;
    for (let k = i + 1; k < n; k++) s -= row[k]! * x[k]!;
    x[i] = s / row[i]!;
  }
  return x.every(Number.isFinite) ? x : null;
}

/**
 * Symmetric eigendecomposition by cyclic Jacobi rotations: A = V·diag(values)·Vᵀ, values in
 * descending order, `vectors[i][k]` the i-th entry of the k-th eigenvector. Jacobi is slow for
 * big matrices but accurate (small eigenvalues to high relative accuracy) and simple; at T ≤ 64
 * a full decomposition is well under a millisecond per sweep.
 */
export function symmetricEigen(a: Mat, maxSweeps = 60): { values: number[]; vectors: number[][]; converged: boolean } {
  const n = a.length;
  const m = a.map((row) => [...row]);
  const v = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j): number => (i === j ? 1 : 0)));
  const total = m.reduce((s, row) => s + dot(row, row), 0);
  let converged = false;
  for (let sweep = 0; sweep < maxSweeps && !converged; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += 2 * m[p]![q]! ** 2;
    if (!(off > 1e-32 * total)) {
      converged = Number.isFinite(off);
      break;
    }
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p]![q]!;
        if (apq === 0) continue;
        const theta = (m[q]![q]! - m[p]![p]!) / (2 * apq);
        const t = Math.abs(theta) > 1e150 ? 1 / (2 * theta) : Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          if (k === p || k === q) continue;
          const akp = m[k]![p]!;
          const akq = m[k]![q]!;
          m[k]![p] = m[p]![k] = c * akp - s * akq;
          m[k]![q] = m[q]![k] = s * akp + c * akq;
        }
        m[p]![p] = m[p]![p]! - t * apq;
        m[q]![q] = m[q]![q]! + t * apq;
        m[p]![q] = m[q]![p] = 0;
        for (const row of v) {
          const vkp = row[p]!;
          const vkq = row[q]!;
          row[p] = c * vkp - s * vkq;
          row[q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => m[j]![j]! - m[i]![i]!);
  return { values: order.map((i) => m[i]![i]!), vectors: v.map((row) => order.map((i) => row[i]!)), converged };
}

/** Euclidean projection of v onto the probability simplex {w ≥ 0, Σw = 1} (sort-based). */
export function projectOntoSimplex(v: readonly number[]): number[] {
  const sorted = [...v].sort((x, y) => y - x);
  let cumulative = 0;
  let threshold = 0;
  for (let j = 0; j < sorted.length; j++) {
    cumulative += sorted[j]!;
    const candidate = (cumulative - 1) / (j + 1);
    if (sorted[j]! - candidate > 0) threshold = candidate;
  }
  return v.map((x) => Math.max(x - threshold, 0));
}

/**
 * Minimiser of ½zᵀA_SS z + b_Sᵀz on the support S (with Σz = 1 when `simplex`): a Cholesky
 * solve followed by two steps of iterative refinement against the unshifted A_SS. Refinement
 * matters: combining the two solves of the simplex case loses digits when A_SS is
 * ill-conditioned (near-duplicate gradients), and it also undoes any Cholesky shift.
 */
function solveOnSupport(a: Mat, b: readonly number[], support: readonly number[], simplex: boolean): number[] | null {
  const sub = support.map((i) => support.map((j) => a[i]![j]!));
  const chol = regularizedCholesky(sub);
  if (!chol) return null;
  const solve = (rhs: readonly number[]) => choleskySolve(chol.factor, rhs);
  const onesSolution = solve(support.map(() => 1));
  const onesTotal = onesSolution.reduce((s, v) => s + v, 0);
  let z = support.map(() => 0);
  let nu = 0;
  for (let pass = 0; pass < 3; pass++) {
    const residual = sub.map((row, k) => nu - b[support[k]!]! - dot(row, z));
    let correction = solve(residual);
    if (simplex) {
      const shift = (1 - z.reduce((s, v) => s + v, 0) - correction.reduce((s, v) => s + v, 0)) / onesTotal;
      correction = correction.map((v, k) => v + shift * onesSolution[k]!);
      nu += shift;
    }
    z = z.map((v, k) => v + correction[k]!);
  }
  return z.every(Number.isFinite) ? z : null;
}

/**
 * Natural KKT residual ‖x − Proj(x − ∇f(x))‖∞ of min ½xᵀAx + bᵀx over {x ≥ 0} or over the
 * simplex: zero exactly at the solution, continuous, and comparable between both solvers. It is
 * divided by the problem's scale (max |A|·max(1, |x|) + max |b|) so thresholds are relative.
 */
export function kktResidual(a: Mat, b: readonly number[], x: readonly number[], simplex: boolean): number {
  const g = matVec(a, x).map((v, i) => v + b[i]!);
  const stepped = x.map((v, i) => v - g[i]!);
  const projected = simplex ? projectOntoSimplex(stepped) : stepped.map((v) => Math.max(v, 0));
  const r = maxAbs(x.map((v, i) => v - projected[i]!));
  const scale = maxAbsMatrix(a) * Math.max(1, maxAbs(x)) + maxAbs(b);
  return scale > 0 ? r / scale : r;
}

const ACCEPT_KKT = 1e-9;

/**
 * Primal active-set method shared by both QPs (Lawson–Hanson style): keep a support S, solve the
 * equality-constrained problem on S, step back to feasibility when a support variable would go
 * negative, and add the variable with the most negative reduced gradient when none does. A
 * variable that cannot grow once added (rounding at a degenerate vertex) is blocked until the
 * iterate moves, which is what keeps the method from cycling.
 */
function activeSet(a: Mat, b: readonly number[], simplex: boolean, maxIterations: number): QpSolution {
  const n = b.length;
  const addTolerance = 1e-13 * (maxAbsMatrix(a) + maxAbs(b));
  let x = new Array<number>(n).fill(0);
  let support: number[] = [];
  if (simplex) {
    let start = 0;
    for (let i = 1; i < n; i++) if (a[i]![i]! / 2 + b[i]! < a[start]![start]! / 2 + b[start]!) start = i;
    support = [start];
    x[start] = 1;
  }
  const blocked = new Set<number>();
  let entered = -1;
  let needSolve = false;
  let iterations = 0;
  for (; iterations < maxIterations; iterations++) {
    if (!needSolve) {
      const g = matVec(a, x).map((v, i) => v + b[i]!);
      const nu = simplex ? dot(x, g) : 0;
      entered = -1;
      for (let i = 0; i < n; i++) {
        if (support.includes(i) || blocked.has(i)) continue;
        if (g[i]! - nu < -addTolerance && (entered < 0 || g[i]! < g[entered]!)) entered = i;
      }
      if (entered < 0) break;
      support = [...support, entered].sort((i, j) => i - j);
    }
    needSolve = false;
    const z = solveOnSupport(a, b, support, simplex);
    if (!z) break;
    const enteredAt = support.indexOf(entered);
    if (enteredAt >= 0 && !(z[enteredAt]! > 0)) {
      blocked.add(entered);
      support = support.filter((i) => i !== entered);
      entered = -1;
      continue;
    }
    entered = -1;
    let step = 1;
    let blocking = -1;
    support.forEach((i, k) => {
      if (z[k]! > 0) return;
      const ratio = x[i]! / (x[i]! - z[k]!);
      if (ratio < step) [step, blocking] = [ratio, i];
    });
    const next = [...x];
    support.forEach((i, k) => (next[i] = x[i]! + step * (z[k]! - x[i]!)));
    if (blocking >= 0) {
      // Drop the blocking variable, and any other that reached zero with it; re-solve.
      support = support.filter((i, k) => i !== blocking && !(z[k]! <= 0 && next[i]! <= 1e-15 * Math.max(1, maxAbs(next))));
      for (let i = 0; i < n; i++) if (!support.includes(i)) next[i] = 0;
      needSolve = support.length > 0;
    }
    if (step > 0) blocked.clear();
    x = next;
    if (simplex && support.length === 0) break;
  }
  const residual = kktResidual(a, b, x, simplex);
  return { x, converged: residual <= ACCEPT_KKT, method: 'active-set', iterations, kktResidual: residual };
}

/**
 * Accelerated projected gradient (FISTA with adaptive restart) from any start (projected first):
 * the fallback when the active set stalls. Step 1/L with L a Gershgorin bound on λ_max(A);
 * returns the best feasible iterate seen. Exported for tests.
 */
export function projectedGradientQp(a: Mat, b: readonly number[], start: readonly number[], simplex: boolean, maxIterations: number): QpSolution {
  const project = (v: number[]) => (simplex ? projectOntoSimplex(v) : v.map((x) => Math.max(x, 0)));
  const lipschitz = Math.max(...a.map((row) => row.reduce((s, v) => s + Math.abs(v), 0)), Number.MIN_VALUE);
  const objective = (x: readonly number[]) => 0.5 * dot(x, matVec(a, x)) + dot(b, x);
  let x = project([...start]);
  let value = objective(x);
  let y = [...x];
  let momentum = 1;
  // Best by KKT residual, not by objective: near the solution the objective is flat to within
  // rounding, which would pin the answer to √ε accuracy.
  let best = { x, residual: kktResidual(a, b, x, simplex) };
  let iterations = 0;
  for (; iterations < maxIterations && !(best.residual <= ACCEPT_KKT); iterations++) {
    const g = matVec(a, y).map((v, i) => v + b[i]!);
    const next = project(y.map((v, i) => v - g[i]! / lipschitz));
    const nextValue = objective(next);
    const nextMomentum = (1 + Math.sqrt(1 + 4 * momentum * momentum)) / 2;
    const restart = nextValue > value;
    y = restart ? [...next] : next.map((v, i) => v + ((momentum - 1) / nextMomentum) * (v - x[i]!));
    momentum = restart ? 1 : nextMomentum;
    [x, value] = [next, nextValue];
    const residual = kktResidual(a, b, x, simplex);
    if (residual < best.residual) best = { x, residual };
  }
  return { x: best.x, converged: best.residual <= ACCEPT_KKT, method: 'projected-gradient', iterations, kktResidual: best.residual };
}

function solveQp(a: Mat, b: readonly number[], simplex: boolean): QpSolution {
  const n = b.length;
  const exact = activeSet(a, b, simplex, 10 * n + 20);
  if (exact.converged) return exact;
  const start = exact.x.every(Number.isFinite) ? exact.x : simplex ? new Array<number>(n).fill(1 / n) : new Array<number>(n).fill(0);
  const fallback = projectedGradientQp(a, b, start, simplex, 20000);
  return fallback.kktResidual < exact.kktResidual || !exact.x.every(Number.isFinite) ? fallback : exact;
}

/** min ½λᵀAλ + bᵀλ subject to λ ≥ 0, for a symmetric positive (semi)definite A. */
export function nonNegativeQp(a: Mat, b: readonly number[]): QpSolution {
  return solveQp(a, b, false);
}

/** min ½wᵀAw + bᵀw subject to w ≥ 0 and Σw = 1, for a symmetric positive (semi)definite A. */
export function simplexQp(a: Mat, b: readonly number[]): QpSolution {
  if (b.length === 1) return { x: [1], converged: true, method: 'active-set', iterations: 0, kktResidual: 0 };
  return solveQp(a, b, true);
}
