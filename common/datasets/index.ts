// The dataset registry: from the job's tasks to loaded datasets. Tasks whose data specs differ
// only in `target` read one "source": it is loaded once, and its key names it for the sampler,
// so those tasks see the same examples in the same step.
import { DatasetError } from '../errors.js';
import type { DataSpec, LossName, TableSpec } from '../job-schema.js';
import type { TaskTargetRequest } from './class-labels.js';
import { loadImages } from './images.js';
import { loadMultiMnist } from './multimnist.js';
import { loadNpy, loadNpz } from './npy.js';
import { loadSynthetic } from './synthetic.js';
import { loadTable, type TargetRequest } from './tabular.js';
import { loadStreamedTable, type StreamedDataset } from './stream/stream-table.js';
import { checkPlan, streamSettings, type DataPlan } from './stream/plan.js';
import { loadStreamedNpy } from './stream/stream-arrays.js';
import { targetWidth, type Dataset, type TargetKind } from './types.js';
import { vectorTargetName, withVectorTargets, type VectorTargetRequest } from './vector-targets.js';

export { loadImages } from './images.js';
export { loadNpy, loadNpz } from './npy.js';
export { loadTable, type TableDataset, type TargetRequest } from './tabular.js';
export { loadMultiMnist, type DigitRef, type MultiMnistDataset, type MultiMnistOptions, type MultiMnistSplit } from './multimnist.js';
export { loadSynthetic, type SyntheticDataset } from './synthetic.js';

export interface TaskBinding {
  task: string;
  /**
   * The sampler's `source`: the dataset's `identity` when it has one (table datasets: a digest
   * of the inputs), else the task's source key (see `sourceKey`).
   */
  source: string;
  /** The target name inside the dataset. */
  target: string;
  dataset: Dataset;
}

