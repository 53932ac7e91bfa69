// New weights go to every worker: encoded once per version (header + 1 MiB chunks, serialised
// to protobuf bytes here), then the same bytes are queued on every session, once per session
// and version. A phase sends its units first and the weights right after (PhaseRunner), so a
// worker knows what to compute when the first chunk lands and starts while the rest streams.
import { chunkViews, encodeCoordinatorMessage, float32Bytes, type PreEncodedMessage } from '../common/protocol.js';
import type { ParameterLayout } from '../common/parameter-layout.js';
import { encodeHalf, uint16Bytes, WIRE_ENCODING, type Compression } from '../common/half-precision.js';

export interface WeightsReceiver {
  send(message: PreEncodedMessage): Promise<void>;
}

export class WeightsBroadcast {
  private messages: PreEncodedMessage[] = [];
  /** Bumped by every update: what a receiver was sent (a lookahead version number comes round again with other values). */
  private generation = 0;
  /** The generation each receiver was last sent. */
  private readonly sent = new WeakMap<WeightsReceiver, number>();

  private half: Uint16Array | undefined;

  constructor(
    private readonly layout: ParameterLayout,
    private readonly chunkBytes: number,
    private readonly compression: Compression = 'none',
  ) {}

  /** Encodes `params` as weights version `version`; serialisation copies, so `params` may change afterwards. */
  update(params: Float32Array, version: number): void {
    const c = this.compression;
    const bytes = c === 'none' ? float32Bytes(params) : uint16Bytes(encodeHalf(params, c, (this.half ??= new Uint16Array(params.length))));
    const transferId = version + 1;
    const messages = [
      encodeCoordinatorMessage({
        weights: {
          version,
          tensors: this.layout.tensors.map((_, i) => i),
          byteLength: bytes.byteLength,
          transferId,
          encoding: WIRE_ENCODING[c],
        },
      }),
    ];
    let offset = 0;
    for (const data of chunkViews(bytes, this.chunkBytes)) {
      messages.push(encodeCoordinatorMessage({ chunk: { transferId, offset, data } }));
      offset += data.byteLength;
    }
    this.messages = messages;
    this.generation++;
  }

  /** Queues the current version on a session unless it was sent it already; a closed session is the run's concern, not ours. */
  sendTo(receiver: WeightsReceiver): void {
    if (this.sent.get(receiver) === this.generation) return;
    this.sent.set(receiver, this.generation);
    for (const m of this.messages) receiver.send(m).catch(() => undefined);
  }
}
