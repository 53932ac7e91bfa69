// The weights broadcast over real sockets: encoded once, framed once (sendPreFramed), the same
// buffers written to every worker's stream; each worker assembles the exact bytes, messages
// that are not pre-encoded still go through grpc-js's own framing, and the byte counters see
// every message. Fails when a grpc-js upgrade moves the method sendPreFramed wraps.
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CoordinatorMessage__Output } from '../../proto/generated/mtl/v1/CoordinatorMessage.js';
import type { WorkerMessage__Output } from '../../proto/generated/mtl/v1/WorkerMessage.js';
import type { ParameterLayout } from '../../common/parameter-layout.js';
import { OrderedWriter } from '../../common/ordered-writer.js';
import { createTunedServer, encodeCoordinatorMessage, float32Bytes, PreEncodedMessage, protocol, PROTOCOL_VERSION, sendPreFramed, serverServiceDefinition, WORKER_CHANNEL_OPTIONS, type OutgoingCoordinatorMessage } from '../../common/protocol.js';
import { TransferAssembler } from '../../common/transfer-assembler.js';
import { WeightsBroadcast } from '../../coordinator/weights-broadcast.js';

void describe('weights broadcast framing', () => {
  void it('delivers the same bytes to every worker over real sockets, then ordinary messages', async () => {
    const { server } = createTunedServer();
    // 3 MiB and a bit: three full chunks and a short one.
    const params = Float32Array.from({ length: (3 << 18) + 123 }, (_, i) => Math.sin(i) * 1e3);
    const broadcast = new WeightsBroadcast({ tensors: [{}] } as unknown as ParameterLayout, 1 << 20);
    broadcast.update(params, 7);
    let sent = 0;
    let framing: { installed: boolean; serializeMessage?: (this: unknown, v: unknown) => Buffer } | undefined;
    server.addService(serverServiceDefinition({ sent: (n) => (sent += n), received: () => undefined }), {
      Connect: (call: grpc.ServerDuplexStream<WorkerMessage__Output, OutgoingCoordinatorMessage>) => {
        framing = { installed: sendPreFramed(call), serializeMessage: (Object.getPrototypeOf((call as unknown as { call: object }).call) as { serializeMessage?: (this: unknown, v: unknown) => Buffer }).serializeMessage };
        assert.equal(sendPreFramed(call), true, 'a second call changes nothing and still succeeds');
        const writer = new OrderedWriter(call);
        call.on('data', (m: WorkerMessage__Output) => {
          if (m.kind !== 'hello') return;
          broadcast.sendTo({ send: (message) => writer.write(message) });
          void writer.write({ assign: { units: [] } }).catch(() => undefined);
        });
        call.on('end', () => call.end());
        call.on('error', () => undefined);
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    const Coordinator = protocol().mtl.v1.Coordinator;
    const clients = [0, 1].map(() => new Coordinator(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { ...WORKER_CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 }));
    try {
      const received = await Promise.all(
        clients.map(
          (client, i) =>
            new Promise<{ version: number; dest: Float32Array }>((resolve, reject) => {
              const call = client.Connect();
              const dest = new Float32Array(params.length);
              let assembler: TransferAssembler | undefined;
              let version = -1;
              call.on('error', reject);
              call.on('data', (m: CoordinatorMessage__Output) => {
                if (m.kind === 'weights') {
                  version = m.weights!.version;
                  assembler = new TransferAssembler(m.weights!.transferId, float32Bytes(dest));
                } else if (m.kind === 'chunk') assembler!.accept(m.chunk!);
                else if (m.kind === 'assign') {
                  assert.ok(assembler?.complete, 'the weights arrive whole before the next message');
                  call.end();
                  resolve({ version, dest });
                }
              });
              call.write({ hello: { name: `w${i}`, protocolVersion: PROTOCOL_VERSION, backend: 'test', device: 'cpu', capacity: 1, token: '' } });
            }),
        ),
      );
      for (const r of received) {
        assert.equal(r.version, 7);
        assert.ok(Buffer.from(float32Bytes(r.dest)).equals(Buffer.from(float32Bytes(params))), 'bitwise the broadcast weights');
      }
      assert.equal(framing?.installed, true, 'sendPreFramed could not reach grpc-js serializeMessage');
      // The wrapper, called as grpc-js calls it: the pre-framed buffer itself; anything else framed anew.
      const m = encodeCoordinatorMessage({ assign: { units: [] } });
      let serialized = 0;
      const fake = { handler: { serialize: (v: unknown) => (serialized++, v instanceof PreEncodedMessage ? v.bytes : Buffer.from([1, 2, 3])) } };
      const serializeMessage = framing.serializeMessage!;
      assert.equal(serializeMessage.call(fake, m), m.framed, 'the same buffer, not a copy');
      assert.equal(serialized, 1, 'the serializer still runs (byte counters)');
      assert.deepEqual([...m.framed.subarray(0, 5)], [0, 0, 0, 0, m.bytes.byteLength]);
      assert.deepEqual([...serializeMessage.call(fake, { other: true })], [0, 0, 0, 0, 3, 1, 2, 3]);
      const assignBytes = encodeCoordinatorMessage({ assign: { units: [] } }).bytes.byteLength;
      // Header + 4 chunks (each a few bytes over its payload) and one Assign per worker.
      assert.ok(sent > 2 * params.byteLength && sent < 2 * (params.byteLength + 5 * 64 + assignBytes), `counted ${sent} bytes sent`);
    } finally {
      for (const c of clients) c.close();
      server.forceShutdown();
    }
  });
});
