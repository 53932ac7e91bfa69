// The configurations of `npm run bench -- scale` and the coordinator memory formula its
// measurements are held against. Pure, so test/unit/bench-scale-model.test.ts can check it.
import type { ParameterLayout } from '../common/parameter-layout.js';
import type { StepRecord } from '../coordinator/run-records.js';

export interface ScaleConfig {
  /** Target number of shared parameters. */
  p: number;
  workers: number;
  tasks: number;
  steps: number;
  /** Simulated compute: each simulated worker sleeps this long per train unit (scale-sim); 0 or absent answers at once. */
  sleepMs?: number;
  /** transport.bucketBytes of the job (default: the job default); 0 sends each gradient whole. */
  bucketBytes?: number;
}

export interface ScaleRunResult {
  config: ScaleConfig;
  parameters: number;
  shared: number;
  baselineRss: number;
  peakRss: number;
  model: MemoryModel;
  steps: Array<StepRecord['timeMs']>;
  /** Wall time of each step after the first: from the previous step's record to this one's. */
  stepWallMs: number[];
  /** The coordinator process's CPU time (user + system) over the same intervals. */
  stepCpuMs: number[];
  /** Per step (0-based, as the units say), train units each simulated worker computed: { step: { worker: units } }. */
  computed: Record<string, Record<string, number>>;
}

export interface StepEfficiency {
  step: number;
  /** Most train units one worker computed in the step. */
  maxUnitsPerWorker: number;
  /** unit compute × that: the step time if the orchestration cost nothing. */
  idealMs: number;
  measuredMs: number;
  /** ideal ÷ measured (1 = the orchestration costs nothing). */
  efficiency: number;
}

/**
 * Orchestration efficiency per step: the busiest worker's compute (units it actually computed
 * × unit time) ÷ the step's wall time. `wallMs[i]` is the wall time of step `firstStep + i`;
 * steps with no computed units are left out (nothing to compare).
 */
export function stepEfficiencies(wallMs: readonly number[], firstStep: number, computed: Readonly<Record<string, Readonly<Record<string, number>>>>, unitMs: number): StepEfficiency[] {
  const out: StepEfficiency[] = [];
  wallMs.forEach((measuredMs, i) => {
    const step = firstStep + i;
    const counts = Object.values(computed[String(step)] ?? {});
    const maxUnitsPerWorker = Math.max(0, ...counts);
    if (maxUnitsPerWorker === 0) return;
    const idealMs = unitMs * maxUnitsPerWorker;
    out.push({ step, maxUnitsPerWorker, idealMs, measuredMs, efficiency: idealMs / measuredMs });
  });
  return out;
}

/** Input width of the synthetic data; the trunk's width follows from P. */
export const SCALE_INPUT_DIM = 1000;
/** Examples per train unit (the batch is this × shards). */
export const SCALE_UNIT_BATCH = 8;

/** Shards per task: enough units that every worker gets one each step (as a real deployment would). */
export function shardsFor(config: Pick<ScaleConfig, 'workers' | 'tasks'>): number {
  return Math.max(1, Math.ceil(config.workers / config.tasks));
}

/**
 * A job with about `p` shared parameters: one dense trunk layer SCALE_INPUT_DIM → units over
 * synthetic data, T tiny regression heads. Intermediate evaluation, checkpoints, backup units
 * and the death timeout are off: the benchmark measures steps, and one process hosting up to
 * 64 simulated workers may be slow to answer while it receives weights.
 */
export function scaleJob(config: ScaleConfig): object {
  const units = Math.max(1, Math.round(config.p / (SCALE_INPUT_DIM + 1)));
  const tasks = Array.from({ length: config.tasks }, (_, i) => `t${i}`);
  const shards = shardsFor(config);
  return {
    name: `scale-p${config.p}-w${config.workers}`,
    seed: 1,
    model: {
      trunk: [{ dense: { units, activation: 'relu' } }],
      heads: Object.fromEntries(tasks.map((t) => [t, [{ dense: { units: 1 } }]])),
    },
    tasks: Object.fromEntries(
      tasks.map((t, i) => [t, { loss: 'meanSquaredError', metrics: [], data: { dataset: 'synthetic', target: i, tasks: config.tasks, dim: SCALE_INPUT_DIM, samples: 200 } }]),
    ),
    training: {
      steps: config.steps,
      batchSize: SCALE_UNIT_BATCH * shards,
      shardsPerTask: shards,
      optimizer: { name: 'adam', learningRate: 0.001 },
      aggregator: { name: 'mean' },
    },
    fault: { heartbeatMs: 1000, deadAfterMs: 600_000, backupAfter: 0 },
    ...(config.bucketBytes !== undefined ? { transport: { bucketBytes: config.bucketBytes } } : {}),
  };
}

export interface MemoryModel {
  /** Predicted coordinator RSS during steps: the measured baseline plus `terms`. */
  bytes: number;
  /** Bytes of each buffer the coordinator holds during a step. */
  terms: Record<string, number>;
}

/**
 * The coordinator's memory during a step, in bytes, Ptot = all parameters, u = one unit's
 * gradient (shared + its head), U = T·S units:
 *   initial parameters (kept by the prepared run) 4·Ptot + parameters θ 4·Ptot
 *   + Adam slots m, v 8·Ptot + update buffer 4·Ptot
 *   + encoded broadcast 4·Ptot, twice while a new version is encoded and the old one still queued
 *   + one result buffer per unit 4·U·u
 *   + with S > 1 shards, the combined per-task gradients 4·T·u (BlockGramian's rows, which are the task gradients).
 * `baselineRss` (Node, modules, data) is measured, not modelled.
 */
export function memoryModel(layout: Pick<ParameterLayout, 'totalSize' | 'shared' | 'headGroups' | 'tasks'>, config: ScaleConfig, baselineRss = 0): MemoryModel {
  const ptot = layout.totalSize;
  const shards = shardsFor(config);
  const unitFloats = layout.tasks.map((t) => layout.shared.size + layout.headGroups.get(t)!.size);
  const sumUnits = unitFloats.reduce((a, b) => a + b, 0);
  const terms: Record<string, number> = {
    initialParams: 4 * ptot,
    params: 4 * ptot,
    adamSlots: 8 * ptot,
    update: 4 * ptot,
    encodedBroadcast: 2 * 4 * ptot,
    unitResults: 4 * shards * sumUnits,
    combinedShards: shards > 1 ? 4 * sumUnits : 0,
  };
  return { bytes: baselineRss + Object.values(terms).reduce((a, b) => a + b, 0), terms };
}

/**
 * When a simulated unit of `computeMs` sends which bytes of its `bytes`-byte gradient: its
 * forward pass is the first third, its backward the other two; the backward hands out buckets of
 * `bucketBytes` from the end of the payload to its start (head first, then the trunk from its
 * last layer, as a real worker's), one per equal share of the backward's time. `at` is ms from
 * the unit's start. Without buckets (or compute) everything goes at the end.
 */
export function bucketSchedule(bytes: number, bucketBytes: number, computeMs: number): Array<{ from: number; to: number; at: number }> {
  if (computeMs <= 0 || bucketBytes <= 0 || bytes <= bucketBytes) return [{ from: 0, to: bytes, at: Math.max(0, computeMs) }];
  const buckets = Math.ceil(bytes / bucketBytes);
  const forward = computeMs / 3;
  return Array.from({ length: buckets }, (_, k) => {
    const to = bytes - k * bucketBytes;
    return { from: Math.max(0, to - bucketBytes), to, at: forward + ((k + 1) * (computeMs - forward)) / buckets };
  });
}
