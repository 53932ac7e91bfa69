// A worker process: starts its compute thread (which loads the backend and computes units, off
// this thread's event loop) once, then serves its coordinator session after session. A connection that breaks is retried with exponential backoff and jitter
// (each reconnection is a fresh session); Shutdown, leave() and close() end the worker.
import type * as grpc from '@grpc/grpc-js';
import { randomInt } from 'node:crypto';
import os from 'node:os';
import type { Welcome__Output } from '../proto/generated/mtl/v1/Welcome.js';
import { materializeData, type MaterializedData, type MaterializeOptions } from '../common/data-store/materialize.js';
import { remoteDataRefs } from '../common/data-store/urls.js';
import { errorMessage, IllegalStateError } from '../common/errors.js';
import { validateJob } from '../common/job-spec.js';
import { createLogger, type Logger } from '../common/logging.js';
import { protocol, WORKER_CHANNEL_OPTIONS } from '../common/protocol.js';
import { channelCredentials, type TlsMaterial } from '../common/security.js';
import type { BackendChoice } from './backend-choices.js';
import type { SelectedBackend } from './backend.js';
import { ComputeThread } from './compute-thread.js';
import { CoordinatorSession, type ComputeEnvironment, type SessionEnd } from './coordinator-session.js';
import { diagnoseTls } from './tls-probe.js';
import { BatchSharing } from './unit-compute.js';

export interface WorkerOptions {
  /** host:port of the coordinator (or resolveCoordinator). */
  coordinator?: string;
  /**
   * Finds the coordinator before every connection attempt (worker discovery through the run
   * registry): its address, or undefined when the run is over. May wait; aborted on stop.
   */
  resolveCoordinator?: (signal: AbortSignal) => Promise<string | undefined>;
  name?: string;
  backend?: BackendChoice;
  logger?: Logger;
  /** How long to keep trying to reach the coordinator the first time. Default 30 s. */
  connectTimeoutMs?: number;
  /** After a lost connection, how long to keep trying to get back (0: don't). Default 5 minutes. */
  reconnectTimeoutMs?: number;
  /** First and largest pause between reconnection attempts. Defaults 250 ms and 10 s. */
  backoffMs?: { initial: number; max: number };
  /**
   * Mutual TLS: the CA the coordinator's certificate must chain to, and our certificate and
   * key. Default: plaintext.
   */
  tls?: TlsMaterial;
  /** Join token sent in Hello. Default: none. */
  token?: string;
  /** Where a job's nats:// and http(s):// data comes from and is cached (fetched before its datasets load). */
  data?: MaterializeOptions;
}

export type WorkerState = 'created' | 'connecting' | 'ready' | 'reconnecting' | 'closing' | 'closed';

export interface WorkerExit {
  /** 0 after a normal Shutdown or leave(), 1 when the run failed or the coordinator stayed away. */
  code: number;
  reason: string;
}

/** Delay before reconnection attempt `attempt` (0-based): exponential, capped, with ±50% jitter. */
export function backoffDelay(attempt: number, initial: number, max: number, random: (n: number) => number = (n) => randomInt(n)): number {
  const base = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  // Jitter spreads the reconnections of many workers losing one coordinator at once. It is
  // the one randomness that may differ between runs: it never touches the training.
  return Math.round(base * (0.5 + random(1_000_000) / 1_000_000));
}

/** The clock a worker gives up on: the connect timeout until it first joins, then the reconnect budget after each loss. */
interface Budget {
  kind: 'connect' | 'reconnect';
  since: number;
  deadline: number;
}

/** The resolver was still looking for a coordinator when the budget ran out. */
const BUDGET_SPENT = Symbol('budget spent');

function gaveUp(budget: Budget, reason: string): WorkerExit {
  const seconds = Math.round((Date.now() - budget.since) / 1000);
  return {
    code: 1,
    reason:
      budget.kind === 'connect'
        ? `${reason}; gave up after ${seconds} s without joining the run (connect timeout)`
        : `${reason}; gave up reconnecting after ${seconds} s (reconnect timeout)`,
  };
}

