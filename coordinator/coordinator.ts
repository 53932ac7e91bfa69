// The coordinator process: gRPC server (Coordinator service + grpc.health.v1), one training
// run, its run directory, the exported model and the summary. Lifecycle:
// created → serving → finished | failed, then closed (idempotent close()).
import { dataPlansJson } from '../common/datasets/index.js';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { RunStatus } from '../proto/generated/mtl/v1/RunStatus.js';
import type { WorkerMessage__Output } from '../proto/generated/mtl/v1/WorkerMessage.js';
import { AuthenticationError, AUTHENTICATION_FAILED_DETAILS, errorMessage, IllegalStateError, MtlError, TooManySessionsError } from '../common/errors.js';
import { toGrpcStatus } from '../common/grpc-status.js';
import { jobToYaml } from '../common/job-spec.js';
import type { Logger } from '../common/logging.js';
import { createTunedServer, MAX_CHUNK_BYTES, PROTOCOL_VERSION, sendPreFramed, serverServiceDefinition, widenConnectionWindow, type OutgoingCoordinatorMessage } from '../common/protocol.js';
import { watchTlsRefusals } from '../common/grpc-tls.js';
import { checkListenSecurity, serverCredentials, tokenDigest, tokenMatches, type TlsMaterial } from '../common/security.js';
import { FileCheckpointStore, jobHash, type CheckpointData, type CheckpointStore } from './checkpoints.js';
import { saveTrainedModel } from './model-export.js';
import { DEFAULT_MAX_SESSIONS } from './session-defaults.js';
import type { PreparedRun } from './prepare-run.js';
import { RunDirectory } from './run-directory.js';
import { RunTelemetry } from './run-telemetry.js';
import type { RunEvent } from './run-records.js';
import type { RunSummary } from './run-summary.js';
import { TrainingRun } from './training-run.js';
import type { RunSnapshot, TrainingRunOptions } from './training-run-options.js';
import { WorkerSession, type SessionLimits } from './worker-session.js';

export { DEFAULT_MAX_SESSIONS };

export const SERVICE_NAME = 'mtl.v1.Coordinator';

/** The token of an `authorization: Bearer <token>` metadata entry, if any. */
function bearerToken(metadata: grpc.Metadata): string | undefined {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string') return undefined;
  const m = /^Bearer (.+)$/.exec(value);
  return m?.[1];
}

/** The run's observers (step and eval records, state, task gradients, events) are the training run's own. */
export interface CoordinatorOptions extends Pick<TrainingRunOptions, 'onStep' | 'onEval' | 'onStateChange' | 'onTaskGradients' | 'onEvent'> {
  prepared: PreparedRun;
  /** host:port to listen on; port 0 picks a free one. */
  listen: string;
  /** Run directory. */
  outDir: string;
  /** Training starts when this many workers have joined. Default 1. */
  minWorkers?: number;
  /** How long to wait for them. Default 5 minutes. */
  waitForWorkersMs?: number;
  logger: Logger;
  /** Continue from this checkpoint (loaded by the caller; see loadResumePoint). */
  resume?: CheckpointData;
  /** Run id (queued runs have one from `mtl submit`); default `<name>-<random>`, or the checkpoint's. */
  runId?: string;
  /** Where checkpoints go; default `<outDir>/checkpoints` on the file system. */
  checkpoints?: CheckpointStore;
  /**
   * Mutual TLS: our certificate and key, and the CA that worker certificates must chain to
   * (a worker without one cannot connect). Default: plaintext.
   */
  tls?: TlsMaterial;
  /** Join token every Hello (and GetStatus, as `authorization: Bearer <token>`) must carry. Default: none. */
  token?: string;
  /** Allow a non-loopback listen address without TLS. Default false: such a coordinator refuses to start. */
  insecure?: boolean;
  /**
   * Most Connect streams open at once (workers, and connections that have not said Hello yet).
   * Further ones are refused with RESOURCE_EXHAUSTED and counted (`faults.sessionsRefused`). Default 256.
   */
  maxSessions?: number;
  /** Per-session limits (rejected-message budget, Hello timeout); defaults in DEFAULT_SESSION_LIMITS. */
  sessionLimits?: Partial<Omit<SessionLimits, 'maxChunkBytes'>>;
}


export type CoordinatorState = 'created' | 'serving' | 'finished' | 'failed' | 'closed';

