// Table datasets (csv, jsonl, parquet): the one path from a reader's columns of cells to the
// tensors a task trains on, whatever the format. The listed feature columns are the input,
// and any other column can serve as a target (several tasks may read one table, each its own
// column): numeric features standardised with train statistics, class labels sorted, the
// train/test split, and the Split views the sampler and the evaluation read.
//
// Nothing here depends on the path by which the data is named, nor on its format: the split
// is keyed by the seed and the row count, and the sampler's key (`identity`) is a digest of
// the decoded inputs, so the same rows as CSV, as JSON lines or as Parquet split into files,
// here or on a mount elsewhere, train to the same weights.
import { createHash } from 'node:crypto';
import { DatasetError } from '../errors.js';
import type { TableDatasetKind, TableSpec } from '../job-schema.js';
import { Rng } from '../random.js';
import { openCsv } from './csv.js';
import { openJsonl } from './jsonl.js';
import { openParquet } from './parquet.js';
import { resolveTableFiles } from './table-files.js';
import { showCell, type Cell, type ColumnRequest, type TableFile, type TableReader } from './table-reader.js';
import { checkSplitRequest, type Dataset, type Split, type TargetInfo, type TargetKind } from './types.js';

/** A column the dataset must offer as a target, and how the caller will use it. */
export interface TargetRequest {
  column: string;
  kind: TargetKind;
}

export interface TableDataset extends Dataset {
  /** Per-feature train mean and std applied to the inputs; undefined when `normalize` is off. */
  readonly normalization: { readonly mean: readonly number[]; readonly std: readonly number[] } | undefined;
  /** The files read, in reading order. */
  readonly files: readonly string[];
}

const READERS: Record<TableDatasetKind, { open: TableReader; extension: string }> = {
  csv: { open: openCsv, extension: 'csv' },
  jsonl: { open: openJsonl, extension: 'jsonl' },
  parquet: { open: openParquet, extension: 'parquet' },
};