export class Worker {
  private state: WorkerState = 'created';
  private readonly log: Logger;
  private readonly name: string;
  private backend: SelectedBackend | undefined;
  /** Where units are computed (tfjs runs there), off this thread's event loop. */
  private thread: ComputeThread | undefined;
  private client: grpc.Client | undefined;
  private session: CoordinatorSession | undefined;
  private environment: { key: string; env: ComputeEnvironment; data?: MaterializedData } | undefined;
  /** An environment being built (its remote data fetched, then loaded by the compute thread). */
  private preparing: { key: string; promise: Promise<ComputeEnvironment> } | undefined;
  private stopRequested: WorkerExit | undefined;
  private wakeUp: (() => void) | undefined;
  private closing: Promise<WorkerExit> | undefined;
  private readonly finished: Promise<WorkerExit>;
  private resolveFinished!: (exit: WorkerExit) => void;
  private exit: WorkerExit | undefined;
  private readonly aborter = new AbortController();
  /** Sessions served so far (1 + reconnections). */
  sessions = 0;

  constructor(private readonly options: WorkerOptions) {
    this.name = options.name ?? `${os.hostname()}-${process.pid}`;
    this.log = (options.logger ?? createLogger({ component: 'worker' })).child(this.name);
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
  }

  get currentState(): WorkerState {
    return this.state;
  }

  get unitsDone(): number {
    return this.session?.unitsDone ?? 0;
  }

  /** Serves the coordinator until the run ends, the worker is stopped, or the coordinator stays away. */
  async run(): Promise<WorkerExit> {
    if (this.state !== 'created') throw new IllegalStateError(`worker.run() called in state ${this.state}`);
    this.state = 'connecting';
    void this.loop().then(
      (exit) => this.finish(exit),
      (err: unknown) => this.finish({ code: 1, reason: errorMessage(err) }),
    );
    return this.finished;
  }

  private async loop(): Promise<WorkerExit> {
    // The compute thread loads the backend; this thread never runs tfjs.
    const started = await ComputeThread.start(this.options.backend ?? 'auto');
    if (this.state === 'closed') {
      await started.thread.terminate();
      return this.exit ?? { code: 0, reason: 'closed' };
    }
    this.thread = started.thread;
    this.backend = started.backend;
    for (const s of this.backend.skipped) this.log.debug('backend skipped', { provider: s.provider, reason: s.reason });
    this.log.info('backend ready', { backend: this.backend.name, device: this.backend.device, provider: this.backend.provider });
    const reconnectBudget = this.options.reconnectTimeoutMs ?? 300_000;
    const backoff = this.options.backoffMs ?? { initial: 250, max: 10_000 };
    const discovery = this.options.resolveCoordinator !== undefined;
    // One clock across every discovery lookup and connection attempt: the connect timeout from
    // the first address until a session joins, the reconnect budget from the moment a joined
    // session was lost. Only a session that joins stops it; failed attempts never restart it.
    let budget: Budget | undefined;
    let attempt = 0;
    let lastFailure: string | undefined;
    /** Why the coordinator stopped the run, while we look for where it goes on. */
    let stoppedRun: string | undefined;
    for (;;) {
      if (this.stopRequested) return this.stopRequested;
      const address = await this.address(budget?.deadline);
      if (this.stopRequested) return this.stopRequested;
      if (address === BUDGET_SPENT) return gaveUp(budget!, lastFailure ?? 'the run registry named no coordinator to reach');
      if (address === undefined) return stoppedRun !== undefined ? { code: 1, reason: stoppedRun } : { code: 0, reason: 'the run is over' };
      budget ??= { kind: 'connect', since: Date.now(), deadline: Date.now() + (this.options.connectTimeoutMs ?? 30_000) };
      // With discovery, a short attempt: the registry may name a new coordinator by the next one.
      const attemptDeadline = discovery ? Math.min(budget.deadline, Date.now() + 5000) : budget.deadline;
      const { end, joined } = await this.serveSession(address, attemptDeadline);
      if (this.stopRequested) return this.stopRequested;
      if (joined) {
        stoppedRun = undefined;
        attempt = 0;
      }
      if (end.kind === 'closed') return { code: end.code, reason: end.reason };
      if (end.kind === 'shutdown') {
        // A run that stopped without finishing may go on elsewhere (a coordinator handing its
        // job back, a retried attempt): with discovery, ask the registry before leaving.
        if (!end.failed || !discovery) return { code: end.failed ? 1 : 0, reason: end.reason };
        if (reconnectBudget <= 0) return { code: 1, reason: end.reason };
        this.log.info('the coordinator stopped the run; looking for where it goes on', { reason: end.reason });
        stoppedRun = end.reason;
        lastFailure = end.reason;
        budget = { kind: 'reconnect', since: Date.now(), deadline: Date.now() + reconnectBudget };
        attempt = 0;
        continue;
      }
      lastFailure = end.reason;
      if (joined) {
        if (reconnectBudget <= 0) return { code: 1, reason: `${end.reason}; not reconnecting (reconnect timeout 0)` };
        budget = { kind: 'reconnect', since: Date.now(), deadline: Date.now() + reconnectBudget };
      }
      if (Date.now() >= budget.deadline) return gaveUp(budget, end.reason);
      const delay = Math.min(backoffDelay(attempt++, backoff.initial, backoff.max), Math.max(0, budget.deadline - Date.now()));
      this.state = 'reconnecting';
      this.log.warn(budget.kind === 'connect' ? 'cannot reach the coordinator yet, retrying' : 'connection lost, reconnecting', {
        reason: end.reason,
        attempt,
        delayMs: delay,
        leftS: Math.max(0, Math.round((budget.deadline - Date.now()) / 1000)),
      });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = undefined;
    }
  }

