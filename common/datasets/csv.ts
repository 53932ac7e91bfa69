// A dataset from a CSV file with a header row: the listed feature columns are the input, and
// any column can serve as a target (several tasks may read one file, each its own column).
//
// Every message names the resolved file and, for a bad cell, its line in the file (the header
// is line 1) and its column, because "row 1234 of the train split" helps nobody fix a file.
import { readFileSync } from 'node:fs';
import { CsvError, parse } from 'csv-parse/sync';
import { resolveDataPath } from '../data-store/resolve.js';
import { DatasetError } from '../errors.js';
import type { CsvSpec } from '../job-schema.js';
import { Rng } from '../random.js';
import { checkSplitRequest, type Dataset, type Split, type TargetInfo, type TargetKind } from './types.js';

/** A column the dataset must offer as a target, and how the caller will use it. */
export interface CsvTargetRequest {
  column: string;
  kind: TargetKind;
}

export interface CsvDataset extends Dataset {
  /** Per-feature train mean and std applied to the inputs; undefined when `normalize` is off. */
  readonly normalization: { readonly mean: readonly number[]; readonly std: readonly number[] } | undefined;
}

interface CsvTable {
  header: string[];
  rows: string[][];
  /** Line of the file where each data row starts (the header is line 1). */
  lines: number[];
}

// Plain decimal notation only: Number() would also accept '', '0x1f', 'Infinity' and ' '.
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function parseNumber(cell: string): number | undefined {
  if (!DECIMAL.test(cell)) return undefined;
  const value = Number(cell);
  return Number.isFinite(value) ? value : undefined;
}

function readTable(file: string): CsvTable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new DatasetError(`${file}: cannot read CSV file: ${reason}`, { cause: err });
  }
  if (text.trim() === '') throw new DatasetError(`${file}: the CSV file is empty`);
  const ends: number[] = [];
  let records: string[][];
  try {
    records = parse(text, {
      bom: true,
      trim: true,
      skip_empty_lines: true,
      on_record: (record: string[], context) => {
        ends.push(context.lines);
        return record;
      },
    });
  } catch (err) {
    if (err instanceof CsvError) throw new DatasetError(`${file}: ${err.message}`, { cause: err });
    throw err;
  }
  const [header, ...rows] = records;
  if (header === undefined) throw new DatasetError(`${file}: the CSV file is empty`);
  if (rows.length === 0) throw new DatasetError(`${file}: the CSV file has a header but no data rows`);
  // csv-parse counts lines up to the end of a record; a quoted cell may span several lines.
  const lines = rows.map((row, r) => ends[r + 1]! - row.reduce((n, cell) => n + (cell.match(/\r\n|\r|\n/g)?.length ?? 0), 0));
  return { header, rows, lines };
}

function columnIndex(file: string, header: readonly string[], column: string, role: string): number {
  const first = header.indexOf(column);
  if (first < 0) {
    throw new DatasetError(`${file}: ${role} column "${column}" is not in the header (columns: ${header.join(', ')})`);
  }
  if (header.indexOf(column, first + 1) >= 0) {
    throw new DatasetError(`${file}: ${role} column "${column}" appears more than once in the header`);
  }
  return first;
}

function cellError(file: string, table: CsvTable, r: number, column: string, expected: string): DatasetError {
  const cell = table.rows[r]![table.header.indexOf(column)]!;
  const got = cell === '' ? 'an empty cell' : JSON.stringify(cell);
  return new DatasetError(`${file}: line ${table.lines[r]!}, column "${column}": expected ${expected}, got ${got}`);
}

function numericColumn(file: string, table: CsvTable, column: number): Float64Array {
  const values = new Float64Array(table.rows.length);
  for (let r = 0; r < table.rows.length; r++) {
    const value = parseNumber(table.rows[r]![column]!);
    if (value === undefined) throw cellError(file, table, r, table.header[column]!, 'a number');
    values[r] = value;
  }
  return values;
}