export class Coordinator {
  private state: CoordinatorState = 'created';
  /** With SERVER_HTTP2_SETTINGS for gradient uploads, where grpc-js lets us set them. */
  private readonly tunedServer = createTunedServer();
  private readonly server = this.tunedServer.server;
  /** Whether the upload windows could not be widened (told once in the log). */
  private untunedWarned = false;
  /** Whether weights could not be sent pre-framed (told once in the log). */
  private unframedWarned = false;
  private readonly health = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE_NAME]: 'NOT_SERVING' });
  readonly run: TrainingRun;
  readonly runId: string;
  /** What the dashboard and /metrics show: records so far, bytes in/out, unit times, checkpoints. */
  readonly telemetry = new RunTelemetry();
  /** Serving and able to take workers: what grpc.health.v1 says, and /readyz. */
  private accepting = false;
  private readonly log: Logger;
  private closing: Promise<void> | undefined;
  private message = '';
  private dir: RunDirectory | undefined;
  private readonly checkpoints: CheckpointStore;
  private readonly jobHash: string;
  private lastCheckpoint: number | undefined;
  /** SHA-256 of the join token; the token itself is not kept. */
  private readonly tokenHash: Buffer | undefined;
  /** Connect streams open now, admitted or not yet. */
  private readonly openSessions = new Set<WorkerSession>();
  /** performance.now() when this segment of the run started training (runToCompletion). */
  private segmentStart: number | undefined;

  constructor(private readonly opts: CoordinatorOptions) {
    checkListenSecurity(opts.listen, { tls: opts.tls !== undefined, insecure: opts.insecure === true });
    this.tokenHash = opts.token === undefined ? undefined : tokenDigest(opts.token);
    const { prepared } = opts;
    const job = prepared.loaded.spec;
    this.log = opts.logger;
    this.jobHash = jobHash(job);
    const resume = opts.resume;
    if (resume) {
      if (resume.jobHash !== this.jobHash) throw new IllegalStateError('the checkpoint was written by another job (its job hash differs)');
      prepared.optimizer.restore(resume.optimizer);
      prepared.aggregator.restore(resume.aggregator);
      this.lastCheckpoint = resume.step;
    }
    this.runId = resume?.runId ?? opts.runId ?? `${job.name}-${randomUUID().slice(0, 8)}`;
    this.checkpoints = opts.checkpoints ?? new FileCheckpointStore(path.join(opts.outDir, 'checkpoints'), job.checkpoint.keep);
    this.run = new TrainingRun({
      job,
      jobDir: prepared.loaded.dir,
      dataPlans: dataPlansJson(job.tasks, prepared.bindings),
      runId: this.runId,
      layout: prepared.layout,
      initialParams: resume?.params ?? prepared.initialParams,
      resume: resume && { step: resume.step, version: resume.version, samples: resume.samples, trainMs: resume.trainMs, counters: { ...resume.counters, resumes: resume.counters.resumes + 1 }, ...(resume.affinity ? { affinity: resume.affinity } : {}), ...(resume.extras ? { extras: resume.extras } : {}) },
      saveCheckpoint: (snapshot) => this.saveCheckpoint(snapshot),
      aggregator: prepared.aggregator,
      optimizer: prepared.optimizer,
      testSizes: prepared.testSizes,
      trainSizes: prepared.trainSizes,
      logger: opts.logger.child('run'),
      minWorkers: opts.minWorkers ?? 1,
      waitForWorkersMs: opts.waitForWorkersMs ?? 300_000,
      maxChunkBytes: MAX_CHUNK_BYTES,
      onStep: (r) => {
        this.dir?.appendMetrics({ time: new Date().toISOString(), ...r });
        this.telemetry.step(r);
        opts.onStep?.(r);
      },
      onEval: (r) => {
        this.dir?.appendEval({ time: new Date().toISOString(), ...r });
        this.telemetry.evaluation(r);
        opts.onEval?.(r);
      },
      onUnit: (u) => this.telemetry.unit(u),
      onStateChange: opts.onStateChange,
      onTaskGradients: opts.onTaskGradients,
      onEvent: (e) => this.event(e),
    });
    const telemetry = this.telemetry;
    const payloads = { received: (n: number) => void (telemetry.bytesReceived += n), sent: (n: number) => void (telemetry.bytesSent += n) };
    this.server.addService(serverServiceDefinition(payloads), {
      Connect: (call: grpc.ServerDuplexStream<WorkerMessage__Output, OutgoingCoordinatorMessage>) => this.onConnect(call),
      GetStatus: (call: grpc.ServerUnaryCall<unknown, RunStatus>, callback: grpc.sendUnaryData<RunStatus>) => {
        try {
          this.authenticate(bearerToken(call.metadata), call.getPeer(), 'GetStatus');
        } catch {
          callback({ code: grpc.status.UNAUTHENTICATED, details: AUTHENTICATION_FAILED_DETAILS }, null);
          return;
        }
        callback(null, this.status());
      },
    });
    this.health.addToServer(this.server);
  }

  async listen(): Promise<string> {
    if (this.state !== 'created') throw new IllegalStateError(`listen() in state ${this.state}`);
    // The run directory opens before the server, so that nothing a worker does goes unrecorded.
    const job = this.opts.prepared.loaded.spec;
    const dir = new RunDirectory(this.opts.outDir, this.opts.resume ? { resumeAfterStep: this.opts.resume.step } : {});
    this.dir = dir;
    if (dir.replacedPrevious) this.log.warn('replacing the files of an earlier run', { dir: dir.dir });
    dir.writeJob(jobToYaml(job));
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(this.opts.listen, serverCredentials(this.opts.tls), (err, p) => (err ? reject(err) : resolve(p))),
    );
    if (this.opts.tls) this.watchTls();
    const host = this.opts.listen.slice(0, this.opts.listen.lastIndexOf(':'));
    const address = `${host}:${port}`;
    this.state = 'serving';
    if (this.opts.resume) {
      this.log.info(`resumed at step ${this.opts.resume.step}`, { run: this.runId, of: job.training.steps, workers: this.minWorkers });
      this.event({ type: 'run-resumed', level: 'info', message: `run ${this.runId} resumed from step ${this.opts.resume.step}`, data: { runId: this.runId, step: this.opts.resume.step } });
    } else {
      this.event({ type: 'run-started', level: 'info', message: `run ${this.runId} started`, data: { runId: this.runId, steps: job.training.steps, aggregator: job.training.aggregator.name } });
    }
    this.setAccepting(true);
    this.log.info('listening', { address, run: this.runId, protocol: PROTOCOL_VERSION, tls: this.opts.tls !== undefined, token: this.tokenHash !== undefined });
    return address;
  }

  private onConnect(call: grpc.ServerDuplexStream<WorkerMessage__Output, OutgoingCoordinatorMessage>): void {
    const max = this.opts.maxSessions ?? DEFAULT_MAX_SESSIONS;
    if (this.openSessions.size >= max) {
      this.run.counters.sessionsRefused++;
      this.log.warn('refusing a connection: too many sessions', { peer: call.getPeer(), open: this.openSessions.size, max, refused: this.run.counters.sessionsRefused });
      const status = toGrpcStatus(new TooManySessionsError(`the coordinator is at its limit of ${max} sessions`));
      call.emit('error', { code: status.code, details: status.details });
      return;
    }
    if ((!this.tunedServer.tuned || !widenConnectionWindow(call)) && !this.untunedWarned) {
      this.untunedWarned = true;
      this.log.warn('could not widen the HTTP/2 receive windows for uploads (grpc-js internals changed?): gradient uploads will be slower');
    }
    if (!sendPreFramed(call) && !this.unframedWarned) {
      this.unframedWarned = true;
      this.log.warn('could not send weights pre-framed (grpc-js internals changed?): each worker\'s broadcast is copied once more');
    }
    // Authentication comes first: a peer without the token learns nothing, not even whether
    // the run is still going.
    const session = new WorkerSession(this.run.newWorkerId(), call.getPeer(), call, this.run, this.log.child('session'), { ...this.opts.sessionLimits, maxChunkBytes: MAX_CHUNK_BYTES }, (s, hello) => {
      this.authenticate(hello.token, s.peer, 'Hello');
      if (this.state !== 'serving') throw new IllegalStateError('this run is over');
    });
    this.openSessions.add(session);
    void session.done.then(() => this.openSessions.delete(session));
  }

  /**
   * A worker whose certificate is missing, not signed by our CA, or that speaks plaintext fails
   * in the TLS handshake, before any request: logged with its address and counted like a
   * refused token (`faults.tlsFailures`).
   */
  private watchTls(): void {
    const watched = watchTlsRefusals(this.server, ({ peer, reason, code }) => {
      this.run.counters.tlsFailures++;
      this.log.warn('TLS handshake failed', { peer, reason, ...(code ? { code } : {}), failures: this.run.counters.tlsFailures });
    });
    if (watched === 0) this.log.warn('cannot watch TLS handshakes (grpc-js internals changed?): failed ones are neither logged nor counted');
  }

  /** grpc.health.v1 and `ready` change together, so that gRPC and HTTP probes agree. */
  private setAccepting(accepting: boolean): void {
    this.accepting = accepting;
    const status = accepting ? 'SERVING' : 'NOT_SERVING';
    this.health.setStatus('', status);
    this.health.setStatus(SERVICE_NAME, status);
  }

  /** True while the coordinator serves its run and can take workers (listening, run not over). */
  get ready(): boolean {
    return this.accepting && this.state === 'serving';
  }

  /** The resolved job spec. */
  get job(): PreparedRun['loaded']['spec'] {
    return this.opts.prepared.loaded.spec;
  }

  get aggregatorName(): string {
    return this.opts.prepared.loaded.spec.training.aggregator.name;
  }

  /** Workers the run waits for before it trains. */
  get minWorkers(): number {
    return this.opts.minWorkers ?? 1;
  }

  /** Lifecycle state of the coordinator itself (the run's is in status().state). */
  get lifecycle(): CoordinatorState {
    return this.state;
  }

  /**
   * Throws AuthenticationError unless `presented` is the join token (or none is required).
   * Refusals are logged with the peer's address, never with what it sent, and counted.
   */
  private authenticate(presented: string | undefined, peer: string, what: string): void {
    if (this.tokenHash === undefined) return;
    if (presented !== undefined && presented !== '' && tokenMatches(this.tokenHash, presented)) return;
    const reason = presented === undefined || presented === '' ? 'no join token' : 'wrong join token';
    this.run.counters.authFailures++;
    this.log.warn('authentication failed', { peer, request: what, reason, failures: this.run.counters.authFailures });
    throw new AuthenticationError(reason);
  }

  status(): RunStatus {
    return {
      runId: this.runId,
      name: this.opts.prepared.loaded.spec.name,
      state: this.state === 'serving' ? this.run.currentState : this.state,
      step: this.run.currentStep,
      totalSteps: this.opts.prepared.loaded.spec.training.steps,
      weightsVersion: this.run.weightsVersion,
      workers: this.run.sessions.map((s) => ({
        workerId: s.id,
        name: s.name,
        backend: s.backend,
        state: s.state,
        unitsDone: s.unitsDone,
        meanUnitMs: s.meanUnitMs ?? 0,
      })),
      lastLosses: { ...this.run.losses },
      message: this.message,
      faults: { ...this.run.counters },
    };
  }

  /** Wall-clock time of the whole run so far: the earlier segments' (from the checkpoint resumed) plus this one's. */
  private wallMs(): number {
    const prior = this.opts.resume?.wallMs ?? 0;
    return prior + (this.segmentStart === undefined ? 0 : performance.now() - this.segmentStart);
  }

  private async saveCheckpoint(snapshot: RunSnapshot): Promise<void> {
    const started = performance.now();
    await this.checkpoints.save({
      ...snapshot,
      runId: this.runId,
      jobHash: this.jobHash,
      jobDir: this.opts.prepared.loaded.dir,
      minWorkers: this.minWorkers,
      wallMs: this.wallMs(),
      createdAt: new Date().toISOString(),
    });
    this.lastCheckpoint = snapshot.step;
    this.log.info('checkpoint saved', { step: snapshot.step, ms: Math.round(performance.now() - started) });
    this.event({ type: 'checkpoint', level: 'info', message: `checkpoint at step ${snapshot.step}`, data: { step: snapshot.step } });
  }

  private event(e: RunEvent): void {
    this.dir?.appendEvent({ time: new Date().toISOString(), ...e });
    this.telemetry.event(e);
    this.opts.onEvent?.(e);
  }

  /** Trains to the end, writes the run directory, tells the workers to leave. Never throws: the summary says how it went. */
  async runToCompletion(): Promise<RunSummary> {
    if (this.state !== 'serving') throw new IllegalStateError(`runToCompletion() in state ${this.state}`);
    const { prepared } = this.opts;
    const job = prepared.loaded.spec;
    this.segmentStart = performance.now();
    const dir = this.dir!;

    const { name: aggregatorName, ...aggregatorOptions } = job.training.aggregator;
    const base = {
      name: job.name,
      runId: this.runId,
      steps: job.training.steps,
      aggregator: { name: aggregatorName, ...aggregatorOptions },
      optimizer: { ...job.training.optimizer },
      seed: job.seed,
      parameters: prepared.layout.totalSize,
      outDir: dir.dir,
      ...(this.opts.resume ? { resumedFrom: this.opts.resume.step } : {}),
    };
    let summary: RunSummary;
    try {
      const outcome = await this.run.train();
      await saveTrainedModel(prepared, this.runId, outcome.params, dir.file('model'));
      const backends = [...new Set(outcome.workers.map((w) => w.backend))];
      const continual = this.run.continualSummary();
      summary = {
        ...base,
        status: 'succeeded',
        stepsCompleted: outcome.steps,
        wallTimeS: this.wallMs() / 1000,
        trainTimeS: outcome.trainMs / 1000,
        samplesPerS: outcome.samples / (outcome.trainMs / 1000),
        backend: backends.join(','),
        workers: outcome.workers.length,
        workerDetails: outcome.workers,
        tasks: Object.fromEntries(
          Object.entries(outcome.finalEval.tasks).map(([t, e]) => [t, { loss: e.loss, samples: e.samples, ...e.metrics }]),
        ),
        rejectedMessages: this.run.rejectedMessages,
        affinity: this.run.affinitySummary(),
        ...(continual ? { continual } : {}),
        faults: { ...this.run.counters },
      };
      this.state = 'finished';
      this.message = 'succeeded';
      this.log.info('run succeeded', { steps: outcome.steps, seconds: summary.wallTimeS.toFixed(1) });
    } catch (err) {
      const stopped = err instanceof MtlError && err.code === 'RUN_ABORTED';
      // Whatever ended the run, its state is the one after its last complete step (weights
      // change only at the end of a step): keep it, so that no finished work is lost.
      const snapshot = this.run.consistent ? this.run.snapshot() : undefined;
      if (snapshot && snapshot.step > 0 && snapshot.step !== this.lastCheckpoint) {
        try {
          await this.saveCheckpoint(snapshot);
        } catch (saveErr) {
          this.log.error('could not save a checkpoint', { error: errorMessage(saveErr) });
        }
      }
      summary = {
        ...base,
        status: stopped ? 'stopped' : 'failed',
        error: { code: err instanceof MtlError ? err.code : 'INTERNAL', message: errorMessage(err) },
        stepsCompleted: this.run.stepsCompleted,
        wallTimeS: this.wallMs() / 1000,
        backend: [...new Set(this.run.sessions.map((s) => s.backend))].join(','),
        workers: this.run.sessions.length,
        workerDetails: [],
        tasks: {},
        rejectedMessages: this.run.rejectedMessages,
        faults: { ...this.run.counters },
      };
      this.state = 'failed';
      this.message = errorMessage(err);
      this.log.error(stopped ? 'run stopped' : 'run failed', { error: errorMessage(err) });
    }
    this.event({
      type: `run-${summary.status}`,
      level: summary.status === 'succeeded' ? 'info' : 'error',
      message: summary.error ? `run ${summary.status}: ${summary.error.message}` : `run ${summary.status}`,
      data: { steps: summary.stepsCompleted, wallTimeS: summary.wallTimeS },
    });
    if (this.lastCheckpoint !== undefined) summary.lastCheckpoint = this.lastCheckpoint;
    dir.writeSummary(summary);
    this.setAccepting(false);
    await this.dismissWorkers(summary.status === 'succeeded' ? 'run finished' : `run ${summary.status}: ${summary.error?.message ?? ''}`, summary.status !== 'succeeded');
    dir.close(); // after the workers left, so that their departures are in events.jsonl
    return summary;
  }

  /** Asks the run to stop; runToCompletion() then resolves with status `stopped`. */
  stop(reason: string): void {
    this.run.abort(reason);
  }

  /** Ends the run with `error`; runToCompletion() then resolves with status `failed`. */
  fail(error: Error): void {
    this.run.fail(error);
  }

  private async dismissWorkers(reason: string, failed: boolean): Promise<void> {
    const sessions = this.run.sessions;
    await Promise.race([
      Promise.allSettled(
        sessions.map(async (s) => {
          await s.send({ shutdown: { reason, failed } });
          await s.end();
        }),
      ),
      new Promise((r) => setTimeout(r, 5000).unref()),
    ]);
  }

  /** Stops serving (idempotent): graceful shutdown, forced after a grace period. */
  close(graceMs = 3000): Promise<void> {
    this.accepting = false;
    this.closing ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    }).finally(() => {
      this.state = 'closed';
    });
    return this.closing;
  }
}
