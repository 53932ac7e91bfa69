// A worker process's session with its coordinator: Hello → Welcome (job, layout) → weights
// and assignments in, unit results out, until Shutdown or the stream ends.
import * as grpc from '@grpc/grpc-js';
import * as tf from '@tensorflow/tfjs';
import os from 'node:os';
import type { CoordinatorMessage__Output } from '../proto/generated/mtl/v1/CoordinatorMessage.js';
import type { Unit__Output } from '../proto/generated/mtl/v1/Unit.js';
import type { WeightsHeader__Output } from '../proto/generated/mtl/v1/WeightsHeader.js';
import type { Welcome__Output } from '../proto/generated/mtl/v1/Welcome.js';
import type { WorkerMessage } from '../proto/generated/mtl/v1/WorkerMessage.js';
import { bindTasks } from '../common/datasets/index.js';
import { errorMessage, IllegalStateError, MtlError, ProtocolViolationError, UnsupportedProtocolError } from '../common/errors.js';
import { validateJob, type JobSpec } from '../common/job-spec.js';
import { createLogger, type Logger } from '../common/logging.js';
import { OrderedWriter } from '../common/ordered-writer.js';
import { buildLayout, type ParameterLayout } from '../common/parameter-layout.js';
import { CHANNEL_OPTIONS, chunkViews, float32Bytes, MAX_CHUNK_BYTES, protocol, PROTOCOL_VERSION } from '../common/protocol.js';
import { TransferAssembler } from '../common/transfer-assembler.js';
import { selectBackend, type BackendChoice, type SelectedBackend } from './backend.js';
import { opsModeFor } from './layer-ops.js';
import { ModelRunner } from './model-runner.js';
import { UnitComputer } from './unit-compute.js';

export interface WorkerOptions {
  /** host:port of the coordinator. */
  coordinator: string;
  name?: string;
  backend?: BackendChoice;
  logger?: Logger;
  /** How long to keep trying to reach the coordinator. Default 30 s. */
  connectTimeoutMs?: number;
}

export type WorkerState = 'created' | 'connecting' | 'joining' | 'ready' | 'closing' | 'closed';

export interface WorkerExit {
  /** 0 after a normal Shutdown, 1 when the run failed or the session broke. */
  code: number;
  reason: string;
}

interface Session {
  job: JobSpec;
  layout: ParameterLayout;
  computer: UnitComputer;
  runner: ModelRunner;
  params: Float32Array;
  maxChunkBytes: number;
}

export class Worker {
  private state: WorkerState = 'created';
  private readonly log: Logger;
  private readonly name: string;
  private backend: SelectedBackend | undefined;
  private client: grpc.Client | undefined;
  private call: grpc.ClientDuplexStream<WorkerMessage, CoordinatorMessage__Output> | undefined;
  private writer: OrderedWriter<WorkerMessage> | undefined;
  private session: Session | undefined;
  private weightsVersion = -1;
  private incomingWeights: { header: WeightsHeader__Output; assembler: TransferAssembler } | undefined;
  private readonly queue: Unit__Output[] = [];
  private processing = false;
  private transferCounter = 0;
  private exit: WorkerExit | undefined;
  /** Settles once, when the session is over, however it ended. */
  private readonly finished: Promise<WorkerExit>;
  private resolveFinished!: (exit: WorkerExit) => void;
  private closing: Promise<WorkerExit> | undefined;
  unitsDone = 0;

  constructor(private readonly options: WorkerOptions) {
    this.name = options.name ?? `${os.hostname()}-${process.pid}`;
    this.log = (options.logger ?? createLogger({ component: 'worker' })).child(this.name);
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
  }

  get currentState(): WorkerState {
    return this.state;
  }

  /** Connects, serves the session, and resolves when it ends. */
  async run(): Promise<WorkerExit> {
    if (this.state !== 'created') throw new IllegalStateError(`worker.run() called in state ${this.state}`);
    this.state = 'connecting';
    try {
      tf.enableProdMode();
      this.backend = await selectBackend(this.options.backend ?? 'auto');
      for (const s of this.backend.skipped) this.log.debug('backend skipped', { provider: s.provider, reason: s.reason });
      this.log.info('backend ready', { backend: this.backend.name, device: this.backend.device, provider: this.backend.provider });
      await this.connect();
    } catch (err) {
      this.finish(1, errorMessage(err));
    }
    return this.finished;
  }

