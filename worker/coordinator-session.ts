// One connection of a worker to its coordinator: Hello → Welcome (job, layout) → weights and
// assignments in, unit results out, heartbeats in between, until Shutdown, Goodbye or the
// stream breaks. A new connection is a new session that starts from nothing: no unit, no
// weights, nothing half-applied from the one before.
import * as grpc from '@grpc/grpc-js';
import type { CoordinatorMessage__Output } from '../proto/generated/mtl/v1/CoordinatorMessage.js';
import type { Unit__Output } from '../proto/generated/mtl/v1/Unit.js';
import type { Welcome__Output } from '../proto/generated/mtl/v1/Welcome.js';
import type { WorkerMessage } from '../proto/generated/mtl/v1/WorkerMessage.js';
import { ComputeThreadError, errorMessage, MtlError, ProtocolViolationError, UnsupportedProtocolError } from '../common/errors.js';
import type { JobSpec } from '../common/job-spec.js';
import type { Logger } from '../common/logging.js';
import { OrderedWriter } from '../common/ordered-writer.js';
import { MAX_CHUNK_BYTES, PROTOCOL_VERSION } from '../common/protocol.js';
import type { SelectedBackend } from './backend.js';
import type { ComputeDone, LayoutSummary, StreamEvent, UnitOutput } from './compute-messages.js';
import { ThreadReportedError, type ComputeThread } from './compute-thread.js';
import type { BatchSharing } from './unit-compute.js';
import { requestOf, resultMessages, ResultStream, type ResultTiming } from './unit-messages.js';
import { WeightsIntake } from './weights-intake.js';

/** How long a leaving worker waits for the coordinator to acknowledge its Goodbye by closing the stream. */
const GOODBYE_WAIT_MS = 5000;

/** What the session needs of the compute thread: weights in, units in, results out. */
export type UnitCompute = Pick<ComputeThread, 'compute' | 'streamWeights' | 'weightsBuffer'>;

/**
 * A job as the session sees it: its spec and layout, which units share a batch, and the thread
 * that computes them (which holds the data, the model and the weights). Built once per job and
 * reused across sessions.
 */
export interface ComputeEnvironment {
  job: JobSpec;
  layout: LayoutSummary;
  sharing: BatchSharing;
  compute: UnitCompute;
}

export type SessionEnd =
  /** The coordinator said the run is over (failed: it failed). */
  | { kind: 'shutdown'; failed: boolean; reason: string }
  /** The connection broke or the coordinator ended it without Shutdown: worth reconnecting. */
  | { kind: 'lost'; reason: string }
  /** We ended it: close(), leave(), or a problem on our side the coordinator was told about. */
  | { kind: 'closed'; code: number; reason: string };

export interface CoordinatorSessionOptions {
  call: grpc.ClientDuplexStream<WorkerMessage, CoordinatorMessage__Output>;
  name: string;
  backend: SelectedBackend;
  /** Join token for Hello; empty or absent when the coordinator requires none. */
  token?: string;
  log: Logger;
  /** Builds (or reuses) the compute environment for the job of a Welcome; a promise while its remote data is fetched. */
  environment: (welcome: Welcome__Output) => ComputeEnvironment | Promise<ComputeEnvironment>;
}

/** The heartbeat interval of a Welcome's job (its resolved spec has every default), for the time before the environment is ready. */
function heartbeatMsOf(welcome: Welcome__Output): number {
  try {
    const ms = (JSON.parse(welcome.jobJson) as { fault?: { heartbeatMs?: unknown } }).fault?.heartbeatMs;
    return typeof ms === 'number' && ms > 0 ? Math.min(ms, 1000) : 1000;
  } catch {
    return 1000;
  }
}

