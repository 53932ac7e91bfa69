// A Connect stream without a network, for driving a WorkerSession directly: what a test
// delivers goes through the real Connect serializer and deserializer, so the session sees
// exactly the objects grpc-js would hand it (defaults filled in, oneof `kind` set).
import { EventEmitter } from 'node:events';
import type { CoordinatorMessage, CoordinatorMessage__Output } from '../../proto/generated/mtl/v1/CoordinatorMessage.js';
import type { WorkerMessage, WorkerMessage__Output } from '../../proto/generated/mtl/v1/WorkerMessage.js';
import { coordinatorService, PreEncodedMessage, type OutgoingCoordinatorMessage } from '../../common/protocol.js';
import type { ConnectCall } from '../../coordinator/worker-session.js';

const connect = () => coordinatorService().Connect;

/** Serialises a worker message as a client would put it on the wire. */
export function encodeWorkerMessage(message: WorkerMessage): Buffer {
  return connect().requestSerialize(message);
}

/** Parses wire bytes as the server does; throws on bytes that are not a WorkerMessage. */
export function decodeWorkerMessage(bytes: Uint8Array): WorkerMessage__Output {
  return connect().requestDeserialize(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

export class FakeCall extends EventEmitter {
  /** Status the session closed the call with (what the worker would see), if it did. */
  status: { code: number; details: string } | undefined;
  ended = false;

  /** `onWrite` sees every plain message the coordinator writes; pre-encoded ones (the weights) go to `onPreEncoded`, parsed, if given. */
  constructor(
    private readonly onWrite: (message: CoordinatorMessage) => void = () => undefined,
    private readonly peer = 'fake:1',
    private readonly onPreEncoded?: (message: CoordinatorMessage__Output) => void,
  ) {
    super();
    this.on('error', (e: { code: number; details: string }) => {
      this.status ??= { code: e.code, details: e.details };
      this.ended = true;
    });
  }

  get asCall(): ConnectCall {
    return this as unknown as ConnectCall;
  }

  getPeer(): string {
    return this.peer;
  }

  write(message: OutgoingCoordinatorMessage): boolean {
    if (!(message instanceof PreEncodedMessage)) this.onWrite(message);
    else this.onPreEncoded?.(connect().responseDeserialize(message.bytes));
    return true;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.emit('finish');
  }

  /** Delivers a message as grpc-js would: serialised, then parsed by the Connect deserializer. */
  deliver(message: WorkerMessage): void {
    this.emit('data', decodeWorkerMessage(encodeWorkerMessage(message)));
  }

  /**
   * Delivers raw bytes as one message. Returns false when they do not parse: grpc-js would
   * then end the call with INTERNAL before the session saw anything.
   */
  deliverBytes(bytes: Uint8Array): boolean {
    let decoded: WorkerMessage__Output;
    try {
      decoded = decodeWorkerMessage(bytes);
    } catch {
      return false;
    }
    this.emit('data', decoded);
    return true;
  }
}
