// Receiving side of a unit result's payload (protocol 3): a worker sends its gradient bucket by
// bucket as the backward pass makes it, last layers first, so chunks come in any order. The
// rule: every chunk lies within [0, byte_length), starts and ends on a value boundary, overlaps
// no byte already received and is at most the chunk limit; the payload is whole when every
// byte is covered. Each chunk is checked before one copy straight into the destination; a
// rejected chunk leaves the destination untouched. (Weights still come in order: TransferAssembler.)
import { ByteLengthError, MessageTooLargeError, ProtocolViolationError } from './errors.js';
import { MAX_CHUNK_BYTES } from './protocol.js';
import { maxChunksFor, type IncomingChunk } from './transfer-assembler.js';

export class ResultAssembler {
  /** The byte ranges received so far, [starts[i], ends[i]), sorted, disjoint and not touching (touching ones are merged). */
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private received = 0;
  private chunks = 0;
  private readonly maxChunks: number;

  constructor(
    readonly transferId: number,
    private readonly dest: Uint8Array,
    /** Bytes per value on the wire (4, or 2 compressed): chunks start and end on value boundaries. */
    readonly valueBytes: number,
    private readonly maxChunkBytes = MAX_CHUNK_BYTES,
  ) {
    this.maxChunks = maxChunksFor(dest.byteLength, maxChunkBytes);
  }

  get complete(): boolean {
    return this.received === this.dest.byteLength;
  }

  get receivedBytes(): number {
    return this.received;
  }

  get byteLength(): number {
    return this.dest.byteLength;
  }

  /** Adds one chunk and returns the byte range it filled. Throws on any violation of the rule. */
  accept(chunk: IncomingChunk): { from: number; to: number } {
    if (chunk.transferId !== this.transferId) {
      throw new ProtocolViolationError(`chunk for transfer ${chunk.transferId} while transfer ${this.transferId} is open`);
    }
    const n = chunk.data.byteLength;
    if (n > this.maxChunkBytes) throw new MessageTooLargeError(`chunk of ${n} bytes exceeds the ${this.maxChunkBytes}-byte limit`);
    if (n === 0) throw new ProtocolViolationError('empty chunk');
    const from = chunk.offset;
    const to = from + n;
    if (from % this.valueBytes !== 0 || n % this.valueBytes !== 0) {
      throw new ProtocolViolationError(`chunk [${from}, ${to}) does not start and end on ${this.valueBytes}-byte value boundaries`);
    }
    if (to > this.dest.byteLength) throw new ByteLengthError(`chunk [${from}, ${to}) lies outside the announced ${this.dest.byteLength} bytes`);
    if (this.chunks >= this.maxChunks) {
      throw new MessageTooLargeError(`transfer of ${this.dest.byteLength} bytes takes more than ${this.maxChunks} chunks`);
    }
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
    this.dest.set(chunk.data, from);
    this.received += n;
    this.chunks++;
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