// Plain decimal notation only: Number() would also accept '', '0x1f', 'Infinity' and ' '.
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function parseDecimal(text: string): number | undefined {
  if (!DECIMAL.test(text)) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

function cellError(table: TableFile, row: number, column: string, expected: string, cell: Cell): DatasetError {
  return new DatasetError(`${table.file}: ${table.locate(row)}, column "${column}": expected ${expected}, got ${showCell(cell, table)}`);
}

/**
 * A missing cell (null): an error naming file, row and column. The hook for a later
 * `missing: { fill | drop }` option: a fill returns its value here; a drop needs the rows
 * marked before the split, in the pass that reads the cells.
 */
function missing(table: TableFile, row: number, column: string, expected: string): never {
  throw cellError(table, row, column, expected, null);
}

/** A numeric cell: a number (finite), an exactly representable integer, or decimal text in csv. */
function numberOf(cell: Cell | undefined, table: TableFile, row: number, column: string): number {
  if (typeof cell === 'number') {
    if (Number.isFinite(cell)) return cell;
  } else if (typeof cell === 'bigint') {
    const value = Number(cell);
    if (BigInt(value) === cell) return value;
    throw cellError(table, row, column, 'a number a float can hold exactly', cell);
  } else if (typeof cell === 'string') {
    const value = table.textCells ? parseDecimal(cell) : undefined;
    if (value !== undefined) return value;
  } else if (cell === null || cell === undefined) {
    return missing(table, row, column, 'a number');
  }
  throw cellError(table, row, column, 'a number', cell ?? null);
}

/** A class label's text: a string as it is, an integer or a boolean as String(value). */
function labelOf(cell: Cell | undefined, table: TableFile, row: number, column: string): string {
  const expected = table.textCells ? 'a class label' : 'a class label (a string, an integer or a boolean)';
  if (typeof cell === 'string') {
    if (cell !== '') return cell;
  } else if (typeof cell === 'bigint' || typeof cell === 'boolean' || (typeof cell === 'number' && Number.isInteger(cell))) {
    return String(cell);
  } else if (cell === null || cell === undefined) {
    return missing(table, row, column, expected);
  }
  throw cellError(table, row, column, expected, cell ?? null);
}

/** Class labels: sorted distinct texts (by value when all are numbers, so '10' follows '9'). */
function classIndices(labels: readonly string[]): { classes: string[]; values: Float32Array } {
  const distinct = [...new Set(labels)];
  const numbers = new Map(distinct.map((c) => [c, parseDecimal(c)] as const));
  const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  if (distinct.every((c) => numbers.get(c) !== undefined)) {
    distinct.sort((a, b) => numbers.get(a)! - numbers.get(b)! || byString(a, b));
  } else {
    distinct.sort(byString);
  }
  const index = new Map(distinct.map((c, i) => [c, i] as const));
  return { classes: distinct, values: Float32Array.from(labels, (c) => index.get(c)!) };
}

/** The table rows `rows` (indices into all rows of the dataset's files), in that order. */
class RowSplit implements Split {
  readonly size: number;

  constructor(
    private readonly features: Float32Array,
    private readonly width: number,
    private readonly targetValues: ReadonlyMap<string, Float32Array>,
    private readonly rows: Uint32Array,
    private readonly shown: string,
  ) {
    this.size = rows.length;
  }

  inputs(indices: ArrayLike<number>, out: Float32Array): void {
    checkSplitRequest(this.size, indices, out, this.width);
    for (let j = 0; j < indices.length; j++) {
      const from = this.rows[indices[j]!]! * this.width;
      out.set(this.features.subarray(from, from + this.width), j * this.width);
    }
  }

  targets(target: string, indices: ArrayLike<number>, out: Float32Array): void {
    const values = this.targetValues.get(target);
    if (values === undefined) {
      throw new DatasetError(`${this.shown}: "${target}" is not a target of this dataset (targets: ${[...this.targetValues.keys()].join(', ')})`);
    }
    checkSplitRequest(this.size, indices, out, 1);
    for (let j = 0; j < indices.length; j++) out[j] = values[this.rows[indices[j]!]!]!;
  }
}

/**
 * Standardises each feature with the mean and (population) std of the train rows only, so
 * nothing about the test split leaks into the inputs. A constant feature is only centred.
 */
function standardise(features: Float64Array, width: number, trainRows: Uint32Array): { mean: number[]; std: number[] } {
  const mean = new Array<number>(width).fill(0);
  const std = new Array<number>(width).fill(0);
  for (let f = 0; f < width; f++) {
    let sum = 0;
    for (const r of trainRows) sum += features[r * width + f]!;
    const m = sum / trainRows.length;
    let squares = 0;
    for (const r of trainRows) squares += (features[r * width + f]! - m) ** 2;
    mean[f] = m;
    std[f] = Math.sqrt(squares / trainRows.length);
  }
  const rows = features.length / width;
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < width; f++) {
      const s = std[f]!;
      const centred = features[r * width + f]! - mean[f]!;
      features[r * width + f] = s > 0 ? centred / s : centred;
    }
  }
  return { mean, std };
}

/** A digest of what the sampler's batches are made of: the inputs as trained on, and the train rows in order. */
function inputIdentity(features: Float32Array, width: number, trainRows: Uint32Array): string {
  const hash = createHash('sha256').update(`mtl-table-inputs-v1\0${width}\0`);
  hash.update(new Uint8Array(features.buffer, features.byteOffset, features.byteLength));
  hash.update(new Uint8Array(trainRows.buffer, trainRows.byteOffset, trainRows.byteLength));
  return `table:${hash.digest('hex')}`;
}

function checkRequests(spec: TableSpec, shown: string, targetColumns: readonly TargetRequest[]): Map<string, TargetKind> {
  const requested = new Map<string, TargetKind>();
  for (const { column, kind } of targetColumns) {
    const earlier = requested.get(column);
    if (earlier !== undefined && earlier !== kind) {
      throw new DatasetError(`${shown}: target column "${column}" is requested both as ${earlier} and as ${kind}`);
    }
    if (spec.features.includes(column)) {
      throw new DatasetError(`${shown}: column "${column}" is both a feature and a target (the model would see its own label)`);
    }
    requested.set(column, kind);
  }
  return requested;
}

