// Receiving side of a chunked tensor transfer: each chunk is checked (transfer id, in-order
// offset, size) before one copy straight into the destination buffer. A rejected chunk
// leaves the destination untouched.
import { ByteLengthError, MessageTooLargeError, ProtocolViolationError } from './errors.js';
import { MAX_CHUNK_BYTES } from './protocol.js';

export interface IncomingChunk {
  transferId: number;
  offset: number;
  data: Uint8Array;
}

export class TransferAssembler {
  private received = 0;

  constructor(
    readonly transferId: number,
    private readonly dest: Uint8Array,
    private readonly maxChunkBytes = MAX_CHUNK_BYTES,
  ) {}

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
    this.dest.set(chunk.data, this.received);
    this.received += chunk.data.byteLength;
    return this.complete;
  }
}

/** Index of the first NaN or ±Infinity, or -1. */
export function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    // v - v is NaN exactly when v is NaN or infinite; cheaper than Number.isFinite per element.
    if (v - v !== 0) return i;
  }
  return -1;
}
