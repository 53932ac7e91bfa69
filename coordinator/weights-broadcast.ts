// New weights go to every worker: encoded once per version (header + 1 MiB chunks, serialised
// to protobuf bytes here), then the same bytes are queued on every session.
import { chunkViews, encodeCoordinatorMessage, float32Bytes, type PreEncodedMessage } from '../common/protocol.js';
import type { ParameterLayout } from '../common/parameter-layout.js';

export interface WeightsReceiver {
  send(message: PreEncodedMessage): Promise<void>;
}

export class WeightsBroadcast {
  private messages: PreEncodedMessage[] = [];

  constructor(
    private readonly layout: ParameterLayout,
    private readonly chunkBytes: number,
  ) {}

  /** Encodes `params` as weights version `version`; serialisation copies, so `params` may change afterwards. */
  update(params: Float32Array, version: number): void {
    const bytes = float32Bytes(params);
    const transferId = version + 1;
    const messages = [
      encodeCoordinatorMessage({
        weights: {
          version,
          tensors: this.layout.tensors.map((_, i) => i),
          byteLength: bytes.byteLength,
          transferId,
          encoding: 'ENCODING_F32',
        },
      }),
    ];
    let offset = 0;
    for (const data of chunkViews(bytes, this.chunkBytes)) {
      messages.push(encodeCoordinatorMessage({ chunk: { transferId, offset, data } }));
      offset += data.byteLength;
    }
    this.messages = messages;
  }

  /** Queues the current version on a session; a closed session is the run's concern, not ours. */
  sendTo(receiver: WeightsReceiver): void {
    for (const m of this.messages) receiver.send(m).catch(() => undefined);
  }
}
