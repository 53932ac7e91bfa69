// New weights go to every worker: encoded once per version (header + 1 MiB chunks, serialised
// to protobuf bytes here), then the same bytes are queued on every session. `stream` encodes
// and sends a version bucket by bucket while its values are still being computed, first
// parameters first, so the first bytes leave before the whole update is done.
import { chunkViews, encodeCoordinatorMessage, float32Bytes, type PreEncodedMessage } from '../common/protocol.js';
import type { ParameterLayout } from '../common/parameter-layout.js';
import { encodeHalf, uint16Bytes, WIRE_ENCODING, type Compression } from '../common/half-precision.js';

export interface WeightsReceiver {
  send(message: PreEncodedMessage): Promise<void>;
}

/** Yields to the event loop, so that queued writes reach the sockets. */
const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve));

export class WeightsBroadcast {
  private messages: PreEncodedMessage[] = [];
  /** While a version is streamed: who gets its remaining messages as they are encoded. */
  private live: Set<WeightsReceiver> | undefined;

  private half: Uint16Array | undefined;

  constructor(
    private readonly layout: ParameterLayout,
    private readonly chunkBytes: number,
    private readonly compression: Compression = 'none',
  ) {}

  /** Whether `stream` can send this broadcast's versions in parts (uncompressed weights only). */
  get streams(): boolean {
    return this.compression === 'none';
  }

  private header(version: number, byteLength: number): PreEncodedMessage {
    return encodeCoordinatorMessage({
      weights: { version, tensors: this.layout.tensors.map((_, i) => i), byteLength, transferId: version + 1, encoding: WIRE_ENCODING[this.compression] },
    });
  }

  private chunks(bytes: Uint8Array, transferId: number, start: number): PreEncodedMessage[] {
    const out: PreEncodedMessage[] = [];
    let offset = start;
    for (const data of chunkViews(bytes, this.chunkBytes)) {
      out.push(encodeCoordinatorMessage({ chunk: { transferId, offset, data } }));
      offset += data.byteLength;
    }
    return out;
  }

  /** Encodes `params` as weights version `version`; serialisation copies, so `params` may change afterwards. */
  update(params: Float32Array, version: number): void {
    const c = this.compression;
    const bytes = c === 'none' ? float32Bytes(params) : uint16Bytes(encodeHalf(params, c, (this.half ??= new Uint16Array(params.length))));
    this.messages = [this.header(version, bytes.byteLength), ...this.chunks(bytes, version + 1, 0)];
  }

  /**
   * Version `version` of `params`, encoded and queued on `receivers` (and on anyone `sendTo`
   * meets meanwhile) bucket by bucket in index order: `produce(from, to)` writes the values
   * [from, to) just before they are encoded, and the event loop runs between buckets so the
   * bytes leave while the next bucket is produced. Buckets are whole chunks, so the messages are
   * byte for byte those `update` makes. Uncompressed weights only (see `streams`).
   */
  async stream(params: Float32Array, version: number, bucketBytes: number, produce: (from: number, to: number) => void, receivers: Iterable<WeightsReceiver>): Promise<void> {
    if (!this.streams) throw new RangeError(`weights compressed as ${this.compression} cannot be streamed`);
    const bytes = float32Bytes(params);
    const valuesPerBucket = (Math.max(1, Math.round(bucketBytes / this.chunkBytes)) * this.chunkBytes) / 4;
    if (!Number.isInteger(valuesPerBucket)) throw new RangeError(`chunk size ${this.chunkBytes} is not a whole number of float32 values`);
    this.messages = [this.header(version, bytes.byteLength)];
    this.live = new Set(receivers);
    try {
      for (const r of this.live) this.sendAll(r, this.messages);
      for (let from = 0; from < params.length; from += valuesPerBucket) {
        const to = Math.min(params.length, from + valuesPerBucket);
        produce(from, to);
        const encoded = this.chunks(bytes.subarray(from * 4, to * 4), version + 1, from * 4);
        this.messages.push(...encoded);
        for (const r of this.live) this.sendAll(r, encoded);
        if (to < params.length) await yieldToIo();
      }
    } finally {
      this.live = undefined;
    }
  }

  private sendAll(receiver: WeightsReceiver, messages: readonly PreEncodedMessage[]): void {
    for (const m of messages) receiver.send(m).catch(() => undefined);
  }

  /** Queues the current version on a session (the rest of it too, if it is being streamed); a closed session is the run's concern, not ours. */
  sendTo(receiver: WeightsReceiver): void {
    this.sendAll(receiver, this.messages);
    this.live?.add(receiver);
  }
}
