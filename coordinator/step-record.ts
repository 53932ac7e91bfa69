// A step's line of metrics.jsonl, from what the step computed: per-task losses, the aggregator's
// weights and notes, gradient norms and cosines, task affinity, and where the time went.
import type { AggregationResult } from './aggregation/types.js';
import type { FaultCounters } from './checkpoints.js';
import type { StepRecord } from './run-records.js';
import type { GradientDiagnostics } from './step-math.js';
import { affinityRecord, type AffinityMatrix } from './task-affinity.js';
import type { PendingUnit } from './units.js';

/** performance.now() at the step's milestones. */
export interface StepTimes {
  start: number;
  /** Every training unit's result is in. */
  unitsDone: number;
  /** The aggregator is done (includes the exact lookahead's `lookaheadMs`, reported apart). */
  aggregated: number;
  /** The optimizer is done. */
  optimized: number;
  /** The new weights are queued for every worker. */
  broadcast: number;
  lookaheadMs: number;
}

export interface StepFacts {
  /** 1-based: the step this record reports. */
  step: number;
  version: number;
  /** Sequential mode: the stage's name and the forgetting penalty's value. */
  sequential?: { stage: string; penalty: number };
  active: readonly string[];
  losses: readonly number[];
  aggregated: AggregationResult;
  diagnostics: GradientDiagnostics;
  affinity: AffinityMatrix;
  exactAffinity?: AffinityMatrix;
  samples: number;
  units: readonly PendingUnit[];
  times: StepTimes;
  workers: number;
  faults: FaultCounters;
}

/** The largest total compute time of one worker in a phase: the part of its wall time compute explains. */
function criticalCompute(units: readonly PendingUnit[]): number {
  const perWorker = new Map<string, number>();
  for (const u of units) perWorker.set(u.doneBy ?? '', (perWorker.get(u.doneBy ?? '') ?? 0) + u.computeMs);
  return Math.max(0, ...perWorker.values());
}

export function stepRecord(f: StepFacts): StepRecord {
  const { active, aggregated, times: t } = f;
  const lossWeights = aggregated.lossWeights;
  const perTask = (values: readonly number[]) => Object.fromEntries(active.map((task, i) => [task, values[i]!]));
  return {
    step: f.step,
    version: f.version,
    ...(f.sequential ? { stage: f.sequential.stage, ...(f.sequential.penalty > 0 ? { penalty: f.sequential.penalty } : {}) } : {}),
    losses: perTask(f.losses),
    aggregatorWeights: Object.fromEntries(active.map((task, i) => [task, aggregated.weights[i] ?? NaN])),
    ...(lossWeights ? { lossWeights: perTask(lossWeights) } : {}),
    ...(aggregated.notes?.length ? { aggregatorNotes: aggregated.notes } : {}),
    gradNorms: perTask(f.diagnostics.norms),
    affinity: affinityRecord(active, f.affinity),
    ...(f.exactAffinity ? { affinityExact: affinityRecord(active, f.exactAffinity) } : {}),
    cosine: Object.fromEntries(active.flatMap((a, i) => active.slice(i + 1).map((b, j) => [`${a}/${b}`, f.diagnostics.cosine[i]![i + 1 + j]!]))),
    samples: f.samples,
    timeMs: {
      units: t.unitsDone - t.start,
      compute: f.units.reduce((s, u) => s + u.computeMs, 0),
      transfer: Math.max(0, t.unitsDone - t.start - criticalCompute(f.units)),
      aggregate: t.aggregated - t.unitsDone - t.lookaheadMs,
      ...(f.exactAffinity ? { lookahead: t.lookaheadMs } : {}),
      optimize: t.optimized - t.aggregated,
      broadcast: t.broadcast - t.optimized,
      total: t.broadcast - t.start,
    },
    workers: f.workers,
    faults: f.faults,
  };
}
