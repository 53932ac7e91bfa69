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
import { DatasetError } from '../errors.js';
import type { TableDatasetKind, TableSpec } from '../job-schema.js';
import { Rng } from '../random.js';
import { openCsv } from './csv.js';
import { openJsonl } from './jsonl.js';
import { openParquet } from './parquet.js';
import { resolveTableFiles } from './table-files.js';
import { showCell, type Cell, type ColumnRequest, type TableFile, type TableReader } from './table-reader.js';
import { standardised, type ColumnTransform, type Dataset, type TargetInfo, type TargetKind } from './types.js';
import { ArraySplit } from './array-split.js';
import { splitByColumn } from './column-split.js';
import { classIndex, parseDecimal } from './class-labels.js';
import { InputsDigest } from './identity.js';
import { Vocabulary } from './vocabulary.js';

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

/** The test fraction when neither `testFraction` nor `test` is given. */
export const DEFAULT_TEST_FRACTION = 0.2;

export const READERS: Record<TableDatasetKind, { open: TableReader; extension: string }> = {
  csv: { open: openCsv, extension: 'csv' },
  jsonl: { open: openJsonl, extension: 'jsonl' },
  parquet: { open: openParquet, extension: 'parquet' },
};

/** What messages about a cell need of its file: its name, how cells read, where a row is. */
export type CellSite = Pick<TableFile, 'file' | 'textCells' | 'missingText' | 'locate'>;

function cellError(table: CellSite, row: number, column: string, expected: string, cell: Cell): DatasetError {
  return new DatasetError(`${table.file}: ${table.locate(row)}, column "${column}": expected ${expected}, got ${showCell(cell, table)}`);
}

/** What a missing cell (an empty csv cell, a JSON null or absent key, a Parquet null) becomes. */
export type MissingPolicy = NonNullable<TableSpec['missing']>;

/**
 * A missing cell under `policy`: an error naming file, row and column (the default), the fill
 * value, or `drop` (undefined: the row is left out before the split).
 */
function missing(table: CellSite, row: number, column: string, expected: string, policy: MissingPolicy, as: 'number' | 'label'): number | string | undefined {
  if (policy === 'error') throw cellError(table, row, column, expected, null);
  if (policy === 'drop') return undefined;
  const fill = policy.fill;
  if (as === 'label') return String(fill);
  if (typeof fill !== 'number') throw new DatasetError(`${table.file}: ${table.locate(row)}, column "${column}": missing, and the fill value ${JSON.stringify(fill)} is not a number`);
  return fill;
}

/** A numeric cell: a number (finite), an exactly representable integer, or decimal text in csv. */
export function numberOf(cell: Cell | undefined, table: CellSite, row: number, column: string, policy: MissingPolicy): number | undefined {
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
    return missing(table, row, column, 'a number', policy, 'number') as number | undefined;
  }
  throw cellError(table, row, column, 'a number', cell ?? null);
}

/** A class label's text: a string as it is, an integer or a boolean as String(value). */
export function labelOf(cell: Cell | undefined, table: CellSite, row: number, column: string, policy: MissingPolicy, what = 'a class label'): string | undefined {
  const expected = table.textCells ? what : `${what} (a string, an integer or a boolean)`;
  if (typeof cell === 'string') {
    if (cell !== '') return cell;
  } else if (typeof cell === 'bigint' || typeof cell === 'boolean' || (typeof cell === 'number' && Number.isInteger(cell))) {
    return String(cell);
  } else if (cell === null || cell === undefined) {
    return missing(table, row, column, expected, policy, 'label') as string | undefined;
  }
  throw cellError(table, row, column, expected, cell ?? null);
}

/** Class labels: sorted distinct texts (by value when all are numbers, so '10' follows '9'). */
function classIndices(labels: readonly string[]): { classes: string[]; values: Float32Array } {
  const { classes, index } = classIndex(labels);
  return { classes, values: Float32Array.from(labels, (c) => index.get(c)!) };
}

/**
 * Standardises each numeric feature (`numeric[f]`) with the mean and (population) std of the
 * train rows only, so nothing about the test split leaks into the inputs; a constant feature is
 * only centred (`standardised`). Categorical columns (vocabulary ids) are left as they are.
 */
function standardise(features: Float64Array, width: number, trainRows: Uint32Array, numeric: readonly boolean[]): ColumnTransform[] {
  const transforms: ColumnTransform[] = [];
  for (let f = 0; f < width; f++) {
    if (!numeric[f]) continue;
    let sum = 0;
    for (const r of trainRows) sum += features[r * width + f]!;
    const mean = sum / trainRows.length;
    let squares = 0;
    for (const r of trainRows) squares += (features[r * width + f]! - mean) ** 2;
    const t = { column: '', kind: 'numeric' as const, mean, std: Math.sqrt(squares / trainRows.length) };
    transforms[f] = t;
    for (let r = 0; r < features.length / width; r++) features[r * width + f] = standardised(features[r * width + f]!, t);
  }
  return transforms;
}

