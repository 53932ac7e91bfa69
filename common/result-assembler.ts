// Receiving side of a unit result's payload (protocol 3): a worker sends its gradient bucket by
// bucket as the backward pass makes it, last layers first, so chunks come in any order. The
// rule: every chunk lies within [0, byte_length), starts and ends on a value boundary, overlaps
// no byte already received and is at most the chunk limit; the payload is whole when every
// byte is covered. Each chunk is checked before one copy straight into the destination; a
// rejected chunk leaves the destination untouched. (Weights still come in order: TransferAssembler.)
import { ByteLengthError, ProtocolViolationError } from './errors.js';
import { MAX_CHUNK_BYTES } from './protocol.js';
import { ChunkedTransfer, type IncomingChunk } from './transfer-assembler.js';

export class ResultAssembler extends ChunkedTransfer {
  /** The byte ranges received so far, [starts[i], ends[i]), sorted, disjoint and not touching (touching ones are merged). */
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];

  constructor(
    transferId: number,
    dest: Uint8Array,
    /** Bytes per value on the wire (4, or 2 compressed): chunks start and end on value boundaries. */
    readonly valueBytes: number,
    maxChunkBytes = MAX_CHUNK_BYTES,
  ) {
    super(transferId, dest, maxChunkBytes);
  }

  get byteLength(): number {
    return this.dest.byteLength;
  }

  /** Adds one chunk and returns the byte range it filled. Throws on any violation of the rule. */
  accept(chunk: IncomingChunk): { from: number; to: number } {
    this.checkChunk(chunk);
    const n = chunk.data.byteLength;
    const from = chunk.offset;
    const to = from + n;
    if (from % this.valueBytes !== 0 || n % this.valueBytes !== 0) {
      throw new ProtocolViolationError(`chunk [${from}, ${to}) does not start and end on ${this.valueBytes}-byte value boundaries`);
    }
    if (to > this.dest.byteLength) throw new ByteLengthError(`chunk [${from}, ${to}) lies outside the announced ${this.dest.byteLength} bytes`);
    this.checkCount();
    // The first range that starts after `from`; the one before it may reach into the chunk.
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.starts[mid]! <= from) lo = mid + 1;
      else hi = mid;
    }
    const before = lo - 1;
    if ((before >= 0 && this.ends[before]! > from) || (lo < this.starts.length && this.starts[lo]! < to)) {
      throw new ProtocolViolationError(`chunk [${from}, ${to}) overlaps bytes already received`);
    }
    this.store(chunk, from);
    const joinsBefore = before >= 0 && this.ends[before] === from;
    const joinsAfter = lo < this.starts.length && this.starts[lo] === to;
    if (joinsBefore && joinsAfter) {
      this.ends[before] = this.ends[lo]!;
      this.starts.splice(lo, 1);
      this.ends.splice(lo, 1);
    } else if (joinsBefore) {
      this.ends[before] = to;
    } else if (joinsAfter) {
      this.starts[lo] = from;
    } else {
      this.starts.splice(lo, 0, from);
      this.ends.splice(lo, 0, to);
    }
    return { from, to };
  }
}
