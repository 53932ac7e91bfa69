// The dashboard of `mtl serve`: one HTTP server for the whole pool, showing the oldest run
// training here now (with --concurrency > 1 the others are in `mtl status`). Between runs it
// shows an idle page; when the run ends, the live stream ends and the page reloads onto the next.
import type { Coordinator } from './coordinator.js';
import { CoordinatorDashboardSource, type DashboardSource, type MetricsExposition, type RunStatusView, type RunView, type StreamMessage } from './dashboard-source.js';
import { collectDefaultMetrics, Registry } from 'prom-client';

export interface PoolView {
  readonly coordinators: readonly Coordinator[];
  /** The pool takes new jobs. */
  readonly accepting: boolean;
}

export class PoolDashboardSource implements DashboardSource {
  private current: { coordinator: Coordinator; source: CoordinatorDashboardSource } | undefined;
  /** The process metrics, once for the pool (between runs, all there is). */
  private readonly idleRegistry = new Registry();
  readonly metrics: MetricsExposition;

  constructor(
    private readonly pool: PoolView,
    private readonly poolName: string,
  ) {
    collectDefaultMetrics({ register: this.idleRegistry });
    this.metrics = {
      contentType: this.idleRegistry.contentType,
      // The current run's series (if any) and the pool process's own metrics.
      text: async () => {
        const source = this.source();
        const [run, processText] = await Promise.all([source ? source.metrics.text() : Promise.resolve(''), this.idleRegistry.metrics()]);
        return run + processText;
      },
    };
  }

  /** The source of the oldest active run (created once per coordinator, closed when it is gone). */
  private source(): CoordinatorDashboardSource | undefined {
    const coordinator = this.pool.coordinators[0];
    if (this.current?.coordinator !== coordinator) {
      this.current?.source.close();
      // Each run's registry has no process metrics: those are the pool's, in the idle registry.
      this.current = coordinator ? { coordinator, source: new CoordinatorDashboardSource(coordinator, { processMetrics: false }) } : undefined;
    }
    return this.current?.source;
  }

  status(): RunStatusView {
    const source = this.source();
    if (source) return { ...source.status(), pool: this.poolName };
    return {
      runId: '',
      name: `mtl serve (pool ${this.poolName})`,
      state: this.pool.accepting ? 'idle' : 'stopping',
      step: 0,
      totalSteps: 0,
      aggregator: '',
      tasks: [],
      taskMetrics: {},
      workers: [],
      counters: {},
      message: 'no run is training here now',
      live: true,
      pool: this.poolName,
    };
  }

  view(): RunView {
    const source = this.source();
    if (source) return { ...source.view(), status: this.status() };
    return { status: this.status(), steps: [], evals: [], events: [] };
  }

  subscribe(listener: (message: StreamMessage) => void): () => void {
    return this.source()?.subscribe(listener) ?? (() => undefined);
  }

  /** Ready while the pool takes jobs (a run need not be training). */
  ready(): boolean {
    return this.pool.accepting;
  }

  close(): void {
    this.current?.source.close();
    this.current = undefined;
  }
}
