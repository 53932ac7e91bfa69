// The `mtl` commands: parse nothing, print little; each returns the process exit code.
// 0 success · 1 training failed · 2 bad usage or invalid job/data · 128+n stopped by signal n.
import path from 'node:path';
import { EXIT } from './exit-codes.js';
import { TrainerStatusReporter, trainerStatusTarget } from '../coordinator/trainer-status.js';
import { logger, SIGNAL_EXIT, trapSignals, type CommonOptions } from './command-support.js';
import { ControlPlaneError, DataFetchError, WorkerLostError, errorMessage } from '../common/errors.js';
import { Coordinator } from '../coordinator/coordinator.js';
import type { RunSummary } from '../coordinator/run-summary.js';
import { CoordinatorDashboardSource } from '../coordinator/dashboard-source.js';
import { DashboardServer } from '../coordinator/http-server.js';
import type { BackendChoice } from '../worker/backend.js';
import { NatsCheckpointStore } from '../coordinator/nats-checkpoints.js';
import { finishedRecord } from '../coordinator/run-claim.js';
import { publishRunResults } from '../common/data-store/run-results.js';
import { controlFlagsProblem, openControl, type ControlFlags, type RunControl } from './run-control.js';
import { LocalWorkers } from './local-workers.js';
import { ProgressReporter } from './progress.js';
import { setUpRun, type RunSetup, type RunSetupOptions } from './run-setup.js';
import { localWorkerData, materializeOptions, type DataFlags } from './data-options.js';
import { isLoopbackHost, listenHost, loadToken, newToken } from '../common/security.js';
import { listenAllowed, loadGrpcSecurity, loadNatsFlags, type GrpcSecurity, type GrpcSecurityFlags, type NatsSecurityFlags } from './security-options.js';

function printSummary(summary: RunSummary, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(summary) + '\n');
    return;
  }
  const lines = [`run ${summary.runId} ${summary.status} after ${summary.stepsCompleted}/${summary.steps} steps in ${summary.wallTimeS.toFixed(1)} s (${summary.workers} worker(s), backend ${summary.backend || 'n/a'})`];
  if (summary.error) lines.push(`  error: ${summary.error.message}`);
  for (const [task, m] of Object.entries(summary.tasks)) {
    const { samples: _s, ...values } = m;
    lines.push(`  ${task.padEnd(12)} ${Object.entries(values).map(([k, v]) => `${k} ${v.toFixed(4)}`).join('  ')}`);
  }
  if (summary.samplesPerS !== undefined) lines.push(`  throughput ${summary.samplesPerS.toFixed(0)} samples/s`);
  lines.push(`  run directory ${summary.outDir}`);
  process.stdout.write(lines.join('\n') + '\n');
}

interface ServeOptions extends CommonOptions, RunSetupOptions, NatsSecurityFlags, DataFlags, ControlFlags {
  json: boolean;
  quiet: boolean;
  /** Dashboard, /metrics, /healthz, /readyz on HOST:PORT (port 0: any free one). */
  http?: string;
}

interface ServePlan {
  listen: string;
  /** TLS material and join token of the coordinator (already checked against `listen`). */
  security: GrpcSecurity;
  insecure: boolean;
  /** Plain HTTP on a non-loopback --http even with TLS on gRPC (--http-plaintext). */
  httpPlaintext?: boolean;
  /** Workers to wait for (--workers); default: a resumed run's own count, else 1. */
  minWorkers?: number;
  waitForWorkersMs: number;
  /** Most Connect streams open at once (Coordinator default when absent). */
  maxSessions?: number;
  /** Starts `count` local workers once the coordinator listens (mtl run). */
  startWorkers?: (coordinator: Coordinator, address: string, count: number) => LocalWorkers;
}

