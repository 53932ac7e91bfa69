// The NATS commands: submit, serve, status, cancel, and worker discovery (watch: watch-command.ts).
// Each returns the process exit code (0 ok · 1 failed · 2 bad usage, invalid job or unknown run).
import type { MaterializeOptions } from '../common/data-store/materialize.js';
import type { DataFlags } from './data-options.js';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { expandSweep, newRunId, parseSweep, type JobMessage, type SweepAxis } from '../common/control/jobs.js';
import { ControlPlane, JOBS_STREAM, checkId, subjects } from '../common/control/plane.js';
import { newOwnerId, RunRegistry, TERMINAL, type RunRecord } from '../common/control/registry.js';
import { ControlPlaneError, JobSpecError, RunNotFoundError, errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import { aggregatorNames } from '../coordinator/aggregation/registry.js';
import { JobServer } from '../coordinator/serve.js';
import type { BackendChoice } from '../worker/backend.js';
import { pickRun, registryResolver } from '../worker/discovery.js';
import { Worker, type WorkerExit } from '../worker/worker.js';
import { isLoopbackHost, listenHost, type NatsSecurity } from '../common/security.js';
import { DashboardServer } from '../coordinator/http-server.js';
import { PoolDashboardSource } from '../coordinator/pool-dashboard-source.js';
import { listenAllowed, loadGrpcSecurity, loadNatsFlags, type GrpcSecurity, type GrpcSecurityFlags, type NatsSecurityFlags } from './security-options.js';
import { EXIT } from './exit-codes.js';


/** Prints why a control command failed; an unknown run or an unreachable control plane is a usage error. */
export function reportControlError(err: unknown): number {
  process.stderr.write(`${errorMessage(err)}\n`);
  return err instanceof RunNotFoundError || err instanceof ControlPlaneError ? EXIT.usage : EXIT.failed;
}

export interface NatsOptions extends NatsSecurityFlags {
  nats: string;
}

/** A connected control plane, or (after printing why not) the exit code: 2 for unusable TLS or credentials files, else 1. */
export async function connectOrReport(opts: NatsOptions, name: string, log: Logger, security?: NatsSecurity): Promise<ControlPlane | number> {
  const resolved = security ?? loadNatsFlags(opts);
  if (resolved === null) return EXIT.usage;
  try {
    return await ControlPlane.connect({ url: opts.nats, name, logger: log, security: resolved });
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n`);
    return EXIT.failed;
  }
}

export interface SubmitOptions extends NatsOptions {
  sweep: string[];
  pool: string;
  json: boolean;
}

/** `mtl submit`: one queued run per sweep point; prints their run ids. */
export async function submitCommand(jobFile: string, opts: SubmitOptions, log: Logger): Promise<number> {
  let axes: SweepAxis[];
  let points: ReturnType<typeof expandSweep>;
  const abs = path.resolve(jobFile);
  try {
    checkId('pool', opts.pool);
    axes = opts.sweep.map(parseSweep);
    let text: string;
    try {
      text = readFileSync(abs, 'utf8');
    } catch (err) {
      throw new JobSpecError(jobFile, [{ path: '', message: `cannot read job file: ${errorMessage(err)}` }]);
    }
    const doc = YAML.parseDocument(text, { uniqueKeys: true });
    if (doc.errors.length > 0) throw new JobSpecError(jobFile, doc.errors.map((e) => ({ path: '', message: `YAML ${e.code}: ${e.message.split('\n')[0] ?? ''}` })));
    points = expandSweep(doc.toJS(), jobFile, axes, { aggregatorNames });
  } catch (err) {
    if (err instanceof JobSpecError || err instanceof ControlPlaneError) {
      process.stderr.write(`${err.message}\n`);
      return EXIT.usage;
    }
    throw err;
  }
  const plane = await connectOrReport(opts, `mtl submit ${os.hostname()}`, log);
  if (typeof plane === 'number') return plane;
  try {
    await plane.ensureStreams();
    const registry = await RunRegistry.open(plane);
    const submitted: Array<{ runId: string; sweep: Record<string, unknown> }> = [];
    for (const point of points) {
      const runId = newRunId(point.spec.name);
      const message: JobMessage = { kind: 'mtl-job', version: 1, runId, spec: point.spec, jobDir: path.dirname(abs), pool: opts.pool, sweep: point.values, submittedAt: new Date().toISOString() };
      // Registered before it is queued, so a coordinator never pulls a run the registry lacks.
      await registry.create({ runId, name: point.spec.name, status: 'queued', pool: opts.pool, sweep: point.values, submittedAt: message.submittedAt, updatedAt: '', step: 0, totalSteps: point.spec.training.steps, workers: 0, attempts: 0 });
      let seq: number;
      try {
        seq = (await plane.js.publish(subjects.jobs(opts.pool), JSON.stringify(message), { msgID: runId })).seq;
      } catch (err) {
        // Not queued: say so in the registry rather than leave a run that never starts.
        await registry.mutate(runId, (r) => ({ ...r!, status: 'failed', error: `could not be queued: ${errorMessage(err)}` })).catch(() => undefined);
        throw err;
      }
      await registry.mutate(runId, (r) => ({ ...r!, queueSeq: seq }));
      submitted.push({ runId, sweep: point.values });
      if (opts.json) process.stdout.write(JSON.stringify({ runId, pool: opts.pool, sweep: point.values }) + '\n');
      else process.stdout.write(`${runId}${Object.keys(point.values).length ? `  ${Object.entries(point.values).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}` : ''}\n`);
    }
    if (!opts.json) process.stderr.write(`submitted ${submitted.length} run(s) to pool ${opts.pool}\n`);
    return EXIT.ok;
  } catch (err) {
    process.stderr.write(`submit failed: ${errorMessage(err)}\n`);
    return EXIT.failed;
  } finally {
    await plane.close();
  }
}

export interface ServeCommandOptions extends NatsOptions, GrpcSecurityFlags, Pick<DataFlags, 'cacheDir' | 'cacheMaxBytes'> {
  insecure: boolean;
  /** Plain HTTP on a non-loopback --http even with TLS on gRPC. */
  httpPlaintext?: boolean;
  concurrency: number;
  pool: string;
  listen: string;
  advertise?: string;
  outRoot: string;
  workers: number;
  waitForWorkers: number;
  ackWait: number;
  lease: number;
  maxDeliver: number;
  /** Dashboard of the pool's current run, /metrics, /healthz, /readyz. */
  http?: string;
}

/** `mtl serve`: a coordinator pool on the job queue until SIGINT/SIGTERM. */
export async function serveCommand(opts: ServeCommandOptions, log: Logger): Promise<number> {
  try {
    checkId('pool', opts.pool);
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n`);
    return EXIT.usage;
  }
  if (opts.lease * 1000 < 3000) {
    process.stderr.write('--lease must be at least 3 seconds\n');
    return EXIT.usage;
  }
  const security = loadGrpcSecurity(opts);
  if (!security || !listenAllowed(opts.listen, security, opts.insecure)) return EXIT.usage;
  const plane = await connectOrReport(opts, `mtl serve ${os.hostname()}`, log);
  if (typeof plane === 'number') return plane;
  const host = listenHost(opts.listen);
  if (isLoopbackHost(host)) {
    log.info(
      `coordinators listen on ${host}: only workers on this machine can join. For workers elsewhere, give --listen 0.0.0.0:PORT ` +
        'with --tls-ca, --tls-cert, --tls-key (mtl certs init DIR makes them) and --token-file, or add --insecure on a trusted network',
    );
  }
  const server = new JobServer({
    plane,
    pool: opts.pool,
    concurrency: opts.concurrency,
    listenHost: host,
    listenPort: Number(opts.listen.slice(opts.listen.lastIndexOf(':') + 1)),
    advertiseHost: opts.advertise ?? (host === '0.0.0.0' || host === '::' || host === '[::]' ? os.hostname() : host),
    outRoot: opts.outRoot,
    minWorkers: opts.workers,
    waitForWorkersMs: opts.waitForWorkers * 1000,
    ackWaitMs: opts.ackWait * 1000,
    leaseMs: opts.lease * 1000,
    maxDeliver: opts.maxDeliver,
    security: { ...security, insecure: opts.insecure },
    data: { ...(opts.cacheDir !== undefined ? { cacheDir: opts.cacheDir } : {}), ...(opts.cacheMaxBytes !== undefined ? { cacheMaxBytes: opts.cacheMaxBytes } : {}) },
    owner: newOwnerId(),
    logger: log,
    onJobEnd: (runId, outcome, detail) => process.stdout.write(`${runId} ${outcome}: ${detail}\n`),
  });
  let dashboard: DashboardServer | undefined;
  if (opts.http !== undefined) {
    try {
      dashboard = new DashboardServer({ listen: opts.http, insecure: opts.insecure || opts.httpPlaintext === true, source: new PoolDashboardSource(server, opts.pool), logger: log.child('http') });
      const url = await dashboard.start();
      process.stderr.write(`dashboard ${url}  (metrics ${url}metrics)\n`);
    } catch (err) {
      process.stderr.write(`cannot serve the dashboard on ${opts.http}: ${errorMessage(err)}\n`);
      await dashboard?.close();
      await plane.close();
      return EXIT.usage;
    }
  }
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) process.exit(sig === 'SIGINT' ? 130 : 143);
    log.warn(`received ${sig}: running jobs checkpoint and go back to the queue`);
    server.stop(`coordinator received ${sig}`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await server.run();
    return EXIT.ok;
  } catch (err) {
    process.stderr.write(`serve failed: ${errorMessage(err)}\n`);
    return EXIT.failed;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await dashboard?.close();
    await plane.close();
  }
}

