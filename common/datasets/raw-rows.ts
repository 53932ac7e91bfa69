// The rows of a data file as they are (column → cell), for predictions from raw inputs
// (`mtl predict`): CSV with a header row, JSON lines, or Parquet (only the columns asked for).
// Each row is located for messages ("data.csv line 12", "rows.parquet row 3 (row group 0)").
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CsvError, parse } from 'csv-parse/sync';
import { DatasetError } from '../errors.js';
import { openParquet } from './parquet.js';
import type { TableFile } from './table-reader.js';

export interface RawRows {
  readonly rows: ReadonlyArray<Record<string, unknown>>;
  /** Where row r is, for messages. */
  where(row: number): string;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new DatasetError(`${file}: cannot read: ${reason}`, { cause: err });
  }
}

function csvRows(file: string): RawRows {
  const lines: number[] = [];
  try {
    const rows = parse<Record<string, unknown>>(readText(file), {
      bom: true,
      trim: true,
      columns: true,
      skip_empty_lines: true,
      on_record: (record: Record<string, unknown>, context) => {
        lines.push(context.lines);
        return record;
      },
    });
    return { rows, where: (r) => `${file} line ${lines[r] ?? '?'}` };
  } catch (err) {
    if (err instanceof CsvError) throw new DatasetError(`${file}: ${err.message}`, { cause: err });
    throw err;
  }
}

function jsonLines(file: string): RawRows {
  const rows: Array<Record<string, unknown>> = [];
  const lines: number[] = [];
  readText(file)
    .split(/\r?\n/)
    .forEach((text, i) => {
      if (text.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw new DatasetError(`${file} line ${i + 1}: not JSON (${(err as Error).message})`, { cause: err });
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new DatasetError(`${file} line ${i + 1}: expected a JSON object`);
      rows.push(value as Record<string, unknown>);
      lines.push(i + 1);
    });
  return { rows, where: (r) => `${file} line ${lines[r] ?? '?'}` };
}

function parquetRows(file: string, columns: { required: readonly string[]; optional: readonly string[] }): RawRows {
  const request = (names: readonly string[]) => names.map((name) => ({ name, role: 'input' }));
  let table: TableFile;
  try {
    table = openParquet(file, request([...columns.required, ...columns.optional]));
  } catch (err) {
    // A file without the targets: predictions only.
    if (!(err instanceof DatasetError) || columns.optional.length === 0) throw err;
    table = openParquet(file, request(columns.required));
  }
  const names = [...columns.required, ...columns.optional];
  const rows: Array<Record<string, unknown>> = Array.from({ length: table.rowCount }, () => ({}));
  for (let p = 0; p < table.partCount; p++) {
    const part = table.part(p);
    for (const name of names) {
      let cells;
      try {
        cells = part.column(name);
      } catch {
        continue;
      }
      for (let r = 0; r < part.rowCount; r++) rows[part.firstRow + r]![name] = cells[r];
    }
  }
  return { rows, where: (r) => `${file} ${table.locate(r)}` };
}

/**
 * The rows of `file`, by its extension: .csv, .jsonl / .ndjson, .parquet (reads `columns`:
 * the required ones, and the optional ones where the file has them).
 */
export function readRawRows(file: string, columns: { required: readonly string[]; optional: readonly string[] } = { required: [], optional: [] }): RawRows {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.csv') return csvRows(file);
  if (ext === '.jsonl' || ext === '.ndjson') return jsonLines(file);
  if (ext === '.parquet') return parquetRows(file, columns);
  throw new DatasetError(`${file}: cannot read rows from a ${ext || 'file without an extension'} file (csv, jsonl, parquet)`);
}
