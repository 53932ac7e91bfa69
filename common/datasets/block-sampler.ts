// Batch selection with locality, for streamed datasets: still a pure function of (seed,
// source, size, step, shard), like EpochSampler (sampler.ts), but each epoch is a block shuffle
// so a batch touches a bounded number of chunks. The train positions 0..size−1 (train rows in
// ascending row order: independent of how the rows are cut into files or chunks) are cut into
// blocks of `blockRows` consecutive positions; each epoch permutes the blocks, takes them
// `window` at a time, and shuffles the positions inside each window. So an epoch is still a
// permutation of every train position, and consecutive steps read from about `window` blocks.
import { Rng } from '../random.js';
import { partRange, type BatchRequest } from './sampler.js';

export interface BlockShuffle {
  blockRows: number;
  window: number;
}

interface Epoch {
  blocks: Uint32Array;
  /** windowStart[w]: the epoch position where window w starts; windowStart[windows] = size. */
  windowStart: Float64Array;
}

export class BlockSampler {
  private readonly epochs = new Map<string, Epoch>();
  private readonly windows = new Map<string, Uint32Array>();

  constructor(private readonly cacheSize = 4) {}

  private remember<T>(cache: Map<string, T>, key: string, make: () => T): T {
    let value = cache.get(key);
    if (value === undefined) {
      value = make();
      cache.set(key, value);
      if (cache.size > this.cacheSize) cache.delete(cache.keys().next().value!);
    }
    return value;
  }

  private epoch(seed: number, source: string, size: number, shuffle: BlockShuffle, e: number): Epoch {
    const key = `${seed}\u0000${source}\u0000${size}\u0000${shuffle.blockRows}\u0000${shuffle.window}\u0000${e}`;
    return this.remember(this.epochs, key, () => {
      const count = Math.ceil(size / shuffle.blockRows);
      const blocks = Rng.fromKey(seed, 'block-epoch', source, size, shuffle.blockRows, e).permutation(count);
      const windows = Math.ceil(count / shuffle.window);
      const windowStart = new Float64Array(windows + 1);
      for (let w = 0; w < windows; w++) {
        let rows = 0;
        for (let b = w * shuffle.window; b < Math.min(count, (w + 1) * shuffle.window); b++) rows += this.blockLength(blocks[b]!, size, shuffle.blockRows);
        windowStart[w + 1] = windowStart[w]! + rows;
      }
      return { blocks, windowStart };
    });
  }

  private blockLength(block: number, size: number, blockRows: number): number {
    return Math.min(blockRows, size - block * blockRows);
  }

  /** The train positions of window `w` of an epoch, shuffled. */
  private window(seed: number, source: string, size: number, shuffle: BlockShuffle, e: number, epoch: Epoch, w: number): Uint32Array {
    const key = `${seed}\u0000${source}\u0000${size}\u0000${shuffle.blockRows}\u0000${shuffle.window}\u0000${e}\u0000${w}`;
    return this.remember(this.windows, key, () => {
      const positions = new Uint32Array(epoch.windowStart[w + 1]! - epoch.windowStart[w]!);
      let k = 0;
      for (let b = w * shuffle.window; b < Math.min(epoch.blocks.length, (w + 1) * shuffle.window); b++) {
        const first = epoch.blocks[b]! * shuffle.blockRows;
        const length = this.blockLength(epoch.blocks[b]!, size, shuffle.blockRows);
        for (let i = 0; i < length; i++) positions[k++] = first + i;
      }
      const order = Rng.fromKey(seed, 'block-window', source, size, shuffle.blockRows, e, w).permutation(positions.length);
      return Uint32Array.from(order, (i) => positions[i]!);
    });
  }

  /** Position `pos` of epoch `e` (0 ≤ pos < size): a train position. */
  private at(seed: number, source: string, size: number, shuffle: BlockShuffle, e: number, pos: number): number {
    const epoch = this.epoch(seed, source, size, shuffle, e);
    let lo = 0;
    let hi = epoch.windowStart.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (epoch.windowStart[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return this.window(seed, source, size, shuffle, e, epoch, lo)[pos - epoch.windowStart[lo]!]!;
  }

  /** The example indices of one training unit (the same contract as EpochSampler.indices). */
  indices(req: BatchRequest, shuffle: BlockShuffle): Uint32Array {
    const { seed, source, size, batchSize, shards, step, shard } = req;
    if (size <= 0) throw new RangeError(`source ${source} has no training examples`);
    if (!(shuffle.blockRows >= 1 && shuffle.window >= 1)) throw new RangeError(`block shuffle needs blockRows and window ≥ 1`);
    const [from, to] = partRange(batchSize, shards, shard);
    const out = new Uint32Array(to - from);
    const first = step * batchSize + from;
    for (let i = 0; i < out.length; i++) {
      const pos = first + i;
      const e = Math.floor(pos / size);
      out[i] = this.at(seed, source, size, shuffle, e, pos - e * size);
    }
    return out;
  }
}
