// A run directory as a dashboard source (mtl dashboard RUN_DIR): job.yaml, metrics.jsonl,
// eval.jsonl, events.jsonl and summary.json, read once. Nothing is live; an unfinished or
// crashed run shows what it had written.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { DashboardSource, RunStatusView, RunView, StreamMessage, WorkerRow } from './dashboard-source.js';
import type { EvalRecord, StepRecord } from './run-records.js';
import type { TimedEvent } from './run-telemetry.js';

/** The directory has none of the files a run writes. */
export class NotARunDirectoryError extends Error {
  override readonly name = 'NotARunDirectoryError';
  readonly code = 'NOT_A_RUN_DIRECTORY';
}

/** JSON lines of a file; a missing file is empty, a torn line (a crash mid-write) is skipped. */
export function jsonLines<T>(file: string): T[] {
  if (!existsSync(file)) return [];
  const out: T[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // Torn by a crash.
    }
  }
  return out;
}

interface SummaryFile {
  runId?: string;
  name?: string;
  status?: string;
  steps?: number;
  stepsCompleted?: number;
  workers?: number;
  aggregator?: { name?: string };
  workerDetails?: Array<{ id?: string; name?: string; backend?: string; unitsDone?: number }>;
  rejectedMessages?: number;
  faults?: Record<string, number>;
  error?: { message?: string };
}

interface JobFile {
  name?: string;
  tasks?: Record<string, { metrics?: string[] }>;
  training?: { steps?: number; aggregator?: { name?: string } };
}

export class RunDirectoryView implements DashboardSource {
  private readonly data: RunView;

  constructor(readonly dir: string) {
    const file = (name: string) => path.join(dir, name);
    if (!['job.yaml', 'metrics.jsonl', 'summary.json'].some((f) => existsSync(file(f)))) {
      throw new NotARunDirectoryError(`${dir}: not a run directory (no job.yaml, metrics.jsonl or summary.json)`);
    }
    const job = existsSync(file('job.yaml')) ? ((YAML.parse(readFileSync(file('job.yaml'), 'utf8')) ?? {}) as JobFile) : {};
    const summary = existsSync(file('summary.json')) ? (JSON.parse(readFileSync(file('summary.json'), 'utf8')) as SummaryFile) : undefined;
    const steps = jsonLines<StepRecord>(file('metrics.jsonl'));
    const evals = jsonLines<EvalRecord>(file('eval.jsonl'));
    const events = jsonLines<TimedEvent>(file('events.jsonl'));
    const last = steps[steps.length - 1];
    const workers: WorkerRow[] = (summary?.workerDetails ?? []).map((w) => ({
      id: w.id ?? '',
      name: w.name ?? '',
      backend: w.backend ?? '',
      state: 'done',
      unitsDone: w.unitsDone ?? 0,
      meanUnitMs: 0,
    }));
    const status: RunStatusView = {
      runId: summary?.runId ?? '',
      name: summary?.name ?? job.name ?? path.basename(dir),
      state: summary?.status ?? 'unfinished',
      step: summary?.stepsCompleted ?? last?.step ?? 0,
      totalSteps: summary?.steps ?? job.training?.steps ?? last?.step ?? 0,
      aggregator: summary?.aggregator?.name ?? job.training?.aggregator?.name ?? 'mean',
      tasks: Object.keys(job.tasks ?? last?.losses ?? {}),
      taskMetrics: Object.fromEntries(Object.entries(job.tasks ?? {}).map(([t, spec]) => [t, spec.metrics ?? []])),
      workers,
      counters: { ...(summary?.faults ?? last?.faults ?? {}), rejectedMessages: summary?.rejectedMessages ?? 0, samples: steps.reduce((s, r) => s + (r.samples ?? 0), 0) },
      message: summary?.error?.message ?? (summary ? '' : 'no summary.json: the run did not finish'),
      live: false,
    };
    this.data = { status, steps, evals, events, ...(summary ? { summary } : {}) };
  }

  view(): RunView {
    return this.data;
  }

  status(): RunStatusView {
    return this.data.status;
  }

  subscribe(_listener: (message: StreamMessage) => void): () => void {
    return () => undefined;
  }

  ready(): boolean {
    return true;
  }

  close(): void {}
}
