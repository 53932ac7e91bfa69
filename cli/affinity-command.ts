// `mtl affinity RUN_DIR [--groups K]`: the run's mean task-affinity matrix (TAG, first-order
// estimate) and the best partition of its tasks into K groups.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { jsonLines } from '../coordinator/run-directory-view.js';
import { bestGrouping, type Grouping } from '../coordinator/task-grouping.js';

type AffinityRecord = Record<string, Record<string, number>>;

export interface RunAffinity {
  tasks: string[];
  /** z[i][j] = Z_{tasks[i] → tasks[j]}. */
  z: number[][];
  steps: number;
  source: 'summary.json' | 'metrics.jsonl';
}

export class RunDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunDirError';
  }
}

function matrix(tasks: readonly string[], record: AffinityRecord): number[][] {
  return tasks.map((from) => tasks.map((to) => record[from]?.[to] ?? NaN));
}

/** Reads the mean affinity from summary.json, or averages metrics.jsonl (a run that did not finish). */
export function readRunAffinity(runDir: string, exact = false): RunAffinity {
  const summaryFile = path.join(runDir, 'summary.json');
  if (existsSync(summaryFile)) {
    type Mean = { steps: number; mean: AffinityRecord };
    const summary = JSON.parse(readFileSync(summaryFile, 'utf8')) as { affinity?: Mean & { exact?: Mean } };
    const found = exact ? summary.affinity?.exact : summary.affinity;
    if (found && found.steps > 0) {
      const tasks = Object.keys(found.mean);
      return { tasks, z: matrix(tasks, found.mean), steps: found.steps, source: 'summary.json' };
    }
  }
  const key = exact ? 'affinityExact' : 'affinity';
  const metricsFile = path.join(runDir, 'metrics.jsonl');
  if (!existsSync(metricsFile)) throw new RunDirError(`${runDir}: no summary.json with affinity and no metrics.jsonl (is it a run directory?)`);
  let tasks: string[] | undefined;
  let sums: number[][] | undefined;
  let steps = 0;
  const records = jsonLines<Partial<Record<'affinity' | 'affinityExact', AffinityRecord>>>(metricsFile).flatMap((r) => (r[key] ? [r[key]] : []));
  // Sequential stages record only their active tasks: the run's mean covers the steps with all of them.
  const widest = Math.max(0, ...records.map((m) => Object.keys(m).length));
  for (const m of records.filter((r) => Object.keys(r).length === widest)) {
    tasks ??= Object.keys(m);
    const z = matrix(tasks, m);
    if (!z.every((row) => row.every(Number.isFinite))) continue;
    sums ??= tasks.map(() => new Array<number>(tasks!.length).fill(0));
    z.forEach((row, i) => row.forEach((v, j) => (sums![i]![j]! += v)));
    steps++;
  }
  if (!tasks || !sums || steps === 0) {
    throw new RunDirError(
      exact
        ? `${runDir}: no exact affinity measured (set diagnostics.exactAffinityEvery in the job)`
        : `${metricsFile}: no step records with task affinity (runs of older versions do not record it)`,
    );
  }
  return { tasks, z: sums.map((row) => row.map((s) => s / steps)), steps, source: 'metrics.jsonl' };
}

function table(tasks: readonly string[], z: readonly (readonly number[])[]): string {
  const cells = z.map((row) => row.map((v) => v.toExponential(2)));
  const width = Math.max(...tasks.map((t) => t.length), ...cells.flat().map((c) => c.length)) + 2;
  const pad = (s: string): string => s.padStart(width);
  const corner = 'from \\ to';
  const first = Math.max(corner.length, ...tasks.map((t) => t.length)) + 1;
  return [
    corner.padEnd(first) + tasks.map(pad).join(''),
    ...tasks.map((t, i) => t.padEnd(first) + cells[i]!.map(pad).join('')),
  ].join('\n');
}

export interface AffinityCommandOptions {
  groups?: number;
  json: boolean;
  /** Use the exact lookahead measurements instead of the first-order estimate. */
  exact?: boolean;
}

export function affinityCommand(runDir: string, opts: AffinityCommandOptions): number {
  let run: RunAffinity;
  try {
    run = readRunAffinity(runDir, opts.exact ?? false);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  if (opts.groups !== undefined && opts.groups > run.tasks.length) {
    process.stderr.write(`--groups ${opts.groups}: the run has only ${run.tasks.length} tasks\n`);
    return 2;
  }
  const grouping: Grouping | undefined = opts.groups === undefined ? undefined : bestGrouping(run.z, opts.groups);
  const named = grouping?.groups.map((g) => g.map((i) => run.tasks[i]!));
  if (opts.json) {
    const out = {
      tasks: run.tasks,
      steps: run.steps,
      source: run.source,
      estimate: opts.exact ? 'exact' : 'first-order',
      affinity: Object.fromEntries(run.tasks.map((from, i) => [from, Object.fromEntries(run.tasks.map((to, j) => [to, run.z[i]![j]!]))])),
      ...(grouping ? { grouping: { k: opts.groups, groups: named, score: grouping.score, method: grouping.method, evaluated: grouping.evaluated } } : {}),
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return 0;
  }
  process.stdout.write(
    `Task affinity (TAG, ${opts.exact ? 'exact lookahead' : 'first-order estimate'}), mean over ${run.steps} steps (${run.source}).\n` +
      `Row i, column j: relative decrease of j's loss after a step on i alone; > 0 helps, < 0 hurts.\n\n` +
      `${table(run.tasks, run.z)}\n`,
  );
  if (grouping && named) {
    process.stdout.write(
      `\nBest partition into ${opts.groups} groups (${grouping.method}, ${grouping.evaluated} partitions scored): ` +
        `${named.map((g) => `{${g.join(', ')}}`).join(' ')}  score ${grouping.score.toExponential(3)}\n`,
    );
  }
  return 0;
}
