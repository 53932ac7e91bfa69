import * as grpc from '@grpc/grpc-js';
import { OrderedWriter } from '/work/wt-wire/dist/common/ordered-writer.js';
import { createTunedServer, float32Bytes, encodeCoordinatorMessage, chunkViews, serverServiceDefinition, widenConnectionWindow } from '/work/wt-wire/dist/common/protocol.js';
const MIB = 1 << 20;
const mib = Number(process.argv[2] ?? 256);
const params = new Float32Array((mib * MIB) / 4).fill(0.5);
const chunks = []; let offset = 0;
for (const data of chunkViews(float32Bytes(params))) { chunks.push(encodeCoordinatorMessage({ chunk: { transferId: 2, offset, data } })); offset += data.byteLength; }
const { server } = createTunedServer();
server.addService(serverServiceDefinition(), {
  Connect: (call) => {
    widenConnectionWindow(call);
    const writer = new OrderedWriter(call);
    call.on('data', (m) => {
      if (m.kind !== 'hello') return;
      const [, n, i] = m.hello.name.split(':').map(Number);
      for (let j = i; j < chunks.length; j += n) writer.write(chunks[j]).catch(() => undefined);
    });
    call.on('end', () => call.end());
    call.on('error', () => undefined);
  },
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => process.stdout.write(JSON.stringify({ grpc: port }) + '\n'));
process.on('SIGINT', () => process.exit(0));
