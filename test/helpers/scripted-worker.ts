// A worker whose wire behaviour a test scripts: it speaks mtl.v1 over real gRPC and computes
// honest results with the real compute code (in this process, on the current tfjs backend),
// but a `tamper` hook may send anything before each honest result. Used to check that the
// coordinator rejects and counts bad messages without applying them.
import * as grpc from '@grpc/grpc-js';
import type { CoordinatorMessage__Output } from '../../proto/generated/mtl/v1/CoordinatorMessage.js';
import type { Unit__Output } from '../../proto/generated/mtl/v1/Unit.js';
import type { WorkerMessage } from '../../proto/generated/mtl/v1/WorkerMessage.js';
import { bindTasks } from '../../common/datasets/index.js';
import { validateJob } from '../../common/job-spec.js';
import { OrderedWriter } from '../../common/ordered-writer.js';
import { buildLayout } from '../../common/parameter-layout.js';
import { bytesPerValue, decodeHalf, encodeHalf, uint16Bytes, type Compression } from '../../common/half-precision.js';
import { CHANNEL_OPTIONS, chunkViews, float32Bytes, protocol, PROTOCOL_VERSION } from '../../common/protocol.js';
import { TransferAssembler } from '../../common/transfer-assembler.js';
import { opsModeFor } from '../../worker/layer-ops.js';
import { ModelRunner } from '../../worker/model-runner.js';
import { UnitComputer } from '../../worker/unit-compute.js';
import * as tf from '@tensorflow/tfjs';

export interface HonestResult {
  header: NonNullable<WorkerMessage['unitResult']>;
  payload: Float32Array | null;
}

export interface ScriptContext {
  /** Sends one raw message on the stream. */
  send(message: WorkerMessage): Promise<void>;
  /** Sends a result header and its payload in 1 MiB chunks. */
  sendResult(result: HonestResult): Promise<void>;
  weightsVersion: number;
  /** Resolves once weights newer than `version` have arrived (the step of `version` is over). */
  weightsAfter(version: number): Promise<void>;
}

/** Called with each assigned unit and its honest result; returns whether to send the honest result afterwards. */
export type Tamper = (unit: Unit__Output, honest: HonestResult, ctx: ScriptContext) => Promise<boolean>;

export class ScriptedWorker {
  private call: grpc.ClientDuplexStream<WorkerMessage, CoordinatorMessage__Output> | undefined;
  private client: grpc.Client | undefined;
  private writer: OrderedWriter<WorkerMessage> | undefined;
  private computer: UnitComputer | undefined;
  private runner: ModelRunner | undefined;
  private params: Float32Array | undefined;
  /** transport.compression of the job: weights arrive and gradients leave in it, as with a real worker. */
  private compression: Compression = 'none';
  private halfParams: Uint16Array | undefined;
  private incoming: { version: number; assembler: TransferAssembler } | undefined;
  private weightsVersion = -1;
  private readonly weightWaiters: Array<{ version: number; resolve: () => void }> = [];
  private queue: Unit__Output[] = [];
  private busy = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private transfer = 1000;
  readonly shutdown: Promise<string>;
  private resolveShutdown!: (reason: string) => void;

  constructor(
    private readonly address: string,
    private readonly tamper: Tamper,
    private readonly options: { token?: string; name?: string; credentials?: grpc.ChannelCredentials } = {},
  ) {
    this.shutdown = new Promise((r) => (this.resolveShutdown = r));
  }

