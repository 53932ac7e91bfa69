// A weights broadcast as a worker takes it in: the header is checked against the job and the
// layout, then each chunk is checked and written, in order, straight into the shared buffer the
// compute thread reads (streamed-weights.ts), and the count of values now final is published.
// The compute thread has the buffer from the header on, so the units of the new version start
// while the rest of their weights is still on the wire. Compressed weights land in a 16-bit
// buffer and each chunk's whole values are decoded into the parameters as they arrive.
import type { WeightsHeader__Output } from '../proto/generated/mtl/v1/WeightsHeader.js';
import { ProtocolViolationError } from '../common/errors.js';
import { bytesPerValue, decodeHalf, uint16Bytes, WIRE_ENCODING, type Compression } from '../common/half-precision.js';
import { float32Bytes } from '../common/protocol.js';
import { TransferAssembler, type IncomingChunk } from '../common/transfer-assembler.js';
import type { ComputeThread } from './compute-thread.js';
import { abortWeightsStream, openWeightsStream, publishFloats, type WeightsStream } from './streamed-weights.js';

/** What the intake needs of the compute thread. */
export type WeightsTarget = Pick<ComputeThread, 'streamWeights' | 'weightsBuffer'>;

export interface WeightsShape {
  /** Parameters in the layout. */
  totalSize: number;
  /** Tensors in the layout. */
  tensors: number;
  compression: Compression;
  maxChunkBytes: number;
}

export class WeightsIntake {
  private incoming: { header: WeightsHeader__Output; assembler: TransferAssembler; stream: WeightsStream; published: number } | undefined;
  private half: Uint16Array | undefined;

  constructor(
    private readonly target: WeightsTarget,
    private readonly shape: WeightsShape,
  ) {}

  /** True while a transfer is open. */
  get open(): boolean {
    return this.incoming !== undefined;
  }

  /** A new version's header: checked, then its buffer goes to the compute thread at once. */
  begin(header: WeightsHeader__Output): void {
    if (this.incoming) throw new ProtocolViolationError('weights header while another weights transfer is open');
    const { totalSize, tensors, compression: c } = this.shape;
    const expected = totalSize * bytesPerValue(c);
    if (header.tensors.length !== tensors || header.byteLength !== expected) {
      throw new ProtocolViolationError(`weights v${header.version} carry ${header.byteLength} bytes, expected all ${expected}`);
    }
    if (header.encoding !== WIRE_ENCODING[c]) throw new ProtocolViolationError(`weights v${header.version} are ${header.encoding}, the job says transport.compression ${c}`);
    const params = this.target.weightsBuffer(totalSize);
    if (c !== 'none') this.half ??= new Uint16Array(totalSize);
    const dest = c === 'none' ? float32Bytes(params) : uint16Bytes(this.half!);
    const stream = openWeightsStream(params);
    this.incoming = { header, assembler: new TransferAssembler(header.transferId, dest, this.shape.maxChunkBytes), stream, published: 0 };
    this.target.streamWeights(stream);
  }

  /** One chunk of the open transfer; returns the header once the version is whole. Throws on any violation (nothing is published then). */
  chunk(chunk: IncomingChunk): WeightsHeader__Output | undefined {
    const incoming = this.incoming;
    if (!incoming) throw new ProtocolViolationError('chunk without an open transfer');
    const complete = incoming.assembler.accept(chunk);
    const c = this.shape.compression;
    const floats = Math.floor(incoming.assembler.receivedBytes / bytesPerValue(c));
    if (c !== 'none' && floats > incoming.published) {
      decodeHalf(this.half!.subarray(incoming.published, floats), c, incoming.stream.params.subarray(incoming.published, floats));
    }
    incoming.published = floats;
    publishFloats(incoming.stream, floats);
    if (!complete) return undefined;
    this.incoming = undefined;
    return incoming.header;
  }

  /** The open transfer will not complete (the session ends): a unit waiting for its values fails. */
  abort(): void {
    if (this.incoming) abortWeightsStream(this.incoming.stream);
    this.incoming = undefined;
  }
}
