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

export class TransferAssembler {
  private received = 0;
  private chunks = 0;
  private readonly maxChunks: number;

  constructor(
    readonly transferId: number,
    private readonly dest: Uint8Array,
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

  /** Adds one chunk; returns true when the transfer is complete. Throws on any violation. */
  accept(chunk: IncomingChunk): boolean {
    if (chunk.transferId !== this.transferId) {
      throw new ProtocolViolationError(`chunk for transfer ${chunk.transferId} while transfer ${this.transferId} is open`);
    }
    if (chunk.offset !== this.received) {
      throw new ProtocolViolationError(`out-of-order chunk: offset ${chunk.offset}, expected ${this.received}`);
    }
    if (chunk.data.byteLength > this.maxChunkBytes) {
      throw new MessageTooLargeError(`chunk of ${chunk.data.byteLength} bytes exceeds the ${this.maxChunkBytes}-byte limit`);
    }
    if (chunk.data.byteLength === 0) throw new ProtocolViolationError('empty chunk');
    if (this.received + chunk.data.byteLength > this.dest.byteLength) {
      throw new ByteLengthError(`transfer overruns its announced ${this.dest.byteLength} bytes`);
    }
    if (this.chunks >= this.maxChunks) {
      throw new MessageTooLargeError(`transfer of ${this.dest.byteLength} bytes takes more than ${this.maxChunks} chunks`);
    }
    this.dest.set(chunk.data, this.received);
    this.received += chunk.data.byteLength;
    this.chunks++;
    return this.complete;
  }
}