  async start(): Promise<void> {
    const Coordinator = protocol().mtl.v1.Coordinator;
    this.client = new Coordinator(this.address, this.options.credentials ?? grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    this.call = (this.client as unknown as { Connect(): grpc.ClientDuplexStream<WorkerMessage, CoordinatorMessage__Output> }).Connect();
    this.writer = new OrderedWriter(this.call);
    this.call.on('data', (m: CoordinatorMessage__Output) => this.onMessage(m));
    this.call.on('error', (e: Error) => this.resolveShutdown(`error: ${e.message}`));
    this.call.on('end', () => this.resolveShutdown('ended'));
    await this.writer.write({ hello: { name: this.options.name ?? 'scripted', protocolVersion: PROTOCOL_VERSION, backend: tf.getBackend(), device: 'cpu', capacity: 1, token: this.options.token ?? '' } });
  }

  private onMessage(m: CoordinatorMessage__Output): void {
    switch (m.kind) {
      case 'welcome': {
        const job = validateJob(JSON.parse(m.welcome!.jobJson) as unknown, 'welcome');
        const bindings = bindTasks(job.tasks, m.welcome!.jobDir);
        const layout = buildLayout(job, job.model.input ?? [...bindings.values()][0]!.dataset.inputShape);
        this.runner = new ModelRunner(layout, new Map(Object.entries(job.tasks).map(([t, s]) => [t, { loss: s.loss, metrics: s.metrics }])), opsModeFor(tf.getBackend()));
        this.computer = new UnitComputer(job, bindings, this.runner);
        this.params = new Float32Array(layout.totalSize);
        this.compression = job.transport.compression;
        if (this.compression !== 'none') this.halfParams = new Uint16Array(layout.totalSize);
        // Like a real worker: say it is alive between units, at the job's heartbeat interval.
        this.heartbeat = setInterval(() => void this.writer!.write({ heartbeat: { sentAtMs: Date.now() } }).catch(() => undefined), job.fault.heartbeatMs);
        break;
      }
      case 'weights':
        this.incoming = { version: m.weights!.version, assembler: new TransferAssembler(m.weights!.transferId, this.halfParams ? uint16Bytes(this.halfParams) : float32Bytes(this.params!)) };
        break;
      case 'chunk':
        if (this.incoming!.assembler.accept(m.chunk!)) {
          if (this.compression !== 'none') decodeHalf(this.halfParams!, this.compression, this.params);
          this.runner!.setWeights(this.params!);
          this.weightsVersion = this.incoming!.version;
          this.incoming = undefined;
          for (let i = this.weightWaiters.length - 1; i >= 0; i--) {
            if (this.weightWaiters[i]!.version < this.weightsVersion) this.weightWaiters.splice(i, 1)[0]!.resolve();
          }
          void this.pump();
        }
        break;
      case 'assign':
        this.queue.push(...m.assign!.units);
        void this.pump();
        break;
      case 'cancel': {
        const ids = new Set(m.cancel!.unitIds);
        this.queue = this.queue.filter((u) => !ids.has(u.unitId));
        break;
      }
      case 'shutdown':
        clearInterval(this.heartbeat);
        this.call!.end();
        this.resolveShutdown(`shutdown: ${m.shutdown!.reason}`);
        break;
      default:
        break;
    }
  }

  private honest(unit: Unit__Output): HonestResult {
    const base = { unitId: unit.unitId, kind: unit.kind, step: unit.step, task: unit.task, shard: unit.shard, weightsVersion: unit.weightsVersion, transferId: ++this.transfer, computeMs: 1 };
    if (unit.kind === 'UNIT_KIND_TRAIN') {
      const out = this.computer!.train({ task: unit.task, step: unit.step, shard: unit.shard });
      return { header: { ...base, sampleCount: out.sampleCount, loss: out.loss, metrics: {}, byteLength: out.grads.length * bytesPerValue(this.compression) }, payload: out.grads };
    }
    const out = this.computer!.evaluate({ task: unit.task, shard: unit.shard, shardCount: unit.shardCount });
    return { header: { ...base, sampleCount: out.sampleCount, loss: out.loss, metrics: out.metrics, byteLength: 0, transferId: 0 }, payload: null };
  }

  private readonly ctx: ScriptContext = {
    send: (message) => this.writer!.write(message),
    sendResult: async (result) => {
      const sends = [this.writer!.write({ unitResult: result.header })];
      if (result.payload) {
        let offset = 0;
        const c = this.compression;
        for (const data of chunkViews(c === 'none' ? float32Bytes(result.payload) : uint16Bytes(encodeHalf(result.payload, c)))) {
          sends.push(this.writer!.write({ chunk: { transferId: result.header.transferId, offset, data } }));
          offset += data.byteLength;
        }
        sends.push(this.writer!.write({ resultEnd: { transferId: result.header.transferId, computeMs: result.header.computeMs ?? 0, busyMs: result.header.busyMs ?? 0 } }));
      }
      await Promise.all(sends);
    },
    weightsVersion: -1,
    weightsAfter: (version) =>
      version < this.weightsVersion ? Promise.resolve() : new Promise<void>((resolve) => this.weightWaiters.push({ version, resolve })),
  };

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (;;) {
        // Units of a step that is over (their weights are older) were done elsewhere: skip them.
        while (this.queue.length > 0 && this.queue[0]!.weightsVersion < this.weightsVersion) this.queue.shift();
        if (this.queue.length === 0 || this.queue[0]!.weightsVersion !== this.weightsVersion || this.incoming) break;
        const unit = this.queue.shift()!;
        const honest = this.honest(unit);
        this.ctx.weightsVersion = this.weightsVersion;
        if (await this.tamper(unit, honest, this.ctx)) await this.ctx.sendResult(honest);
      }
    } finally {
      this.busy = false;
    }
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.runner?.dispose();
    this.client?.close();
  }
}
