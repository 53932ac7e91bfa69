// The synthetic regression benchmark of the MMoE paper (Ma et al., KDD 2018, "Modeling Task
// Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts", sec. 4.2), whose
// point is that task relatedness is a dial: the cosine ρ between the tasks' weight vectors.
//
// Construction (scale c = 1, m = 10 sinusoids, as in the paper's experiments):
//   1. u_0 .. u_T: orthonormal vectors in R^dim (Gram–Schmidt of seeded Gaussian vectors).
//   2. Task weights, each of unit norm:
//        T = 1:  w_1 = u_1
//        T = 2:  w_1 = u_1,  w_2 = ρ·u_1 + sqrt(1−ρ²)·u_2            (the paper, −1 ≤ ρ ≤ 1)
//        T > 2:  w_t = sqrt(ρ)·u_0 + sqrt(1−ρ)·u_t                     (ours, 0 ≤ ρ ≤ 1)
//      The T > 2 form is our generalisation: the paper only defines two tasks. Every pair
//      then has w_sᵀw_t = ρ·u_0ᵀu_0 = ρ, i.e. cosine ρ, the paper's dial for any task count.
//      With `groups` (a partition of the tasks; ours, for task-grouping experiments), each
//      group g has its own shared direction v_g and w_t = sqrt(ρ)·v_g + sqrt(1−ρ)·u_t: cosine
//      ρ within a group, 0 across groups.
//   3. α_j, β_j ~ N(0, 1), j = 1..m, drawn once and shared by all tasks.
//   4. Each example: x ~ N(0, I_dim); y_t = w_tᵀx + Σ_j sin(α_j·w_tᵀx + β_j) + ε_t, with
//      ε_t ~ N(0, noise²) (the paper's N(0, 0.01) is noise = 0.1, our default).
// The label correlation grows with ρ but is not equal to it (the sinusoids are non-linear),
// which is exactly what the paper's experiments exploit.
//
// u, (α, β), x and ε come from four separate seeded streams, so the inputs do not change when
// ρ, the task count or the noise do: only the labels move.
import { DatasetError } from '../errors.js';
import type { SyntheticSpec } from '../job-schema.js';
import { Rng } from '../random.js';
import { checkSplitRequest, type Dataset, type Split, type TargetInfo } from './types.js';

const SINUSOIDS = 10;

export interface SyntheticDataset extends Dataset {
  /** Diagnostics: the unit-norm task weight vectors w_1..w_T (task t is target `String(t−1)`). */
  readonly taskWeights: readonly Float64Array[];
  /** Diagnostics: the shared sinusoid parameters α_j, β_j. */
  readonly sinusoids: { readonly alpha: readonly number[]; readonly beta: readonly number[] };
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k]! * b[k]!;
  return s;
}

/** `count` orthonormal vectors in R^dim (classical Gram–Schmidt, applied twice for accuracy). */
function orthonormalBasis(count: number, dim: number, rng: Rng): Float64Array[] {
  const basis: Float64Array[] = [];
  while (basis.length < count) {
    const v = new Float64Array(dim);
    for (let k = 0; k < dim; k++) v[k] = rng.normal();
    for (let pass = 0; pass < 2; pass++) {
      for (const u of basis) {
        const p = dot(u, v);
        for (let k = 0; k < dim; k++) v[k]! -= p * u[k]!;
      }
    }
    const norm = Math.sqrt(dot(v, v));
    // A Gaussian vector lies in the span of the others with probability 0; redraw if it did.
    if (!(norm > 1e-6)) continue;
    for (let k = 0; k < dim; k++) v[k]! /= norm;
    basis.push(v);
  }
  return basis;
}

function combine(a: number, u: Float64Array, b: number, v: Float64Array): Float64Array {
  return u.map((x, k) => a * x + b * v[k]!);
}

function taskWeights(basis: readonly Float64Array[], tasks: number, rho: number, groups?: readonly (readonly number[])[]): Float64Array[] {
  const u = (t: number): Float64Array => basis[t]!;
  if (groups) {
    // basis[0 .. G−1]: the groups' shared directions; basis[G + t]: task t's own.
    const groupOf = new Map(groups.flatMap((g, gi) => g.map((t) => [t, gi] as const)));
    return Array.from({ length: tasks }, (_, t) => combine(Math.sqrt(rho), u(groupOf.get(t)!), Math.sqrt(1 - rho), u(groups.length + t)));
  }
  if (tasks === 1) return [u(1).slice()];
  if (tasks === 2) return [u(1).slice(), combine(rho, u(1), Math.sqrt(1 - rho * rho), u(2))];
  return Array.from({ length: tasks }, (_, i) => combine(Math.sqrt(rho), u(0), Math.sqrt(1 - rho), u(i + 1)));
}

