// summary.json: how a run ended, what it trained and measured, and what went wrong on the way.
import type { AffinitySummary } from './affinity-diagnostics.js';
import type { FaultCounters } from './checkpoints.js';
import type { TrainingOutcome } from './run-records.js';
import type { ContinualSummary } from './stage-progress.js';

export interface RunSummary {
  name: string;
  runId: string;
  status: 'succeeded' | 'failed' | 'stopped';
  error?: { code: string; message: string };
  steps: number;
  stepsCompleted: number;
  wallTimeS: number;
  trainTimeS?: number;
  samplesPerS?: number;
  backend: string;
  workers: number;
  workerDetails: TrainingOutcome['workers'];
  aggregator: Record<string, unknown>;
  optimizer: Record<string, unknown>;
  seed: number;
  parameters: number;
  tasks: Record<string, { loss: number; samples: number } & Record<string, number>>;
  rejectedMessages: number;
  /** Mean first-order task affinity over the run's steps (TAG): `mean[from][to]`; `mtl affinity` reads it. */
  affinity?: AffinitySummary;
  /** Sequential mode: the accuracy matrix R[stage][task] and its summaries (average, BWT, FWT, retention). */
  continual?: ContinualSummary;
  /** Deaths, departures, reassigned and backup units, dropped late results, resumes. */
  faults: FaultCounters;
  /** Step of the checkpoint this run continued from, if it was resumed. */
  resumedFrom?: number;
  /** Step of the last checkpoint written, if any. */
  lastCheckpoint?: number;
  outDir: string;
}
