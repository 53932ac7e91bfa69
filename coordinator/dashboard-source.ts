// What the dashboard shows, independent of where it comes from: a live coordinator, or a
// finished run directory (mtl dashboard RUN_DIR). The HTTP server speaks only this interface.
import type { Coordinator } from './coordinator.js';
import { PrometheusMetrics } from './prometheus-metrics.js';
import type { EvalRecord, StepRecord } from './run-records.js';
import type { TimedEvent } from './run-telemetry.js';

export interface WorkerRow {
  id: string;
  name: string;
  backend: string;
  state: string;
  unitsDone: number;
  /** Mean unit compute time (ms); 0 before the first unit. */
  meanUnitMs: number;
}

export interface RunStatusView {
  runId: string;
  name: string;
  /** The run's state (waiting-for-workers, training, evaluating, finished, failed, succeeded, ...). */
  state: string;
  step: number;
  totalSteps: number;
  aggregator: string;
  tasks: string[];
  /** Each task's held-out metrics (job.tasks.<task>.metrics). */
  taskMetrics: Record<string, string[]>;
  workersRequired?: number;
  workers: WorkerRow[];
  /** Fault counters, rejected messages, bytes in/out. */
  counters: Record<string, number>;
  message?: string;
  /** False for a finished run directory: no live updates will come. */
  live: boolean;
  /** mtl serve: the pool whose current run this is (the page follows the pool from run to run). */
  pool?: string;
}

export interface RunView {
  status: RunStatusView;
  steps: readonly StepRecord[];
  evals: readonly EvalRecord[];
  events: readonly TimedEvent[];
  /** summary.json of a finished run. */
  summary?: unknown;
}

export type StreamMessage =
  | { type: 'step'; data: StepRecord }
  | { type: 'eval'; data: EvalRecord }
  | { type: 'event'; data: TimedEvent }
  | { type: 'status'; data: RunStatusView };

export interface MetricsExposition {
  readonly contentType: string;
  text(): Promise<string>;
}

export interface DashboardSource {
  view(): RunView;
  status(): RunStatusView;
  /** Records as they happen; returns the unsubscribe function. A finished run never calls it. */
  subscribe(listener: (message: StreamMessage) => void): () => void;
  /** /readyz: 200 when true. */
  ready(): boolean;
  /** /metrics, where there is a live run to measure. */
  readonly metrics?: MetricsExposition;
  close(): void;
}

/** The dashboard of a live coordinator: its telemetry, status and Prometheus registry. */
export class CoordinatorDashboardSource implements DashboardSource {
  readonly metrics: PrometheusMetrics;

  constructor(
    private readonly coordinator: Coordinator,
    options: { processMetrics?: boolean } = {},
  ) {
    this.metrics = new PrometheusMetrics(coordinator, options);
  }

  status(): RunStatusView {
    const c = this.coordinator;
    const s = c.status();
    const t = c.telemetry;
    return {
      runId: c.runId,
      name: c.job.name,
      state: s.state ?? c.lifecycle,
      step: c.run.currentStep,
      totalSteps: c.job.training.steps,
      aggregator: c.aggregatorName,
      tasks: Object.keys(c.job.tasks),
      taskMetrics: Object.fromEntries(Object.entries(c.job.tasks).map(([t, spec]) => [t, [...spec.metrics]])),
      workersRequired: c.minWorkers,
      // Connected workers, then those that have gone (so a finished run still shows who did what).
      workers: [
        ...c.run.sessions.map((w) => ({ id: w.id, name: w.name, backend: w.backend, state: w.state, unitsDone: w.unitsDone, meanUnitMs: w.meanUnitMs ?? 0 })),
        ...c.run.departedWorkers.map((w) => ({ id: w.id, name: w.name, backend: w.backend, state: 'gone', unitsDone: w.unitsDone, meanUnitMs: 0 })),
      ],
      counters: { ...c.run.counters, rejectedMessages: c.run.rejectedMessages, bytesReceived: t.bytesReceived, bytesSent: t.bytesSent, samples: t.samples },
      message: s.message ?? '',
      live: true,
    };
  }

  view(): RunView {
    return { status: this.status(), ...this.coordinator.telemetry.history() };
  }

  subscribe(listener: (message: StreamMessage) => void): () => void {
    return this.coordinator.telemetry.subscribe((m) => {
      if (m.type !== 'unit') listener(m);
    });
  }

  ready(): boolean {
    return this.coordinator.ready;
  }

  close(): void {
    this.metrics.close();
  }
}
