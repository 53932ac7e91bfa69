// The server side of `npm run bench -- transport`, run as its own process:
// `node dist/bench/transport-peer.js MIB` listens on loopback for raw TCP and for the mtl.v1
// Coordinator service, prints `{"tcp":PORT,"grpc":PORT}` and serves until stdin closes.
//
// Raw TCP: the client sends an 8-byte request (u32 direction, u32 MiB): direction 0 (upload),
// the client then streams the bytes and we answer one byte once all have arrived; direction 1
// (broadcast), we stream the bytes.
// gRPC: a Connect stream whose Hello name is `upload` or `broadcast`. Upload: a UnitResult
// header and 1 MiB TensorChunks are assembled into a buffer as the coordinator does, then we
// answer with an empty Assign. The server is created and tuned as the coordinator's is
// (createTunedServer, widenConnectionWindow, sendPreFramed). Broadcast: the weights, encoded once at start exactly as
// coordinator/weights-broadcast.ts does, are queued on the stream with backpressure. A striped
// broadcast (bench/transport-striped.ts) deals the same messages over its N streams.
// A line on stdin is answered with this process's CPU time so far.
import * as grpc from '@grpc/grpc-js';
import net from 'node:net';
import { createInterface } from 'node:readline';
import type { WorkerMessage__Output } from '../proto/generated/mtl/v1/WorkerMessage.js';
import type { ParameterLayout } from '../common/parameter-layout.js';
import { OrderedWriter } from '../common/ordered-writer.js';
import { createTunedServer, float32Bytes, MAX_CHUNK_BYTES, sendPreFramed, serverServiceDefinition, widenConnectionWindow, type OutgoingCoordinatorMessage } from '../common/protocol.js';
import { TransferAssembler } from '../common/transfer-assembler.js';
import { WeightsBroadcast } from '../coordinator/weights-broadcast.js';
import { parseStripeName } from './transport-striped.js';

const MIB = 1 << 20;

function serveTcp(): Promise<number> {
  const block = Buffer.alloc(MIB, 7);
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    let header = Buffer.alloc(0);
    let remaining = -1;
    socket.on('data', (data: Buffer) => {
      if (remaining < 0) {
        header = Buffer.concat([header, data]);
        if (header.length < 8) return;
        const direction = header.readUInt32LE(0);
        const bytes = header.readUInt32LE(4) * MIB;
        const rest = header.length - 8;
        if (direction === 1) {
          void stream(socket, block, bytes);
          remaining = 0;
          return;
        }
        remaining = bytes - rest;
      } else {
        remaining -= data.length;
      }
      if (remaining === 0) socket.write(Buffer.from([1]));
    });
    socket.on('error', () => undefined);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

async function stream(socket: net.Socket, block: Buffer, bytes: number): Promise<void> {
  for (let sent = 0; sent < bytes; sent += block.length) {
    if (!socket.write(block)) await new Promise((r) => socket.once('drain', r));
  }
}

function serveGrpc(mib: number): Promise<number> {
  const floats = (mib * MIB) / 4;
  const params = new Float32Array(floats).fill(0.5);
  // WeightsBroadcast reads only the tensor list of the layout: one tensor is enough here.
  const broadcast = new WeightsBroadcast({ tensors: [{}] } as unknown as ParameterLayout, MAX_CHUNK_BYTES);
  broadcast.update(params, 1);
  const sink = new Float32Array(floats);
  // Striped broadcasts waiting for all their streams: id → the streams' writers and HTTP/2 sessions.
  const stripes = new Map<string, { writers: Array<OrderedWriter<OutgoingCoordinatorMessage>>; sessions: Set<unknown> }>();
  const { server } = createTunedServer();
  server.addService(serverServiceDefinition(), {
    Connect: (call: grpc.ServerDuplexStream<WorkerMessage__Output, OutgoingCoordinatorMessage>) => {
      widenConnectionWindow(call);
      sendPreFramed(call);
      const writer = new OrderedWriter(call);
      let assembler: TransferAssembler | undefined;
      call.on('data', (m: WorkerMessage__Output) => {
        const stripe = m.kind === 'hello' ? parseStripeName(m.hello!.name) : undefined;
        if (stripe) {
          const group = stripes.get(stripe.id) ?? { writers: [], sessions: new Set() };
          stripes.set(stripe.id, group);
          group.writers[stripe.index] = writer;
          group.sessions.add((call as unknown as { call?: { stream?: { session?: unknown } } }).call?.stream?.session);
          if (group.writers.filter(Boolean).length < stripe.count) return;
          stripes.delete(stripe.id);
          if (group.sessions.size !== stripe.count) process.stderr.write(`transport peer: ${stripe.count} stripes share ${group.sessions.size} HTTP/2 session(s)\n`);
          // The header on the first stream, chunk k on stream k mod N: the same messages, dealt.
          let messages = 0;
          broadcast.sendTo({ send: (message) => group.writers[messages++ === 0 ? 0 : (messages - 2) % stripe.count]!.write(message) });
        } else if (m.kind === 'hello' && m.hello!.name === 'broadcast') broadcast.sendTo({ send: (message) => writer.write(message) });
        else if (m.kind === 'unitResult') assembler = new TransferAssembler(m.unitResult!.transferId, float32Bytes(sink));
        else if (m.kind === 'chunk' && assembler!.accept(m.chunk!)) void writer.write({ assign: { units: [] } });
      });
      call.on('end', () => call.end());
      call.on('error', () => undefined);
    },
  });
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
}

const mib = Number(process.argv[2] ?? 256);
const [tcp, grpcPort] = await Promise.all([serveTcp(), serveGrpc(mib)]);
process.stdout.write(JSON.stringify({ tcp, grpc: grpcPort }) + '\n');
// Each line on stdin asks for this process's CPU time so far (µs, user + system), one line back.
createInterface({ input: process.stdin }).on('line', () => {
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({ cpuUs: cpu.user + cpu.system }) + '\n');
});
process.stdin.on('end', () => process.exit(0));
