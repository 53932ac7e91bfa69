// The reader layer of table datasets (csv, jsonl, parquet): one reader per format turns ONE
// file into columns of cells, part by part, and says where a row is in the file for messages.
// Typing the cells as numbers or labels, missing values, the split and the tensors are the
// format-independent part (tabular.ts): every format goes through that one path.
//
// A part is the unit a reader decodes at once: a Parquet row group, or the whole file for
// csv and jsonl. Reading is part by part already, so a later bounded-memory reader can keep
// only the parts a worker needs; today every part is read once at load.
import { readFileSync } from 'node:fs';
import { DatasetError } from '../errors.js';

/**
 * One cell as the file holds it: csv cells are text, json and parquet cells are typed; `null`
 * is a missing value (an empty csv cell, a json null or absent key, a parquet null). A Parquet
 * INT64 arrives as a bigint and is converted where its use is known (exactly, or an error).
 */
export type Cell = number | bigint | string | boolean | null;

export type TableFormat = 'csv' | 'jsonl' | 'parquet';

export interface TablePart {
  /** Index in the file (0-based) of the part's first row. */
  readonly firstRow: number;
  readonly rowCount: number;
  /** The cells of one of the columns the file was opened for, one per row of the part. */
  column(name: string): ArrayLike<Cell>;
}

export interface TableFile {
  /** The resolved path, as messages name it. */
  readonly file: string;
  readonly format: TableFormat;
  readonly rowCount: number;
  readonly partCount: number;
  /**
   * True when every cell is text (csv): a number is then a cell written in decimal notation.
   * False when the format types its values (json, parquet): a number must be stored as one.
   */
  readonly textCells: boolean;
  /** How a missing cell reads in this format, for messages ("an empty cell", "null"). */
  readonly missingText: string;
  /** Rows of part `index` without decoding it, where the format knows them (parquet: from the footer). */
  partRows?(index: number): number;
  /** Decodes part `index` (0 ≤ index < partCount). Errors name the file, the part and the column. */
  part(index: number): TablePart;
  /** Where row `row` (0-based in the file) is, for messages: "line 12", "row 11 (row group 0)". */
  locate(row: number): string;
}

/** A column a dataset needs, and its role for messages ("feature", "target"). */
export interface ColumnRequest {
  readonly name: string;
  readonly role: string;
}

/**
 * Opens `file` for the columns `columns` (every one must exist: the error names the file, the
 * column, its role and the columns the file has). A reader decodes no other column's values.
 */
export type TableReader = (file: string, columns: readonly ColumnRequest[]) => TableFile;

/** How a cell value reads in a message: strings quoted, the rest as written. */
export function showCell(cell: Cell, table: Pick<TableFile, 'textCells' | 'missingText'>): string {
  if (cell === null) return table.missingText;
  if (typeof cell === 'string') return table.textCells ? JSON.stringify(cell) : `${JSON.stringify(cell)} (a string)`;
  return String(cell);
}

/** The message for a column a file lacks (`where`: "the header", "the schema"), listing the columns it has. */
export function missingColumnMessage(file: string, column: ColumnRequest, where: string, have: readonly string[]): string {
  return `${file}: ${column.role} column "${column.name}" is not in ${where} (columns: ${have.join(', ')})`;
}

/** Reads a file whole as UTF-8; a missing or unreadable file is a DatasetError naming it. */
export function readTextFile(file: string, kind: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw new DatasetError(`${file}: cannot read ${kind} file: ${reason}`, { cause: err });
  }
}