export function checkRequests(spec: TableSpec, shown: string, targetColumns: readonly TargetRequest[]): Map<string, TargetKind> {
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

/** The train and test files: `spec.test` names the test split's own file(s), else a seeded fraction of `spec.path`'s rows. */
function openFiles(spec: TableSpec, baseDir: string, columns: readonly ColumnRequest[]) {
  const reader = READERS[spec.dataset];
  const train = resolveTableFiles(spec.path, baseDir, reader.extension);
  const test = spec.test === undefined ? undefined : resolveTableFiles(spec.test, baseDir, reader.extension);
  const describe = (f: typeof train) => (f.glob ? `${f.shown} (${f.files.length} files)` : f.shown);
  return {
    shown: train.shown,
    where: describe(train) + (test ? `, test ${describe(test)}` : ''),
    files: [...train.files, ...(test?.files ?? [])],
    tables: [...train.files, ...(test?.files ?? [])].map((file) => reader.open(file, columns)),
    trainFiles: train.files.length,
  };
}

/**
 * Loads the file or files `spec.path` names (relative paths and globs resolve against
 * `baseDir`, the job file's directory) and offers the columns of `targetColumns` as targets,
 * each as the kind the caller asks for. `spec.target` is not read: one load serves every task
 * of the source (see `bindTasks`).
 */
export function loadTable(spec: TableSpec, baseDir: string, targetColumns: readonly TargetRequest[]): TableDataset {
  const requested = checkRequests(spec, resolveTableFiles(spec.path, baseDir, READERS[spec.dataset].extension).shown, targetColumns);
  const columns: ColumnRequest[] = [
    ...spec.features.map((name) => ({ name, role: 'feature' })),
    ...[...requested.keys()].map((name) => ({ name, role: 'target' })),
  ];
  const splitColumn = spec.split?.column;
  if (splitColumn !== undefined && !columns.some((c) => c.name === splitColumn)) columns.push({ name: splitColumn, role: 'split' });
  const { shown, where, files, tables, trainFiles } = openFiles(spec, baseDir, columns);
  const categoricalColumns = spec.categorical ?? [];
  for (const c of categoricalColumns) {
    if (!spec.features.includes(c)) throw new DatasetError(`${shown}: categorical column "${c}" is not one of the features (${spec.features.join(', ')})`);
  }
  const categorical = spec.features.map((c) => categoricalColumns.includes(c));
  const policy: MissingPolicy = spec.missing ?? 'error';

  // Every needed cell of every row, in file order; a row with a cell missing under `drop` is left out.
  const width = spec.features.length;
  const fileRows = tables.reduce((n, t) => n + t.rowCount, 0);
  const raw = new Float64Array(fileRows * width);
  const categories = new Map(categoricalColumns.map((c) => [c, new Array<string>(fileRows)]));
  const numbers = new Map<string, Float32Array>();
  const labels = new Map<string, string[]>();
  for (const [column, kind] of requested) {
    if (kind === 'classification') labels.set(column, new Array<string>(fileRows));
    else numbers.set(column, new Float32Array(fileRows));
  }
  const splitLabels = splitColumn === undefined ? undefined : new Array<string>(fileRows);
  const dropped = new Uint8Array(fileRows);
  const keep = (row: number, value: number | string | undefined): value is number | string => {
    if (value === undefined) dropped[row] = 1;
    return value !== undefined;
  };
  let offset = 0;
  let trainFileRows = 0;
  tables.forEach((table, t) => {
    for (let p = 0; p < table.partCount; p++) {
      const part = table.part(p);
      const base = offset + part.firstRow;
      spec.features.forEach((column, f) => {
        const cells = part.column(column);
        const names = categories.get(column);
        for (let r = 0; r < part.rowCount; r++) {
          if (names) {
            const v = labelOf(cells[r], table, part.firstRow + r, column, policy, 'a category');
            if (keep(base + r, v)) names[base + r] = v;
          } else {
            const v = numberOf(cells[r], table, part.firstRow + r, column, policy);
            if (keep(base + r, v)) raw[(base + r) * width + f] = v;
          }
        }
      });
      for (const [column, values] of numbers) {
        const cells = part.column(column);
        for (let r = 0; r < part.rowCount; r++) {
          const v = numberOf(cells[r], table, part.firstRow + r, column, policy);
          if (keep(base + r, v)) values[base + r] = v;
        }
      }
      for (const [column, values] of labels) {
        const cells = part.column(column);
        for (let r = 0; r < part.rowCount; r++) {
          const v = labelOf(cells[r], table, part.firstRow + r, column, policy);
          if (keep(base + r, v)) values[base + r] = v;
        }
      }
      if (splitLabels) {
        const cells = part.column(splitColumn!);
        for (let r = 0; r < part.rowCount; r++) {
          const v = labelOf(cells[r], table, part.firstRow + r, splitColumn!, policy, 'a split value');
          if (keep(base + r, v)) splitLabels[base + r] = v;
        }
      }
    }
    offset += table.rowCount;
    if (t === trainFiles - 1) trainFileRows = offset;
  });

  // The rows kept (all, unless `missing: drop` left some out), renumbered densely.
  const kept = Uint32Array.from({ length: fileRows }, (_, r) => r).filter((r) => dropped[r] === 0);
  const rowCount = kept.length;
  const keptTrainFileRows = kept.filter((r) => r < trainFileRows).length;
  if (rowCount === 0) throw new DatasetError(`${where}: no data rows${fileRows > 0 ? ` (all ${fileRows} have a missing value, and missing is drop)` : ''}`);

  let trainRows: Uint32Array;
  let testRows: Uint32Array;
  if (spec.split !== undefined) {
    ({ trainRows, testRows } = splitByColumn(Array.from(kept, (r) => splitLabels![r]!), spec.split, where));
  } else if (spec.test !== undefined) {
    if (spec.testFraction !== undefined) throw new DatasetError(`${where}: give either test (the test split's files) or testFraction, not both`);
    trainRows = Uint32Array.from({ length: keptTrainFileRows }, (_, i) => i);
    testRows = Uint32Array.from({ length: rowCount - keptTrainFileRows }, (_, i) => keptTrainFileRows + i);
  } else {
    const fraction = spec.testFraction ?? DEFAULT_TEST_FRACTION;
    const testSize = Math.round(rowCount * fraction);
    if (testSize < 1 || rowCount - testSize < 1) {
      throw new DatasetError(`${where}: ${rowCount} data rows with testFraction ${fraction} give ${rowCount - testSize} train / ${testSize} test rows (need at least 1 of each)`);
    }
    // Keyed by what the data is, not by how it is named: moving the files keeps the split.
    const order = Rng.fromKey(spec.seed, 'table-split', rowCount).permutation(rowCount);
    trainRows = order.subarray(0, rowCount - testSize);
    testRows = order.subarray(rowCount - testSize);
  }
  if (trainRows.length < 1 || testRows.length < 1) throw new DatasetError(`${where}: ${trainRows.length} train / ${testRows.length} test rows (need at least 1 of each)`);

  // Categories: ids from the vocabulary of the train rows (0 for a value only the test rows have).
  const vocabularies = new Map<string, Vocabulary>();
  const features64 = new Float64Array(rowCount * width);
  spec.features.forEach((column, f) => {
    const names = categories.get(column);
    if (names) {
      const vocabulary = Vocabulary.fromValues(Array.from(trainRows, (r) => names[kept[r]!]!));
      vocabularies.set(column, vocabulary);
      kept.forEach((from, r) => (features64[r * width + f] = vocabulary.id(names[from]!)));
    } else kept.forEach((from, r) => (features64[r * width + f] = raw[from * width + f]!));
  });
  const stats = spec.normalize ? standardise(features64, width, trainRows, categorical.map((c) => !c)) : [];
  const features = Float32Array.from(features64);
  const transforms: ColumnTransform[] = spec.features.map((column) => {
    const vocabulary = vocabularies.get(column);
    if (vocabulary) return { column, kind: 'categorical', vocabulary: vocabulary.values };
    const t = stats[spec.features.indexOf(column)];
    return t && t.kind === 'numeric' ? { column, kind: 'numeric', mean: t.mean!, std: t.std! } : { column, kind: 'numeric' };
  });

  const targets: Record<string, TargetInfo> = {};
  const values = new Map<string, Float32Array>();
  for (const [column, kind] of requested) {
    if (kind === 'classification') {
      const { classes, values: indices } = classIndices(Array.from(kept, (r) => labels.get(column)![r]!));
      targets[column] = { kind, classes };
      values.set(column, indices);
    } else {
      targets[column] = { kind };
      values.set(column, Float32Array.from(kept, (r) => numbers.get(column)![r]!));
    }
  }
  const normalization = spec.normalize
    ? { mean: transforms.map((t) => (t.kind === 'numeric' ? (t.mean ?? 0) : 0)), std: transforms.map((t) => (t.kind === 'numeric' ? (t.std ?? 1) : 1)) }
    : undefined;
  const vocabularyNote = [...vocabularies].map(([c, v]) => `${c}: ${v.values.length} categories (ids 1..${v.values.length}, 0 unknown)`).join('; ');
  const droppedNote = fileRows > rowCount ? `, ${fileRows - rowCount} rows with missing values dropped` : '';
  return {
    inputShape: [width],
    targets,
    train: new ArraySplit(features, width, values, trainRows, shown),
    test: new ArraySplit(features, width, values, testRows, shown),
    description:
      `${spec.dataset} ${where}: ${width} features, ${trainRows.length} train / ${testRows.length} test rows${droppedNote}` +
      `${spec.normalize ? ' (standardised with train statistics)' : ''}${vocabularyNote ? `; ${vocabularyNote}` : ''}, seed ${spec.seed}`,
    identity: new InputsDigest('table', width).add(features).finish(trainRows),
    normalization,
    columns: transforms,
    files,
  };
}
