// Result payload buffers reused from one step to the next. At P = 10⁶ every train result is a
// 4 MB Float32Array; allocating a fresh one per result made V8 run a full mark-compact every
// ~64 MB of new external memory, the coordinator's largest CPU cost at W = 8 (issue 18).
//
// A buffer comes back only through release(), and the callers release it only when provably
// nothing reads or writes it any more (result-intake.ts says when). It is handed out again
// without clearing: a result is used only once its transfer has covered every byte
// (ResultAssembler), and its chunks are read only where they arrived, so no old value is read.

/** How many idle buffers of one length are kept: more than one step's results never are. */
const MAX_IDLE_PER_LENGTH = 256;

export class PayloadPool {
  private readonly idle = new Map<number, Float32Array[]>();
  /** The buffers now idle: a second release of one is ignored, so it is never handed out twice. */
  private readonly idleSet = new Set<Float32Array>();
  /** Buffers handed out again instead of allocated (for tests and stats). */
  reused = 0;

  acquire(length: number): Float32Array {
    const buffer = this.idle.get(length)?.pop();
    if (buffer === undefined) return new Float32Array(length);
    this.idleSet.delete(buffer);
    this.reused++;
    return buffer;
  }

  release(buffer: Float32Array): void {
    if (this.idleSet.has(buffer) || buffer.byteOffset !== 0 || buffer.length !== buffer.buffer.byteLength / 4) return;
    const list = this.idle.get(buffer.length) ?? [];
    if (list.length >= MAX_IDLE_PER_LENGTH) return;
    list.push(buffer);
    this.idle.set(buffer.length, list);
    this.idleSet.add(buffer);
  }

  get idleCount(): number {
    return this.idleSet.size;
  }
}
