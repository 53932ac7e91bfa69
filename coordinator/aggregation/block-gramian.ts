// H = G·Gᵀ accumulated while a step's results stream in (protocol 3), so that when the last
// bucket lands only the T×T solve and the weighted pass remain.
//
// gramian() (the reference) sums, for every pair of rows, one dot product per column block of
// GRAMIAN_BLOCK columns, each accumulated from 0 in column order, in ascending block order:
// h = ((0 + p₀) + p₁) + …. Here each block's dot products p_b are computed as soon as every shard
// of every task has that block, and kept by block index; finish() adds them up in ascending
// block order. The rows are the tasks' shard-combined gradients, and combining is elementwise
// (combineShards: sample-weighted, double precision, shard order), so a block is combined on
// its own with the same arithmetic. Bitwise the same as gramian(combineShards(…)) whatever the
// bucket size, the chunk order and the order the results arrive in
// (test/unit/block-gramian.test.ts).
//
// A unit may have several copies in flight (a backup, a reassignment): one copy of each unit
// feeds the blocks (the first to send data). When it is rejected, or another copy wins, every
// block it fed is computed again from the copy that feeds next: nothing stale is left.
import { blockPartial, GRAMIAN_BLOCK } from './gramian.js';

/** One shard's accepted result (as step-math.ts ShardResult; the aggregation library stands alone). */
export interface BlockShard {
  sampleCount: number;
  loss: number;
  grads: Float32Array;
}

/** A task's combined gradient (as step-math.ts TaskGradient). */
export interface BlockTaskGradient {
  loss: number;
  samples: number;
  grads: Float32Array;
}

/**
 * out[k] = Σₛ w[s]·x[s][k] for k in [start, end), as combineShards: in double precision, from 0,
 * in shard order, rounded to float32 on store. Two shards (a task cut in two, as the scale bench
 * does at W = 2T) have their own loop with the same operations in the same order, (0 + w₀x₀) + w₁x₁:
 * the generic loop's inner loop over an array of arrays cost about 8 ns per value (issue 18
 * profile). The leading 0 + stays: it turns a -0 product into +0, as the reference does.
 */
function combineRange(out: Float32Array, sources: readonly Float32Array[], w: readonly number[], start: number, end: number): void {
  if (sources.length === 2) {
    const [a, b] = sources as [Float32Array, Float32Array];
    const [wa, wb] = w as [number, number];
    for (let k = start; k < end; k++) out[k] = 0 + wa * a[k]! + wb * b[k]!;
    return;
  }
  for (let k = start; k < end; k++) {
    let acc = 0;
    for (let s = 0; s < sources.length; s++) acc += w[s]! * sources[s]![k]!;
    out[k] = acc;
  }
}

interface Copy {
  unit: number;
  data: Float32Array;
  /** Values received, per block of the shared part. */
  counts: Int32Array;
  /** Blocks this copy counts as ready (while it feeds): what unfeeding takes back. */
  marked: Uint8Array;
}

/** One unit of the step: its task (index in the step's task order) and its shard's example count. */
export interface BlockUnit {
  task: number;
  samples: number;
}

export class BlockGramian {
  private readonly blocks: number;
  private readonly copies = new Map<object, Copy>();
  /** Per unit: the copy whose values the blocks use. */
  private readonly feeder: Array<Copy | undefined>;
  /** Per unit: its result was accepted (other copies no longer feed). */
  private readonly accepted: boolean[];
  /** Per block: how many units' feeders hold it whole. */
  private readonly ready: Int32Array;
  /** Per block: its T×T dot products (upper triangle, row-major), once computed. */
  private readonly partials: Array<Float64Array | undefined>;
  /** Per task, its units in shard order. */
  private readonly shardsOf: number[][];
  /**
   * Per task with several shards: its combined gradient, as long as its payloads (the shared part
   * filled block by block, the head by finish()), handed out by finish() as the task's gradient.
   */
  private readonly combined: Array<Float32Array | undefined>;
  private readonly weights: number[][];
  /** Set by finish(): from then on nothing changes and no payload is referenced (result-intake.ts reuses them). */
  private finished = false;
  /** Blocks computed so far, recomputations included (for tests and stats). */
  computedBlocks = 0;

