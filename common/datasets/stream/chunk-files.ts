// The format layer of streamed tables: cutting a file into chunks (once, in the coordinator's
// scan) and decoding one chunk's cells (in the scan, and on demand in workers). A chunk is a
// byte range of whole records for csv and jsonl (a few MiB, cut at a newline that is not inside
// a quoted csv cell), a row group for parquet. Typing the cells is typed-chunk.ts's, through the
// same checks as the in-memory path (tabular.ts), so messages name file, line and column alike.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { CsvError, parse } from 'csv-parse/sync';
import { DatasetError } from '../../errors.js';
import type { TableDatasetKind } from '../../job-schema.js';
import { parseJsonLines } from '../jsonl.js';
import { openParquet } from '../parquet.js';
import { missingColumnMessage, type Cell, type ColumnRequest, type TableFile } from '../table-reader.js';
import type { CellSite } from '../tabular.js';
import type { ChunkRef } from './plan.js';

/** A chunk's bounds before its rows are counted. */
export type ChunkBounds = Omit<ChunkRef, 'rows' | 'kept' | 'file'> & { rows?: number };

/** The cells of one decoded chunk: row r of the chunk is `column(name)[r]`; `site` locates chunk rows for messages. */
export interface RawChunk {
  readonly rows: number;
  column(name: string): ArrayLike<Cell>;
  readonly site: CellSite;
}

const NEWLINE = 0x0a;
const QUOTE = 0x22;
const BLOCK = 1024 * 1024;