  private async connect(): Promise<void> {
    if (this.state !== 'connecting') return; // closed while the backend loaded
    const Coordinator = protocol().mtl.v1.Coordinator;
    const client = new Coordinator(this.options.coordinator, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    this.client = client;
    const deadline = Date.now() + (this.options.connectTimeoutMs ?? 30_000);
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(deadline, (err) => (err ? reject(new Error(`cannot reach coordinator at ${this.options.coordinator}: ${err.message}`)) : resolve())),
    );
    if (this.state !== 'connecting') return;
    this.state = 'joining';
    const call = client.Connect();
    this.call = call;
    this.writer = new OrderedWriter(call);
    call.on('data', (msg: CoordinatorMessage__Output) => this.onMessage(msg));
    call.on('error', (err: grpc.ServiceError) => {
      if (err.code === grpc.status.CANCELLED && this.state === 'closing') return;
      this.finish(1, `connection to coordinator lost: ${err.details || err.message}`);
    });
    call.on('end', () => this.finish(this.exit?.code ?? 1, this.exit?.reason ?? 'coordinator closed the stream'));
    await this.send({
      hello: {
        name: this.name,
        protocolVersion: PROTOCOL_VERSION,
        backend: this.backend?.name ?? 'unknown',
        device: this.backend?.device ?? 'cpu',
        capacity: 1,
        token: '',
      },
    });
  }

  private send(message: WorkerMessage): Promise<void> {
    if (!this.writer) return Promise.reject(new IllegalStateError('not connected'));
    return this.writer.write(message);
  }

  private onMessage(msg: CoordinatorMessage__Output): void {
    try {
      switch (msg.kind) {
        case 'welcome':
          this.onWelcome(msg.welcome!);
          break;
        case 'weights':
          this.onWeightsHeader(msg.weights!);
          break;
        case 'chunk':
          this.onChunk(msg.chunk!);
          break;
        case 'assign':
          this.queue.push(...msg.assign!.units);
          this.pump();
          break;
        case 'cancel': {
          const ids = new Set(msg.cancel!.unitIds);
          for (let i = this.queue.length - 1; i >= 0; i--) if (ids.has(this.queue[i]!.unitId)) this.queue.splice(i, 1);
          break;
        }
        case 'shutdown':
          this.log.info('shutdown requested by coordinator', { reason: msg.shutdown!.reason });
          void this.close(msg.shutdown!.failed ? 1 : 0, msg.shutdown!.reason || 'shutdown');
          break;
        default:
          throw new ProtocolViolationError(`unexpected message kind ${String(msg.kind)}`);
      }
    } catch (err) {
      this.fatal(err);
    }
  }

  private onWelcome(welcome: Welcome__Output): void {
    if (this.session) throw new ProtocolViolationError('second Welcome on one session');
    if (welcome.protocolVersion !== PROTOCOL_VERSION) {
      throw new UnsupportedProtocolError(`coordinator speaks protocol ${welcome.protocolVersion}, this worker ${PROTOCOL_VERSION}`);
    }
    const job = validateJob(JSON.parse(welcome.jobJson) as unknown, 'Welcome.job_json');
    const bindings = bindTasks(job.tasks, welcome.jobDir || process.cwd());
    const first = bindings.values().next().value;
    if (!first) throw new ProtocolViolationError('job has no tasks');
    const layout = buildLayout(job, job.model.input ?? first.dataset.inputShape);
    const same =
      layout.tensors.length === welcome.layout.length &&
      layout.tensors.every((t, i) => {
        const w = welcome.layout[i];
        return w !== undefined && w.name === t.name && w.group === t.group && w.shape.join(',') === t.shape.join(',');
      });
    if (!same) throw new ProtocolViolationError('this worker computes a different parameter layout than the coordinator (version skew?)');
    const objectives = new Map(Object.entries(job.tasks).map(([t, s]) => [t, { loss: s.loss, metrics: s.metrics }] as const));
    const runner = new ModelRunner(layout, objectives, opsModeFor(this.backend!.name));
    this.session = {
      job,
      layout,
      runner,
      computer: new UnitComputer(job, bindings, runner),
      params: new Float32Array(layout.totalSize),
      maxChunkBytes: Math.min(welcome.maxChunkBytes || MAX_CHUNK_BYTES, MAX_CHUNK_BYTES),
    };
    this.state = 'ready';
    this.log.info('joined run', { run: welcome.runId, worker: welcome.workerId, params: layout.totalSize });
  }

  private requireSession(): Session {
    if (!this.session) throw new ProtocolViolationError('message before Welcome');
    return this.session;
  }

  private onWeightsHeader(header: WeightsHeader__Output): void {
    const s = this.requireSession();
    if (this.incomingWeights) throw new ProtocolViolationError('weights header while another weights transfer is open');
    if (header.tensors.length !== s.layout.tensors.length || header.byteLength !== s.params.byteLength) {
      throw new ProtocolViolationError(`weights v${header.version} carry ${header.byteLength} bytes, expected all ${s.params.byteLength}`);
    }
    this.incomingWeights = { header, assembler: new TransferAssembler(header.transferId, float32Bytes(s.params), s.maxChunkBytes) };
  }