export class CoordinatorSession {
  private readonly writer: OrderedWriter<WorkerMessage>;
  private env: ComputeEnvironment | undefined;
  private maxChunkBytes = MAX_CHUNK_BYTES;
  /** The version of the last weights handed to the compute thread (complete or still arriving). */
  private weightsVersion = -1;
  private weights: WeightsIntake | undefined;
  private readonly queue: Unit__Output[] = [];
  private computing = false;
  private leaving: string | undefined;
  private saidGoodbye = false;
  private transferCounter = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Messages that came while the environment was being prepared (remote data on the way), in order. */
  private held: CoordinatorMessage__Output[] | undefined;
  private ended = false;
  private resolveEnd!: (end: SessionEnd) => void;
  readonly end: Promise<SessionEnd>;
  unitsDone = 0;

  constructor(private readonly opts: CoordinatorSessionOptions) {
    this.end = new Promise((r) => (this.resolveEnd = r));
    this.writer = new OrderedWriter(opts.call);
    const { call } = opts;
    call.on('data', (msg: CoordinatorMessage__Output) => this.onMessage(msg));
    // Once we said Goodbye, the stream ending in any way is the end we asked for.
    const lost = (reason: string): SessionEnd => (this.leaving !== undefined ? { kind: 'closed', code: 0, reason: this.leaving } : { kind: 'lost', reason });
    call.on('error', (err: grpc.ServiceError) => {
      // Refused at the door: retrying with the same token cannot help.
      if (err.code === grpc.status.UNAUTHENTICATED) {
        this.opts.log.error('the coordinator refused this worker: authentication failed (check --token-file or MTL_TOKEN)');
        this.finish({ kind: 'closed', code: 1, reason: 'the coordinator refused this worker: authentication failed (check --token-file or MTL_TOKEN)' });
        return;
      }
      this.finish(lost(`connection to coordinator lost: ${err.details || err.message}`));
    });
    call.on('end', () => this.finish(lost('coordinator ended the session')));
  }

  get joined(): boolean {
    return this.env !== undefined;
  }

  start(): Promise<SessionEnd> {
    const { backend, name } = this.opts;
    void this.send({ hello: { name, protocolVersion: PROTOCOL_VERSION, backend: backend.name, device: backend.device, capacity: 1, token: this.opts.token ?? '' } });
    return this.end;
  }

  private send(message: WorkerMessage): Promise<void> {
    return this.writer.write(message).catch(() => undefined);
  }