  constructor(
    private readonly units: readonly BlockUnit[],
    private readonly taskCount: number,
    /** The shared part's length: the Gramian's columns (payload floats [0, sharedSize)). */
    private readonly sharedSize: number,
  ) {
    this.blocks = Math.ceil(sharedSize / GRAMIAN_BLOCK);
    this.feeder = units.map(() => undefined);
    this.accepted = units.map(() => false);
    this.ready = new Int32Array(this.blocks);
    this.partials = Array.from({ length: this.blocks }, () => undefined);
    this.shardsOf = Array.from({ length: taskCount }, () => []);
    units.forEach((u, i) => this.shardsOf[u.task]!.push(i));
    // As combineShards: the total in shard order, then each shard's share.
    this.weights = this.shardsOf.map((shards) => {
      const total = shards.reduce((n, i) => n + units[i]!.samples, 0);
      return shards.map((i) => units[i]!.samples / total);
    });
    // Allocated when a task's first block is combined: only then is its payload length known.
    this.combined = this.shardsOf.map(() => undefined);
  }

  private blockEnd(b: number): number {
    return Math.min(this.sharedSize, (b + 1) * GRAMIAN_BLOCK);
  }

  private full(copy: Copy, b: number): boolean {
    return copy.counts[b] === this.blockEnd(b) - b * GRAMIAN_BLOCK;
  }

  private newCopy(key: object, unit: number, data: Float32Array): Copy {
    const copy = { unit, data, counts: new Int32Array(this.blocks), marked: new Uint8Array(this.blocks) };
    this.copies.set(key, copy);
    return copy;
  }

  /**
   * Values [from, to) of copy `key` of unit `unit` (its payload `data`) have arrived and are
   * final. The same key with another `data` is a new transfer of that copy (the old one was cut
   * off): the old one is dropped first.
   */
  offer(key: object, unit: number, data: Float32Array, from: number, to: number): void {
    if (this.finished || this.accepted[unit]) return;
    let copy = this.copies.get(key);
    if (copy && copy.data !== data) {
      this.drop(key);
      copy = undefined;
    }
    const fresh = copy === undefined;
    copy ??= this.newCopy(key, unit, data);
    // A unit without a feeder has no other copy (drop() hands feeding on, accept() keeps one
    // copy): a fresh copy feeds from its first values, and only the blocks they touch can be
    // ready, so they are marked in the loop below instead of by feed()'s walk over every block.
    const first = this.feeder[unit] === undefined;
    if (first && fresh) this.feeder[unit] = copy;
    const end = Math.min(to, this.sharedSize);
    const feeding = this.feeder[unit] === copy;
    for (let b = Math.floor(from / GRAMIAN_BLOCK); b * GRAMIAN_BLOCK < end; b++) {
      const lo = Math.max(from, b * GRAMIAN_BLOCK);
      const hi = Math.min(end, this.blockEnd(b));
      copy.counts[b]! += hi - lo;
      if (feeding && this.full(copy, b)) this.blockReady(copy, b);
    }
    if (first && !fresh) this.feed(unit, copy);
  }

  /** Copy `key` was rejected (or its worker lost): the blocks it fed are computed again from another copy. */
  drop(key: object): void {
    if (this.finished) return;
    const copy = this.copies.get(key);
    if (!copy) return;
    this.copies.delete(key);
    if (this.feeder[copy.unit] !== copy) return;
    this.unfeed(copy.unit);
    const next = [...this.copies.values()].find((c) => c.unit === copy.unit);
    if (next) this.feed(copy.unit, next);
  }

  /** Copy `key` of unit `unit` is the result used (its whole payload `data`): it feeds the blocks from now on. */
  accept(key: object, unit: number, data: Float32Array): void {
    if (this.finished) return;
    let copy = this.copies.get(key);
    if (!copy || copy.data !== data) copy = this.newCopy(key, unit, data);
    for (let b = 0; b < this.blocks; b++) copy.counts[b] = this.blockEnd(b) - b * GRAMIAN_BLOCK;
    for (const [k, c] of this.copies) if (c.unit === unit && c !== copy) this.copies.delete(k);
    this.accepted[unit] = true;
    if (this.feeder[unit] !== copy && this.feeder[unit]) this.unfeed(unit);
    // Blocks already marked stay as they are: nothing is computed twice.
    this.feed(unit, copy);
  }

