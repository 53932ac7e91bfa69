// The coordinator's HTTP/2 receive settings for gradient uploads (SERVER_HTTP2_SETTINGS) reach
// the real session: grpc-js exposes no option for them on the server, so they go through
// fields it does not export. This test fails when a grpc-js upgrade moves those fields.
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import type http2 from 'node:http2';
import { describe, it } from 'node:test';
import type { WorkerMessage__Output } from '../../proto/generated/mtl/v1/WorkerMessage.js';
import { OrderedWriter } from '../../common/ordered-writer.js';
import {
  chunkViews,
  createTunedServer,
  protocol,
  SERVER_HTTP2_SETTINGS,
  serverServiceDefinition,
  widenConnectionWindow,
  WORKER_CHANNEL_OPTIONS,
  type OutgoingCoordinatorMessage,
} from '../../common/protocol.js';
import type { WorkerMessage } from '../../proto/generated/mtl/v1/WorkerMessage.js';

void describe('HTTP/2 tuning of the coordinator server', () => {
  void it('advertises the larger window and frame size, widens the connection window, and uploads arrive whole', async () => {
    const { server, tuned } = createTunedServer();
    assert.ok(tuned, 'createTunedServer could not reach the http2 server options');
    let seen: { widened: boolean; local?: http2.Settings; window?: number } | undefined;
    let bytes = 0;
    let received!: () => void;
    const allReceived = new Promise<void>((resolve) => (received = resolve));
    const total = 8 << 20;
    server.addService(serverServiceDefinition(), {
      Connect: (call: grpc.ServerDuplexStream<WorkerMessage__Output, OutgoingCoordinatorMessage>) => {
        const widened = widenConnectionWindow(call);
        const session = (call as unknown as { call: { stream: { session: http2.Http2Session } } }).call.stream.session;
        seen = { widened, local: session.localSettings, window: session.state.localWindowSize };
        assert.equal(widenConnectionWindow(call), true, 'a second call changes nothing and still succeeds');
        call.on('data', (m: WorkerMessage__Output) => {
          if (m.kind === 'chunk') bytes += m.chunk!.data.byteLength;
          if (bytes === total) received();
        });
        call.on('end', () => call.end());
        call.on('error', () => undefined);
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    const Coordinator = protocol().mtl.v1.Coordinator;
    const client = new Coordinator(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), WORKER_CHANNEL_OPTIONS);
    try {
      const call = client.Connect();
      call.on('error', () => undefined);
      const writer = new OrderedWriter<WorkerMessage>(call);
      const payload = new Uint8Array(total).fill(5);
      let offset = 0;
      for (const data of chunkViews(payload)) {
        void writer.write({ chunk: { transferId: 1, offset, data } });
        offset += data.byteLength;
      }
      await allReceived;
      assert.ok(seen, 'the handler ran');
      assert.equal(seen.widened, true);
      assert.equal(seen.local?.initialWindowSize, SERVER_HTTP2_SETTINGS.initialWindowSize);
      assert.equal(seen.local?.maxFrameSize, SERVER_HTTP2_SETTINGS.maxFrameSize);
      assert.ok((seen.window ?? 0) >= SERVER_HTTP2_SETTINGS.initialWindowSize, `connection window ${seen.window}`);
      assert.equal(bytes, total);
      call.end();
    } finally {
      client.close();
      server.forceShutdown();
    }
  });

  void it('reports false, without throwing, for a call whose session it cannot find', () => {
    assert.equal(widenConnectionWindow({}), false);
    assert.equal(widenConnectionWindow({ call: { stream: {} } }), false);
  });
});
