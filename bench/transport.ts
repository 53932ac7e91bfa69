// Transport efficiency: gradient upload (client → server) and weight broadcast (server →
// client) over the mtl.v1 Connect stream between two processes on loopback, ÷ raw TCP
// throughput between the same two processes, measured alternately in the same run.
// The gRPC side uses the product's pieces: CHANNEL_OPTIONS (WORKER_CHANNEL_OPTIONS for the worker's end), 1 MiB TensorChunks, OrderedWriter
// backpressure, TransferAssembler on the receiving end, WeightsBroadcast's encoding.
// The broadcast is also dealt over N connections (bench/transport-striped.ts), side by side.
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
import { stripedBroadcastRun } from './transport-striped.js';

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

interface Measured {
  ms: number[];
  /** CPU time per MiB, ms: this process (the receiver of a broadcast, the sender of an upload) and the peer. */
  localCpu: number[];
  peerCpu: number[];
}

/** A variant's median throughput, its ratio to raw TCP's, and the two processes' CPU per MiB. */
interface VariantResult {
  variant: string;
  direction: Direction;
  connections: number;
  MBps: number;
  ratio: number;
  senderCpuMsPerMiB: number;
  receiverCpuMsPerMiB: number;
}

export const transportBench: Bench = {
  name: 'transport',
  description: 'gRPC upload and broadcast throughput (broadcast over 1 and N connections) between two processes ÷ raw TCP throughput, same run',
  async run(args, progress) {
    const quick = args.includes('--quick');
    const mib = Number(option(args, 'mib') ?? (quick ? 64 : 256));
    const reps = quick ? 2 : 3;
    const connections = (option(args, 'connections') ?? '2,4').split(',').map(Number).filter((n) => n > 1);
    const peerScript = fileURLToPath(new URL('./transport-peer.js', import.meta.url));
    const peer = spawn(process.execPath, [peerScript, String(mib)], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const lines = createInterface({ input: peer.stdout });
      const exited = new Promise<never>((_, reject) => peer.once('exit', (code) => reject(new Error(`transport peer exited with ${code}`))));
      exited.catch(() => undefined);
      const nextLine = () => Promise.race([new Promise<string>((resolve) => lines.once('line', resolve)), exited]);
      const peerCpuMs = async () => {
        const answer = nextLine();
        peer.stdin.write('cpu\n');
        return (JSON.parse(await answer) as { cpuUs: number }).cpuUs / 1000;
      };
      const ports = JSON.parse(await nextLine()) as { tcp: number; grpc: number };
      const payload = new Float32Array((mib * MIB) / 4).fill(0.25);
      const dest = new Float32Array((mib * MIB) / 4);
      const measured = new Map<string, Measured>();
      let runId = 0;
      const measure = async (key: string, warmup: boolean, fn: () => Promise<number>) => {
        const peerBefore = await peerCpuMs();
        const before = process.cpuUsage();
        const ms = await fn();
        const cpu = process.cpuUsage(before);
        const peerMs = (await peerCpuMs()) - peerBefore;
        if (warmup) return ms;
        const m = measured.get(key) ?? { ms: [], localCpu: [], peerCpu: [] };
        measured.set(key, m);
        m.ms.push(ms);
        m.localCpu.push((cpu.user + cpu.system) / 1000 / mib);
        m.peerCpu.push(peerMs / mib);
        return ms;
      };
      const rate = (ms: number) => ((mib * MIB) / ms / 1e3).toFixed(0);
      // One warm-up of each, then alternate, so drifting load hits every variant alike.
      for (let rep = -1; rep < reps; rep++) {
        const warmup = rep < 0;
        for (const direction of ['upload', 'broadcast'] as const) {
          const tcpMs = await measure(`tcp-${direction}`, warmup, () => tcpRun(ports.tcp, direction, mib));
          const grpcMs = await measure(`grpc-${direction}`, warmup, () => grpcRun(ports.grpc, direction, payload, dest));
          const striped: string[] = [];
          if (direction === 'broadcast') {
            for (const n of connections) striped.push(`×${n} ${rate(await measure(`grpc-broadcast-x${n}`, warmup, () => stripedBroadcastRun(ports.grpc, n, dest, ++runId)))}`);
          }
          if (!warmup) progress(`transport: ${direction} ${mib} MiB: tcp ${rate(tcpMs)} MB/s, grpc ${rate(grpcMs)} MB/s${striped.length > 0 ? ` (${striped.join(', ')})` : ''}`);
        }
      }
      const variant = (key: string, tcpKey: string, direction: Direction, n: number): VariantResult => {
        const m = measured.get(key)!;
        const MBps = (mib * MIB) / median(m.ms) / 1e3;
        const tcp = (mib * MIB) / median(measured.get(tcpKey)!.ms) / 1e3;
        // This process receives a broadcast and sends an upload.
        const [sender, receiver] = direction === 'broadcast' ? [m.peerCpu, m.localCpu] : [m.localCpu, m.peerCpu];
        return { variant: key, direction, connections: n, MBps, ratio: MBps / tcp, senderCpuMsPerMiB: median(sender), receiverCpuMsPerMiB: median(receiver) };
      };
      const rows = [
        variant('tcp-upload', 'tcp-upload', 'upload', 1),
        variant('grpc-upload', 'tcp-upload', 'upload', 1),
        variant('tcp-broadcast', 'tcp-broadcast', 'broadcast', 1),
        variant('grpc-broadcast', 'tcp-broadcast', 'broadcast', 1),
        ...connections.map((n) => variant(`grpc-broadcast-x${n}`, 'tcp-broadcast', 'broadcast', n)),
      ];
      const results = (['upload', 'broadcast'] as const).map((direction) => {
        const g = rows.find((r) => r.variant === `grpc-${direction}`)!;
        const tcp = rows.find((r) => r.variant === `tcp-${direction}`)!;
        return { direction, mib, tcpMBps: tcp.MBps, grpcMBps: g.MBps, ratio: g.ratio };
      });
      const text = [
        `transport: ${mib} MiB per measurement between two processes on loopback, median of ${reps}, all variants alternating; ×N = one broadcast dealt over N connections (bench/transport-striped.ts)`,
        '',
        '| variant | connections | MB/s | ÷ raw TCP | sender CPU (ms/MiB) | receiver CPU (ms/MiB) |',
        '|---|---|---|---|---|---|',
        ...rows.map((r) => `| ${r.variant} | ${r.connections} | ${r.MBps.toFixed(0)} | ${r.ratio.toFixed(3)} | ${r.senderCpuMsPerMiB.toFixed(2)} | ${r.receiverCpuMsPerMiB.toFixed(2)} |`),
        '',
        'CPU = user + system time of each process over the measurement ÷ MiB moved: on an idle machine with a core per process, the busier side bounds the throughput at 1 MiB ÷ its CPU per MiB.',
        ...results.map((r) => `goal (≥ ${GOAL}): ${r.direction} ${r.ratio >= GOAL ? 'met' : 'not met'} (${r.ratio.toFixed(3)})`),
      ].join('\n');
      return { text, json: { results, variants: rows, goal: GOAL } };
    } finally {
      peer.stdin.end();
      peer.kill();
    }
  },
};