  private feed(unit: number, copy: Copy): void {
    this.feeder[unit] = copy;
    for (let b = 0; b < this.blocks; b++) if (this.full(copy, b)) this.blockReady(copy, b);
  }

  private unfeed(unit: number): void {
    const copy = this.feeder[unit]!;
    this.feeder[unit] = undefined;
    for (let b = 0; b < this.blocks; b++) {
      if (!copy.marked[b]) continue;
      copy.marked[b] = 0;
      this.ready[b]!--;
      this.partials[b] = undefined;
    }
  }

  private blockReady(copy: Copy, b: number): void {
    if (copy.marked[b]) return;
    copy.marked[b] = 1;
    if (++this.ready[b]! === this.units.length) this.compute(b);
  }

  /** Block `b` is whole in every unit's feeder: combine it per task, then its dot products. */
  private compute(b: number): void {
    const start = b * GRAMIAN_BLOCK;
    const end = this.blockEnd(b);
    const rows = this.shardsOf.map((shards, t) => {
      if (shards.length === 1) return this.feeder[shards[0]!]!.data;
      const sources = shards.map((i) => this.feeder[i]!.data);
      const out = (this.combined[t] ??= new Float32Array(sources[0]!.length));
      combineRange(out, sources, this.weights[t]!, start, end);
      return out;
    });
    const t = this.taskCount;
    const p = new Float64Array(t * t);
    blockPartial(rows, start, end, p);
    this.partials[b] = p;
    this.computedBlocks++;
  }

  /** Blocks whose dot products are in. */
  get blocksDone(): number {
    return this.partials.reduce((n, p) => n + (p ? 1 : 0), 0);
  }

  get blockCount(): number {
    return this.blocks;
  }

  /**
   * The step's combined task gradients and H, from the accepted results (`shards[t]`: task t's,
   * in shard order). A unit whose accepted payload is not the one that fed the blocks is fed
   * again from it first, so the answer is always that of gramian(combineShards(shards)).
   */
  finish(shards: ReadonlyArray<readonly BlockShard[]>): { perTask: BlockTaskGradient[]; gramian: number[][] } {
    this.shardsOf.forEach((units, t) => {
      units.forEach((u, s) => {
        const grads = shards[t]![s]!.grads;
        if (this.feeder[u]?.data !== grads || !this.accepted[u]) this.accept(grads, u, grads);
      });
    });
    const t = this.taskCount;
    const h = new Float64Array(t * t);
    for (let b = 0; b < this.blocks; b++) {
      if (!this.partials[b]) this.compute(b);
      const p = this.partials[b]!;
      for (let i = 0; i < t; i++) for (let j = i; j < t; j++) h[i * t + j]! += p[i * t + j]!;
    }
    const gramian = Array.from({ length: t }, (_, i) => Array.from({ length: t }, (_, j) => (j >= i ? h[i * t + j]! : h[j * t + i]!)));
    const perTask = shards.map((list, task) => this.combineTask(task, list));
    // A task with several shards gets its own combined row, never a payload; the payloads are
    // let go, and a copy that reports after the step can change nothing.
    this.finished = true;
    this.copies.clear();
    this.feeder.fill(undefined);
    return { perTask, gramian };
  }

  /** combineShards for task `task`, its shared part already combined block by block. */
  private combineTask(task: number, list: readonly BlockShard[]): BlockTaskGradient {
    const total = list.reduce((n, s) => n + s.sampleCount, 0);
    if (list.length === 1) return { loss: list[0]!.loss, samples: total, grads: list[0]!.grads };
    const size = list[0]!.grads.length;
    // The row the blocks were combined into, completed with the head: no second copy of the shared part.
    const grads = (this.combined[task] ??= new Float32Array(size));
    const w = this.weights[task]!;
    let loss = 0;
    list.forEach((s, i) => (loss += w[i]! * s.loss));
    combineRange(grads, list.map((s) => s.grads), w, this.sharedSize, size);
    return { loss, samples: total, grads };
  }
}
