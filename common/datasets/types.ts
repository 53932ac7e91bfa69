// The dataset contract shared by the coordinator (sizes, targets, validation) and the workers
// (batches). A dataset is loaded once per "source" (its spec without `target`); tasks that
// read the same source share its inputs and its batch indices.

export type TargetKind = 'classification' | 'regression';

export interface TargetInfo {
  kind: TargetKind;
  /** Classification only: the class labels; the target value is the index into this list. */
  classes?: readonly string[];
  /** Floats per example (default 1): a target of several columns has one per column. */
  width?: number;
  /** A target of several columns (a vector, or multi-label): the columns, in component order. */
  columns?: readonly string[];
  /** A multi-label target: each column's labels [for 0, for 1]; each component is 0 or 1. */
  columnClasses?: ReadonlyArray<readonly [string, string]>;
}

/** The floats per example a target writes (`Split.targets`). */
export function targetWidth(info: TargetInfo | undefined): number {
  return info?.width ?? 1;
}

/** One split (train or test) of a dataset; examples are addressed by index in [0, size). */
export interface Split {
  readonly size: number;
  /**
   * Writes the inputs of the examples `indices`, row-major, each `inputSize` floats long, into
   * `out` (length `indices.length * inputSize`).
   */
  inputs(indices: ArrayLike<number>, out: Float32Array): void;
  /**
   * Writes the target's `width` values (TargetInfo.width, default 1) per example, row-major: the
   * class index (as a float), the regression value, or a vector target's components in order.
   */
  targets(target: string, indices: ArrayLike<number>, out: Float32Array): void;
}

export interface Dataset {
  /** Shape of one example's input, e.g. [28, 28, 1] or [100]. */
  readonly inputShape: readonly number[];
  /** Every target this source offers, by name (`left`, `0`, a CSV column, ...). */
  readonly targets: Readonly<Record<string, TargetInfo>>;
  readonly train: Split;
  readonly test: Split;
  /** Tables: how each value of an example came from a raw column (kept in the exported model, for predictions from raw rows). */
  readonly columns?: readonly ColumnTransform[];
  /** Where the data came from, for logs and summary.json. */
  readonly description: string;
  /**
   * A name for the training examples that does not depend on how the data is named (its path,
   * its file format): the sampler's and the dropout masks' key in place of the spec's source
   * key when present, so the same data read from another place or format trains the same.
   * Datasets with equal identities must give equal train inputs for every index.
   */
  readonly identity?: string;
  /**
   * Streamed datasets: batches come from a block shuffle of consecutive train rows (block-sampler.ts)
   * rather than a permutation of all of them, so a batch reads a bounded number of chunks.
   */
  readonly sampling?: { readonly blockRows: number; readonly window: number };
  /** Streamed datasets: whether this process scanned the files (else it read by the coordinator's plan), and what their chunk cache did (chunks decoded, evictions, bytes held), for logs. */
  readonly scanned?: boolean;
  readonly cacheStats?: Readonly<Record<'hits' | 'loads' | 'evictions' | 'bytes' | 'peakBytes' | 'decodedBytes' | 'loadMs', number>>;
}

export function inputSize(dataset: Pick<Dataset, 'inputShape'>): number {
  return dataset.inputShape.reduce((a, b) => a * b, 1);
}

/** Checks a Split request: `out` holds `width` floats per index, every index is in [0, size). */
export function checkSplitRequest(size: number, indices: ArrayLike<number>, out: Float32Array, width: number): void {
  if (out.length !== indices.length * width) {
    throw new RangeError(`output holds ${out.length} floats, expected ${indices.length} × ${width}`);
  }
  for (let j = 0; j < indices.length; j++) {
    const i = indices[j]!;
    if (!Number.isInteger(i) || i < 0 || i >= size) throw new RangeError(`example index ${i} is outside [0, ${size})`);
  }
}

/**
 * How one value of a tabular example was made from a raw column: a number standardised with
 * the train statistics (`(x − mean) / std`, only centred when std is 0; absent statistics: as
 * is), or a category's vocabulary id (common/datasets/vocabulary.ts). An exported model keeps
 * them, so raw rows can be predicted (common/trained-model.ts).
 */
export type ColumnTransform =
  | { readonly column: string; readonly kind: 'numeric'; readonly mean?: number; readonly std?: number }
  | { readonly column: string; readonly kind: 'categorical'; readonly vocabulary: readonly string[] };

/** The standardised value of a raw number, exactly as the datasets compute it (in double precision). */
export function standardised(x: number, t: { readonly mean?: number; readonly std?: number }): number {
  if (t.mean === undefined) return x;
  const centred = x - t.mean;
  const s = t.std ?? 0;
  return s > 0 ? centred / s : centred;
}
