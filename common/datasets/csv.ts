// The CSV reader: a file with a header row, parsed whole with csv-parse into one part whose
// cells are the trimmed text of the requested columns (an empty cell is missing). Typing the
// cells, the split and the tensors are tabular.ts's.
//
// Rows are located by their line in the file (the header is line 1; a quoted cell may span
// lines, and a row is reported at the line where it starts), because "row 1234 of the train
// split" helps nobody fix a file.
import { CsvError, parse } from 'csv-parse/sync';
import { DatasetError } from '../errors.js';
import { missingColumnMessage, readTextFile, type Cell, type ColumnRequest, type TableFile, type TablePart } from './table-reader.js';

interface CsvText {
  header: string[];
  rows: string[][];
  /** Line of the file where each data row starts (the header is line 1). */
  lines: number[];
}

/**
 * The records of CSV text (trimmed cells, blank lines skipped), each with the line where it
 * starts counted from `firstLine`: csv-parse counts lines up to a record's end, and a quoted
 * cell may span several lines. csv-parse's errors are thrown as they are.
 */
export function parseCsvRecords(text: string, firstLine = 1, bom = false): { records: string[][]; lines: number[] } {
  const ends: number[] = [];
  const records: string[][] = parse(text, {
    bom,
    trim: true,
    skip_empty_lines: true,
    on_record: (record: string[], context) => {
      ends.push(context.lines);
      return record;
    },
  });
  const lines = records.map((row, r) => firstLine - 1 + ends[r]! - row.reduce((n, cell) => n + (cell.match(/\r\n|\r|\n/g)?.length ?? 0), 0));
  return { records, lines };
}

function parseCsv(file: string): CsvText {
  const text = readTextFile(file, 'CSV');
  if (text.trim() === '') throw new DatasetError(`${file}: the CSV file is empty`);
  let parsed: { records: string[][]; lines: number[] };
  try {
    parsed = parseCsvRecords(text, 1, true);
  } catch (err) {
    if (err instanceof CsvError) throw new DatasetError(`${file}: ${err.message}`, { cause: err });
    throw err;
  }
  const [header, ...rows] = parsed.records;
  if (header === undefined) throw new DatasetError(`${file}: the CSV file is empty`);
  return { header, rows, lines: parsed.lines.slice(1) };
}

function columnIndex(file: string, header: readonly string[], column: ColumnRequest): number {
  const first = header.indexOf(column.name);
  if (first < 0) throw new DatasetError(missingColumnMessage(file, column, 'the header', header));
  if (header.indexOf(column.name, first + 1) >= 0) {
    throw new DatasetError(`${file}: ${column.role} column "${column.name}" appears more than once in the header`);
  }
  return first;
}

/** Opens a CSV file for `columns`: one part, the whole file. */
export function openCsv(file: string, columns: readonly ColumnRequest[]): TableFile {
  const { header, rows, lines } = parseCsv(file);
  const cells = new Map<string, Cell[]>();
  for (const column of columns) {
    if (cells.has(column.name)) continue;
    const index = columnIndex(file, header, column);
    cells.set(
      column.name,
      rows.map((row) => (row[index] === '' ? null : row[index]!)),
    );
  }
  const part: TablePart = {
    firstRow: 0,
    rowCount: rows.length,
    column(name) {
      const values = cells.get(name);
      if (values === undefined) throw new RangeError(`${file}: column "${name}" was not opened`);
      return values;
    },
  };
  return {
    file,
    format: 'csv',
    rowCount: rows.length,
    partCount: 1,
    textCells: true,
    missingText: 'an empty cell',
    part(index) {
      if (index !== 0) throw new RangeError(`${file}: a CSV file has one part, not part ${index}`);
      return part;
    },
    locate: (row) => `line ${lines[row]!}`,
  };
}