  private finish(end: SessionEnd): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.heartbeat);
    // A unit waiting in the compute thread for the rest of a transfer fails instead of waiting for ever.
    this.weights?.abort();
    this.opts.call.removeAllListeners('data');
    this.resolveEnd(end);
  }

  private onMessage(msg: CoordinatorMessage__Output): void {
    if (this.ended) return;
    if (this.held !== undefined && msg.kind !== 'shutdown') {
      this.held.push(msg);
      return;
    }
    try {
      switch (msg.kind) {
        case 'welcome':
          this.onWelcome(msg.welcome!);
          break;
        case 'weights':
          if (!this.weights) throw new ProtocolViolationError('weights before Welcome');
          this.weights.begin(msg.weights!);
          // Units of this version start now; the compute thread waits for the values each layer needs.
          this.weightsVersion = msg.weights!.version;
          this.pump();
          break;
        case 'chunk':
          if (!this.weights) throw new ProtocolViolationError('chunk without an open transfer');
          this.weights.chunk(msg.chunk!);
          break;
        case 'assign':
          // While leaving, new units are ignored: the coordinator takes back everything this
          // worker holds when it reads the Goodbye.
          if (this.leaving === undefined) this.queue.push(...msg.assign!.units);
          this.pump();
          break;
        case 'cancel': {
          const ids = new Set(msg.cancel!.unitIds);
          for (let i = this.queue.length - 1; i >= 0; i--) if (ids.has(this.queue[i]!.unitId)) this.queue.splice(i, 1);
          break;
        }
        case 'shutdown':
          this.opts.log.info('shutdown requested by coordinator', { reason: msg.shutdown!.reason });
          void this.writer.flush().finally(() => this.opts.call.end());
          this.finish({ kind: 'shutdown', failed: msg.shutdown!.failed, reason: msg.shutdown!.reason || 'shutdown' });
          break;
        default:
          throw new ProtocolViolationError(`unexpected message kind ${String(msg.kind)}`);
      }
    } catch (err) {
      this.fatal(err);
    }
  }

  private onWelcome(welcome: Welcome__Output): void {
    if (this.env) throw new ProtocolViolationError('second Welcome on one session');
    if (welcome.protocolVersion !== PROTOCOL_VERSION) {
      throw new UnsupportedProtocolError(`coordinator speaks protocol ${welcome.protocolVersion}, this worker ${PROTOCOL_VERSION}`);
    }
    const env = this.opts.environment(welcome);
    if (env instanceof Promise) {
      // The compute thread loads the job (and remote data is fetched first): heartbeats say we
      // are alive, everything else waits.
      this.held = [];
      this.heartbeat = setInterval(() => void this.send({ heartbeat: { sentAtMs: Date.now() } }), heartbeatMsOf(welcome));
      this.heartbeat.unref();
      env.then(
        (ready) => {
          if (this.ended) return;
          clearInterval(this.heartbeat);
          const held = this.held ?? [];
          this.held = undefined;
          try {
            this.join(welcome, ready);
          } catch (err) {
            this.fatal(err);
            return;
          }
          for (const m of held) this.onMessage(m);
        },
        (err: unknown) => {
          this.held = undefined;
          if (!this.ended) this.fatal(err);
        },
      );
      return;
    }
    this.join(welcome, env);
  }

  /** Checks the environment against the Welcome's layout and starts serving units. */
  private join(welcome: Welcome__Output, env: ComputeEnvironment): void {
    const same =
      env.layout.tensors.length === welcome.layout.length &&
      env.layout.tensors.every((t, i) => {
        const w = welcome.layout[i];
        return w !== undefined && w.name === t.name && w.group === t.group && w.shape.join(',') === t.shape.join(',');
      });
    if (!same) throw new ProtocolViolationError('this worker computes a different parameter layout than the coordinator (version skew?)');
    this.env = env;
    this.maxChunkBytes = Math.min(welcome.maxChunkBytes || MAX_CHUNK_BYTES, MAX_CHUNK_BYTES);
    const { totalSize, tensors } = env.layout;
    this.weights = new WeightsIntake(env.compute, { totalSize, tensors: tensors.length, compression: env.job.transport.compression, maxChunkBytes: this.maxChunkBytes });
    this.heartbeat = setInterval(() => void this.send({ heartbeat: { sentAtMs: Date.now() } }), env.job.fault.heartbeatMs);
    this.heartbeat.unref();
    this.opts.log.info('joined run', { run: welcome.runId, worker: welcome.workerId, params: env.layout.totalSize });
  }

  /**
   * Computes queued units as soon as their weights version is here: one at a time, except
   * training units that read the same batch (several tasks of one data source, same step and
   * shard), which are computed together with one trunk forward pass (the compute fast path).
   * The compute thread does the work; meanwhile this thread's event loop stays free for
   * heartbeats, the next weights, cancels and the previous unit's upload.
   */
  private pump(): void {
    if (this.computing) return;
    this.computing = true;
    void (async () => {
      try {
        while (!this.ended && this.leaving === undefined && this.queue.length > 0) {
          // Units of a newer version wait for its weights header.
          if (this.queue[0]!.weightsVersion !== this.weightsVersion) break;
          const group = this.takeBatchGroup();
          if (group.length > 1) await this.computeGroup(group);
          else await this.compute(group[0]!);
        }
      } catch (err) {
        this.fatal(err);
      } finally {
        this.computing = false;
        if (this.leaving !== undefined && !this.ended) this.sayGoodbye(this.leaving);
      }
    })();
  }

  /** Takes the first queued unit and every queued training unit that shares its batch. */
  private takeBatchGroup(): Unit__Output[] {
    const first = this.queue.shift()!;
    if (first.kind !== 'UNIT_KIND_TRAIN') return [first];
    const sharing = this.env!.sharing;
    const spec = (u: Unit__Output) => ({ task: u.task, step: u.step, shard: u.shard });
    const group = [first];
    for (let i = 0; i < this.queue.length; i++) {
      const u = this.queue[i]!;
      if (u.kind !== 'UNIT_KIND_TRAIN' || u.weightsVersion !== first.weightsVersion || group.some((g) => g.task === u.task)) continue;
      let shares = false;
      try {
        shares = sharing.shares(spec(first), spec(u));
      } catch {
        // A unit the computer cannot place (unknown task, say) is left to fail on its own.
      }
      if (!shares) continue;
      group.push(u);
      this.queue.splice(i--, 1);
    }
    return group;
  }

  /** The job's gradient bucket size (transport.bucketBytes): train units stream their results as they are computed. */
  private get bucketBytes(): number {
    return this.env!.job.transport.bucketBytes;
  }

  /**
   * A ResultStream for a compute request of `units`, and its event handler. The handler runs in
   * the compute thread's message callback: what goes wrong there is kept and thrown by `check`.
   */
  private resultStream(units: Unit__Output[]): { stream: ResultStream; onEvent: (e: StreamEvent) => void; check: () => void } {
    const wire = { compression: this.env!.job.transport.compression, maxChunkBytes: this.maxChunkBytes };
    const stream = new ResultStream(units, wire, () => ++this.transferCounter, (m) => void this.send(m));
    let failure: Error | undefined;
    const onEvent = (e: StreamEvent) => {
      if (failure !== undefined || this.ended) return;
      try {
        stream.on(e);
      } catch (err) {
        failure = err instanceof Error ? err : new ProtocolViolationError(errorMessage(err));
      }
    };
    const check = () => {
      if (failure !== undefined) throw failure;
    };
    return { stream, onEvent, check };
  }

  /** A computation failed with a unit's result half sent: that unit is reported failed (which closes its transfer). */
  private abandon(stream: ResultStream, err: unknown): void {
    const unit = stream.unfinished;
    if (unit === undefined) return;
    const code = err instanceof MtlError ? err.code : err instanceof ThreadReportedError && err.code !== undefined ? err.code : 'COMPUTE_ERROR';
    this.opts.log.error('unit failed', { unit: unit.unitId, error: errorMessage(err) });
    void this.send({ unitFailed: { unitId: unit.unitId, code, message: errorMessage(err) } });
  }

  /** Training units sharing a batch: computed together, each result sent as if computed alone, as soon as it is computed. */
  private async computeGroup(units: Unit__Output[]): Promise<void> {
    const { stream, onEvent, check } = this.resultStream(units);
    let done: ComputeDone;
    try {
      done = await this.env!.compute.compute({ kind: 'train', units: units.map((u) => ({ task: u.task, step: u.step, shard: u.shard })), bucketBytes: this.bucketBytes }, onEvent);
      check();
    } catch (err) {
      if (err instanceof ComputeThreadError || err instanceof ProtocolViolationError) throw err;
      this.abandon(stream, err);
      // Computed one by one, each failure is reported against its own unit.
      const rest = units.filter((u, i) => !stream.ended.has(i) && u !== stream.unfinished);
      this.unitsDone += units.length - rest.length - (stream.unfinished ? 1 : 0);
      this.opts.log.warn('shared-batch computation failed; computing the rest of the units one by one', { units: rest.length, error: errorMessage(err) });
      for (const unit of rest) await this.compute(unit);
      return;
    }
    // Streamed units were charged their own time as they ended. Units that were not (the
    // autodiff path) are each charged their share, so the scheduler's unit-time estimate stays
    // comparable; the group's whole duration goes along as busy time.
    const { busyMs, outputs } = done;
    for (let i = 0; i < units.length; i++) {
      this.finishResult(units[i]!, outputs[i]!, stream, i, { computeMs: busyMs / units.length, busyMs });
      this.unitsDone++;
    }
  }

  /** Sends a unit's result unless it went out as it was computed. */
  private finishResult(unit: Unit__Output, out: UnitOutput, stream: ResultStream, index: number, time: ResultTiming): void {
    if (out.streamed) {
      if (!stream.ended.has(index)) throw new ProtocolViolationError(`the compute thread streamed unit ${unit.unitId} without its end`);
      return;
    }
    const wire = { compression: this.env!.job.transport.compression, maxChunkBytes: this.maxChunkBytes, transferId: 0 };
    if (unit.kind === 'UNIT_KIND_TRAIN' || unit.kind === 'UNIT_KIND_FISHER') wire.transferId = ++this.transferCounter;
    for (const m of resultMessages(unit, out, time, wire)) void this.send(m);
  }

  private async compute(unit: Unit__Output): Promise<void> {
    const { stream, onEvent, check } = this.resultStream([unit]);
    try {
      const { outputs, busyMs } = await this.env!.compute.compute(requestOf(unit, this.bucketBytes), onEvent);
      check();
      this.finishResult(unit, outputs[0]!, stream, 0, { computeMs: busyMs, busyMs });
      this.unitsDone++;
    } catch (err) {
      if (err instanceof ProtocolViolationError || err instanceof ComputeThreadError) throw err;
      const code = err instanceof MtlError ? err.code : err instanceof ThreadReportedError && err.code !== undefined ? err.code : 'COMPUTE_ERROR';
      this.opts.log.error('unit failed', { unit: unit.unitId, error: errorMessage(err) });
      void this.send({ unitFailed: { unitId: unit.unitId, code, message: errorMessage(err) } });
    }
  }

  /**
   * Leaves the run on purpose: the unit being computed is finished and sent, the queued ones
   * are handed back in a Goodbye, then the stream is closed. Resolves when the session ends.
   */
  leave(reason: string): Promise<SessionEnd> {
    if (this.leaving === undefined && !this.ended) {
      this.leaving = reason;
      if (!this.computing) this.sayGoodbye(reason);
    }
    return this.end;
  }

  private sayGoodbye(reason: string): void {
    if (this.saidGoodbye) return;
    this.saidGoodbye = true;
    clearInterval(this.heartbeat);
    const returned = this.queue.splice(0).map((u) => u.unitId);
    this.opts.log.info('leaving the run', { reason, returned: returned.length });
    void (async () => {
      await this.send({ goodbye: { reason, returnedUnitIds: returned } });
      await this.writer.flush().catch(() => undefined);
      this.opts.call.end();
      // The coordinator closes its side once it has read the Goodbye; closing the channel
      // before that could cut the Goodbye off, and it would count us as dead, not departed.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, GOODBYE_WAIT_MS);
        timer.unref();
        this.opts.call.once('status', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.finish({ kind: 'closed', code: 0, reason });
    })();
  }

  /** A setup or protocol error: tell the coordinator why, then leave. */
  private fatal(err: unknown): void {
    const message = errorMessage(err);
    this.opts.log.error('leaving the run', { error: message });
    const code = err instanceof MtlError ? err.code : 'WORKER_ERROR';
    void this.send({ unitFailed: { unitId: '', code, message } }).finally(() => this.opts.call.end());
    this.finish({ kind: 'closed', code: 1, reason: message });
  }

  /** Ends the session at once (the coordinator sees the stream cancelled). */
  cancel(reason: string): void {
    this.opts.call.cancel();
    this.finish({ kind: 'closed', code: 1, reason });
  }
}
