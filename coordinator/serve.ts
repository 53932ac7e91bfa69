// `mtl serve`: a pool of coordinators working through the MTL_JOBS queue. Each slot pulls one
// job, takes its lease in the run registry, resumes it from its latest checkpoint in the object
// store (if an earlier coordinator got that far), trains it, and acks (succeeded), terms
// (cancelled, or failed for good) or naks it (to be retried or resumed elsewhere). While a job
// runs its message is kept in progress (`working()`), so JetStream redelivers it only when this
// coordinator is gone; the lease makes sure a redelivered job never runs twice at once. Which
// failures are retried and which fail the job for good: job-outcome.ts.
import { AckPolicy, type Consumer, type JsMsg } from '@nats-io/jetstream';
import path from 'node:path';
import { ID_PATTERN, JOBS_STREAM, subjects, type ControlPlane } from '../common/control/plane.js';
import { decodeJobMessage, type JobMessage } from '../common/control/jobs.js';
import { RunRegistry, TERMINAL, type RunRecord } from '../common/control/registry.js';
import { publishRunResults } from '../common/data-store/run-results.js';
import { materializeData, type MaterializedData, type MaterializeOptions } from '../common/data-store/materialize.js';
import { ControlPlaneError, DataFetchError, LeaseHeldError, errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import { aggregatorNames } from './aggregation/registry.js';
import { jobHash, type CheckpointData } from './checkpoints.js';
import { Coordinator, type CoordinatorOptions } from './coordinator.js';
import type { RunSummary } from './run-summary.js';
import { notStarted, settle, type JobOutcome, type JobTurn } from './job-outcome.js';
import { claimRun, type ClaimOptions } from './run-claim.js';
import { NatsCheckpointStore } from './nats-checkpoints.js';
import { prepareRun, type PreparedRun } from './prepare-run.js';
import type { RunReporter } from './run-reporter.js';

/**
 * How long one pull from the queue waits for a job. stop() lets a pending pull run out rather
 * than abandon it (a job delivered to an abandoned pull would sit unseen until its ack wait;
 * one delivered to a stopping slot is handed back at once), so this is also how long an idle
 * server takes to stop: 1 s, the shortest JetStream accepts.
 */
const PULL_EXPIRES_MS = 1000;

export interface JobServerOptions {
  plane: ControlPlane;
  pool: string;
  /** Jobs trained at once. */
  concurrency: number;
  /** Interface the coordinators' gRPC servers bind to, and first port (0: any free port; slot i uses port + i). */
  listenHost: string;
  listenPort: number;
  /** Host name workers use to reach this process (written to the registry). */
  advertiseHost: string;
  /** Run directories go to `<outRoot>/<run id>`. */
  outRoot: string;
  /** A job starts training once this many workers have joined. */
  minWorkers: number;
  waitForWorkersMs: number;
  /** JetStream ack wait: how long a silent coordinator keeps its job before redelivery. */
  ackWaitMs: number;
  leaseMs: number;
  /** Deliveries before a job that keeps failing is given up (termed). */
  maxDeliver: number;
  owner: string;
  logger: Logger;
  /** Mutual TLS, join token and --insecure for every coordinator of this server (see CoordinatorOptions). */
  security?: Pick<CoordinatorOptions, 'tls' | 'token' | 'insecure'>;
  /** The cache for the jobs' nats:// and http(s):// data (nats:// data is read through `plane`). */
  data?: Omit<MaterializeOptions, 'nats' | 'logger'>;
  /** Called when a job has ended on this server (for the CLI's output). */
  onJobEnd?: (runId: string, outcome: JobOutcome, detail: string) => void;
}

/** The run id a queue message names, if it names a valid one ('' otherwise). */
function runIdOf(msg: JsMsg): string {
  try {
    const id = (JSON.parse(msg.string()) as { runId?: unknown }).runId;
    return typeof id === 'string' && ID_PATTERN.test(id) ? id : '';
  } catch {
    return '';
  }
}

export function consumerName(pool: string): string {
  return `mtl-serve-${pool}`;
}

export class JobServer {
  private stopping: string | undefined;
  private readonly active = new Map<string, Coordinator>();
  private registry: RunRegistry | undefined;
  private wake: Array<() => void> = [];
  private readonly log: Logger;

  constructor(private readonly opts: JobServerOptions) {
    this.log = opts.logger;
  }

  /** Coordinators of the runs training here now, oldest first (the dashboard shows the first). */
  get coordinators(): Coordinator[] {
    return [...this.active.values()];
  }

  /** False once stop() was called: no new jobs are taken. */
  get accepting(): boolean {
    return this.stopping === undefined;
  }

  /** Creates the stream and the pool's durable consumer where missing. */
  private async consumer(): Promise<Consumer> {
    const { plane, pool } = this.opts;
    await plane.ensureStreams();
    const config = {
      durable_name: consumerName(pool),
      filter_subject: subjects.jobs(pool),
      ack_policy: AckPolicy.Explicit,
      ack_wait: this.opts.ackWaitMs * 1e6,
      max_deliver: this.opts.maxDeliver,
      max_ack_pending: -1,
    };
    try {
      const info = await plane.jsm.consumers.info(JOBS_STREAM, config.durable_name);
      if (info.config.ack_wait !== config.ack_wait || info.config.max_deliver !== config.max_deliver) {
        await plane.jsm.consumers.update(JOBS_STREAM, config.durable_name, { ack_wait: config.ack_wait, max_deliver: config.max_deliver });
      }
    } catch {
      await plane.jsm.consumers.add(JOBS_STREAM, config).catch(async (err: unknown) => {
        // Another server created it in between.
        await plane.jsm.consumers.info(JOBS_STREAM, config.durable_name).catch(() => {
          throw err;
        });
      });
    }
    return plane.js.consumers.get(JOBS_STREAM, config.durable_name);
  }

  /** Serves until stop(): `concurrency` slots, each pulling and running one job at a time. */
  async run(): Promise<void> {
    this.registry = await RunRegistry.open(this.opts.plane);
    const consumer = await this.consumer();
    this.log.info('serving jobs', { pool: this.opts.pool, concurrency: this.opts.concurrency });
    await Promise.all(Array.from({ length: this.opts.concurrency }, (_, slot) => this.slot(consumer, slot)));
  }

  private async slot(consumer: Consumer, slot: number): Promise<void> {
    let lastWarning = 0;
    while (!this.stopping) {
      if (!this.opts.plane.connected) {
        await this.pause(1000); // outage: no intake
        continue;
      }
      let msg: JsMsg | null;
      try {
        msg = await consumer.next({ expires: PULL_EXPIRES_MS });
      } catch (err) {
        if (Date.now() - lastWarning > 30_000) {
          lastWarning = Date.now();
          this.log.warn('cannot pull from the job queue; retrying', { error: errorMessage(err) });
        }
        await this.pause(1000);
        continue;
      }
      if (!msg) continue;
      if (this.stopping) {
        msg.nak();
        break;
      }
      try {
        await this.handle(msg, slot);
      } catch (err) {
        await this.unhandled(msg, err);
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wake = this.wake.filter((w) => w !== wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wake.push(wake);
    });
  }

  /**
   * Something unforeseen went wrong with a job (the registry unreachable, say): back to the
   * queue, except on its last delivery, where JetStream would never deliver it again. Then it
   * is failed for good, loudly, and recorded in the registry if the registry can be reached.
   */
  private async unhandled(msg: JsMsg, err: unknown): Promise<void> {
    const deliveries = msg.info.deliveryCount;
    if (deliveries < this.opts.maxDeliver) {
      this.log.error('job handling failed; the job goes back to the queue', { error: errorMessage(err), seq: msg.seq });
      msg.nak(5000);
      return;
    }
    const why = `job handling failed on its last delivery (${deliveries} of ${this.opts.maxDeliver}): ${errorMessage(err)}`;
    this.log.error('giving a job up', { error: why, seq: msg.seq });
    const runId = runIdOf(msg);
    if (runId) await this.registry!.mutate(runId, (r) => ({ ...(r ?? this.stubRecord(runId)), status: 'failed', error: why, finishedAt: new Date().toISOString() })).catch(() => undefined);
    msg.term();
    this.end(runId || `seq ${msg.seq}`, 'failed', why);
  }

  private stubRecord(runId: string): RunRecord {
    return { runId, name: runId, pool: this.opts.pool, status: 'queued', step: 0, totalSteps: 0, workers: 0, attempts: 0, updatedAt: '' };
  }

  private end(runId: string, outcome: JobOutcome, detail: string): void {
    this.log.info(`job ${runId}: ${outcome}`, { detail });
    this.opts.onJobEnd?.(runId, outcome, detail);
  }

  private turn(msg: JsMsg, runId: string, reporter: RunReporter): JobTurn {
    return { msg, runId, reporter, maxDeliver: this.opts.maxDeliver, log: this.log, end: (outcome, detail) => this.end(runId, outcome, detail) };
  }

  private async handle(msg: JsMsg, slot: number): Promise<void> {
    const registry = this.registry!;
    let job: JobMessage;
    try {
      job = decodeJobMessage(msg.string(), { aggregatorNames });
    } catch (err) {
      // Nothing to run and nothing a retry could change.
      this.log.error('rejected a queue message', { error: errorMessage(err), seq: msg.seq });
      const runId = runIdOf(msg);
      if (runId) await registry.mutate(runId, (r) => ({ ...(r ?? this.stubRecord(runId)), status: 'failed', error: errorMessage(err) })).catch(() => undefined);
      msg.term();
      this.end(runId || `seq ${msg.seq}`, 'failed', errorMessage(err));
      return;
    }
    const { runId } = job;
    const record = await registry.get(runId);
    if (record && TERMINAL.has(record.status)) {
      // A duplicate delivery of a run that has ended (e.g. the ack was lost).
      if (record.status === 'succeeded') msg.ack();
      else msg.term();
      this.end(runId, 'skipped', `already ${record.status}`);
      return;
    }
    if (record?.cancelRequested) {
      await registry.mutate(runId, (r) => ({ ...r!, status: 'cancelled', finishedAt: new Date().toISOString() }));
      msg.term();
      this.end(runId, 'cancelled', 'cancelled before it started');
      return;
    }
    // Keep the message ours while we work on it (a dead coordinator stops doing this): from
    // fetching its data and the claim to the outcome, and cleared on every way out.
    const inProgress = setInterval(() => msg.working(), Math.max(500, Math.floor(this.opts.ackWaitMs / 3)));
    inProgress.unref();
    let prepared: PreparedRun;
    let data: MaterializedData | undefined;
    try {
      data = await materializeData(job.spec, { ...this.opts.data, nats: { plane: this.opts.plane }, logger: this.log.child('data') });
      prepared = prepareRun({ spec: job.spec, dir: job.jobDir, source: `job ${runId}` });
    } catch (err) {
      data?.release();
      clearInterval(inProgress);
      // Remote data out of reach for now: back to the queue (see unhandled), not failed for good.
      if (err instanceof DataFetchError || err instanceof ControlPlaneError) throw err;
      await registry.mutate(runId, (r) => ({ ...(r ?? { runId, status: 'queued', step: 0, workers: 0, attempts: 0, updatedAt: '', ...this.freshRecord(job) }), status: 'failed', error: errorMessage(err), finishedAt: new Date().toISOString() }));
      msg.term();
      this.end(runId, 'failed', errorMessage(err));
      return;
    }

    try {
      await this.claimAndRun(msg, slot, job, prepared);
    } finally {
      clearInterval(inProgress);
      data.release();
    }
  }

  private async claimAndRun(msg: JsMsg, slot: number, job: JobMessage, prepared: PreparedRun): Promise<void> {
    const { runId } = job;
    // Set once the coordinator exists; the reporter's callbacks may fire before that.
    const current: { coordinator?: Coordinator } = {};
    let stopReason: 'cancel' | 'lease' | undefined;
    let reporter: RunReporter;
    try {
      reporter = await this.claim({
        plane: this.opts.plane,
        registry: this.registry!,
        runId,
        // Per slot: a job redelivered to another slot of this same server must not pass the lease.
        owner: `${this.opts.owner}#${slot}`,
        leaseMs: this.opts.leaseMs,
        logger: this.log.child(runId),
        fresh: this.freshRecord(job),
        onCancel: () => {
          stopReason ??= 'cancel';
          current.coordinator?.stop('cancelled (mtl cancel)');
        },
        onLeaseLost: (reason) => {
          stopReason = 'lease';
          current.coordinator?.stop(`lease lost: ${reason}`);
        },
      });
    } catch (err) {
      // Its coordinator is alive somewhere (it kept renewing while we waited): try later.
      msg.nak(err instanceof LeaseHeldError ? Math.max(1000, Math.floor(this.opts.leaseMs / 2)) : 5000);
      this.end(runId, 'retry', errorMessage(err));
      return;
    }

    const checkpoints = new NatsCheckpointStore(this.opts.plane, runId, job.spec.checkpoint.keep);
    let resume: CheckpointData | undefined;
    try {
      resume = await checkpoints.loadLatest((name, reason) => this.log.warn('skipping a damaged checkpoint', { name, reason }));
    } catch (err) {
      return notStarted(this.turn(msg, runId, reporter), 'could not read checkpoints', err);
    }
    if (resume && resume.jobHash !== jobHash(job.spec)) {
      this.log.warn('ignoring checkpoints written by another job under this run id', { runId });
      resume = undefined;
    }
    if (resume) this.log.info('resuming from checkpoint', { runId, step: resume.step });

    const port = this.opts.listenPort === 0 ? 0 : this.opts.listenPort + slot;
    let coordinator: Coordinator;
    try {
      coordinator = new Coordinator({
        prepared,
        runId,
        listen: `${this.opts.listenHost}:${port}`,
        outDir: path.join(this.opts.outRoot, runId),
        resume,
        checkpoints,
        minWorkers: this.opts.minWorkers,
        waitForWorkersMs: this.opts.waitForWorkersMs,
        ...this.opts.security,
        logger: this.log.child(runId),
        onStep: (r) => reporter.step(r),
        onEval: (r) => reporter.evaluation(r),
        onEvent: (e) => reporter.event(e),
      });
    } catch (err) {
      // E.g. the checkpoint's optimizer or aggregator state does not fit the model.
      return notStarted(this.turn(msg, runId, reporter), resume ? `could not resume from the checkpoint at step ${resume.step}` : 'could not set the run up', err);
    }
    current.coordinator = coordinator;
    this.active.set(runId, coordinator);
    let outcome: { summary: RunSummary } | { startError: unknown };
    try {
      const address = await coordinator.listen();
      const advertised = `${this.opts.advertiseHost}:${address.slice(address.lastIndexOf(':') + 1)}`;
      reporter.update({ coordinator: advertised, outDir: path.resolve(this.opts.outRoot, runId), wantWorkers: this.opts.minWorkers });
      reporter.start();
      if (this.stopping) coordinator.stop(this.stopping);
      outcome = { summary: await coordinator.runToCompletion() };
    } catch (err) {
      // listen() failed (runToCompletion never throws): the port is taken, say.
      outcome = { startError: err };
    } finally {
      this.active.delete(runId);
      await coordinator.close();
    }
    if ('startError' in outcome) return notStarted(this.turn(msg, runId, reporter), `could not listen on ${this.opts.listenHost}:${port}`, outcome.startError);
    await publishRunResults(this.opts.plane, runId, path.resolve(this.opts.outRoot, runId), this.log.child('results'));
    await settle(this.turn(msg, runId, reporter), outcome.summary, stopReason, () => checkpoints.removeAll());
  }

  /**
   * claimRun, waiting while another coordinator holds the lease. A lease is taken over only
   * once this server has watched it go unrenewed for its whole length, so the wait happens
   * here, with the message kept in progress, rather than as redeliveries that would use up the
   * job's deliveries. A holder still renewing after twice the lease length is alive: LeaseHeldError.
   */
  private async claim(o: ClaimOptions): Promise<RunReporter> {
    const until = performance.now() + 2 * this.opts.leaseMs;
    for (;;) {
      try {
        return await claimRun(o);
      } catch (err) {
        if (!(err instanceof LeaseHeldError) || this.stopping || performance.now() >= until) throw err;
        await this.pause(Math.max(250, Math.floor(this.opts.leaseMs / 4)));
      }
    }
  }

  private freshRecord(job: JobMessage): ClaimOptions['fresh'] {
    return { name: job.spec.name, pool: job.pool, totalSteps: job.spec.training.steps, sweep: job.sweep, submittedAt: job.submittedAt };
  }

  /** Stops taking jobs; running ones stop at their current step, save a checkpoint and go back to the queue. */
  stop(reason: string): void {
    if (this.stopping) return;
    this.stopping = reason;
    for (const w of this.wake.splice(0)) w();
    for (const c of this.active.values()) c.stop(reason);
  }
}
