// The client side of the striped broadcast in `npm run bench -- transport`: one weights
// transfer over N Connect streams on N separate channels (N TCP connections, one HTTP/2
// session each), chunks dealt round-robin by the peer and placed by offset here. It measures
// whether several connections per worker would raise broadcast throughput; the product sends
// on one connection.
import * as grpc from '@grpc/grpc-js';
import type { CoordinatorMessage__Output } from '../proto/generated/mtl/v1/CoordinatorMessage.js';
import type { WorkerMessage } from '../proto/generated/mtl/v1/WorkerMessage.js';
import { float32Bytes, protocol, PROTOCOL_VERSION, WORKER_CHANNEL_OPTIONS } from '../common/protocol.js';

type ConnectStream = grpc.ClientDuplexStream<WorkerMessage, CoordinatorMessage__Output>;

/** Hello name of stripe `index` of `count` of run `id`: the peer groups the streams by it. */
export function stripeName(count: number, index: number, id: number): string {
  return `broadcast:${count}:${index}:${id}`;
}

export function parseStripeName(name: string): { count: number; index: number; id: string } | undefined {
  const m = /^broadcast:(\d+):(\d+):(\d+)$/.exec(name);
  if (!m) return undefined;
  const count = Number(m[1]);
  const index = Number(m[2]);
  return count >= 1 && index < count ? { count, index, id: m[3]! } : undefined;
}

/** ms from the first Hello to the last byte of the transfer, over `count` connections. */
export async function stripedBroadcastRun(port: number, count: number, dest: Float32Array, id: number): Promise<number> {
  const Coordinator = protocol().mtl.v1.Coordinator;
  // A local subchannel pool per client: without it grpc-js shares one connection among channels to the same address.
  const clients = Array.from({ length: count }, () => new Coordinator(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { ...WORKER_CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 }));
  try {
    await Promise.all(clients.map((c) => new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 10_000, (e) => (e ? reject(e) : resolve())))));
    const bytes = float32Bytes(dest);
    let received = 0;
    const calls: ConnectStream[] = [];
    const t0 = performance.now();
    const ms = await new Promise<number>((resolve, reject) => {
      clients.forEach((client, index) => {
        const call = (client as unknown as { Connect(): ConnectStream }).Connect();
        calls.push(call);
        call.on('error', reject);
        call.on('data', (m: CoordinatorMessage__Output) => {
          if (m.kind !== 'chunk') return;
          const { offset, data } = m.chunk!;
          if (offset + data.byteLength > bytes.byteLength) return reject(new RangeError(`chunk at ${offset} overruns the ${bytes.byteLength}-byte transfer`));
          bytes.set(data, offset);
          received += data.byteLength;
          if (received === bytes.byteLength) resolve(performance.now() - t0);
        });
        call.write({ hello: { name: stripeName(count, index, id), protocolVersion: PROTOCOL_VERSION, backend: 'bench', device: 'cpu', capacity: 1, token: '' } });
      });
    });
    for (const call of calls) call.end();
    return ms;
  } finally {
    for (const c of clients) c.close();
  }
}
