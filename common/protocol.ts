// The mtl.v1 protocol at run time: the loaded service definition, its limits, and the
// channel options both sides use. Types come from proto/generated (npm run gen:proto).
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { existsSync } from 'node:fs';
import type http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProtoGrpcType } from '../proto/generated/coordinator.js';
import type { CoordinatorDefinition } from '../proto/generated/mtl/v1/Coordinator.js';
import type { CoordinatorMessage } from '../proto/generated/mtl/v1/CoordinatorMessage.js';

/**
 * Bumped on any incompatible change; Hello and Welcome carry it. 2: workers heartbeat while they
 * compute (their compute runs off the session's event loop), so the coordinator declares any
 * worker dead after `fault.deadAfterMs` of silence, busy or not; a protocol-1 worker, silent
 * for a whole unit, would be declared dead in long units, so it is refused at Hello. 3: a unit's
 * result streams as the backward pass makes it: chunks in any order (bucket by bucket, last
 * layers first), each on value boundaries, within the payload and overlapping no other; the
 * timings follow in a ResultEnd once every byte is sent (coordinator/result-assembler.ts).
 */
export const PROTOCOL_VERSION = 3;
/** Largest TensorChunk payload. */
export const MAX_CHUNK_BYTES = 1 << 20;
/** Largest message either side accepts: a full chunk plus generous room for headers. */
export const MAX_MESSAGE_BYTES = 4 << 20;

/** Same options as scripts/gen-proto.mjs, so the generated types describe what we get. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  // HTTP/2 keepalive pings on both ends find connections that died without a reset (a cut
  // cable, a vanished host). A worker answers pings only between units (its event loop
  // computes), so the timeout is generous; frozen or stuck workers are the application
  // failure detector's job (coordinator/failure-detector.ts).
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 20_000,
  'grpc.keepalive_permit_without_calls': 1,
};

/**
 * A worker's channel: the same, plus a 16 MiB HTTP/2 receive window, so the coordinator can
 * push a weights broadcast without waiting for window updates every 64 KiB. Measured with
 * `npm run bench -- transport` (broadcast, 256 MiB, two processes): 292–354 MB/s with the
 * default window, 431–488 MB/s with this one. The coordinator's side is SERVER_HTTP2_SETTINGS
 * (an earlier attempt to set this option on the server did nothing: grpc-js ignores it there).
 */
export const WORKER_CHANNEL_OPTIONS: grpc.ChannelOptions = { ...CHANNEL_OPTIONS, 'grpc-node.flow_control_window': 16 << 20 };

/**
 * HTTP/2 receive settings of the coordinator's server, for gradient uploads: a 4 MiB stream
 * and connection window (Node's default is 64 KiB: the worker stalls for a WINDOW_UPDATE every
 * 64 KiB) and DATA frames of up to 1 MiB (default 16 KiB: 64 frames, each its own callback, per
 * 1 MiB chunk). Measured with `npm run bench -- transport` (upload, 256 MiB, two processes,
 * alternating settings): 385–479 MB/s with the defaults, 810–826 with a 2 MiB window and 256 KiB
 * frames, 981–1057 with these. A worker can have at most this much unread data buffered at the
 * coordinator: 4 MiB × workers at worst.
 */
export const SERVER_HTTP2_SETTINGS = { initialWindowSize: 4 << 20, maxFrameSize: 1 << 20 } as const;

/**
 * A grpc-js server with SERVER_HTTP2_SETTINGS. grpc-js 1.14 reads
 * `grpc-node.flow_control_window` on the client only (grpc/grpc-node#3058) and has no option
 * for the frame size, so the settings go into the options it hands to http2.createServer (a
 * field it does not export; test/integration/http2-tuning.test.ts fails if that changes).
 * Returns whether the settings could be applied; the server works either way, only slower.
 */
export function createTunedServer(): { server: grpc.Server; tuned: boolean } {
  const server = new grpc.Server(CHANNEL_OPTIONS);
  const internals = server as unknown as { commonServerOptions?: http2.ServerOptions };
  const options = internals.commonServerOptions;
  if (options === undefined || typeof options !== 'object') return { server, tuned: false };
  options.settings = { ...options.settings, ...SERVER_HTTP2_SETTINGS };
  return { server, tuned: true };
}

/**
 * Raises the connection-level receive window of the HTTP/2 session carrying a Connect call to
 * SERVER_HTTP2_SETTINGS.initialWindowSize (the settings above set each stream's window; the
 * connection's starts at 64 KiB whatever they say). Idempotent. Returns false when the session
 * cannot be reached (grpc-js internals changed), true otherwise.
 */
export function widenConnectionWindow(call: object): boolean {
  const session = (call as { call?: { stream?: { session?: http2.Http2Session } } }).call?.stream?.session;
  if (!session || typeof session.setLocalWindowSize !== 'function') return false;
  if (session.destroyed || session.closed) return true;
  const current = session.state.localWindowSize ?? 0;
  if (current < SERVER_HTTP2_SETTINGS.initialWindowSize) session.setLocalWindowSize(SERVER_HTTP2_SETTINGS.initialWindowSize);
  return true;
}