/**
 * Loads the file or files `spec.path` names (relative paths and globs resolve against
 * `baseDir`, the job file's directory) and offers the columns of `targetColumns` as targets,
 * each as the kind the caller asks for. `spec.target` is not read: one load serves every task
 * of the source (see `bindTasks`).
 */
export function loadTable(spec: TableSpec, baseDir: string, targetColumns: readonly TargetRequest[]): TableDataset {
  const reader = READERS[spec.dataset];
  const { shown, glob, files } = resolveTableFiles(spec.path, baseDir, reader.extension);
  const requested = checkRequests(spec, shown, targetColumns);
  const columns: ColumnRequest[] = [
    ...spec.features.map((name) => ({ name, role: 'feature' })),
    ...[...requested.keys()].map((name) => ({ name, role: 'target' })),
  ];
  const tables = files.map((file) => reader.open(file, columns));

  const rowCount = tables.reduce((n, t) => n + t.rowCount, 0);
  const where = glob ? `${shown} (${files.length} files)` : shown;
  if (rowCount === 0) throw new DatasetError(`${where}: no data rows`);
  const testSize = Math.round(rowCount * spec.testFraction);
  const trainSize = rowCount - testSize;
  if (testSize < 1 || trainSize < 1) {
    throw new DatasetError(
      `${where}: ${rowCount} data rows with testFraction ${spec.testFraction} give ${trainSize} train / ${testSize} test rows (need at least 1 of each)`,
    );
  }
  // Keyed by what the data is, not by how it is named: moving the files keeps the split.
  const order = Rng.fromKey(spec.seed, 'table-split', rowCount).permutation(rowCount);
  const trainRows = order.subarray(0, trainSize);
  const testRows = order.subarray(trainSize);

  const width = spec.features.length;
  const raw = new Float64Array(rowCount * width);
  const numbers = new Map<string, Float32Array>();
  const labels = new Map<string, string[]>();
  for (const [column, kind] of requested) {
    if (kind === 'classification') labels.set(column, new Array<string>(rowCount));
    else numbers.set(column, new Float32Array(rowCount));
  }
  let offset = 0;
  for (const table of tables) {
    for (let p = 0; p < table.partCount; p++) {
      const part = table.part(p);
      const base = offset + part.firstRow;
      spec.features.forEach((column, f) => {
        const cells = part.column(column);
        for (let r = 0; r < part.rowCount; r++) raw[(base + r) * width + f] = numberOf(cells[r], table, part.firstRow + r, column);
      });
      for (const [column, values] of numbers) {
        const cells = part.column(column);
        for (let r = 0; r < part.rowCount; r++) values[base + r] = numberOf(cells[r], table, part.firstRow + r, column);
      }
      for (const [column, values] of labels) {
        const cells = part.column(column);
        for (let r = 0; r < part.rowCount; r++) values[base + r] = labelOf(cells[r], table, part.firstRow + r, column);
      }
    }
    offset += table.rowCount;
  }
  const normalization = spec.normalize ? standardise(raw, width, trainRows) : undefined;
  const features = Float32Array.from(raw);

  const targets: Record<string, TargetInfo> = {};
  const values = new Map<string, Float32Array>();
  for (const [column, kind] of requested) {
    if (kind === 'classification') {
      const { classes, values: indices } = classIndices(labels.get(column)!);
      targets[column] = { kind, classes };
      values.set(column, indices);
    } else {
      targets[column] = { kind };
      values.set(column, numbers.get(column)!);
    }
  }

  return {
    inputShape: [width],
    targets,
    train: new RowSplit(features, width, values, trainRows, shown),
    test: new RowSplit(features, width, values, testRows, shown),
    description:
      `${spec.dataset} ${where}: ${width} features, ${trainSize} train / ${testSize} test rows` +
      `${spec.normalize ? ' (standardised with train statistics)' : ''}, seed ${spec.seed}`,
    identity: inputIdentity(features, width, trainRows),
    normalization,
    columns: spec.features.map((column, f) => (normalization ? { column, kind: 'numeric', mean: normalization.mean[f]!, std: normalization.std[f]! } : { column, kind: 'numeric' })),
    files,
  };
}