/** Serves one job to completion: listen, train, write the run directory, print the summary. */
async function serveJob(jobFile: string | undefined, opts: ServeOptions, plan: ServePlan): Promise<number> {
  const flagsProblem = controlFlagsProblem(opts);
  if (flagsProblem !== undefined) {
    process.stderr.write(`${flagsProblem}\n`);
    return EXIT.usage;
  }
  const natsSecurity = opts.nats === undefined && opts.dataNats === undefined ? {} : loadNatsFlags(opts);
  if (natsSecurity === null) return EXIT.usage;
  let setup: RunSetup | undefined;
  try {
    // With --run-id, --out may hold this run's earlier segment (same job): a replaced pod's.
    setup = await setUpRun(jobFile, { ...opts, ...(opts.runId !== undefined ? { continueSameJob: true } : {}), data: materializeOptions(opts, logger('data', opts), { url: opts.nats, security: natsSecurity }) });
  } catch (err) {
    // The job's remote data could not be fetched: NATS or the web server is unreachable.
    if (!(err instanceof DataFetchError || err instanceof ControlPlaneError)) throw err;
    process.stderr.write(`${errorMessage(err)}\n`);
    return EXIT.failed;
  }
  if (!setup) return EXIT.usage;
  if (setup.kind === 'complete') {
    // Nothing to do: the run already reached its end. Its summary is printed as when it finished.
    process.stderr.write(`${setup.dir}: run ${setup.summary.runId} already succeeded (${setup.summary.stepsCompleted}/${setup.summary.steps} steps); nothing to resume\n`);
    printSummary(setup.summary as unknown as RunSummary, opts.json);
    return EXIT.ok;
  }
  const { prepared, outDir } = setup;
  const job = prepared.loaded.spec;
  const progress = new ProgressReporter(job.training.steps, process.stderr, !opts.quiet);
  const log = logger('coordinator', opts, progress);
  // Under Kubeflow Trainer, progress goes to the TrainJob's status as well.
  const trainerTarget = trainerStatusTarget();
  const trainerStatus = trainerTarget ? new TrainerStatusReporter(trainerTarget, { totalSteps: job.training.steps, logger: log.child('trainer-status') }) : undefined;
  let control: RunControl | undefined;
  if (opts.nats !== undefined) {
    const outcome = await openControl({ ...opts, nats: opts.nats }, job, plan.minWorkers ?? 1, log, () => coordinator, natsSecurity);
    if (outcome.kind === 'error') return EXIT[outcome.exit];
    if (outcome.kind === 'ended') {
      // A coordinator started again after its run ended (say, its pod replaced late): nothing to do.
      process.stderr.write(`run ${outcome.record.runId} already ${outcome.record.status} (${outcome.record.step}/${outcome.record.totalSteps} steps)${outcome.record.outDir ? `; run directory ${outcome.record.outDir}` : ''}: not started again\n`);
      return EXIT.ok;
    }
    control = outcome.control;
  }
  const checkpoint = setup.kind === 'resume' ? setup.checkpoint : control?.resume;
  const minWorkers = plan.minWorkers ?? checkpoint?.minWorkers ?? 1;
  let dashboard: DashboardServer | undefined;
  const coordinator: Coordinator = new Coordinator({
    prepared,
    listen: plan.listen,
    outDir,
    resume: checkpoint,
    minWorkers,
    waitForWorkersMs: plan.waitForWorkersMs,
    ...(plan.maxSessions !== undefined ? { maxSessions: plan.maxSessions } : {}),
    ...plan.security,
    insecure: plan.insecure,
    logger: log,
    ...(control ? { runId: control.runId, checkpoints: new NatsCheckpointStore(control.plane, control.runId, job.checkpoint.keep) } : {}),
    onStep: (r) => {
      progress.step(r);
      control?.reporter.step(r);
      trainerStatus?.step(r.step, r.losses);
    },
    onEval: (r) => {
      progress.evaluation(r);
      control?.reporter.evaluation(r);
    },
    onEvent: (e) => control?.reporter.event(e),
  });
  if (opts.http !== undefined) {
    // Before the gRPC port, so that /healthz answers (and /readyz says 503) while it opens.
    try {
      dashboard = new DashboardServer({ listen: opts.http, insecure: plan.insecure || plan.httpPlaintext === true, source: new CoordinatorDashboardSource(coordinator), logger: log.child('http') });
      const url = await dashboard.start();
      progress.clear();
      process.stderr.write(`dashboard ${url}  (metrics ${url}metrics)\n`);
    } catch (err) {
      process.stderr.write(`cannot serve the dashboard on ${opts.http}: ${errorMessage(err)}\n`);
      await dashboard?.close();
      await control?.reporter.finish((r) => ({ ...r, status: 'failed', error: `cannot serve the dashboard on ${opts.http}` }));
      await control?.plane.close();
      return EXIT.usage;
    }
  }
  let address: string;
  try {
    address = await coordinator.listen();
  } catch (err) {
    process.stderr.write(`cannot listen on ${plan.listen}: ${errorMessage(err)}\n`);
    await dashboard?.close();
    await control?.reporter.finish((r) => ({ ...r, status: 'failed', error: `cannot listen on ${plan.listen}` }));
    await control?.plane.close();
    return EXIT.usage;
  }
  control?.reporter.update({ coordinator: address, outDir: path.resolve(outDir), wantWorkers: minWorkers });
  control?.reporter.start();
  const workers = plan.startWorkers?.(coordinator, address, minWorkers);
  const signals = trapSignals(
    (sig) => {
      progress.clear();
      log.warn(`received ${sig}: stopping the run${workers ? ' and its workers' : ''}`);
      coordinator.stop(`interrupted by ${sig}`);
    },
    () => workers?.kill(),
  );
  let summary: RunSummary;
  try {
    summary = await coordinator.runToCompletion();
  } finally {
    progress.finish();
    await workers?.close();
    await coordinator.close();
    await dashboard?.close();
    signals.release();
  }
  if (control) {
    await publishRunResults(control.plane, control.runId, outDir, log);
    const status = summary.status === 'succeeded' ? 'succeeded' : summary.status === 'stopped' ? 'cancelled' : 'failed';
    await control.reporter.finish((r) => finishedRecord(r, summary, status, summary.error?.message));
    if (control.reporter.publisher.dropped > 0) log.warn('events dropped during a NATS outage', { dropped: control.reporter.publisher.dropped });
    await control.plane.close();
  }
  await trainerStatus?.finish({ succeeded: summary.status === 'succeeded' });
  printSummary(summary, opts.json);
  const sig = signals.signal();
  if (sig) return SIGNAL_EXIT[sig] ?? EXIT.failed;
  return summary.status === 'succeeded' ? EXIT.ok : EXIT.failed;
}

