// Transport efficiency: gradient upload (client → server) and weight broadcast (server →
// client) over the mtl.v1 Connect stream between two processes on loopback, ÷ raw TCP
// throughput between the same two processes, measured alternately in the same run.
// The gRPC side uses the product's pieces: CHANNEL_OPTIONS (WORKER_CHANNEL_OPTIONS for the worker's end), 1 MiB TensorChunks, OrderedWriter
// backpressure, TransferAssembler on the receiving end, WeightsBroadcast's encoding.
// Goal (issue 7): ≥ 0.5 both ways.
import * as grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { CoordinatorMessage__Output } from '../proto/generated/mtl/v1/CoordinatorMessage.js';
import type { WorkerMessage } from '../proto/generated/mtl/v1/WorkerMessage.js';
import { OrderedWriter } from '../common/ordered-writer.js';
import { chunkViews, float32Bytes, protocol, PROTOCOL_VERSION, WORKER_CHANNEL_OPTIONS } from '../common/protocol.js';
import { TransferAssembler } from '../common/transfer-assembler.js';
import { option, type Bench } from './bench-types.js';

const GOAL = 0.5;
const MIB = 1 << 20;

type Direction = 'upload' | 'broadcast';

function tcpRun(port: number, direction: Direction, mib: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    const bytes = mib * MIB;
    let t0 = 0;
    let received = 0;
    socket.on('error', reject);
    socket.on('connect', () => {
      const header = Buffer.alloc(8);
      header.writeUInt32LE(direction === 'upload' ? 0 : 1, 0);
      header.writeUInt32LE(mib, 4);
      t0 = performance.now();
      socket.write(header);
      if (direction === 'upload') void (async () => {
        const block = Buffer.alloc(MIB, 3);
        for (let sent = 0; sent < bytes; sent += MIB) {
          if (!socket.write(block)) await new Promise((r) => socket.once('drain', r));
        }
      })();
    });
    socket.on('data', (data: Buffer) => {
      received += data.length;
      if ((direction === 'upload' && received >= 1) || received === bytes) {
        const ms = performance.now() - t0;
        socket.destroy();
        resolve(ms);
      }
    });
  });
}

type ConnectStream = grpc.ClientDuplexStream<WorkerMessage, CoordinatorMessage__Output>;

/**
 * `dest` is where a broadcast lands: allocated once by the caller and reused, as a worker
 * reuses its parameter buffer for every weights version (a fresh 256 MiB buffer per run would
 * time the first-touch page faults of its memory, not the transport: measured, they made the
 * assembler's copies run at ~0.7 GB/s).
 */
async function grpcRun(port: number, direction: Direction, payload: Float32Array, dest: Float32Array): Promise<number> {
  const Coordinator = protocol().mtl.v1.Coordinator;
  const client = new Coordinator(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), WORKER_CHANNEL_OPTIONS);
  try {
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (e) => (e ? reject(e) : resolve())));
    const call = (client as unknown as { Connect(): ConnectStream }).Connect();
    const writer = new OrderedWriter<WorkerMessage>(call);
    let assembler: TransferAssembler | undefined;
    const t0 = performance.now();
    const done = new Promise<number>((resolve, reject) => {
      call.on('error', reject);
      call.on('data', (m: CoordinatorMessage__Output) => {
        if (m.kind === 'assign') resolve(performance.now() - t0);
        else if (m.kind === 'weights') assembler = new TransferAssembler(m.weights!.transferId, float32Bytes(dest));
        else if (m.kind === 'chunk' && assembler!.accept(m.chunk!)) resolve(performance.now() - t0);
      });
    });
    void writer.write({ hello: { name: direction, protocolVersion: PROTOCOL_VERSION, backend: 'bench', device: 'cpu', capacity: 1, token: '' } });
    if (direction === 'upload') {
      // As a worker sends a result: header, then the payload's 1 MiB views, all queued at once.
      const bytes = float32Bytes(payload);
      void writer.write({ unitResult: { unitId: 'u', kind: 'UNIT_KIND_TRAIN', step: 0, task: 't', shard: 0, weightsVersion: 0, transferId: 1, sampleCount: 1, loss: 0, metrics: {}, byteLength: bytes.byteLength, computeMs: 0 } });
      let offset = 0;
      for (const data of chunkViews(bytes)) {
        void writer.write({ chunk: { transferId: 1, offset, data } });
        offset += data.byteLength;
      }
      void writer.write({ resultEnd: { transferId: 1, computeMs: 0, busyMs: 0 } });
    }
    const ms = await done;
    call.end();
    return ms;
  } finally {
    client.close();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export const transportBench: Bench = {
  name: 'transport',
  description: 'gRPC upload and broadcast throughput between two processes ÷ raw TCP throughput, same run',
  async run(args, progress) {
    const quick = args.includes('--quick');
    const mib = Number(option(args, 'mib') ?? (quick ? 64 : 256));
    const reps = quick ? 2 : 3;
    const peerScript = fileURLToPath(new URL('./transport-peer.js', import.meta.url));
    const peer = spawn(process.execPath, [peerScript, String(mib)], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: peer.stdout }).once('line', resolve);
        peer.once('exit', (code) => reject(new Error(`transport peer exited with ${code}`)));
      });
      const ports = JSON.parse(line) as { tcp: number; grpc: number };
      const payload = new Float32Array((mib * MIB) / 4).fill(0.25);
      const dest = new Float32Array((mib * MIB) / 4);
      const times: Record<string, number[]> = {};
      const record = (k: string, ms: number) => (times[k] ??= []).push(ms);
      // One warm-up of each, then alternate, so drifting load hits both sides alike.
      for (let rep = -1; rep < reps; rep++) {
        for (const direction of ['upload', 'broadcast'] as const) {
          const tcpMs = await tcpRun(ports.tcp, direction, mib);
          const grpcMs = await grpcRun(ports.grpc, direction, payload, dest);
          if (rep < 0) continue;
          record(`tcp-${direction}`, tcpMs);
          record(`grpc-${direction}`, grpcMs);
          progress(`transport: ${direction} ${mib} MiB: tcp ${((mib * MIB) / tcpMs / 1e3).toFixed(0)} MB/s, grpc ${((mib * MIB) / grpcMs / 1e3).toFixed(0)} MB/s`);
        }
      }
      const mbps = (k: string) => (mib * MIB) / median(times[k]!) / 1e3;
      const results = (['upload', 'broadcast'] as const).map((direction) => {
        const tcp = mbps(`tcp-${direction}`);
        const g = mbps(`grpc-${direction}`);
        return { direction, mib, tcpMBps: tcp, grpcMBps: g, ratio: g / tcp };
      });
      const text = [
        `transport: ${mib} MiB per measurement between two processes on loopback, median of ${reps}, tcp and gRPC alternating`,
        '',
        '| direction | raw TCP (MB/s) | gRPC mtl.v1 (MB/s) | gRPC ÷ TCP |',
        '|---|---|---|---|',
        ...results.map((r) => `| ${r.direction} | ${r.tcpMBps.toFixed(0)} | ${r.grpcMBps.toFixed(0)} | ${r.ratio.toFixed(3)} |`),
        '',
        ...results.map((r) => `goal (≥ ${GOAL}): ${r.direction} ${r.ratio >= GOAL ? 'met' : 'not met'} (${r.ratio.toFixed(3)})`),
      ].join('\n');
      return { text, json: { results, goal: GOAL } };
    } finally {
      peer.stdin.end();
      peer.kill();
    }
  },
};