function age(iso: string | undefined): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

function statusTable(runs: RunRecord[]): string {
  const rows = runs.map((r) => [
    r.runId,
    r.cancelRequested && !TERMINAL.has(r.status) ? `${r.status} (cancelling)` : r.status,
    `${r.step}/${r.totalSteps}`,
    String(r.workers),
    r.coordinator ?? '-',
    age(r.updatedAt),
    Object.entries(r.losses ?? {})
      .map(([t, l]) => `${t} ${l.toFixed(4)}`)
      .join(' '),
  ]);
  const head = ['RUN', 'STATUS', 'STEP', 'WORKERS', 'COORDINATOR', 'UPDATED', 'LOSS'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

/** `mtl status [RUN]`. */
export async function statusCommand(runId: string | undefined, opts: NatsOptions & { json: boolean }, log: Logger): Promise<number> {
  const plane = await connectOrReport(opts, 'mtl status', log);
  if (typeof plane === 'number') return plane;
  try {
    const registry = await RunRegistry.open(plane);
    if (runId === undefined) {
      const runs = await registry.list();
      if (opts.json) for (const r of runs) process.stdout.write(JSON.stringify(r) + '\n');
      else process.stdout.write(runs.length ? statusTable(runs) : 'no runs\n');
      return EXIT.ok;
    }
    const r = await registry.require(runId);
    if (opts.json) process.stdout.write(JSON.stringify(r) + '\n');
    else process.stdout.write(YAML.stringify(r));
    return EXIT.ok;
  } catch (err) {
    return reportControlError(err);
  } finally {
    await plane.close();
  }
}

/** `mtl cancel RUN`: a queued run is cancelled at once; a running one stops at its next step. */
export async function cancelCommand(runId: string, opts: NatsOptions, log: Logger): Promise<number> {
  const plane = await connectOrReport(opts, 'mtl cancel', log);
  if (typeof plane === 'number') return plane;
  try {
    const registry = await RunRegistry.open(plane);
    let seq: number | undefined;
    const r = await registry.mutate(runId, (r) => {
      if (!r) throw new RunNotFoundError(`no run ${runId} in the registry`);
      if (TERMINAL.has(r.status)) throw new ControlPlaneError(`run ${runId} has already ${r.status === 'cancelled' ? 'been cancelled' : r.status}`);
      if (r.status === 'queued' && r.lease === undefined) {
        seq = r.queueSeq;
        return { ...r, status: 'cancelled', cancelRequested: true, finishedAt: new Date().toISOString() };
      }
      return { ...r, cancelRequested: true };
    });
    // A queued run's message is removed too (a coordinator that pulls it anyway terms it).
    if (seq !== undefined) await plane.jsm.streams.deleteMessage(JOBS_STREAM, seq).catch(() => undefined);
    process.stdout.write(r.status === 'cancelled' ? `${runId} cancelled\n` : `${runId}: cancellation requested; its coordinator stops it at the next step\n`);
    return EXIT.ok;
  } catch (err) {
    return reportControlError(err);
  } finally {
    await plane.close();
  }
}

export interface DiscoveryWorkerOptions extends NatsOptions {
  run?: string;
  pool?: string;
  backend: BackendChoice;
  name?: string;
  connectTimeout: number;
  reconnectTimeout: number;
  /** TLS material and join token for the coordinators found. */
  security: GrpcSecurity;
  natsSecurity: NatsSecurity;
  /** Where the jobs' nats:// and http(s):// data comes from and is cached. */
  data?: MaterializeOptions;
}

/**
 * `mtl worker --nats URL --run RUN | --pool NAME`: finds coordinators in the registry. With
 * --run it serves that run and exits when it is over; with --pool it serves one run after
 * another until stopped.
 */
export async function discoveryWorkerCommand(opts: DiscoveryWorkerOptions, log: Logger, trap: (onStop: (graceful: boolean) => void) => () => void): Promise<number> {
  if ((opts.run === undefined) === (opts.pool === undefined)) {
    process.stderr.write('with --nats, give exactly one of --run RUN and --pool NAME\n');
    return EXIT.usage;
  }
  try {
    if (opts.run !== undefined) checkId('run id', opts.run);
    if (opts.pool !== undefined) checkId('pool', opts.pool);
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n`);
    return EXIT.usage;
  }
  const plane = await connectOrReport(opts, `mtl worker ${opts.name ?? os.hostname()}`, log, opts.natsSecurity);
  if (typeof plane === 'number') return plane;
  const registry = await RunRegistry.open(plane);
  const stop = new AbortController();
  let current: Worker | undefined;
  let graceful = true;
  const release = trap((g) => {
    graceful = g;
    stop.abort();
    if (current) void (g ? current.leave('stopping') : current.close(1, 'second signal'));
  });
  const makeWorker = (runId: string, waitWhileQueued: boolean) =>
    new Worker({
      resolveCoordinator: registryResolver({ registry, runId, logger: log, waitWhileQueued }),
      backend: opts.backend,
      name: opts.name,
      connectTimeoutMs: opts.connectTimeout * 1000,
      reconnectTimeoutMs: opts.reconnectTimeout * 1000,
      ...opts.security,
      ...(opts.data ? { data: opts.data } : {}),
      logger: log,
    });
  try {
    if (opts.run !== undefined) {
      current = makeWorker(opts.run, true);
      const exit = await current.run();
      if (exit.code !== 0) process.stderr.write(`worker stopped: ${exit.reason}\n`);
      return exit.code;
    }
    let last: WorkerExit = { code: 0, reason: 'stopped' };
    while (!stop.signal.aborted) {
      const run = await pickRun(registry, opts.pool!, stop.signal, log);
      if (!run || stop.signal.aborted) break;
      log.info('joining run', { run: run.runId, coordinator: run.coordinator ?? '' });
      current = makeWorker(run.runId, false);
      last = await current.run();
      current = undefined;
      log.info('left run', { run: run.runId, reason: last.reason });
    }
    return graceful ? EXIT.ok : last.code;
  } finally {
    release();
    await plane.close();
  }
}
