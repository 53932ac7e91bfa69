// Which tasks should share a trunk: the partition of T tasks into K groups with the largest
// total affinity. As in TAG (Fifty et al. 2021), a task's score in its group is the mean
// affinity of the group's other members onto it, mean_{i∈g, i≠j} Z_{i→j}; a task alone in
// its group scores 0 (nothing is transferred to it). The partition's score is the sum over
// tasks. TAG selects possibly overlapping groups under a compute budget; we answer the
// simpler question users ask first: the best partition into exactly K groups.
// Exhaustive over all partitions up to EXHAUSTIVE_MAX_TASKS tasks (Stirling numbers: S(12, 4)
// ≈ 6·10⁵ partitions); beyond that a deterministic local search (single moves and swaps).
import type { AffinityMatrix } from './task-affinity.js';

export const EXHAUSTIVE_MAX_TASKS = 12;

export interface Grouping {
  /** Task indices per group, each sorted, groups ordered by their first task. */
  groups: number[][];
  score: number;
  method: 'exhaustive' | 'local-search';
  /** Partitions scored. */
  evaluated: number;
}

/** Score of a partition given as a group index per task. */
export function partitionScore(z: AffinityMatrix, assignment: readonly number[]): number {
  let total = 0;
  for (let j = 0; j < assignment.length; j++) {
    let sum = 0;
    let n = 0;
    for (let i = 0; i < assignment.length; i++) {
      if (i !== j && assignment[i] === assignment[j]) {
        sum += z[i]![j]!;
        n++;
      }
    }
    if (n > 0) total += sum / n;
  }
  return total;
}

function toGroups(assignment: readonly number[], k: number): number[][] {
  const groups = Array.from({ length: k }, () => [] as number[]);
  assignment.forEach((g, t) => groups[g]!.push(t));
  return groups.filter((g) => g.length > 0).sort((a, b) => a[0]! - b[0]!);
}

/** Calls `visit` with every partition of `n` items into exactly `k` non-empty blocks (restricted growth strings, lexicographic). */
function forEachPartition(n: number, k: number, visit: (assignment: readonly number[]) => void): void {
  const a = new Array<number>(n).fill(0);
  const recurse = (i: number, used: number): void => {
    if (n - i < k - used) return; // not enough items left to open the missing blocks
    if (i === n) {
      if (used === k) visit(a);
      return;
    }
    for (let g = 0; g <= Math.min(used, k - 1); g++) {
      a[i] = g;
      recurse(i + 1, g === used ? used + 1 : used);
    }
  };
  recurse(0, 0);
}

function localSearch(z: AffinityMatrix, k: number): Grouping {
  const n = z.length;
  const a = Array.from({ length: n }, (_, t) => t % k);
  let score = partitionScore(z, a);
  let evaluated = 1;
  const sizes = (): number[] => a.reduce((s, g) => (s[g]!++, s), new Array<number>(k).fill(0));
  for (let improved = true; improved; ) {
    improved = false;
    let best = { score, apply: (): void => undefined };
    const size = sizes();
    for (let t = 0; t < n; t++) {
      for (let g = 0; g < k; g++) {
        if (g === a[t] || size[a[t]!] === 1) continue; // a move may not empty a group
        const from = a[t]!;
        a[t] = g;
        const s = partitionScore(z, a);
        evaluated++;
        a[t] = from;
        if (s > best.score + 1e-15) best = { score: s, apply: () => void (a[t] = g) };
      }
      for (let u = t + 1; u < n; u++) {
        if (a[t] === a[u]) continue;
        [a[t], a[u]] = [a[u]!, a[t]!];
        const s = partitionScore(z, a);
        evaluated++;
        [a[t], a[u]] = [a[u]!, a[t]!];
        if (s > best.score + 1e-15) best = { score: s, apply: () => void ([a[t], a[u]] = [a[u]!, a[t]!]) };
      }
    }
    if (best.score > score) {
      best.apply();
      score = best.score;
      improved = true;
    }
  }
  return { groups: toGroups(a, k), score, method: 'local-search', evaluated };
}

/** The best partition of the tasks of `z` (T × T, Z_{i→j} at [i][j]) into `k` groups. */
export function bestGrouping(z: AffinityMatrix, k: number): Grouping {
  const n = z.length;
  if (!Number.isInteger(k) || k < 1 || k > n) throw new RangeError(`cannot split ${n} tasks into ${k} groups (expected 1 ≤ K ≤ ${n})`);
  if (z.some((row) => row.length !== n)) throw new RangeError('the affinity matrix must be square');
  if (n > EXHAUSTIVE_MAX_TASKS) return localSearch(z, k);
  let best: { assignment: number[]; score: number } | undefined;
  let evaluated = 0;
  forEachPartition(n, k, (a) => {
    evaluated++;
    const s = partitionScore(z, a);
    if (!best || s > best.score) best = { assignment: a.slice(), score: s };
  });
  return { groups: toGroups(best!.assignment, k), score: best!.score, method: 'exhaustive', evaluated };
}
