// Targets of several table columns (`target: [a, b, c]`): a regression task whose target is the
// vector of those columns, or a multi-label task (binaryCrossentropy: each column 0/1, or two
// labels). The table loads each column as a target of its own (so the `missing` policy applies
// per column); this wraps its splits so that the vector target writes its columns' values side
// by side, `width` floats per example.
import { DatasetError } from '../errors.js';
import { checkSplitRequest, type Dataset, type Split, type TargetInfo, type TargetKind } from './types.js';

export interface VectorTargetRequest {
  /** The target's name (vectorTargetName of the columns). */
  name: string;
  columns: readonly string[];
  kind: TargetKind;
}

/** A target's name: the column itself, or `[a, b, c]` for several. */
export function vectorTargetName(columns: readonly string[]): string {
  return columns.length === 1 ? columns[0]! : `[${columns.join(', ')}]`;
}

/** A multi-label column's labels [for 0, for 1] and the 0/1 value of each of its class indices. */
function binaryLabels(classes: readonly string[], column: string, where: string): { labels: readonly [string, string]; values: Float32Array } {
  if (classes.length === 2) return { labels: [classes[0]!, classes[1]!], values: Float32Array.of(0, 1) };
  const only = classes[0];
  if (classes.length === 1 && (only === '0' || only === '1')) return { labels: ['0', '1'], values: Float32Array.of(Number(only)) };
  if (classes.length === 1 && (only === 'false' || only === 'true')) return { labels: ['false', 'true'], values: Float32Array.of(only === 'true' ? 1 : 0) };
  throw new DatasetError(
    `${where}: multi-label column "${column}" has ${classes.length} label(s) (${classes.slice(0, 10).join(', ')}${classes.length > 10 ? ', …' : ''}); ` +
      'each column of a binaryCrossentropy target needs two labels, or only 0/1 or false/true values',
  );
}

interface VectorPlan {
  columns: readonly string[];
  /** Multi-label: per column, the 0/1 value of each class index. */
  values?: readonly Float32Array[];
}

class VectorSplit implements Split {
  readonly size: number;

  constructor(
    private readonly inner: Split,
    private readonly vectors: ReadonlyMap<string, VectorPlan>,
  ) {
    this.size = inner.size;
  }

  inputs(indices: ArrayLike<number>, out: Float32Array): void {
    this.inner.inputs(indices, out);
  }

  targets(target: string, indices: ArrayLike<number>, out: Float32Array): void {
    const plan = this.vectors.get(target);
    if (plan === undefined) return this.inner.targets(target, indices, out);
    const k = plan.columns.length;
    checkSplitRequest(this.size, indices, out, k);
    const column = new Float32Array(indices.length);
    plan.columns.forEach((name, c) => {
      this.inner.targets(name, indices, column);
      const values = plan.values?.[c];
      for (let j = 0; j < column.length; j++) out[j * k + c] = values ? values[column[j]!]! : column[j]!;
    });
  }
}

/**
 * `dataset` with the targets of several columns `vectors` added (each of its columns must be a
 * target of `dataset`, of the request's kind). Other targets and everything else are unchanged.
 */
export function withVectorTargets<D extends Dataset>(dataset: D, vectors: readonly VectorTargetRequest[], where: string): D {
  const targets: Record<string, TargetInfo> = { ...dataset.targets };
  const plans = new Map<string, VectorPlan>();
  for (const { name, columns, kind } of vectors) {
    const infos = columns.map((c) => {
      const info = dataset.targets[c];
      if (info === undefined || info.kind !== kind) throw new DatasetError(`${where}: column "${c}" is not offered as a ${kind} target`);
      return info;
    });
    if (kind === 'classification') {
      const binary = infos.map((info, c) => binaryLabels(info.classes ?? [], columns[c]!, where));
      targets[name] = { kind, width: columns.length, columns, columnClasses: binary.map((b) => b.labels) };
      plans.set(name, { columns, values: binary.map((b) => b.values) });
    } else {
      targets[name] = { kind, width: columns.length, columns };
      plans.set(name, { columns });
    }
  }
  return { ...dataset, targets, train: new VectorSplit(dataset.train, plans), test: new VectorSplit(dataset.test, plans) };
}