function openFd(file: string, kind: string): number {
  try {
    return openSync(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw new DatasetError(`${file}: cannot read ${kind} file: ${reason}`, { cause: err });
  }
}

/** Bytes [start, end) of `file`. */
export function readBytes(file: string, start: number, end: number, kind: string): Buffer {
  const fd = openFd(file, kind);
  try {
    const buffer = Buffer.alloc(end - start);
    let done = 0;
    while (done < buffer.length) {
      const n = readSync(fd, buffer, done, buffer.length - done, start + done);
      if (n === 0) throw new DatasetError(`${file}: ended at byte ${start + done}, expected ${end} bytes (truncated since it was scanned?)`);
      done += n;
    }
    return buffer;
  } finally {
    closeSync(fd);
  }
}

/**
 * Cuts `file` into chunks of about `chunkBytes` at record boundaries: newlines outside double
 * quotes (`csv`; a quoted csv cell may hold newlines, and "" inside quotes toggles twice) or any
 * newline (`jsonl`). Returns the header's end (csv: the first record is the header) and the
 * chunks, each with the line it starts at. Reads the file once, a block at a time.
 */
export function cutByBytes(file: string, format: 'csv' | 'jsonl', chunkBytes: number): { headerEnd: number; chunks: ChunkBounds[] } {
  const fd = openFd(file, format === 'csv' ? 'CSV' : 'JSON lines');
  try {
    const size = fstatSync(fd).size;
    const block = Buffer.alloc(BLOCK);
    const chunks: ChunkBounds[] = [];
    const quotes = format === 'csv';
    let inQuote = false;
    let headerEnd = format === 'csv' ? -1 : 0;
    let chunkStart = 0;
    let chunkLine = 1;
    let line = 1;
    for (let position = 0; position < size; ) {
      const n = readSync(fd, block, 0, Math.min(BLOCK, size - position), position);
      if (n === 0) break;
      for (let i = 0; i < n; i++) {
        const b = block[i]!;
        if (b === QUOTE && quotes) inQuote = !inQuote;
        else if (b === NEWLINE) {
          line++;
          if (inQuote) continue;
          const boundary = position + i + 1;
          if (headerEnd < 0) {
            headerEnd = boundary;
            chunkStart = boundary;
            chunkLine = line;
          } else if (boundary - chunkStart >= chunkBytes) {
            chunks.push({ start: chunkStart, end: boundary, firstLine: chunkLine });
            chunkStart = boundary;
            chunkLine = line;
          }
        }
      }
      position += n;
    }
    if (headerEnd < 0) headerEnd = size;
    if (size > chunkStart && headerEnd <= chunkStart) chunks.push({ start: chunkStart, end: size, firstLine: chunkLine });
    return { headerEnd, chunks };
  } finally {
    closeSync(fd);
  }
}

function csvError(file: string, firstLine: number, err: unknown): unknown {
  if (!(err instanceof CsvError)) return err;
  return new DatasetError(`${file}: in the records from line ${firstLine}: ${err.message}`, { cause: err });
}

/** The csv header: its first record's trimmed cells. */
export function csvHeader(file: string, headerEnd: number): string[] {
  const text = readBytes(file, 0, headerEnd, 'CSV').toString('utf8');
  if (text.trim() === '') throw new DatasetError(`${file}: the CSV file is empty`);
  try {
    const [header]: string[][] = parse(text, { bom: true, trim: true, skip_empty_lines: true });
    if (header === undefined) throw new DatasetError(`${file}: the CSV file is empty`);
    return header;
  } catch (err) {
    throw csvError(file, 1, err);
  }
}

/** The column index of every requested column in a csv header (each present once). */
export function csvColumns(file: string, header: readonly string[], columns: readonly ColumnRequest[]): Map<string, number> {
  const indices = new Map<string, number>();
  for (const column of columns) {
    const first = header.indexOf(column.name);
    if (first < 0) throw new DatasetError(missingColumnMessage(file, column, 'the header', header));
    if (header.indexOf(column.name, first + 1) >= 0) throw new DatasetError(`${file}: ${column.role} column "${column.name}" appears more than once in the header`);
    indices.set(column.name, first);
  }
  return indices;
}

function csvChunk(file: string, header: readonly string[], indices: ReadonlyMap<string, number>, bounds: ChunkBounds): RawChunk {
  const text = readBytes(file, bounds.start, bounds.end, 'CSV').toString('utf8');
  const ends: number[] = [];
  let records: string[][];
  try {
    records = parse(text, {
      trim: true,
      skip_empty_lines: true,
      on_record: (record: string[], context) => {
        ends.push(context.lines);
        return record;
      },
    });
  } catch (err) {
    throw csvError(file, bounds.firstLine, err);
  }
  // As csv.ts: a record is located at the line where it starts (a quoted cell may span lines).
  const lines = records.map((row, r) => bounds.firstLine - 1 + ends[r]! - row.reduce((n, cell) => n + (cell.match(/\r\n|\r|\n/g)?.length ?? 0), 0));
  records.forEach((row, r) => {
    if (row.length !== header.length) throw new DatasetError(`${file}: line ${lines[r]}: ${row.length} cells, but the header has ${header.length} columns`);
  });
  const columns = new Map([...indices].map(([name, c]) => [name, records.map((row) => (row[c] === '' ? null : row[c]!))] as const));
  return {
    rows: records.length,
    column: (name) => columns.get(name)!,
    site: { file, textCells: true, missingText: 'an empty cell', locate: (row) => `line ${lines[row]!}` },
  };
}

function jsonlChunk(file: string, names: readonly string[], bounds: ChunkBounds): RawChunk & { seen: boolean[]; keys: Set<string> } {
  const text = readBytes(file, bounds.start, bounds.end, 'JSON lines').toString('utf8');
  const { cells, seen, keys, lines } = parseJsonLines(text, file, bounds.firstLine, names);
  const columns = new Map(names.map((name, c) => [name, cells[c]!] as const));
  return {
    rows: lines.length,
    column: (name) => columns.get(name)!,
    site: { file, textCells: false, missingText: 'null or no value', locate: (row) => `line ${lines[row]!}` },
    seen,
    keys,
  };
}

/** One file of a streamed table, open for the requested columns. */
export interface ChunkFile {
  readonly file: string;
  /** csv: the header. */
  readonly header?: string[];
  decode(bounds: ChunkBounds): RawChunk & { seen?: boolean[]; keys?: Set<string> };
}

/** Opens `file` for decoding chunks; `header`: a csv header already known (from the plan), else read from the file. */
export function openChunkFile(format: TableDatasetKind, file: string, columns: readonly ColumnRequest[], header?: string[], headerEnd?: number): ChunkFile {
  const names = [...new Set(columns.map((c) => c.name))];
  if (format === 'csv') {
    if (header === undefined && headerEnd === undefined) throw new RangeError(`${file}: a csv chunk file needs its header or the header's end`);
    const h = header ?? csvHeader(file, headerEnd!);
    const indices = csvColumns(file, h, columns);
    return { file, header: h, decode: (bounds) => csvChunk(file, h, indices, bounds) };
  }
  if (format === 'jsonl') return { file, decode: (bounds) => jsonlChunk(file, names, bounds) };
  let table: TableFile | undefined;
  return {
    file,
    decode(bounds) {
      table ??= openParquet(file, columns);
      const part = table.part(bounds.start);
      const t = table;
      return { rows: part.rowCount, column: (name) => part.column(name), site: { ...t, locate: (row) => t.locate(part.firstRow + row) } };
    },
  };
}

/** A parquet file's chunks: its row groups (from the footer alone). */
export function parquetChunks(file: string, columns: readonly ColumnRequest[]): ChunkBounds[] {
  const table = openParquet(file, columns);
  const chunks: ChunkBounds[] = [];
  let firstRow = 0;
  for (let g = 0; g < table.partCount; g++) {
    const rows = table.partRows!(g);
    chunks.push({ start: g, end: g, firstLine: firstRow, rows });
    firstRow += rows;
  }
  return chunks;
}
