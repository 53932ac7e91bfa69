// The arithmetic of one synchronous step, as pure functions. Reductions run in a fixed order
// (task order, then shard order), never in arrival order: this is what makes the final
// weights independent of worker count and timing (docs/design.md, determinism rule).

export interface ShardResult {
  sampleCount: number;
  loss: number;
  /** Shared gradients then the task's head gradients (layout order). */
  grads: Float32Array;
}

export interface TaskGradient {
  loss: number;
  samples: number;
  grads: Float32Array;
}

/** Sample-weighted mean of a task's shard results, accumulated in double precision in shard order. */
export function combineShards(shards: readonly ShardResult[]): TaskGradient {
  if (shards.length === 0) throw new RangeError('no shard results');
  const size = shards[0]!.grads.length;
  const total = shards.reduce((n, s) => n + s.sampleCount, 0);
  if (total <= 0) throw new RangeError('shard results carry no samples');
  if (shards.length === 1) return { loss: shards[0]!.loss, samples: total, grads: shards[0]!.grads };
  const acc = new Float64Array(size);
  let loss = 0;
  for (const s of shards) {
    if (s.grads.length !== size) throw new RangeError('shard gradients differ in length');
    const w = s.sampleCount / total;
    loss += w * s.loss;
    for (let i = 0; i < size; i++) acc[i]! += w * s.grads[i]!;
  }
  return { loss, samples: total, grads: new Float32Array(acc) };
}

export { gramian } from './aggregation/gramian.js';

export interface GradientDiagnostics {
  norms: number[];
  /** cosine[i][j] of task gradients i and j (0 where a gradient is zero). */
  cosine: number[][];
}

/** Norms and pairwise cosines from the Gramian H = G·Gᵀ. */
export function gradientDiagnostics(h: readonly (readonly number[])[]): GradientDiagnostics {
  const norms = h.map((row, i) => Math.sqrt(row[i]!));
  const cosine = h.map((row, i) => row.map((v, j) => (norms[i]! > 0 && norms[j]! > 0 ? v / (norms[i]! * norms[j]!) : 0)));
  return { norms, cosine };
}

/** Euclidean norm in double precision. */
export function l2norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}
