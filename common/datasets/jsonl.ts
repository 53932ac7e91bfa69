// The JSON-lines reader: one JSON object per line (blank lines skipped), read whole into one
// part holding the requested keys' values (null or an absent key is missing). Values must be
// numbers, strings, booleans or null: a nested object or array is an error naming the column.
// Rows are located by their line in the file (the first line is line 1).
import { DatasetError } from '../errors.js';
import { missingColumnMessage, readTextFile, type Cell, type ColumnRequest, type TableFile, type TablePart } from './table-reader.js';

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** The requested keys' cells of the JSON lines in `text`, whose first line is line `firstLine` of `file`. */
export function parseJsonLines(text: string, file: string, firstLine: number, names: readonly string[]) {
  const cells = names.map((): Cell[] => []);
  const seen = names.map(() => false);
  const keys = new Set<string>();
  const lines: number[] = [];
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (let lineNo = firstLine; start <= text.length; lineNo++) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new DatasetError(`${file}: line ${lineNo}: not valid JSON (${(err as Error).message})`, { cause: err });
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new DatasetError(`${file}: line ${lineNo}: expected a JSON object, got ${kindOf(value)}`);
    }
    const row = value as Record<string, unknown>;
    for (const key in row) keys.add(key);
    names.forEach((name, c) => {
      if (!Object.hasOwn(row, name)) {
        cells[c]!.push(null);
        return;
      }
      seen[c] = true;
      const cell = row[name];
      if (typeof cell === 'object' && cell !== null) {
        throw new DatasetError(`${file}: line ${lineNo}, column "${name}": expected a number, string, boolean or null, got ${kindOf(cell)}`);
      }
      cells[c]!.push(cell as Cell);
    });
    lines.push(lineNo);
  }
  return { cells, seen, keys, lines };
}

/** Opens a JSON-lines file for `columns`: one part, the whole file. */
export function openJsonl(file: string, columns: readonly ColumnRequest[]): TableFile {
  const text = readTextFile(file, 'JSON lines');
  const names = [...new Set(columns.map((c) => c.name))];
  const { cells, seen, keys, lines } = parseJsonLines(text, file, 1, names);
  // A column no line has is a wrong name, not a column of missing values. (A file without any
  // object, like an empty part of a dataset split into files, has no rows to miss it in.)
  if (lines.length > 0) {
    for (const column of columns) {
      if (!seen[names.indexOf(column.name)]) throw new DatasetError(missingColumnMessage(file, column, 'any line', [...keys]));
    }
  }
  const byName = new Map(names.map((name, c) => [name, cells[c]!] as const));
  const part: TablePart = {
    firstRow: 0,
    rowCount: lines.length,
    column(name) {
      const values = byName.get(name);
      if (values === undefined) throw new RangeError(`${file}: column "${name}" was not opened`);
      return values;
    },
  };
  return {
    file,
    format: 'jsonl',
    rowCount: lines.length,
    partCount: 1,
    textCells: false,
    missingText: 'null or no value',
    part(index) {
      if (index !== 0) throw new RangeError(`${file}: a JSON lines file has one part, not part ${index}`);
      return part;
    },
    locate: (row) => `line ${lines[row]!}`,
  };
}