/** Examples [first, first + size) of the generated table. */
class TableSplit implements Split {
  constructor(
    private readonly x: Float32Array,
    private readonly y: ReadonlyMap<string, Float32Array>,
    private readonly dim: number,
    private readonly first: number,
    readonly size: number,
  ) {}

  inputs(indices: ArrayLike<number>, out: Float32Array): void {
    checkSplitRequest(this.size, indices, out, this.dim);
    for (let j = 0; j < indices.length; j++) {
      const from = (this.first + indices[j]!) * this.dim;
      out.set(this.x.subarray(from, from + this.dim), j * this.dim);
    }
  }

  targets(target: string, indices: ArrayLike<number>, out: Float32Array): void {
    const y = this.y.get(target);
    if (y === undefined) throw new DatasetError(`synthetic has no target "${target}" (targets: ${[...this.y.keys()].join(', ')})`);
    checkSplitRequest(this.size, indices, out, 1);
    for (let j = 0; j < indices.length; j++) out[j] = y[this.first + indices[j]!]!;
  }
}

export function loadSynthetic(spec: SyntheticSpec): SyntheticDataset {
  const { tasks, dim, rho, samples, noise, seed, groups } = spec;
  const directions = tasks + (groups?.length ?? 1);
  if (dim < directions) {
    throw new DatasetError(`synthetic: dim ${dim} is too small for ${tasks} tasks (the construction needs ${directions} orthogonal directions)`);
  }
  if (groups) {
    const seen = groups.flat();
    const missing = Array.from({ length: tasks }, (_, t) => t).filter((t) => !seen.includes(t));
    if (seen.length !== tasks || missing.length > 0 || groups.some((g) => g.length === 0) || seen.some((t) => t >= tasks)) {
      throw new DatasetError(`synthetic: groups must put each task 0..${tasks - 1} in exactly one group, got ${JSON.stringify(groups)}`);
    }
    if (rho < 0) throw new DatasetError(`synthetic: with groups, rho must be in [0, 1], got ${rho}`);
  }
  if (tasks > 2 && rho < 0) {
    throw new DatasetError(`synthetic: a negative correlation (rho ${rho}) is only defined for 2 tasks, got ${tasks}`);
  }
  const testSize = Math.round(samples * spec.testFraction);
  const trainSize = samples - testSize;
  if (testSize < 1 || trainSize < 1) {
    throw new DatasetError(`synthetic: ${samples} samples with testFraction ${spec.testFraction} give ${trainSize} train / ${testSize} test examples (need at least 1 of each)`);
  }

  const weights = taskWeights(orthonormalBasis(directions, dim, Rng.fromKey(seed, 'synthetic', 'basis')), tasks, rho, groups);
  const waveRng = Rng.fromKey(seed, 'synthetic', 'sinusoids');
  const alpha = Array.from({ length: SINUSOIDS }, () => waveRng.normal());
  const beta = Array.from({ length: SINUSOIDS }, () => waveRng.normal());

  const inputRng = Rng.fromKey(seed, 'synthetic', 'inputs');
  const noiseRng = Rng.fromKey(seed, 'synthetic', 'noise');
  const x = new Float32Array(samples * dim);
  const y = weights.map(() => new Float32Array(samples));
  const row = new Float64Array(dim);
  for (let i = 0; i < samples; i++) {
    // Labels are computed from the float32 inputs the model will see, not from the doubles.
    for (let k = 0; k < dim; k++) {
      x[i * dim + k] = inputRng.normal();
      row[k] = x[i * dim + k]!;
    }
    for (let t = 0; t < tasks; t++) {
      const z = dot(weights[t]!, row);
      let label = z;
      for (let j = 0; j < SINUSOIDS; j++) label += Math.sin(alpha[j]! * z + beta[j]!);
      y[t]![i] = label + noise * noiseRng.normal();
    }
  }

  const info: TargetInfo = { kind: 'regression' };
  const names = weights.map((_, t) => String(t));
  const labels = new Map(names.map((name, t) => [name, y[t]!] as const));
  return {
    // `shape` only says how the model reads each row of `dim` values (e.g. as an image).
    inputShape: spec.shape ? [...spec.shape] : [dim],
    targets: Object.fromEntries(names.map((name) => [name, info])),
    train: new TableSplit(x, labels, dim, 0, trainSize),
    test: new TableSplit(x, labels, dim, trainSize, testSize),
    description:
      `synthetic (MMoE sec. 4.2): ${tasks} regression tasks, dim ${dim}${spec.shape ? ` as [${spec.shape.join(', ')}]` : ''}, rho ${rho}${groups ? ` within groups ${JSON.stringify(groups)}, 0 across` : ''}, noise ${noise}, ` +
      `${trainSize} train / ${testSize} test examples, seed ${seed}`,
    taskWeights: weights,
    sinusoids: { alpha, beta },
  };
}
