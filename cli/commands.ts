// The `mtl` commands: parse nothing, print little; each returns the process exit code.
// 0 success · 1 training failed · 2 bad usage or invalid job/data · 128+n stopped by signal n.
import path from 'node:path';
import { DatasetError, JobSpecError, WorkerLostError, errorMessage } from '../common/errors.js';
import { loadJobFile, withAggregator } from '../common/job-spec.js';
import { createLogger, type LogFormat, type Logger, type LogLevel } from '../common/logging.js';
import { aggregatorNames } from '../coordinator/aggregation/registry.js';
import { Coordinator, type RunSummary } from '../coordinator/coordinator.js';
import { prepareRun, type PreparedRun } from '../coordinator/prepare-run.js';
import type { BackendChoice } from '../worker/backend.js';
import { Worker } from '../worker/worker.js';
import { LocalWorkers } from './local-workers.js';
import { ProgressReporter } from './progress.js';

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

export interface CommonOptions {
  logLevel?: LogLevel;
  logFormat?: LogFormat;
}

function logger(component: string, opts: CommonOptions, progress?: ProgressReporter): Logger {
  return createLogger({
    component,
    level: opts.logLevel,
    format: opts.logFormat,
    around: progress ? { before: () => progress.clear(), after: () => progress.redraw() } : undefined,
  });
}

/** Loads and checks a job; prints every problem and returns undefined when it is invalid. */
export interface JobOverrides {
  /** Replaces training.aggregator (mtl run --aggregator). */
  aggregator?: string;
}

function prepare(jobFile: string, overrides: JobOverrides = {}): PreparedRun | undefined {
  try {
    const loaded = loadJobFile(jobFile, { aggregatorNames });
    if (overrides.aggregator !== undefined) loaded.spec = withAggregator(loaded.spec, overrides.aggregator);
    return prepareRun(loaded);
  } catch (err) {
    if (err instanceof JobSpecError) {
      process.stderr.write(`${err.message}\n`);
      return undefined;
    }
    if (err instanceof DatasetError) {
      process.stderr.write(`${jobFile}: data error: ${err.message}\n`);
      return undefined;
    }
    throw err;
  }
}

function defaultOutDir(name: string): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return path.join('runs', `${name}-${t}`);
}

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