  private onChunk(chunk: { transferId: number; offset: number; data: Buffer }): void {
    const s = this.requireSession();
    const incoming = this.incomingWeights;
    if (!incoming) throw new ProtocolViolationError('chunk without an open transfer');
    if (incoming.assembler.accept(chunk)) {
      this.incomingWeights = undefined;
      s.runner.setWeights(s.params);
      this.weightsVersion = incoming.header.version;
      this.pump();
    }
  }

  /** Computes queued units one at a time, as soon as their weights version is here. */
  private pump(): void {
    if (this.processing) return;
    this.processing = true;
    void (async () => {
      try {
        while (this.queue.length > 0 && this.state === 'ready') {
          const unit = this.queue[0]!;
          if (unit.weightsVersion !== this.weightsVersion || this.incomingWeights) break; // weights on the way
          this.queue.shift();
          await this.compute(unit);
          // Let incoming messages (cancel, new weights) in between units.
          await new Promise((r) => setImmediate(r));
        }
      } catch (err) {
        this.fatal(err);
      } finally {
        this.processing = false;
      }
    })();
  }

  private async compute(unit: Unit__Output): Promise<void> {
    const s = this.requireSession();
    const started = performance.now();
    try {
      // The header echoes the unit, so the coordinator can check it against what it assigned.
      const echo = { unitId: unit.unitId, kind: unit.kind, step: unit.step, task: unit.task, shard: unit.shard, weightsVersion: unit.weightsVersion };
      if (unit.kind === 'UNIT_KIND_TRAIN') {
        const out = s.computer.train({ task: unit.task, step: unit.step, shard: unit.shard });
        const bytes = float32Bytes(out.grads);
        const transferId = ++this.transferCounter;
        const header = { ...echo, sampleCount: out.sampleCount, loss: out.loss, metrics: {}, byteLength: bytes.byteLength, transferId, computeMs: performance.now() - started };
        const sends = [this.send({ unitResult: header })];
        let offset = 0;
        for (const data of chunkViews(bytes, s.maxChunkBytes)) {
          sends.push(this.send({ chunk: { transferId, offset, data } }));
          offset += data.byteLength;
        }
        await Promise.all(sends);
      } else if (unit.kind === 'UNIT_KIND_EVAL') {
        const out = s.computer.evaluate({ task: unit.task, shard: unit.shard, shardCount: unit.shardCount });
        const header = { ...echo, sampleCount: out.sampleCount, loss: out.loss, metrics: out.metrics, byteLength: 0, transferId: 0, computeMs: performance.now() - started };
        await this.send({ unitResult: header });
      } else {
        throw new ProtocolViolationError(`unit ${unit.unitId} has no kind`);
      }
      this.unitsDone++;
    } catch (err) {
      if (err instanceof ProtocolViolationError) throw err;
      this.log.error('unit failed', { unit: unit.unitId, error: errorMessage(err) });
      await this.send({ unitFailed: { unitId: unit.unitId, code: err instanceof MtlError ? err.code : 'COMPUTE_ERROR', message: errorMessage(err) } });
    }
  }

  /** A setup or protocol error: tell the coordinator why, then leave. */
  private fatal(err: unknown): void {
    const message = errorMessage(err);
    this.log.error('leaving the run', { error: message });
    const code = err instanceof MtlError ? err.code : 'WORKER_ERROR';
    void this.send({ unitFailed: { unitId: '', code, message } })
      .catch(() => undefined)
      .finally(() => void this.close(1, message));
  }

  private finish(code: number, reason: string): void {
    this.exit ??= { code, reason };
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.session?.runner.dispose();
    this.call?.removeAllListeners('data');
    this.client?.close();
    this.resolveFinished(this.exit);
  }

  /**
   * Leaves the session (idempotent, returns the same promise): flushes what is queued,
   * half-closes the stream, and cancels it if the coordinator does not end it in time.
   */
  close(code = 0, reason = 'closed'): Promise<WorkerExit> {
    this.closing ??= (async () => {
      this.exit ??= { code, reason };
      if (this.state === 'closed') return this.finished;
      this.state = 'closing';
      await Promise.race([this.writer?.flush().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
      const call = this.call;
      if (!call || this.currentState === 'closed') {
        this.finish(code, reason);
        return this.finished;
      }
      call.end();
      const timer = setTimeout(() => {
        call.cancel();
        this.finish(code, reason);
      }, 3000);
      timer.unref();
      const exit = await this.finished;
      clearTimeout(timer);
      return exit;
    })();
    return this.closing;
  }
}