export interface RunCommandOptions extends ServeOptions {
  /** Local worker processes; default: a resumed run's own count, else 1. */
  workers?: number;
  backend: BackendChoice;
}

export function runCommand(jobFile: string | undefined, opts: RunCommandOptions): Promise<number> {
  if (opts.http !== undefined && !isLoopbackHost(listenHost(opts.http))) {
    // mtl run has no --insecure: its coordinator and HTTP endpoints stay on this machine.
    process.stderr.write(
      `mtl run: --http ${opts.http}: mtl run serves the dashboard and /metrics on a loopback address only (such as 127.0.0.1:8080), ` +
        'since they are plain HTTP without authentication. Reach it from elsewhere through an SSH tunnel (ssh -L 8080:127.0.0.1:8080 HOST) ' +
        'or kubectl port-forward, or train with `mtl coordinator JOB --listen HOST:PORT --http HOST:PORT` and `mtl worker` processes, ' +
        'which take TLS flags and --insecure\n',
    );
    return Promise.resolve(EXIT.usage);
  }
  // Local workers on loopback: no TLS (nothing crosses a network), but a fresh random join
  // token, handed to the workers in their environment, so that no other local user can join.
  // MTL_TOKEN, when set, is used instead, so that workers started elsewhere can join too.
  let token: string;
  try {
    token = loadToken(undefined) ?? newToken();
  } catch (err) {
    process.stderr.write(`mtl run: ${errorMessage(err)}\n`);
    return Promise.resolve(EXIT.usage);
  }
  return serveJob(jobFile, opts, {
    listen: '127.0.0.1:0',
    security: { token },
    insecure: false,
    minWorkers: opts.workers,
    waitForWorkersMs: 120_000,
    startWorkers: (coordinator, address, count) => {
      const data = localWorkerData(opts, opts.nats);
      const workers = new LocalWorkers({
        count,
        coordinator: address,
        backend: opts.backend,
        token,
        env: data.env,
        args: data.args,
        logLevel: opts.logLevel,
        onUnexpectedExit: (name, code, signal) => {
          const how = signal ?? `code ${code}`;
          if (!coordinator.run.started) {
            coordinator.fail(new WorkerLostError(`${name} exited (${how}) before joining the run`));
            return;
          }
          // The others carry on without it. Only when every local worker is gone and no other
          // worker has joined is there no one left to wait for.
          const local = new Set(workers.names);
          if (workers.running === 0 && !coordinator.run.sessions.some((s) => !local.has(s.name))) {
            coordinator.fail(new WorkerLostError(`all ${count} local worker(s) exited (the last, ${name}: ${how})`));
          }
        },
      });
      workers.start();
      return workers;
    },
  });
}

export interface CoordinatorCommandOptions extends ServeOptions, GrpcSecurityFlags {
  listen: string;
  /** Workers to wait for; default: a resumed run's own count, else 1. */
  workers?: number;
  waitForWorkers: number;
  insecure: boolean;
  httpPlaintext: boolean;
  maxSessions: number;
}

export async function coordinatorCommand(jobFile: string | undefined, opts: CoordinatorCommandOptions): Promise<number> {
  const security = loadGrpcSecurity(opts);
  if (!security || !listenAllowed(opts.listen, security, opts.insecure)) return EXIT.usage;
  return serveJob(jobFile, opts, {
    listen: opts.listen,
    security,
    insecure: opts.insecure,
    httpPlaintext: opts.httpPlaintext,
    minWorkers: opts.workers,
    waitForWorkersMs: opts.waitForWorkers * 1000,
    maxSessions: opts.maxSessions,
  });
}