  /**
   * The coordinator's address (undefined once the run is over), or BUDGET_SPENT when the
   * resolver was still looking at `deadline`.
   */
  private async address(deadline: number | undefined): Promise<string | undefined | typeof BUDGET_SPENT> {
    const resolve = this.options.resolveCoordinator;
    if (!resolve) {
      if (this.options.coordinator === undefined) throw new IllegalStateError('a worker needs a coordinator address or a way to find one');
      return this.options.coordinator;
    }
    if (deadline === undefined) return resolve(this.aborter.signal);
    const timeout = AbortSignal.timeout(Math.max(0, deadline - Date.now()));
    const address = await resolve(AbortSignal.any([this.aborter.signal, timeout]));
    return address === undefined && timeout.aborted && !this.aborter.signal.aborted ? BUDGET_SPENT : address;
  }

  /** Connects (until `deadline`) and serves one session to its end; `joined`: it got as far as a Welcome. */
  private async serveSession(address: string, deadline: number): Promise<{ end: SessionEnd; joined: boolean }> {
    let session: CoordinatorSession | undefined;
    let client: grpc.Client | undefined;
    try {
      const coordinator = new (protocol().mtl.v1.Coordinator)(address, channelCredentials(this.options.tls, address), WORKER_CHANNEL_OPTIONS);
      client = coordinator;
      this.client = coordinator;
      const unready = await new Promise<Error | undefined>((resolve) => coordinator.waitForReady(deadline, (err) => resolve(err)));
      if (unready) {
        const cause = this.stopRequested ? undefined : await diagnoseTls(address, this.options.tls);
        return { end: { kind: 'lost', reason: `cannot reach coordinator at ${address}: ${unready.message}${cause ? `; ${cause}` : this.tlsHint()}` }, joined: false };
      }
      if (this.stopRequested) return { end: { kind: 'closed', code: this.stopRequested.code, reason: this.stopRequested.reason }, joined: false };
      this.sessions++;
      session = new CoordinatorSession({
        call: coordinator.Connect(),
        name: this.name,
        backend: this.backend!,
        token: this.options.token,
        log: this.log,
        environment: (welcome) => this.environmentFor(welcome),
      });
      this.session = session;
      this.state = 'ready';
      const end = await session.start();
      return { end, joined: session.joined };
    } catch (err) {
      return { end: { kind: 'lost', reason: errorMessage(err) }, joined: session?.joined ?? false };
    } finally {
      client?.close();
      this.client = undefined;
    }
  }

  /** gRPC says only that it could not connect: name the settings that most often cause it. */
  private tlsHint(): string {
    return this.options.tls
      ? ' (with TLS: is the coordinator using TLS, is its certificate signed by --tls-ca and valid for this address, and is ours signed by the CA it trusts?)'
      : ' (if the coordinator uses TLS, give --tls-ca, --tls-cert and --tls-key)';
  }

