// W simulated workers in one process, for `npm run bench -- scale` and `scale-sim`: real mtl.v1
// gRPC clients that receive every weights transfer in full and answer each assigned unit with a
// precomputed gradient, at once or after a fixed sleep per train unit (compute that takes time
// but no CPU), so the coordinator's own costs show. As a real worker does, a unit starts when its
// version's weights header is in, and its forward pass (the first third of the sleep) cannot end
// before the version's last byte; its backward (the other two thirds: backward ≈ 2 × forward)
// sends the gradient in buckets of `bucketBytes`, last values first, evenly over that time.
// `node dist/bench/simulated-workers.js ADDRESS W SHAPE_JSON` (SHAPE_JSON: see UnitShapes);
// exits when every session has ended, printing one JSON line: the train units each worker
// computed per step ({ step: { worker: units } }), the ideal step time's input.
import * as grpc from '@grpc/grpc-js';
import type { CoordinatorMessage__Output } from '../proto/generated/mtl/v1/CoordinatorMessage.js';
import type { Unit__Output } from '../proto/generated/mtl/v1/Unit.js';
import type { WorkerMessage } from '../proto/generated/mtl/v1/WorkerMessage.js';
import { partRange } from '../common/datasets/sampler.js';
import { OrderedWriter } from '../common/ordered-writer.js';
import { chunkViews, float32Bytes, protocol, PROTOCOL_VERSION, WORKER_CHANNEL_OPTIONS } from '../common/protocol.js';
import { bucketSchedule } from './scale-model.js';

/** What the coordinator checks in a result: gradient floats per task, examples per train unit, held-out examples per task. */
export interface UnitShapes {
  gradientFloats: Record<string, number>;
  trainSamples: number;
  testSize: number;
  /** Sleep per train unit, in ms (0: answer at once). */
  sleepMs?: number;
  /** The job's transport.bucketBytes (0: the gradient goes whole, after the sleep). */
  bucketBytes?: number;
}

/** Train units computed, { step: { worker: units } }. */
const computed: Record<string, Record<string, number>> = {};

type ConnectStream = grpc.ClientDuplexStream<WorkerMessage, CoordinatorMessage__Output>;

class SimulatedWorker {
  private weightsVersion = -1;
  private incoming: { version: number; bytes: number; received: number; arrived: () => void } | undefined;
  /** Resolves when the current version's last byte is in. */
  private whole: Promise<void> = Promise.resolve();
  private queue: Unit__Output[] = [];
  private computing = false;
  /** Ids cancelled by the coordinator; the unit being slept on is dropped when it wakes. */
  private readonly cancelled = new Set<string>();
  private transfer = 0;
  private readonly writer: OrderedWriter<WorkerMessage>;
  private readonly heartbeat: NodeJS.Timeout;
  readonly done: Promise<void>;

  constructor(client: grpc.Client, private readonly name: string, private readonly grads: ReadonlyMap<string, Uint8Array>, private readonly shapes: UnitShapes) {
    const call = (client as unknown as { Connect(): ConnectStream }).Connect();
    this.writer = new OrderedWriter(call);
    this.done = new Promise((resolve) => {
      call.on('end', resolve);
      call.on('error', () => resolve());
    });
    void this.done.then(() => clearInterval(this.heartbeat));
    call.on('data', (m: CoordinatorMessage__Output) => this.onMessage(m, call));
    this.heartbeat = setInterval(() => void this.writer.write({ heartbeat: { sentAtMs: Date.now() } }).catch(() => undefined), 1000);
    void this.writer.write({ hello: { name, protocolVersion: PROTOCOL_VERSION, backend: 'simulated', device: 'cpu', capacity: 1, token: '' } });
  }

  private onMessage(m: CoordinatorMessage__Output, call: ConnectStream): void {
    switch (m.kind) {
      case 'weights': {
        let arrived!: () => void;
        this.whole = new Promise((resolve) => (arrived = resolve));
        this.incoming = { version: m.weights!.version, bytes: m.weights!.byteLength, received: 0, arrived };
        this.weightsVersion = m.weights!.version;
        void this.pump();
        break;
      }
      case 'chunk': {
        // The bytes are read (parsed by grpc-js) but not kept: a real worker would copy them into its parameters.
        const incoming = this.incoming!;
        incoming.received += m.chunk!.data.byteLength;
        if (incoming.received === incoming.bytes) {
          this.incoming = undefined;
          incoming.arrived();
        }
        break;
      }
      case 'assign':
        this.queue.push(...m.assign!.units);
        void this.pump();
        break;
      case 'cancel': {
        const ids = new Set(m.cancel!.unitIds);
        this.queue = this.queue.filter((u) => !ids.has(u.unitId));
        for (const id of ids) this.cancelled.add(id);
        break;
      }
      case 'shutdown':
        call.end();
        break;
      default:
        break;
    }
  }