/** Runs `body` until done or until SIGINT/SIGTERM; `onSignal` asks it to stop. Returns the signal, if any. */
function trapSignals(onSignal: (signal: NodeJS.Signals) => void, onSecond: () => void): { signal: () => NodeJS.Signals | undefined; release: () => void } {
  let received: NodeJS.Signals | undefined;
  const handler = (sig: NodeJS.Signals) => {
    if (received) {
      onSecond();
      process.exit(SIGNAL_EXIT[sig] ?? 1);
    }
    received = sig;
    onSignal(sig);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: () => received,
    release: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

interface ServeOptions extends CommonOptions, JobOverrides {
  out?: string;
  json: boolean;
  quiet: boolean;
}

interface ServePlan {
  listen: string;
  minWorkers: number;
  waitForWorkersMs: number;
  /** Starts local workers once the coordinator listens (mtl run). */
  startWorkers?: (coordinator: Coordinator, address: string) => LocalWorkers;
}

/** Serves one job to completion: listen, train, write the run directory, print the summary. */
async function serveJob(jobFile: string, opts: ServeOptions, plan: ServePlan): Promise<number> {
  const prepared = prepare(jobFile, opts);
  if (!prepared) return EXIT.usage;
  const job = prepared.loaded.spec;
  const progress = new ProgressReporter(job.training.steps, process.stderr, !opts.quiet);
  const log = logger('coordinator', opts, progress);
  const coordinator = new Coordinator({
    prepared,
    listen: plan.listen,
    outDir: opts.out ?? defaultOutDir(job.name),
    minWorkers: plan.minWorkers,
    waitForWorkersMs: plan.waitForWorkersMs,
    logger: log,
    onStep: (r) => progress.step(r),
    onEval: (r) => progress.evaluation(r),
  });
  let address: string;
  try {
    address = await coordinator.listen();
  } catch (err) {
    process.stderr.write(`cannot listen on ${plan.listen}: ${errorMessage(err)}\n`);
    return EXIT.usage;
  }
  const workers = plan.startWorkers?.(coordinator, address);
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
    signals.release();
  }
  printSummary(summary, opts.json);
  const sig = signals.signal();
  if (sig) return SIGNAL_EXIT[sig] ?? EXIT.failed;
  return summary.status === 'succeeded' ? EXIT.ok : EXIT.failed;
}

export interface RunCommandOptions extends ServeOptions {
  workers: number;
  backend: BackendChoice;
}

export function runCommand(jobFile: string, opts: RunCommandOptions): Promise<number> {
  return serveJob(jobFile, opts, {
    listen: '127.0.0.1:0',
    minWorkers: opts.workers,
    waitForWorkersMs: 120_000,
    startWorkers: (coordinator, address) => {
      const workers = new LocalWorkers({
        count: opts.workers,
        coordinator: address,
        backend: opts.backend,
        logLevel: opts.logLevel,
        onUnexpectedExit: (name, code, signal) => {
          if (coordinator.run.currentState === 'waiting-for-workers') {
            coordinator.fail(new WorkerLostError(`${name} exited (${signal ?? `code ${code}`}) before joining the run`));
          }
        },
      });
      workers.start();
      return workers;
    },
  });
}

export interface CoordinatorCommandOptions extends ServeOptions {
  listen: string;
  workers: number;
  waitForWorkers: number;
}

export function coordinatorCommand(jobFile: string, opts: CoordinatorCommandOptions): Promise<number> {
  return serveJob(jobFile, opts, { listen: opts.listen, minWorkers: opts.workers, waitForWorkersMs: opts.waitForWorkers * 1000 });
}

export interface WorkerCommandOptions extends CommonOptions {
  coordinator: string;
  backend: BackendChoice;
  name?: string;
  connectTimeout: number;
  exitWithParent: boolean;
}

export async function workerCommand(opts: WorkerCommandOptions): Promise<number> {
  const worker = new Worker({
    coordinator: opts.coordinator,
    backend: opts.backend,
    name: opts.name,
    connectTimeoutMs: opts.connectTimeout * 1000,
    logger: logger('worker', opts),
  });
  if (opts.exitWithParent) {
    // Our parent (mtl run) holds the other end of stdin: when it dies, the pipe closes.
    process.stdin.on('end', () => void worker.close(1, 'parent process exited'));
    process.stdin.on('error', () => void worker.close(1, 'parent process exited'));
    process.stdin.resume();
  }
  const signals = trapSignals(
    (sig) => void worker.close(SIGNAL_EXIT[sig] ?? 1, `terminated by ${sig}`),
    () => undefined,
  );
  const exit = await worker.run();
  signals.release();
  if (exit.code !== 0) process.stderr.write(`worker ${opts.name ?? ''} stopped: ${exit.reason}\n`);
  return exit.code;
}

export function validateCommand(jobFile: string, json: boolean): number {
  const prepared = prepare(jobFile);
  if (!prepared) return EXIT.usage;
  const { layout, loaded, testSizes, bindings } = prepared;
  const info = {
    job: loaded.spec.name,
    tasks: Object.fromEntries([...bindings].map(([t, b]) => [t, { dataset: b.dataset.description, target: b.target, train: b.dataset.train.size, test: testSizes.get(t) }])),
    inputShape: layout.inputShape,
    parameters: { total: layout.totalSize, shared: layout.shared.size, heads: Object.fromEntries([...layout.headGroups].map(([t, g]) => [t, g.size])) },
  };
  if (json) process.stdout.write(JSON.stringify(info) + '\n');
  else {
    process.stdout.write(`${jobFile}: valid\n`);
    process.stdout.write(`  input [${layout.inputShape.join(', ')}], ${layout.totalSize} parameters (${layout.shared.size} shared)\n`);
    for (const [t, v] of Object.entries(info.tasks)) process.stdout.write(`  task ${t} (target ${v.target}): ${v.dataset}\n`);
  }
  return EXIT.ok;
}