  /**
   * The job's data, model and runner, built in the compute thread on the first Welcome and
   * reused by later sessions of the same job. A job with remote data fetches it first, here
   * (the thread reads the local copies). The session sends heartbeats meanwhile.
   */
  private environmentFor(welcome: Welcome__Output): ComputeEnvironment | Promise<ComputeEnvironment> {
    const key = `${welcome.jobDir}\u0000${welcome.jobJson}\u0000${welcome.modelJson}\u0000${welcome.dataPlanJson}`;
    if (this.environment?.key === key) return this.environment.env;
    // A session lost while the environment is on the way: the next one waits for the same.
    if (this.preparing?.key === key) return this.preparing.promise;
    const job = validateJob(JSON.parse(welcome.jobJson) as unknown, 'Welcome.job_json');
    const thread = this.thread;
    if (!thread) throw new IllegalStateError('a Welcome before the compute thread started');
    const promise = (async () => {
      const data = remoteDataRefs(job.tasks).length === 0 ? undefined : await materializeData(job, this.options.data ?? {});
      // The thread drops its current environment for this one, whether or not it loads.
      const previous = this.environment;
      this.environment = undefined;
      try {
        const ready = await thread
          .prepare({ jobJson: welcome.jobJson, jobDir: welcome.jobDir || process.cwd(), modelJson: welcome.modelJson, dataPlanJson: welcome.dataPlanJson, resolved: data ? [...data.paths] : [] })
          .finally(() => previous?.data?.release());
        const env: ComputeEnvironment = { job, layout: ready.layout, sharing: new BatchSharing(job, new Map(ready.sources), ready.fastPath), compute: thread };
        this.environment = { key, env, ...(data ? { data } : {}) };
        return env;
      } catch (err) {
        data?.release();
        throw err;
      }
    })().finally(() => {
      if (this.preparing?.promise === promise) this.preparing = undefined;
    });
    this.preparing = { key, promise };
    return promise;
  }

  /** Streamed datasets: what their chunk caches did (asked of the compute thread), and this process's peak memory (for people, tests and the data-rss bench). */
  private async logStreamedData(): Promise<void> {
    if (!this.thread || !this.environment) return;
    const timeout = new Promise<[]>((resolve) => setTimeout(() => resolve([]), 2000).unref());
    const reports = await Promise.race([this.thread.streamedStats().catch(() => []), timeout]);
    for (const r of reports) this.log.info('streamed data read', { data: r.data, scanned: r.scanned, ...r.stats, maxRssBytes: process.resourceUsage().maxRSS * 1024 });
  }

  private finish(exit: WorkerExit): void {
    this.exit ??= exit;
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.client?.close();
    // The worker has ended once its compute thread has (none is left behind).
    const ended = this.exit;
    void this.logStreamedData()
      .then(() => {
        this.environment?.data?.release();
        return this.thread?.terminate();
      })
      .then(() => this.resolveFinished(ended));
  }

  /**
   * Leaves the run gracefully (SIGTERM): the current unit is finished and sent, queued units
   * are handed back, and the worker ends with code 0. Idempotent.
   */
  leave(reason = 'leaving'): Promise<WorkerExit> {
    return this.stop({ code: 0, reason }, (session) => void session.leave(reason));
  }

  /** Stops now (idempotent): the session is cancelled, nothing more is sent. */
  close(code = 0, reason = 'closed'): Promise<WorkerExit> {
    return this.stop({ code, reason }, (session) => session.cancel(reason));
  }

  private stop(exit: WorkerExit, endSession: (session: CoordinatorSession) => void): Promise<WorkerExit> {
    this.closing ??= (async () => {
      this.stopRequested ??= exit;
      this.aborter.abort();
      if (this.state === 'created') {
        this.finish(exit);
        return this.finished;
      }
      if (this.state !== 'closed') this.state = 'closing';
      this.wakeUp?.();
      if (this.session) endSession(this.session);
      // Not connected yet: closing the client makes waitForReady give up at once.
      else this.client?.close();
      const timer = setTimeout(() => this.finish(this.stopRequested ?? exit), 10_000);
      timer.unref();
      const result = await this.finished;
      clearTimeout(timer);
      return result;
    })();
    return this.closing;
  }
}