  /** Answers the queued units of the current weights version in order, one at a time, as a capacity-1 worker computes them. */
  private async pump(): Promise<void> {
    if (this.computing) return;
    this.computing = true;
    try {
      while (this.queue.length > 0 && this.queue[0]!.weightsVersion <= this.weightsVersion) {
        const unit = this.queue.shift()!;
        if (unit.weightsVersion < this.weightsVersion) continue;
        const sleepMs = unit.kind === 'UNIT_KIND_TRAIN' ? (this.shapes.sleepMs ?? 0) : 0;
        const start = performance.now();
        if (sleepMs > 0) await sleepUntil(start + sleepMs / 3);
        // Its last layers need the last weights.
        await this.whole;
        // Cancelled while "computing": a real worker drops the result too.
        if (this.cancelled.delete(unit.unitId)) continue;
        await this.answer(unit, sleepMs, start);
      }
    } finally {
      this.computing = false;
    }
  }

  private answer(unit: Unit__Output, computeMs: number, start: number): Promise<void> {
    const base = { unitId: unit.unitId, kind: unit.kind, step: unit.step, task: unit.task, shard: unit.shard, weightsVersion: unit.weightsVersion, computeMs: Math.max(1, computeMs), metrics: {}, loss: 0.5 };
    if (unit.kind !== 'UNIT_KIND_TRAIN') {
      const [from, to] = partRange(this.shapes.testSize, unit.shardCount, unit.shard);
      void this.writer.write({ unitResult: { ...base, sampleCount: to - from, byteLength: 0, transferId: 0 } }).catch(() => undefined);
      return Promise.resolve();
    }
    const perWorker = (computed[String(unit.step)] ??= {});
    perWorker[this.name] = (perWorker[this.name] ?? 0) + 1;
    const bytes = this.grads.get(unit.task)!;
    const transferId = ++this.transfer;
    // Protocol 3: the header once the loss is known (after the forward pass), with no times.
    void this.writer.write({ unitResult: { ...base, computeMs: 0, sampleCount: this.shapes.trainSamples, byteLength: bytes.byteLength, transferId } }).catch(() => undefined);
    return this.streamBuckets(bytes, transferId, computeMs, start).then(() => {
      // The timings come last, once every byte is sent.
      void this.writer.write({ resultEnd: { transferId, computeMs: base.computeMs, busyMs: base.computeMs } }).catch(() => undefined);
    });
  }

  /** The backward pass: the gradient's buckets, each sent when its share of the time is over (bucketSchedule). */
  private async streamBuckets(bytes: Uint8Array, transferId: number, computeMs: number, start: number): Promise<void> {
    for (const { from, to, at } of bucketSchedule(bytes.byteLength, this.shapes.bucketBytes ?? 0, computeMs)) {
      await sleepUntil(start + at);
      let offset = from;
      for (const data of chunkViews(bytes.subarray(from, to))) {
        void this.writer.write({ chunk: { transferId, offset, data } }).catch(() => undefined);
        offset += data.byteLength;
      }
    }
  }
}

/** Sleeps until performance.now() reaches `deadline` (deadlines, not durations: timer lateness does not add up). */
function sleepUntil(deadline: number): Promise<void> {
  const ms = deadline - performance.now();
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

const [address, count, shapesJson] = process.argv.slice(2) as [string, string, string];
const shapes = JSON.parse(shapesJson) as UnitShapes;
// Small finite values: the coordinator checks every gradient for non-finite entries.
const grads = new Map(Object.entries(shapes.gradientFloats).map(([task, n]) => [task, float32Bytes(new Float32Array(n).fill(1e-3))]));
const Coordinator = protocol().mtl.v1.Coordinator;
const workers = Array.from({ length: Number(count) }, (_, i) => {
  // One channel per worker, as separate worker processes would have.
  const client = new Coordinator(address, grpc.credentials.createInsecure(), { ...WORKER_CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 });
  return { client, worker: new SimulatedWorker(client, `sim-${i}`, grads, shapes) };
});
await Promise.all(workers.map((w) => w.worker.done));
for (const w of workers) w.client.close();
process.stdout.write(JSON.stringify(computed) + '\n');
