// What a run reports: one record per step (metrics.jsonl), one per evaluation (eval.jsonl),
// and the outcome the summary is made from.
import type { FaultCounters } from './checkpoints.js';

export interface TaskEval {
  loss: number;
  samples: number;
  metrics: Record<string, number>;
}

export interface EvalRecord {
  step: number;
  version: number;
  /** Sequential mode: the stage the evaluated weights come from. */
  stage?: string;
  tasks: Record<string, TaskEval>;
}

export interface StepRecord {
  step: number;
  version: number;
  /** Sequential mode: the stage of this step, and the forgetting penalty's value (EWC, L2-SP) where there is one. */
  stage?: string;
  penalty?: number;
  losses: Record<string, number>;
  /** wᵢ with direction = Σ wᵢ gᵢ (NaN where the method has none). */
  aggregatorWeights: Record<string, number>;
  /** Loss weights λᵢ of loss-weighting methods; heads were scaled by them. */
  lossWeights?: Record<string, number>;
  /** What the aggregator noted this step, e.g. a solver fallback. */
  aggregatorNotes?: string[];
  gradNorms: Record<string, number>;
  cosine: Record<string, number>;
  /**
   * First-order task affinity (TAG) of this step: affinity[i][j] ≈ η·⟨gᵢ, gⱼ⟩ / Lⱼ, the relative
   * decrease of task j's loss after an SGD step of learning rate η on task i alone.
   */
  affinity: Record<string, Record<string, number>>;
  /** TAG's exact lookahead affinity, on the steps it is measured (diagnostics.exactAffinityEvery). */
  affinityExact?: Record<string, Record<string, number>>;
  samples: number;
  /**
   * units: wall time from assignment to the last result; compute: sum of the workers'
   * compute times; transfer: units minus the busiest worker's compute (weights, results and
   * scheduling latency); aggregate, optimize, broadcast (encode + queue): coordinator time;
   * total: the whole step.
   */
  timeMs: { units: number; compute: number; transfer: number; aggregate: number; optimize: number; broadcast: number; total: number; lookahead?: number };
  /** Workers taking units at the end of the step. */
  workers: number;
  /** Fault counters of the run so far (deaths, reassigned and backup units, ...). */
  faults: FaultCounters;
}

export interface TrainingOutcome {
  params: Float32Array;
  steps: number;
  samples: number;
  trainMs: number;
  finalEval: EvalRecord;
  workers: Array<{ id: string; name: string; backend: string; device: string; unitsDone: number }>;
}

/** Something that happened in a run: lifecycle, workers, warnings (events.jsonl). */
export interface RunEvent {
  type: string;
  level: 'info' | 'warn' | 'error';
  message: string;
  data?: Record<string, unknown>;
}
