// `npm run bench -- data [--rows N] [--reps N]`: read throughput of the table formats on one
// core. The Seattle weather table (vega-datasets) repeated to --rows rows (100,000 by
// default; each copy's numbers shifted so the values do not repeat) is written as CSV, JSON lines and Parquet (one file, row groups of 10,000 rows,
// snappy), and for each format the bench times, side by side in one run:
// - raw: reading the file's bytes sequentially (readFileSync), the floor;
// - reader: the format's reader alone (open, decode every part, the 5 columns a job reads);
// - to batches: loadTable (reader, typing, split, standardisation, Float32 tensors) and one
//   epoch of the train split copied out in batches of 64, what a worker does before training.
// It prints rows/s and MB/s (of the file's bytes) and the ratio of examples/s to raw reading.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openCsv } from '../common/datasets/csv.js';
import { openJsonl } from '../common/datasets/jsonl.js';
import { openParquet } from '../common/datasets/parquet.js';
import type { ColumnRequest, TableReader } from '../common/datasets/table-reader.js';
import { loadTable } from '../common/datasets/tabular.js';
import type { TableDatasetKind } from '../common/job-schema.js';
import { SEATTLE_FEATURES, seattleTable, writeParquet } from '../test/helpers/table-fixtures.js';
import { medianMs, option, type Bench } from './bench-types.js';

const NUMERIC = new Set(['precipitation', 'temp_max', 'temp_min', 'wind']);
const COLUMNS: ColumnRequest[] = [...SEATTLE_FEATURES.map((name) => ({ name, role: 'feature' })), { name: 'weather', role: 'target' }, { name: 'temp_max', role: 'target' }];
const READERS: Record<TableDatasetKind, TableReader> = { csv: openCsv, jsonl: openJsonl, parquet: openParquet };

function writeTables(dir: string, rowCount: number): Record<TableDatasetKind, string> {
  const { header, rows: base } = seattleTable();
  // Copy k of the table adds k/10 to its numbers, so the values are not 1461 repeated ones
  // (a Parquet dictionary would shrink those to nothing).
  const rows = Array.from({ length: rowCount }, (_, i) => {
    const k = Math.floor(i / base.length);
    return base[i % base.length]!.map((cell, c) => (NUMERIC.has(header[c]!) ? String(Math.round((Number(cell) + k / 10) * 10) / 10) : cell));
  });
  const csv = path.join(dir, 'weather.csv');
  writeFileSync(csv, [header.join(','), ...rows.map((r) => r.join(','))].join('\n') + '\n');
  const jsonl = path.join(dir, 'weather.jsonl');
  writeFileSync(jsonl, rows.map((r) => JSON.stringify(Object.fromEntries(header.map((h, c) => [h, NUMERIC.has(h) ? Number(r[c]) : r[c]])))).join('\n') + '\n');
  const parquet = writeParquet(
    path.join(dir, 'weather.parquet'),
    header.map((h, c) => (NUMERIC.has(h) ? { name: h, data: rows.map((r) => Number(r[c])), type: 'DOUBLE' as const } : { name: h, data: rows.map((r) => r[c]!), type: 'STRING' as const })),
    10_000,
  );
  return { csv, jsonl, parquet };
}

function readAll(reader: TableReader, file: string): number {
  const table = reader(file, COLUMNS);
  let cells = 0;
  for (let p = 0; p < table.partCount; p++) {
    const part = table.part(p);
    for (const c of COLUMNS) cells += part.column(c.name).length;
  }
  return cells;
}

function toBatches(kind: TableDatasetKind, file: string): number {
  const spec = { dataset: kind, path: file, features: SEATTLE_FEATURES, target: 'weather', testFraction: 0.2, normalize: true, seed: 0 };
  const ds = loadTable(spec, '/', [
    { column: 'weather', kind: 'classification' },
    { column: 'temp_max', kind: 'regression' },
  ]);
  const batch = 64;
  const x = new Float32Array(batch * SEATTLE_FEATURES.length);
  const y = new Float32Array(batch);
  const indices = new Uint32Array(batch);
  let examples = 0;
  for (let start = 0; start + batch <= ds.train.size; start += batch) {
    for (let j = 0; j < batch; j++) indices[j] = start + j;
    ds.train.inputs(indices, x);
    ds.train.targets('weather', indices, y);
    ds.train.targets('temp_max', indices, y);
    examples += batch;
  }
  return examples;
}

export const dataBench: Bench = {
  name: 'data',
  description: 'read throughput of the table formats (csv, jsonl, parquet) against raw sequential reads, one core',
  suiteDefaults: { rows: '50000', reps: '3' },
  run(args, progress) {
    const rowCount = Number(option(args, 'rows') ?? 100_000);
    const reps = Number(option(args, 'reps') ?? 3);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mtl-bench-data-'));
    try {
      progress(`writing ${rowCount} rows as csv, jsonl and parquet in ${dir}`);
      const files = writeTables(dir, rowCount);
      const rows: Array<Record<string, number | string>> = [];
      for (const kind of ['csv', 'jsonl', 'parquet'] as const) {
        const file = files[kind];
        const bytes = statSync(file).size;
        const raw = medianMs(() => void readFileSync(file), reps);
        const reader = medianMs(() => void readAll(READERS[kind], file), reps);
        const batches = medianMs(() => void toBatches(kind, file), reps);
        const row = {
          format: kind,
          MB: bytes / 1e6,
          rawMBs: bytes / 1e3 / raw,
          readerRowsPerS: (rowCount * 1000) / reader,
          readerMBs: bytes / 1e3 / reader,
          batchesRowsPerS: (rowCount * 1000) / batches,
          ratioToRaw: raw / batches,
        };
        progress(`${kind}: raw ${raw.toFixed(1)} ms, reader ${reader.toFixed(1)} ms, to batches ${batches.toFixed(1)} ms`);
        rows.push(row);
      }
      const fmt = (v: number | string, digits = 0): string => (typeof v === 'number' ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : v);
      const lines = [
        `Table formats, ${rowCount.toLocaleString('en-US')} rows of seattle-weather (5 of 6 columns read), one core, median of ${reps}:`,
        '',
        '| format | file MB | raw read MB/s | reader rows/s | reader MB/s | to batches rows/s | examples/s ÷ raw read |',
        '|---|---|---|---|---|---|---|',
        ...rows.map((r) => `| ${r.format} | ${fmt(r.MB!, 1)} | ${fmt(r.rawMBs!)} | ${fmt(r.readerRowsPerS!)} | ${fmt(r.readerMBs!, 1)} | ${fmt(r.batchesRowsPerS!)} | ${fmt(r.ratioToRaw!, 3)} |`),
      ];
      return Promise.resolve({ text: lines.join('\n'), json: { rows: rowCount, reps, formats: rows } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
