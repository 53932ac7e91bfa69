// The rows of a data file as they are (column → cell), for predictions from raw inputs
// (`mtl predict`): CSV with a header row, or JSON lines. Each row is located for messages
// ("data.csv line 12").
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CsvError, parse } from 'csv-parse/sync';
import { DatasetError } from '../errors.js';

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

/** The rows of `file`, by its extension: .csv, .jsonl / .ndjson. */
export function readRawRows(file: string): RawRows {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.csv') return csvRows(file);
  if (ext === '.jsonl' || ext === '.ndjson') return jsonLines(file);
  throw new DatasetError(`${file}: cannot read rows from a ${ext || 'file without an extension'} file (csv, jsonl)`);
}