/** Class labels: sorted distinct cells (by value when all are numbers, so '10' follows '9'). */
function classColumn(file: string, table: CsvTable, column: number): { classes: string[]; values: Float64Array } {
  const cells = table.rows.map((row) => row[column]!);
  const empty = cells.indexOf('');
  if (empty >= 0) throw cellError(file, table, empty, table.header[column]!, 'a class label');
  const distinct = [...new Set(cells)];
  const numbers = new Map(distinct.map((c) => [c, parseNumber(c)] as const));
  const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  if (distinct.every((c) => numbers.get(c) !== undefined)) {
    distinct.sort((a, b) => numbers.get(a)! - numbers.get(b)! || byString(a, b));
  } else {
    distinct.sort(byString);
  }
  const index = new Map(distinct.map((c, i) => [c, i] as const));
  return { classes: distinct, values: Float64Array.from(cells, (c) => index.get(c)!) };
}

/** The file rows `rows` (indices into the file's data rows), in that order. */
class RowSplit implements Split {
  readonly size: number;

  constructor(
    private readonly features: Float32Array,
    private readonly width: number,
    private readonly targetValues: ReadonlyMap<string, Float32Array>,
    private readonly rows: Uint32Array,
    private readonly file: string,
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
      throw new DatasetError(`${this.file}: "${target}" is not a target of this dataset (targets: ${[...this.targetValues.keys()].join(', ')})`);
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

/**
 * Loads `spec.path` (relative paths resolve against `baseDir`, the job file's directory) and
 * offers the columns of `targetColumns` as targets, each as the kind the caller asks for.
 * `spec.target` is not read: one load serves every task of the source (see `bindTasks`).
 */
export function loadCsv(spec: CsvSpec, baseDir: string, targetColumns: readonly CsvTargetRequest[]): CsvDataset {
  const file = resolveDataPath(spec.path, baseDir); // nats:// and http(s):// data: the verified local copy (common/data-store)
  const table = readTable(file);
  const featureColumns = spec.features.map((c) => columnIndex(file, table.header, c, 'feature'));
  const requested = new Map<string, { kind: TargetKind; index: number }>();
  for (const { column, kind } of targetColumns) {
    const earlier = requested.get(column);
    if (earlier !== undefined && earlier.kind !== kind) {
      throw new DatasetError(`${file}: target column "${column}" is requested both as ${earlier.kind} and as ${kind}`);
    }
    if (spec.features.includes(column)) {
      throw new DatasetError(`${file}: column "${column}" is both a feature and a target (the model would see its own label)`);
    }
    requested.set(column, { kind, index: columnIndex(file, table.header, column, 'target') });
  }

  const rowCount = table.rows.length;
  const testSize = Math.round(rowCount * spec.testFraction);
  const trainSize = rowCount - testSize;
  if (testSize < 1 || trainSize < 1) {
    throw new DatasetError(
      `${file}: ${rowCount} data rows with testFraction ${spec.testFraction} give ${trainSize} train / ${testSize} test rows (need at least 1 of each)`,
    );
  }
  // Keyed by the path as written, so moving the job directory does not change the split.
  const order = Rng.fromKey(spec.seed, 'csv-split', spec.path).permutation(rowCount);
  const trainRows = order.subarray(0, trainSize);
  const testRows = order.subarray(trainSize);

  const width = featureColumns.length;
  const raw = new Float64Array(rowCount * width);
  featureColumns.forEach((column, f) => {
    numericColumn(file, table, column).forEach((value, r) => (raw[r * width + f] = value));
  });
  const normalization = spec.normalize ? standardise(raw, width, trainRows) : undefined;
  const features = Float32Array.from(raw);

  const targets: Record<string, TargetInfo> = {};
  const values = new Map<string, Float32Array>();
  for (const [column, { kind, index }] of requested) {
    if (kind === 'classification') {
      const { classes, values: labels } = classColumn(file, table, index);
      targets[column] = { kind, classes };
      values.set(column, Float32Array.from(labels));
    } else {
      targets[column] = { kind };
      values.set(column, Float32Array.from(numericColumn(file, table, index)));
    }
  }

  return {
    inputShape: [width],
    targets,
    train: new RowSplit(features, width, values, trainRows, file),
    test: new RowSplit(features, width, values, testRows, file),
    description:
      `csv ${file}: ${width} features, ${trainSize} train / ${testSize} test rows` +
      `${spec.normalize ? ' (standardised with train statistics)' : ''}, seed ${spec.seed}`,
    normalization,
  };
}
