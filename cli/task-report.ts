// What `mtl validate` says about each task's data: its rows (train / test), the columns (or
// arrays, files) it reads, its classes, and how its test split is made — each task its own,
// since tasks may read different files with different row counts.
import { showColumnSplit } from '../common/datasets/column-split.js';
import { targetColumns, type TaskBinding } from '../common/datasets/index.js';
import type { DataSpec } from '../common/job-schema.js';

export interface TaskDataReport {
  rows: { train: number; test: number };
  /** What an example is made of (features: table columns, or the inputs' file/array) and its target(s). */
  columns: { features: string[]; targets: string[] };
  /** Classification: the class count and labels; multi-label: each column's two labels. */
  classes: { count: number; labels: string[] } | { columns: Record<string, [string, string]> } | null;
  split: string;
}

/** At most `max` labels, then "…" and how many there are. */
export function shortList(labels: readonly string[], max = 10): string {
  return labels.length <= max ? labels.join(', ') : `${labels.slice(0, max).join(', ')}, … (${labels.length})`;
}

const fraction = (f: number | undefined, seed: number, fallback = 0.2) => `seeded fraction ${f ?? fallback} (seed ${seed})`;

/** How the spec's test split is made. */
export function splitDescription(spec: DataSpec): string {
  switch (spec.dataset) {
    case 'csv':
    case 'jsonl':
    case 'parquet':
      if (spec.split) return showColumnSplit(spec.split);
      return spec.test !== undefined ? `test file(s) ${spec.test}` : fraction(spec.testFraction, spec.seed);
    case 'npy':
    case 'npz':
      return spec.test ? `test arrays ${spec.test.inputs} (inputs) and ${spec.test.target} (target)` : fraction(spec.testFraction, spec.seed);
    case 'images':
    case 'synthetic':
      return fraction(spec.testFraction, spec.seed);
    case 'multimnist':
      return `${spec.testSize} test images drawn from the MNIST digits held out by ${fraction(spec.testFraction, spec.seed)}`;
  }
}

function features(spec: DataSpec): string[] {
  switch (spec.dataset) {
    case 'csv':
    case 'jsonl':
    case 'parquet':
      return [...spec.features];
    case 'npy':
      return [spec.inputs];
    case 'npz':
      return [`${spec.path}:${spec.inputs}`];
    case 'images':
      return [`${spec.path} (${spec.size.join('×')}, ${spec.channels} channel(s))`];
    case 'multimnist':
      return ['multimnist images'];
    case 'synthetic':
      return [`${spec.dim} synthetic features`];
  }
}

export function taskDataReport(spec: DataSpec, binding: TaskBinding): TaskDataReport {
  const info = binding.dataset.targets[binding.target];
  const columnClasses = info?.columnClasses;
  const classes = columnClasses
    ? { columns: Object.fromEntries((info?.columns ?? []).map((c, i) => [c, [columnClasses[i]![0], columnClasses[i]![1]] as [string, string]])) }
    : info?.classes
      ? { count: info.classes.length, labels: [...info.classes] }
      : null;
  return {
    rows: { train: binding.dataset.train.size, test: binding.dataset.test.size },
    columns: { features: features(spec), targets: spec.dataset === 'npz' ? [`${spec.path}:${spec.target}`] : targetColumns(spec) },
    classes,
    split: splitDescription(spec),
  };
}

/** The report's lines under the task's line in the text output. */
export function reportLines(r: TaskDataReport): string[] {
  const classes =
    r.classes === null
      ? []
      : 'count' in r.classes
        ? [`classes: ${r.classes.count} (${shortList(r.classes.labels)})`]
        : [`labels per column: ${Object.entries(r.classes.columns).map(([c, [no, yes]]) => `${c} (${no}/${yes})`).join(', ')}`];
  return [
    `rows: ${r.rows.train} train / ${r.rows.test} test; split: ${r.split}`,
    `reads: ${shortList(r.columns.features)} → ${r.columns.targets.length > 1 ? 'targets' : 'target'} ${r.columns.targets.join(', ')}`,
    ...classes,
  ];
}
