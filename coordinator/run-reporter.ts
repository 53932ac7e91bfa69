// What a coordinator tells the control plane about its run: events and per-step metrics on
// mtl.runs.<run>.{events,metrics}, and its registry entry (status, address, step, losses,
// lease) refreshed every second. A NATS outage never stops the training: messages wait in a
// bounded buffer (the oldest are dropped past it, and counted) and go out after reconnecting;
// registry writes are skipped until then.
import { LeaseHeldError, errorMessage } from '../common/errors.js';
import { subjects, type ControlPlane } from '../common/control/plane.js';
import type { RunRecord, RunRegistry } from '../common/control/registry.js';
import type { Logger } from '../common/logging.js';
import type { EvalRecord, RunEvent, StepRecord } from './run-records.js';

/** Publishes to NATS, holding messages in a bounded FIFO while disconnected. */
export class BufferedPublisher {
  private readonly queue: Array<[string, string]> = [];
  /** Messages dropped because the buffer was full. */
  dropped = 0;
  /** Messages that waited in the buffer and were sent after a reconnect. */
  delivered = 0;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly plane: ControlPlane,
    private readonly limit = 10_000,
  ) {
    this.unsubscribe = plane.onConnectionChange((up) => {
      if (up) this.flush();
    });
  }

  get buffered(): number {
    return this.queue.length;
  }

  publish(subject: string, payload: string): void {
    if (this.queue.length === 0 && this.plane.connected) {
      try {
        this.plane.publish(subject, payload);
        return;
      } catch {
        // Closed or broken under us: keep it for later.
      }
    }
    if (this.queue.length >= this.limit) {
      this.queue.shift();
      this.dropped++;
    }
    this.queue.push([subject, payload]);
  }

  flush(): void {
    while (this.queue.length > 0 && this.plane.connected) {
      const [subject, payload] = this.queue[0]!;
      try {
        this.plane.publish(subject, payload);
      } catch {
        return;
      }
      this.queue.shift();
      this.delivered++;
    }
  }

  close(): void {
    this.flush();
    this.unsubscribe();
  }
}

export interface RunReporterOptions {
  plane: ControlPlane;
  registry: RunRegistry;
  runId: string;
  /** Lease owner id of this coordinator. */
  owner: string;
  leaseMs: number;
  logger: Logger;
  /** Registry refresh period. Default 1 s (at most leaseMs / 3). */
  intervalMs?: number;
  bufferLimit?: number;
  /** `mtl cancel` asked this run to stop. */
  onCancel?: () => void;
  /** Another coordinator owns the run now: stop without touching it. */
  onLeaseLost?: (reason: string) => void;
}

export class RunReporter {
  readonly publisher: BufferedPublisher;
  private pending: Partial<RunRecord> = {};
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private lost = false;
  private cancelSeen = false;
  private lastWarning = 0;
  private workers = 0;

  constructor(private readonly opts: RunReporterOptions) {
    this.publisher = new BufferedPublisher(opts.plane, opts.bufferLimit);
  }

  get leaseLost(): boolean {
    return this.lost;
  }

  get cancelRequested(): boolean {
    return this.cancelSeen;
  }

  event(e: RunEvent): void {
    this.publisher.publish(subjects.events(this.opts.runId), JSON.stringify({ time: new Date().toISOString(), runId: this.opts.runId, ...e }));
    if (e.type === 'checkpoint' && typeof e.data?.step === 'number') this.update({ lastCheckpoint: e.data.step });
    // Between steps (while waiting for workers, say) the worker count comes from the events.
    if (e.type === 'worker-joined') this.update({ workers: ++this.workers });
    if (e.type === 'worker-lost' || e.type === 'worker-left') this.update({ workers: (this.workers = Math.max(0, this.workers - 1)) });
  }

  step(record: StepRecord): void {
    this.publisher.publish(subjects.metrics(this.opts.runId), JSON.stringify({ time: new Date().toISOString(), runId: this.opts.runId, ...record }));
    this.workers = record.workers;
    this.update({ step: record.step, losses: record.losses, workers: record.workers });
  }

  evaluation(record: EvalRecord): void {
    this.update({ evaluation: Object.fromEntries(Object.entries(record.tasks).map(([t, e]) => [t, { loss: e.loss, ...e.metrics }])) });
  }

  /** Merged into the next registry write. */
  update(fields: Partial<RunRecord>): void {
    Object.assign(this.pending, fields);
  }

  /** Refreshes the registry entry and lease every interval until stop(). */
  start(): void {
    const every = Math.min(this.opts.intervalMs ?? 1000, Math.floor(this.opts.leaseMs / 3));
    this.timer = setInterval(() => {
      this.writing ??= this.write().finally(() => (this.writing = undefined));
    }, every);
    this.timer.unref();
  }

  private async write(): Promise<void> {
    if (this.lost || !this.opts.plane.connected) return;
    const fields = this.pending;
    this.pending = {};
    try {
      const r = await this.opts.registry.renew(this.opts.runId, this.opts.owner, this.opts.leaseMs, (r) => ({ ...r, ...fields, droppedEvents: this.publisher.dropped }));
      if (r.cancelRequested && !this.cancelSeen) {
        this.cancelSeen = true;
        this.opts.onCancel?.();
      }
    } catch (err) {
      if (err instanceof LeaseHeldError) {
        this.lost = true;
        this.opts.logger.error('lost the run lease: another coordinator has taken the run over', { error: err.message });
        this.opts.onLeaseLost?.(err.message);
        return;
      }
      this.pending = { ...fields, ...this.pending };
      if (Date.now() - this.lastWarning > 30_000) {
        this.lastWarning = Date.now();
        this.opts.logger.warn('could not update the run registry; will retry', { error: errorMessage(err) });
      }
    }
  }

  /** Stops the refresh and writes the final entry (releasing the lease). */
  async finish(final: (r: RunRecord) => RunRecord): Promise<RunRecord | undefined> {
    clearInterval(this.timer);
    await this.writing;
    this.publisher.close();
    if (this.lost) return undefined;
    const fields = this.pending;
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        return await this.opts.registry.release(this.opts.runId, this.opts.owner, (r) => final({ ...r, ...fields, droppedEvents: this.publisher.dropped }));
      } catch (err) {
        if (err instanceof LeaseHeldError || Date.now() > deadline) {
          this.opts.logger.error('could not write the final registry entry', { error: errorMessage(err) });
          return undefined;
        }
        // NATS may be coming back: try again shortly.
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Stops without a final write (the lease expires on its own). */
  abandon(): void {
    clearInterval(this.timer);
    this.publisher.close();
  }
}
