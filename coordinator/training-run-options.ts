// What a training run is given (TrainingRunOptions), where a resumed run continues from, what
// a checkpoint holds of it, and the states it goes through.
import type { JobSpec } from '../common/job-spec.js';
import type { Logger } from '../common/logging.js';
import type { Optimizer, OptimizerState } from '../common/optimizers.js';
import type { ParameterLayout } from '../common/parameter-layout.js';
import type { Aggregator } from './aggregation/types.js';
import type { CheckpointExtras, FaultCounters } from './checkpoints.js';
import type { UnitObserver } from './result-intake.js';
import type { EvalRecord, RunEvent, StepRecord } from './run-records.js';
import type { AffinityState } from './task-affinity.js';

export type RunState = 'created' | 'waiting-for-workers' | 'training' | 'evaluating' | 'finished' | 'failed';

/** Where a resumed run continues from (params, optimizer and aggregator state are restored by the caller). */
export interface ResumePoint {
  step: number;
  version: number;
  samples: number;
  trainMs: number;
  counters: FaultCounters;
  /** Running sums of the affinity diagnostics, so the run's mean covers every step. */
  affinity?: AffinityState;
  /** Sequential mode: stages finished, their evaluations, and the forgetting penalties' arrays. */
  extras?: CheckpointExtras;
}

/** Everything needed to continue the run exactly: taken only between steps. */
export interface RunSnapshot extends ResumePoint {
  params: Float32Array;
  optimizer: OptimizerState;
  aggregator: unknown;
}

export interface TrainingRunOptions {
  job: JobSpec;
  jobDir: string;
  /** Welcome.data_plan_json: the plans of the streamed datasets (empty: none). */
  dataPlans?: string;
  runId: string;
  layout: ParameterLayout;
  initialParams: Float32Array;
  aggregator: Aggregator;
  optimizer: Optimizer;
  /** Size of each task's held-out split. */
  testSizes: ReadonlyMap<string, number>;
  /** Size of each task's training split (Fisher units of sequential mode); default: large enough. */
  trainSizes?: ReadonlyMap<string, number>;
  logger: Logger;
  /** Training starts once this many workers have joined. */
  minWorkers: number;
  /** How long to wait for workers (at the start, or when all have gone) before failing. */
  waitForWorkersMs: number;
  maxChunkBytes?: number;
  /** Continue from a checkpoint instead of step 0. */
  resume?: ResumePoint;
  /** Called every `job.checkpoint.every` steps with a snapshot to store. */
  saveCheckpoint?: (snapshot: RunSnapshot) => Promise<void>;
  /** Wall clock in ms (tests shrink time with it). */
  clock?: () => number;
  onStep?: (record: StepRecord) => void;
  onEval?: (record: EvalRecord) => void;
  onStateChange?: (state: RunState) => void;
  /** Observes each step's combined per-task gradients (trunk then head) before aggregation. */
  onTaskGradients?: (step: number, grads: ReadonlyMap<string, Float32Array>) => void;
  /** Lifecycle and warning events (events.jsonl). */
  onEvent?: (event: RunEvent) => void;
  /** Each unit whose result was used: its kind, task, worker and reported compute time (dashboard, /metrics). */
  onUnit?: UnitObserver;
}
