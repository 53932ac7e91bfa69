// An LRU cache of decoded chunks bounded in bytes: what keeps a worker's memory flat whatever
// the dataset's size. The most recently used chunk is always kept (even when it alone exceeds
// the bound), older ones are evicted until the rest fits. Counters say what happened, for the
// logs, tests and the benchmark.

export interface CacheStats {
  hits: number;
  /** Chunks decoded (first reads and re-reads after eviction). */
  loads: number;
  evictions: number;
  /** Bytes held now, and the most ever held. */
  bytes: number;
  peakBytes: number;
  /** Bytes of every chunk decoded, and the time spent decoding them (ms), for throughput. */
  decodedBytes: number;
  loadMs: number;
}

export class ChunkCache<T extends { bytes: number }> {
  private readonly entries = new Map<number, T>();
  readonly stats: CacheStats = { hits: 0, loads: 0, evictions: 0, bytes: 0, peakBytes: 0, decodedBytes: 0, loadMs: 0 };

  constructor(readonly maxBytes: number) {
    if (!(maxBytes > 0)) throw new RangeError(`a chunk cache needs a positive bound, got ${maxBytes}`);
  }

  /** Chunk `key`, decoded by `load` when it is not held. */
  get(key: number, load: () => T): T {
    const held = this.entries.get(key);
    if (held !== undefined) {
      this.stats.hits++;
      // Re-insert: a Map iterates in insertion order, so the first entry is the least recently used.
      this.entries.delete(key);
      this.entries.set(key, held);
      return held;
    }
    const started = performance.now();
    const value = load();
    this.stats.loadMs += performance.now() - started;
    this.stats.loads++;
    this.stats.decodedBytes += value.bytes;
    this.entries.set(key, value);
    this.stats.bytes += value.bytes;
    while (this.stats.bytes > this.maxBytes && this.entries.size > 1) {
      const [oldest, evicted] = this.entries.entries().next().value!;
      this.entries.delete(oldest);
      this.stats.bytes -= evicted.bytes;
      this.stats.evictions++;
    }
    this.stats.peakBytes = Math.max(this.stats.peakBytes, this.stats.bytes);
    return value;
  }

  get size(): number {
    return this.entries.size;
  }
}
