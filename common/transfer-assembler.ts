// Receiving side of a chunked tensor transfer: each chunk is checked (transfer id, in-order
// offset, size, how many chunks so far) before one copy straight into the destination
// buffer. A rejected chunk leaves the destination untouched.
import { ByteLengthError, MessageTooLargeError, ProtocolViolationError } from './errors.js';
import { MAX_CHUNK_BYTES } from './protocol.js';

export interface IncomingChunk {
  transferId: number;
  offset: number;
  data: Uint8Array;
}

/**
 * A transfer may come in chunks this many times smaller than the limit, no smaller: a peer
 * sending a payload a few bytes at a time makes the receiver do per-message work for nothing.
 */
export const CHUNK_COUNT_SLACK = 16;

/** The most chunks a transfer of `bytes` may take: CHUNK_COUNT_SLACK × what full-size chunks need. */
export function maxChunksFor(bytes: number, maxChunkBytes: number): number {
  return CHUNK_COUNT_SLACK * Math.max(1, Math.ceil(bytes / maxChunkBytes));
}

/**
 * What every chunked transfer keeps and checks: its id, its destination, the chunk-size and
 * chunk-count limits, and how many bytes have arrived.
 */
export abstract class ChunkedTransfer {
  protected received = 0;
  private chunks = 0;
  private readonly maxChunks: number;

  constructor(
    readonly transferId: number,
    protected readonly dest: Uint8Array,
    protected readonly maxChunkBytes = MAX_CHUNK_BYTES,
  ) {
    this.maxChunks = maxChunksFor(dest.byteLength, maxChunkBytes);
  }

  get complete(): boolean {
    return this.received === this.dest.byteLength;
  }

  get receivedBytes(): number {
    return this.received;
  }

  /** The checks every chunk passes first: its transfer, then `placement` (where it may go), its size and the transfer's chunk count. */
  protected checkChunk(chunk: IncomingChunk, placement: () => void = () => undefined): void {
    if (chunk.transferId !== this.transferId) {
      throw new ProtocolViolationError(`chunk for transfer ${chunk.transferId} while transfer ${this.transferId} is open`);
    }
    placement();
    if (chunk.data.byteLength > this.maxChunkBytes) {
      throw new MessageTooLargeError(`chunk of ${chunk.data.byteLength} bytes exceeds the ${this.maxChunkBytes}-byte limit`);
    }
    if (chunk.data.byteLength === 0) throw new ProtocolViolationError('empty chunk');
  }

  /** The last check, once the chunk's place is known to be right. */
  protected checkCount(): void {
    if (this.chunks >= this.maxChunks) {
      throw new MessageTooLargeError(`transfer of ${this.dest.byteLength} bytes takes more than ${this.maxChunks} chunks`);
    }
  }

  /** Copies an accepted chunk to `offset` in the destination. */
  protected store(chunk: IncomingChunk, offset: number): void {
    this.dest.set(chunk.data, offset);
    this.received += chunk.data.byteLength;
    this.chunks++;
  }
}

export class TransferAssembler extends ChunkedTransfer {
  /** Adds one chunk; returns true when the transfer is complete. Throws on any violation. */
  accept(chunk: IncomingChunk): boolean {
    this.checkChunk(chunk, () => {
      if (chunk.offset !== this.received) {
        throw new ProtocolViolationError(`out-of-order chunk: offset ${chunk.offset}, expected ${this.received}`);
      }
    });
    if (this.received + chunk.data.byteLength > this.dest.byteLength) {
      throw new ByteLengthError(`transfer overruns its announced ${this.dest.byteLength} bytes`);
    }
    this.checkCount();
    this.store(chunk, this.received);
    return this.complete;
  }
}