if (os.endianness() !== 'LE') {
  // Tensors travel as the host's Float32Array bytes; the wire format is little-endian.
  throw new Error('mtl-orchestrator needs a little-endian host');
}

function findProtoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'proto');
    if (existsSync(path.join(candidate, 'mtl', 'v1', 'coordinator.proto'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error('cannot find proto/mtl/v1/coordinator.proto next to the installed package');
}

let loaded: ProtoGrpcType | undefined;

export function protocol(): ProtoGrpcType {
  if (!loaded) {
    const root = findProtoRoot();
    const definition = protoLoader.loadSync('mtl/v1/coordinator.proto', { ...PROTO_LOADER_OPTIONS, includeDirs: [root] });
    loaded = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
  }
  return loaded;
}

/** Bytes before each message on a gRPC stream: a compressed flag (0 here) and a big-endian u32 length. */
const GRPC_FRAME_PREFIX = 5;

/**
 * A CoordinatorMessage serialised once, written to many streams (weights broadcast). It is
 * held already framed as grpc-js writes it (prefix + bytes), so that a call set up by
 * sendPreFramed writes the same buffer to every stream instead of a fresh framed copy per
 * stream; the server's serializer passes `bytes` (a view of the framed buffer) through untouched.
 */
export class PreEncodedMessage {
  readonly framed: Buffer;
  readonly bytes: Buffer;
  constructor(bytes: Uint8Array) {
    this.framed = Buffer.allocUnsafe(GRPC_FRAME_PREFIX + bytes.byteLength);
    this.framed.writeUInt8(0, 0);
    this.framed.writeUInt32BE(bytes.byteLength, 1);
    this.framed.set(bytes, GRPC_FRAME_PREFIX);
    this.bytes = this.framed.subarray(GRPC_FRAME_PREFIX);
  }
}

type Framing = { serializeMessage?: (value: unknown) => Buffer; handler?: { serialize(value: unknown): Buffer } };
const framedPrototypes = new WeakSet<object>();

/**
 * Makes the grpc-js server call behind `call` (a Connect call) write a PreEncodedMessage's
 * framed buffer as it is. grpc-js frames each message it sends into a new buffer (a copy of
 * the whole message per stream, a third of the broadcast's CPU on the coordinator); its
 * private serializeMessage is wrapped, once per class, so that PreEncodedMessages skip that
 * copy (their serializer still runs, for the byte counters) and other messages are framed as
 * before. Returns false when the call's internals are not what grpc-js 1.14 has (interceptors,
 * an upgrade): the server works, copying.
 */
export function sendPreFramed(call: object): boolean {
  const inner = (call as { call?: object }).call;
  const proto = inner === undefined ? null : (Object.getPrototypeOf(inner) as Framing | null);
  if (proto === null) return false;
  if (framedPrototypes.has(proto)) return true;
  const original = proto.serializeMessage;
  if (typeof original !== 'function') return false;
  proto.serializeMessage = function (this: Framing, value: unknown): Buffer {
    if (!(value instanceof PreEncodedMessage) || this.handler === undefined) return original.call(this, value);
    this.handler.serialize(value);
    return value.framed;
  };
  framedPrototypes.add(proto);
  return true;
}

export type OutgoingCoordinatorMessage = CoordinatorMessage | PreEncodedMessage;

export function coordinatorService(): CoordinatorDefinition {
  return protocol().mtl.v1.Coordinator.service;
}

export function encodeCoordinatorMessage(message: CoordinatorMessage): PreEncodedMessage {
  return new PreEncodedMessage(coordinatorService().Connect.responseSerialize(message));
}

/** Observes the serialised size of each Connect message (the coordinator's bytes in/out metrics). */
export interface PayloadCounter {
  received(bytes: number): void;
  sent(bytes: number): void;
}

/**
 * The server-side service definition: like the generated one, but Connect accepts
 * PreEncodedMessages, and `counter` (if given) sees the size of every message body in and out.
 */
export function serverServiceDefinition(counter?: PayloadCounter): grpc.ServiceDefinition {
  const service = coordinatorService();
  const serialize = service.Connect.responseSerialize;
  const deserialize = service.Connect.requestDeserialize;
  return {
    ...service,
    Connect: {
      ...service.Connect,
      responseSerialize: (value: OutgoingCoordinatorMessage) => {
        const bytes = value instanceof PreEncodedMessage ? value.bytes : serialize(value);
        counter?.sent(bytes.byteLength);
        return bytes;
      },
      requestDeserialize: (bytes: Buffer) => {
        counter?.received(bytes.byteLength);
        return deserialize(bytes);
      },
    },
  };
}

/** Views of `bytes` of at most `chunkBytes` each; no copies. */
export function chunkViews(bytes: Uint8Array, chunkBytes = MAX_CHUNK_BYTES): Buffer[] {
  if (!Number.isInteger(chunkBytes) || chunkBytes <= 0) throw new RangeError(`chunk size must be a positive integer, got ${chunkBytes}`);
  const out: Buffer[] = [];
  for (let offset = 0; offset < bytes.byteLength; offset += chunkBytes) {
    const len = Math.min(chunkBytes, bytes.byteLength - offset);
    out.push(Buffer.from(bytes.buffer, bytes.byteOffset + offset, len));
  }
  return out;
}

export function float32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
