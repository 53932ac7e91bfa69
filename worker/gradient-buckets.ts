// A unit's gradient handed out bucket by bucket while the backward pass makes it (the fast path,
// ModelRunner.sharedGradients): the head's tensors first, then the trunk's, last layer first.
// Each tensor is copied into the unit's payload once it is final; once the tensors waiting
// hold `bucketBytes` or more, their range of the payload goes to the stream, so the session
// thread can send it while the backward goes on. Only where the values go changes, never a
// value: a bucketed payload is bitwise the unbucketed one.
import type * as tf from '@tensorflow/tfjs';

/** Receives one computation's payloads, bucket by bucket (ModelRunner.sharedGradients). */
export interface GradientStream {
  /** Bucket size in float32 bytes; 0: one bucket per unit, at the end of its backward pass. */
  readonly bucketBytes: number;
  /** Task number `task` (its place in the call's list) has its loss; its payload (`size` floats) follows in buckets. */
  begin(task: number, loss: number, size: number): void;
  /** Floats [offset, offset + data.length) of task `task`'s payload, final. `data` is a view, valid during the call only. */
  piece(task: number, offset: number, data: Float32Array): void;
  /** Every float of task `task`'s payload has been handed out. */
  end(task: number): void;
}

export class GradientBuckets {
  private waiting: Array<{ offset: number; tensor: tf.Tensor }> = [];
  private waitingBytes = 0;
  private emitted = 0;

  constructor(
    /** The unit's payload: each tensor lands at its offset here. */
    private readonly payload: Float32Array,
    /** Payload offset of each gradient tensor, by tensor index. */
    private readonly offsets: ReadonlyMap<number, number>,
    private readonly stream: GradientStream,
    private readonly task: number,
  ) {}

  /** Gradients now final (tensor index → gradient). */
  add(tensors: Iterable<readonly [number, tf.Tensor]>): void {
    for (const [index, tensor] of tensors) {
      const offset = this.offsets.get(index);
      if (offset === undefined) throw new RangeError(`tensor ${index} has no place in the payload`);
      this.waiting.push({ offset, tensor });
      this.waitingBytes += 4 * tensor.size;
    }
    if (this.stream.bucketBytes > 0 && this.waitingBytes >= this.stream.bucketBytes) this.flush();
  }

  /** Copies the waiting tensors into the payload and hands their ranges out (one piece per contiguous run). */
  flush(): void {
    const waiting = this.waiting.sort((a, b) => a.offset - b.offset);
    this.waiting = [];
    this.waitingBytes = 0;
    let from = -1;
    let to = -1;
    for (const { offset, tensor } of waiting) {
      this.payload.set(tensor.dataSync(), offset);
      if (offset !== to) {
        if (from >= 0) this.emit(from, to);
        from = offset;
      }
      to = offset + tensor.size;
    }
    if (from >= 0) this.emit(from, to);
  }

  private emit(from: number, to: number): void {
    this.emitted += to - from;
    this.stream.piece(this.task, from, this.payload.subarray(from, to));
  }

  /** Hands out what is still waiting and ends the unit; throws if the payload was not covered. */
  finish(): void {
    this.flush();
    if (this.emitted !== this.payload.length) throw new Error(`the backward pass produced ${this.emitted} of the ${this.payload.length} payload floats`);
    this.stream.end(this.task);
  }
}
