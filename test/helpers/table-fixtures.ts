// Table fixtures for the dataset tests: the Seattle weather table of vega-datasets (the data
// of examples/seattle-weather.yaml) written again as JSON lines and as Parquet split into
// several files (with hyparquet-writer, a dev dependency), and small Parquet files of chosen
// column types.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { parquetWriteFile, type ColumnSource } from 'hyparquet-writer';
import { REPO_ROOT } from './paths.js';

export const SEATTLE_CSV = path.join(REPO_ROOT, 'node_modules', 'vega-datasets', 'data', 'seattle-weather.csv');
export const FLIGHTS_PARQUET = path.join(REPO_ROOT, 'node_modules', 'vega-datasets', 'data', 'flights-3m.parquet');
export const SEATTLE_FEATURES = ['precipitation', 'temp_min', 'wind'];
const NUMERIC = new Set(['precipitation', 'temp_max', 'temp_min', 'wind']);

export interface SeattleTable {
  header: string[];
  /** Each row's cells as the CSV has them (text). */
  rows: string[][];
}

export function seattleTable(): SeattleTable {
  const records: string[][] = parse(readFileSync(SEATTLE_CSV, 'utf8'), { bom: true, trim: true, skip_empty_lines: true });
  const [header, ...rows] = records;
  return { header: header!, rows };
}

/** The table as JSON lines: numeric columns as JSON numbers, the rest as strings. */
export function writeSeattleJsonl(file: string): string {
  const { header, rows } = seattleTable();
  const lines = rows.map((row) => JSON.stringify(Object.fromEntries(header.map((h, c) => [h, NUMERIC.has(h) ? Number(row[c]) : row[c]]))));
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/**
 * The table as Parquet in `parts` files `part-<k>.parquet` of near-equal row ranges, in `dir`;
 * numeric columns DOUBLE, the rest STRING, row groups of `rowGroupSize` rows.
 */
export function writeSeattleParquet(dir: string, parts: number, rowGroupSize = 200): string[] {
  const { header, rows } = seattleTable();
  const files: string[] = [];
  for (let k = 0; k < parts; k++) {
    const from = Math.floor((rows.length * k) / parts);
    const to = Math.floor((rows.length * (k + 1)) / parts);
    const slice = rows.slice(from, to);
    const columnData: ColumnSource[] = header.map((h, c) =>
      NUMERIC.has(h) ? { name: h, data: slice.map((r) => Number(r[c])), type: 'DOUBLE' } : { name: h, data: slice.map((r) => r[c]!), type: 'STRING' },
    );
    const file = path.join(dir, `part-${k}.parquet`);
    parquetWriteFile({ filename: file, columnData, rowGroupSize });
    files.push(file);
  }
  return files;
}

/** A Parquet file of the given columns (see hyparquet-writer's ColumnSource). */
export function writeParquet(file: string, columnData: ColumnSource[], rowGroupSize?: number): string {
  parquetWriteFile({ filename: file, columnData, ...(rowGroupSize === undefined ? {} : { rowGroupSize }) });
  return file;
}

/**
 * The two-task Seattle weather job (examples/seattle-weather.yaml, smaller) on `file` read as
 * `dataset`, for the end-to-end format tests; `dataOptions` are added to both tasks' data
 * (e.g. `stream`).
 */
export function seattleJob(dataset: string, file: string, options: { name: string; steps: number; dataOptions?: object }): object {
  const data = (target: string) => ({ dataset, path: file, features: SEATTLE_FEATURES, target, ...options.dataOptions });
  return {
    name: options.name,
    seed: 3,
    model: {
      trunk: [{ dense: { units: 16, activation: 'relu' } }, { dropout: { rate: 0.1 } }],
      heads: { weather: [{ dense: { units: 5, activation: 'softmax' } }], temp_max: [{ dense: { units: 1 } }] },
    },
    tasks: {
      weather: { loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: data('weather') },
      temp_max: { loss: 'meanSquaredError', metrics: ['mae'], data: data('temp_max') },
    },
    training: { steps: options.steps, batchSize: 32, shardsPerTask: 2, optimizer: { name: 'adam', learningRate: 0.003 } },
  };
}
