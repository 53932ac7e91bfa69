// /metrics of one coordinator in the Prometheus text format (prom-client). Each coordinator has
// its own registry, never the process-global default one, so several coordinators in one
// process (mtl serve, tests) do not collide. Most series are read from the run when scraped;
// unit and step times are histograms fed as they happen.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Coordinator } from './coordinator.js';

/** Seconds: from a 1 ms unit to a 2-minute step. */
const TIME_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const STEP_PHASES = ['units', 'compute', 'transfer', 'aggregate', 'optimize', 'broadcast', 'total'] as const;

export interface PrometheusMetricsOptions {
  /** Also the process metrics of prom-client (CPU, memory, event loop lag, GC). Default true. */
  processMetrics?: boolean;
}

export class PrometheusMetrics {
  readonly registry = new Registry();
  private readonly unsubscribe: () => void;

  constructor(coordinator: Coordinator, options: PrometheusMetricsOptions = {}) {
    const registers = [this.registry];
    const telemetry = coordinator.telemetry;
    const job = coordinator.job;
    this.registry.setDefaultLabels({ run_id: coordinator.runId });
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });

    const counter = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });

    new Gauge({
      name: 'mtl_run_info',
      help: 'Always 1; the labels describe the run.',
      labelNames: ['name', 'aggregator'],
      registers,
      collect() {
        this.set({ name: job.name, aggregator: coordinator.aggregatorName }, 1);
      },
    });
    new Gauge({
      name: 'mtl_run_state',
      help: '1 for the run\'s current state (waiting-for-workers, training, evaluating, finished, failed, ...).',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        this.set({ state: coordinator.status().state }, 1);
      },
    });
    gauge('mtl_ready', '1 while the coordinator serves its run and takes workers (as /readyz).', () => (coordinator.ready ? 1 : 0));
    counter('mtl_steps_completed_total', 'Synchronous training steps completed.', () => coordinator.run.stepsCompleted);
    gauge('mtl_steps', 'Training steps of the job.', () => job.training.steps);
    counter('mtl_samples_total', 'Training examples processed (all tasks) since this coordinator started.', () => telemetry.samples);
    new Gauge({
      name: 'mtl_task_loss',
      help: 'Training loss of each task at the last step.',
      labelNames: ['task'],
      registers,
      collect() {
        this.reset();
        for (const [task, loss] of Object.entries(coordinator.run.losses)) this.set({ task }, loss);
      },
    });
    new Gauge({
      name: 'mtl_task_weight',
      help: 'Aggregator weight of each task at the last step (NaN where the method has none).',
      labelNames: ['task'],
      registers,
      collect() {
        this.reset();
        for (const [task, w] of Object.entries(telemetry.lastStep?.aggregatorWeights ?? {})) this.set({ task }, w);
      },
    });
    new Gauge({
      name: 'mtl_eval_metric',
      help: 'Held-out loss and metrics of each task at the last evaluation.',
      labelNames: ['task', 'metric'],
      registers,
      collect() {
        this.reset();
        const evals = telemetry.history().evals;
        const last = evals[evals.length - 1];
        for (const [task, e] of Object.entries(last?.tasks ?? {})) {
          this.set({ task, metric: 'loss' }, e.loss);
          for (const [metric, v] of Object.entries(e.metrics)) this.set({ task, metric }, v);
        }
      },
    });
    const unitSeconds = new Histogram({
      name: 'mtl_unit_compute_seconds',
      help: 'Compute time of each work unit, as reported by its worker.',
      labelNames: ['kind'],
      buckets: TIME_BUCKETS,
      registers,
    });
    const stepSeconds = new Histogram({ name: 'mtl_step_seconds', help: 'Wall time of each training step.', buckets: TIME_BUCKETS, registers });
    new Gauge({
      name: 'mtl_step_phase_seconds',
      help: 'Time breakdown of the last step (units, compute, transfer, aggregate, optimize, broadcast, total).',
      labelNames: ['phase'],
      registers,
      collect() {
        this.reset();
        const t = telemetry.lastStep?.timeMs;
        if (t) for (const phase of STEP_PHASES) this.set({ phase }, t[phase] / 1000);
      },
    });
    gauge('mtl_workers', 'Workers connected to the run (past their Hello).', () => coordinator.run.sessions.filter((s) => s.state === 'ready').length);
    gauge('mtl_workers_required', 'Workers the run waits for before it trains.', () => coordinator.minWorkers);
    counter('mtl_worker_deaths_total', 'Workers declared dead or whose connection broke.', () => coordinator.run.counters.deaths);
    counter('mtl_worker_departures_total', 'Workers that left on purpose.', () => coordinator.run.counters.departures);
    counter('mtl_reassigned_units_total', 'Units given to another worker.', () => coordinator.run.counters.reassignedUnits);
    counter('mtl_backup_units_total', 'Backup copies of slow units.', () => coordinator.run.counters.backupUnits);
    counter('mtl_rejected_messages_total', 'Worker messages rejected by validation (never applied).', () => coordinator.run.rejectedMessages);
    counter('mtl_auth_failures_total', 'Connections refused for a missing or wrong join token.', () => coordinator.run.counters.authFailures);
    counter('mtl_tls_failures_total', 'TLS handshakes that failed at the gRPC port (client certificate missing or not signed by the CA, plaintext client).', () => coordinator.run.counters.tlsFailures);
    counter('mtl_received_bytes_total', 'Serialised gRPC message bytes received from workers.', () => telemetry.bytesReceived);
    counter('mtl_sent_bytes_total', 'Serialised gRPC message bytes sent to workers.', () => telemetry.bytesSent);
    gauge('mtl_checkpoint_age_seconds', 'Seconds since the last checkpoint (since the coordinator started, before the first).', () => telemetry.checkpointAgeSeconds());
    gauge('mtl_checkpoint_step', 'Step of the last checkpoint (-1: none yet).', () => telemetry.lastCheckpointStep ?? -1);

    this.unsubscribe = telemetry.subscribe((m) => {
      if (m.type === 'unit') unitSeconds.observe({ kind: m.data.kind }, m.data.computeMs / 1000);
      else if (m.type === 'step') stepSeconds.observe(m.data.timeMs.total / 1000);
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Stops observing the run. */
  close(): void {
    this.unsubscribe();
  }
}
