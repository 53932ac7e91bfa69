// What a coordinator has seen of its run, kept for the dashboard and /metrics: the step and
// evaluation records and events so far (bounded), gRPC payload bytes in and out, unit compute
// times, the last checkpoint. Listeners get each record as it happens (the dashboard's live
// stream). Pure bookkeeping: no I/O, nothing here changes the run.
import type { EvalRecord, RunEvent, StepRecord } from './run-records.js';
import type { UnitKindName } from './units.js';

/** Step records kept in memory; past this, older records are thinned to every other one. */
export const MAX_STEP_HISTORY = 20_000;
/** Events kept in memory (the newest). */
export const MAX_EVENT_HISTORY = 2_000;

export type TimedEvent = RunEvent & { time: string };

export interface UnitObservation {
  task: string;
  worker: string;
  kind: UnitKindName;
  computeMs: number;
}

export type TelemetryMessage =
  | { type: 'step'; data: StepRecord }
  | { type: 'eval'; data: EvalRecord }
  | { type: 'event'; data: TimedEvent }
  | { type: 'unit'; data: UnitObservation };

export type TelemetryListener = (message: TelemetryMessage) => void;

export class RunTelemetry {
  private steps: StepRecord[] = [];
  private readonly evals: EvalRecord[] = [];
  private readonly events: TimedEvent[] = [];
  private readonly listeners = new Set<TelemetryListener>();
  /** Serialised gRPC payload bytes of the Connect streams (message bodies, not HTTP/2 framing). */
  bytesReceived = 0;
  bytesSent = 0;
  samples = 0;
  /** Wall clock (ms) of the last checkpoint written, or undefined before the first. */
  lastCheckpointAtMs: number | undefined;
  lastCheckpointStep: number | undefined;
  /** Wall clock (ms) when this telemetry began (the coordinator's creation). */
  readonly startedAtMs: number;

  constructor(private readonly clock: () => number = Date.now) {
    this.startedAtMs = clock();
  }

  step(record: StepRecord): void {
    this.samples += record.samples;
    this.steps.push(record);
    // Thin rather than drop: the curves keep their whole span at half the resolution.
    if (this.steps.length > MAX_STEP_HISTORY) this.steps = this.steps.filter((_, i) => i % 2 === 1 || i === this.steps.length - 1);
    this.emit({ type: 'step', data: record });
  }

  evaluation(record: EvalRecord): void {
    this.evals.push(record);
    this.emit({ type: 'eval', data: record });
  }

  event(event: RunEvent): void {
    const timed: TimedEvent = { time: new Date(this.clock()).toISOString(), ...event };
    this.events.push(timed);
    if (this.events.length > MAX_EVENT_HISTORY) this.events.shift();
    if (event.type === 'checkpoint') {
      this.lastCheckpointAtMs = this.clock();
      const step = event.data?.step;
      if (typeof step === 'number') this.lastCheckpointStep = step;
    }
    this.emit({ type: 'event', data: timed });
  }

  unit(observation: UnitObservation): void {
    this.emit({ type: 'unit', data: observation });
  }

  /** Seconds since the last checkpoint, or since this run began when there has been none. */
  checkpointAgeSeconds(): number {
    return (this.clock() - (this.lastCheckpointAtMs ?? this.startedAtMs)) / 1000;
  }

  history(): { steps: readonly StepRecord[]; evals: readonly EvalRecord[]; events: readonly TimedEvent[] } {
    return { steps: [...this.steps], evals: [...this.evals], events: [...this.events] };
  }

  get lastStep(): StepRecord | undefined {
    return this.steps[this.steps.length - 1];
  }

  subscribe(listener: TelemetryListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(message: TelemetryMessage): void {
    for (const l of this.listeners) {
      try {
        l(message);
      } catch {
        // An observer's failure (a closed HTTP response) never reaches the run.
      }
    }
  }
}
