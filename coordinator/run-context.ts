// What the parts of a training run share (membership, phases, result intake, the update): the
// job and its layout, where logs, events and fault counters go, the clock, and how the run is
// stopped. One object, made by TrainingRun, handed to each part.
import type { Compression } from '../common/half-precision.js';
import type { JobSpec } from '../common/job-spec.js';
import type { Logger } from '../common/logging.js';
import type { ParameterLayout } from '../common/parameter-layout.js';
import type { FaultCounters } from './checkpoints.js';
import type { RunEvent } from './run-records.js';

export interface RunContext {
  readonly job: JobSpec;
  readonly layout: ParameterLayout;
  readonly log: Logger;
  /** Wall clock in ms (tests shrink time with it). */
  readonly clock: () => number;
  readonly counters: FaultCounters;
  /** transport.compression: how gradients arrive and weights leave. */
  readonly compression: Compression;
  /** The step the loop is at (for logs and events). */
  step(): number;
  /** True while the run trains or evaluates: a worker lost now is a death, units lost now go to others. */
  running(): boolean;
  /** Lifecycle and warning events (events.jsonl). */
  emit(event: RunEvent): void;
  /** Stops the run with `error`; the first failure wins. */
  fail(error: Error): void;
}
