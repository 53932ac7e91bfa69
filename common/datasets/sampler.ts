// Batch selection as a pure function of (seed, source, step, shard).
//
// A source's training examples are visited in epochs; each epoch is a seeded permutation of
// all indices. Step s of a task uses positions [s·B, (s+1)·B) of the endless sequence of
// epochs (a batch may straddle two epochs), and shard k takes the k-th of `shards` contiguous,
// near-equal parts of that batch. So `shardsPerTask` only splits work: the union of a step's
// shards is the same batch whatever the shard count, and tasks reading the same source see
// the same examples in the same step (their units can share one forward pass).
import { Rng } from '../random.js';

/** [start, end) of part `k` when `total` items are cut into `parts` near-equal contiguous parts. */
export function partRange(total: number, parts: number, k: number): [number, number] {
  if (!Number.isInteger(parts) || parts <= 0 || !Number.isInteger(k) || k < 0 || k >= parts) {
    throw new RangeError(`partRange: part ${k} of ${parts} is out of range`);
  }
  const base = Math.floor(total / parts);
  const rem = total % parts;
  const start = k * base + Math.min(k, rem);
  return [start, start + base + (k < rem ? 1 : 0)];
}

export interface BatchRequest {
  seed: number;
  /** Identity of the data source (tasks reading the same data share it). */
  source: string;
  /** Number of training examples in the source. */
  size: number;
  batchSize: number;
  shards: number;
  step: number;
  shard: number;
}

export class EpochSampler {
  // The permutations of the last few epochs: a step needs at most two, and consecutive steps
  // reuse them, so a tiny cache removes nearly all the work.
  private readonly cache = new Map<string, Uint32Array>();

  constructor(private readonly cacheSize = 4) {}

  private epochPermutation(seed: number, source: string, size: number, epoch: number): Uint32Array {
    const key = `${seed}\u0000${source}\u0000${size}\u0000${epoch}`;
    let perm = this.cache.get(key);
    if (perm === undefined) {
      perm = Rng.fromKey(seed, 'epoch', source, epoch).permutation(size);
      this.cache.set(key, perm);
      if (this.cache.size > this.cacheSize) {
        const oldest = this.cache.keys().next().value;
        if (oldest !== undefined) this.cache.delete(oldest);
      }
    }
    return perm;
  }

  /** The example indices of one training unit. */
  indices(req: BatchRequest): Uint32Array {
    const { seed, source, size, batchSize, shards, step, shard } = req;
    if (size <= 0) throw new RangeError(`source ${source} has no training examples`);
    const [from, to] = partRange(batchSize, shards, shard);
    const out = new Uint32Array(to - from);
    const first = step * batchSize + from;
    for (let i = 0; i < out.length; i++) {
      const pos = first + i;
      const epoch = Math.floor(pos / size);
      out[i] = this.epochPermutation(seed, source, size, epoch)[pos - epoch * size]!;
    }
    return out;
  }
}
