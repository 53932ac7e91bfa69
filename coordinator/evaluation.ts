// Held-out evaluation as units: each task's test split cut into shards of a fixed size (so the
// units, and the means made of them, are the same whatever the worker count), and the shards'
// results combined in fixed order, weighted by their example counts.
import { partRange } from '../common/datasets/sampler.js';
import type { JobSpec } from '../common/job-spec.js';
import type { TaskEval } from './run-records.js';
import { newUnit, type PendingUnit } from './units.js';

/** Held-out splits are evaluated in shards of at most this many examples, whatever the worker count. */
export const EVAL_SHARD_SIZE = 2000;

/** The evaluation units of `tasks`, each task's split of `testSizes` in shards. */
export function evalUnits(tasks: readonly string[], testSizes: ReadonlyMap<string, number>): PendingUnit[] {
  return tasks.flatMap((task) => {
    const size = testSizes.get(task) ?? 0;
    const shardCount = Math.max(1, Math.ceil(size / EVAL_SHARD_SIZE));
    return Array.from({ length: shardCount }, (_, k) => {
      const [from, to] = partRange(size, shardCount, k);
      return newUnit('eval', task, k, shardCount, to - from, 0);
    });
  });
}

/** The mean loss of `task` over its finished eval or lookahead units, weighted by examples. */
export function meanLoss(units: readonly PendingUnit[], task: string): number {
  const mine = units.filter((u) => u.task === task).map((u) => u.eval!);
  return mine.reduce((s, r) => s + r.loss * r.samples, 0) / mine.reduce((n, r) => n + r.samples, 0);
}

/** Each task's loss and metrics over its finished eval units. */
export function evalResults(job: JobSpec, tasks: readonly string[], units: readonly PendingUnit[]): Record<string, TaskEval> {
  const out: Record<string, TaskEval> = {};
  for (const task of tasks) {
    const mine = units.filter((u) => u.task === task).map((u) => u.eval!);
    const samples = mine.reduce((n, r) => n + r.samples, 0);
    const metrics: Record<string, number> = {};
    for (const m of job.tasks[task]!.metrics) metrics[m] = mine.reduce((s, r) => s + r.metrics[m]! * r.samples, 0) / samples;
    out[task] = { loss: meanLoss(units, task), samples, metrics };
  }
  return out;
}