export interface TaskDataSpec {
  loss: LossName;
  data: DataSpec;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Canonical JSON (sorted keys) of the spec without `target`: equal for tasks sharing a source. */
export function sourceKey(spec: DataSpec): string {
  const { target: _target, ...source } = spec;
  // npy/npz: an explicit test split's target is the task's too (its inputs are the source's).
  if ('test' in source && typeof source.test === 'object') return canonicalJson({ ...source, test: { ...source.test, target: undefined } });
  return canonicalJson(source);
}

/** The columns (table) or the name of a task's target: several for `target: [a, b]`. */
export function targetColumns(spec: DataSpec): string[] {
  return Array.isArray(spec.target) ? [...spec.target] : [String(spec.target)];
}

export function targetName(spec: DataSpec): string {
  return vectorTargetName(targetColumns(spec));
}

/** The floats per example of a task's target (1, or its column count). */
export function bindingTargetWidth(b: Pick<TaskBinding, 'dataset' | 'target'>): number {
  return targetWidth(b.dataset.targets[b.target]);
}

/** The target kind a loss needs. */
export function lossTargetKind(loss: LossName): TargetKind {
  return loss === 'sparseCategoricalCrossentropy' || loss === 'binaryCrossentropy' ? 'classification' : 'regression';
}

/**
 * The targets the tasks of one source ask for, one per name; two tasks reading one target as
 * different kinds (their losses disagree), or with different test targets, are an error naming
 * both tasks and `where` (the data).
 */
function targetRequests(tasks: ReadonlyArray<[string, TaskDataSpec]>, where: string, what = 'target'): TaskTargetRequest[] {
  const requests = new Map<string, TaskTargetRequest & { task: string }>();
  for (const [task, { loss, data }] of tasks) {
    const name = targetName(data);
    const kind = lossTargetKind(loss);
    const testTarget = data.dataset === 'npy' || data.dataset === 'npz' ? data.test?.target : undefined;
    const earlier = requests.get(name);
    if (earlier !== undefined && earlier.kind !== kind) {
      throw new DatasetError(`tasks "${earlier.task}" and "${task}" read ${what} "${name}" of ${where} as ${earlier.kind} and as ${kind} (losses disagree)`);
    }
    if (earlier !== undefined && earlier.testTarget !== testTarget) {
      throw new DatasetError(`tasks "${earlier.task}" and "${task}" read ${what} "${name}" of ${where} with different test targets (${earlier.testTarget} and ${testTarget})`);
    }
    requests.set(name, { name, kind, task, ...(testTarget !== undefined ? { testTarget } : {}) });
  }
  return [...requests.values()].map(({ task: _task, ...request }) => request);
}

/** A table and its tasks' targets: each column loaded as a target, and targets of several columns on top (vector-targets.ts). */
function loadTableSource(spec: TableSpec, baseDir: string, tasks: ReadonlyArray<[string, TaskDataSpec]>, plan?: DataPlan): Dataset {
  const requests = targetRequests(tasks, spec.path, 'column');
  const vectors: VectorTargetRequest[] = [];
  const columns = new Map<string, TargetRequest>();
  for (const [, { data }] of tasks) {
    const { kind } = requests.find((r) => r.name === targetName(data))!;
    const names = targetColumns(data);
    if (names.length > 1 && !vectors.some((v) => v.name === targetName(data))) vectors.push({ name: targetName(data), columns: names, kind });
    for (const column of names) if (!columns.has(`${kind}:${column}`)) columns.set(`${kind}:${column}`, { column, kind });
  }
  // Streamed (bigger than memory): from the coordinator's plan when there is one, else scanned here.
  const dataset =
    streamSettings(spec.stream) !== undefined
      ? loadStreamedTable(spec, baseDir, [...columns.values()], plan?.format === spec.dataset ? plan : undefined)
      : loadTable(spec, baseDir, [...columns.values()]);
  return vectors.length > 0 ? withVectorTargets(dataset, vectors, spec.path) : dataset;
}

function loadSource(spec: DataSpec, baseDir: string, tasks: ReadonlyArray<[string, TaskDataSpec]>, plan?: DataPlan): Dataset {
  switch (spec.dataset) {
    case 'multimnist':
      return loadMultiMnist(spec);
    case 'synthetic':
      return loadSynthetic(spec);
    case 'csv':
    case 'jsonl':
    case 'parquet':
      return loadTableSource(spec, baseDir, tasks, plan);
    case 'npy':
      if (streamSettings(spec.stream) !== undefined) return loadStreamedNpy(spec, baseDir, targetRequests(tasks, spec.inputs), plan?.format === 'npy' ? plan : undefined);
      return loadNpy(spec, baseDir, targetRequests(tasks, spec.inputs));
    case 'npz':
      return loadNpz(spec, baseDir, targetRequests(tasks, spec.path));
    case 'images':
      return loadImages(spec, baseDir, targetRequests(tasks, spec.path));
  }
}

/** The data plans of the streamed sources among `bindings`, as JSON keyed by source key (Welcome.data_plan_json; empty when none). */
export function dataPlansJson(tasks: Readonly<Record<string, TaskDataSpec>>, bindings: ReadonlyMap<string, TaskBinding>): string {
  const plans: Record<string, DataPlan> = {};
  for (const [task, b] of bindings) {
    const plan = (b.dataset as Partial<StreamedDataset>).plan;
    if (plan !== undefined) plans[sourceKey(tasks[task]!.data)] = plan;
  }
  return Object.keys(plans).length === 0 ? '' : JSON.stringify(plans);
}

/** The plans of `dataPlansJson`, by source key. */
export function parseDataPlans(json: string): Map<string, DataPlan> {
  if (json === '') return new Map();
  const value = JSON.parse(json) as Record<string, unknown>;
  return new Map(Object.entries(value).map(([key, plan]) => [key, checkPlan(plan, 'Welcome.data_plan_json')] as const));
}

/**
 * Loads every source once and binds each task to its dataset and target, in the order of
 * `tasks`. Relative table paths and globs resolve against `baseDir` (the job file's directory).
 * A streamed source with a plan in `plans` (by source key: what the coordinator scanned) is read
 * by that plan instead of being scanned again.
 */
export function bindTasks(tasks: Readonly<Record<string, TaskDataSpec>>, baseDir: string, plans: ReadonlyMap<string, DataPlan> = new Map()): Map<string, TaskBinding> {
  const sources = new Map<string, Array<[string, TaskDataSpec]>>();
  for (const entry of Object.entries(tasks)) {
    const key = sourceKey(entry[1].data);
    const group = sources.get(key);
    if (group === undefined) sources.set(key, [entry]);
    else group.push(entry);
  }
  const datasets = new Map<string, Dataset>();
  for (const [key, group] of sources) datasets.set(key, loadSource(group[0]![1].data, baseDir, group, plans.get(key)));

  const bindings = new Map<string, TaskBinding>();
  for (const [task, { loss, data }] of Object.entries(tasks)) {
    const dataset = datasets.get(sourceKey(data))!;
    const source = dataset.identity ?? sourceKey(data);
    const target = targetName(data);
    const info = dataset.targets[target];
    if (info === undefined) {
      throw new DatasetError(
        `task "${task}": target "${target}" is not offered by ${dataset.description} (targets: ${Object.keys(dataset.targets).join(', ')})`,
      );
    }
    const kind = lossTargetKind(loss);
    if (info.kind !== kind) {
      throw new DatasetError(`task "${task}": loss ${loss} needs a ${kind} target, but "${target}" is a ${info.kind} target`);
    }
    if (loss === 'binaryCrossentropy' && (info.classes?.length ?? 0) > 2) {
      throw new DatasetError(
        `task "${task}": binaryCrossentropy needs at most 2 classes, target "${target}" has ${info.classes?.length ?? 0} (${info.classes?.join(', ') ?? ''})`,
      );
    }
    bindings.set(task, { task, source, target, dataset });
  }
  return bindings;
}
