// The Parquet reader, on hyparquet (pure JavaScript; hyparquet-compressors adds gzip, zstd,
// brotli and lz4 to its snappy). A part is a row group: opening a file reads only its footer,
// and `part(g)` reads from disk the byte ranges of the requested columns' chunks in row group
// g and decodes them, synchronously (hyparquet's own reading API is asynchronous; its column
// decoder, `readColumn`, is not, and is what it runs underneath).
//
// Columns must be flat (no struct, list or map) and hold numbers (any integer, float or
// decimal type), strings or booleans; a timestamp, date, time, JSON or binary column is an
// error naming it. A truncated or corrupt file is an error naming the file, and for a column
// chunk the row group and the column, never a shorter table. Rows are located as
// "row N (row group G)", N counting the file's rows from 1.
//
// `readColumn`, `DEFAULT_PARSERS` and `getTreePath` come through hyparquet's `./src/*.js`
// exports, below its documented API: the version is pinned exactly in package.json, and
// test/unit/datasets-parquet.test.ts reads files of every supported type through them.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parquetMetadata, parquetSchema, type FileMetaData, type SchemaElement, type SchemaTree } from 'hyparquet';
import { readColumn } from 'hyparquet/src/column.js';
import { DEFAULT_PARSERS } from 'hyparquet/src/convert.js';
import { getTreePath } from 'hyparquet/src/schema.js';
import { compressors } from 'hyparquet-compressors';
import { DatasetError } from '../errors.js';
import { missingColumnMessage, type Cell, type ColumnRequest, type TableFile, type TablePart } from './table-reader.js';

type ColumnDecoder = Parameters<typeof readColumn>[2];

const MAGIC = 0x31524150; // "PAR1", little-endian

// Logical and converted types whose values are not numbers, strings or booleans (hyparquet
// decodes them to Dates, objects or bytes).
const UNSUPPORTED = /^(DATE|TIME|TIMESTAMP|INTERVAL|JSON|BSON|GEOMETRY|GEOGRAPHY|VARIANT|NULL|MAP|LIST)/;

/** Why a leaf column cannot be read as numbers, strings or booleans; undefined when it can. */
function unsupportedType(element: SchemaElement): string | undefined {
  const logical = element.logical_type?.type;
  const converted = element.converted_type;
  const shown = `type ${element.type ?? 'group'}${logical ? ` (${logical})` : converted ? ` (${converted})` : ''}`;
  if (element.repetition_type === 'REPEATED') return `repeated, of ${shown}`;
  if (logical === 'DECIMAL' || converted === 'DECIMAL' || logical === 'FLOAT16' || logical === 'UUID') return undefined;
  if (UNSUPPORTED.test(logical ?? '') || UNSUPPORTED.test(converted ?? '') || element.type === 'INT96') return `of ${shown}`;
  if (element.type === 'FIXED_LEN_BYTE_ARRAY') return `of ${shown} (binary)`;
  return undefined;
}

function readAt(fd: number, position: number, length: number): Uint8Array {
  const buffer = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buffer, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  if (done < length) throw new Error(`read ${done} of ${length} bytes at offset ${position}`);
  return buffer;
}

function withFile<T>(file: string, use: (fd: number, size: number) => T): T {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw new DatasetError(`${file}: cannot read Parquet file: ${reason}`, { cause: err });
  }
  try {
    return use(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

function readFooter(file: string, fd: number, size: number): FileMetaData {
  if (size < 12) throw new DatasetError(`${file}: not a Parquet file (${size} bytes, too short), or truncated`);
  const head = new DataView(readAt(fd, 0, 4).buffer);
  const tail = new DataView(readAt(fd, size - 8, 8).buffer);
  if (head.getUint32(0, true) !== MAGIC) throw new DatasetError(`${file}: not a Parquet file (it does not start with PAR1)`);
  if (tail.getUint32(4, true) !== MAGIC) throw new DatasetError(`${file}: truncated or not a Parquet file (it does not end with PAR1)`);
  const length = tail.getUint32(0, true);
  if (length + 12 > size) throw new DatasetError(`${file}: corrupt Parquet footer (metadata of ${length} bytes in a file of ${size})`);
  try {
    return parquetMetadata(readAt(fd, size - 8 - length, length + 8));
  } catch (err) {
    throw new DatasetError(`${file}: corrupt Parquet footer: ${(err as Error).message}`, { cause: err });
  }
}

interface Leaf {
  name: string;
  schemaPath: SchemaTree[];
}

function leafColumn(file: string, schema: SchemaTree, column: ColumnRequest): Leaf {
  const node = schema.children.find((c) => c.element.name === column.name);
  if (node === undefined) throw new DatasetError(missingColumnMessage(file, column, 'the schema', schema.children.map((c) => c.element.name)));
  if (node.children.length > 0) {
    throw new DatasetError(`${file}: ${column.role} column "${column.name}" is nested (a struct, list or map): only flat columns can be read`);
  }
  const why = unsupportedType(node.element);
  if (why !== undefined) {
    throw new DatasetError(`${file}: ${column.role} column "${column.name}" is ${why}: only numbers, strings and booleans can be read`);
  }
  return { name: column.name, schemaPath: getTreePath(schema, [column.name]) };
}

/** Opens a Parquet file for `columns`: reads its footer; each row group is one part. */
export function openParquet(file: string, columns: readonly ColumnRequest[]): TableFile {
  const { metadata, size } = withFile(file, (fd, size) => ({ metadata: readFooter(file, fd, size), size }));
  let schema: SchemaTree;
  try {
    schema = parquetSchema(metadata);
  } catch (err) {
    throw new DatasetError(`${file}: corrupt Parquet schema: ${(err as Error).message}`, { cause: err });
  }
  const leaves = new Map<string, Leaf>();
  for (const column of columns) if (!leaves.has(column.name)) leaves.set(column.name, leafColumn(file, schema, column));

  // Column chunks lie between the leading PAR1 and the footer.
  const dataEnd = size - 8 - metadata.metadata_length;
  const groupRows = metadata.row_groups.map((g) => Number(g.num_rows));
  const starts: number[] = [];
  let rowCount = 0;
  for (const rows of groupRows) {
    starts.push(rowCount);
    rowCount += rows;
  }
  if (rowCount !== Number(metadata.num_rows)) {
    throw new DatasetError(`${file}: corrupt Parquet footer (row groups hold ${rowCount} rows, the file says ${metadata.num_rows})`);
  }

  function decode(fd: number, g: number, leaf: Leaf): ArrayLike<Cell> {
    const where = `${file}: row group ${g}, column "${leaf.name}"`;
    const chunk = metadata.row_groups[g]!.columns.find((c) => c.meta_data?.path_in_schema.length === 1 && c.meta_data.path_in_schema[0] === leaf.name);
    const meta = chunk?.meta_data;
    if (chunk === undefined || meta === undefined) throw new DatasetError(`${where}: no column chunk in the footer (corrupt file)`);
    if (chunk.file_path !== undefined) throw new DatasetError(`${where}: the chunk lives in another file (${chunk.file_path}), which is not supported`);
    const start = Number(meta.dictionary_page_offset || meta.data_page_offset);
    const length = Number(meta.total_compressed_size);
    if (start < 4 || start + length > dataEnd) throw new DatasetError(`${where}: the chunk lies outside the file's data (truncated or corrupt)`);
    const rows = groupRows[g]!;
    const decoder: ColumnDecoder = {
      pathInSchema: meta.path_in_schema,
      element: leaf.schemaPath[leaf.schemaPath.length - 1]!.element,
      schemaPath: leaf.schemaPath,
      type: meta.type,
      codec: meta.codec,
      parsers: DEFAULT_PARSERS,
      compressors,
    };
    let data: ArrayLike<unknown>[];
    try {
      const bytes = readAt(fd, start, length);
      data = readColumn({ view: new DataView(bytes.buffer), offset: 0 }, { groupStart: starts[g]!, selectStart: 0, selectEnd: rows, groupRows: rows }, decoder).data;
    } catch (err) {
      throw new DatasetError(`${where}: cannot decode (corrupt file?): ${(err as Error).message}`, { cause: err });
    }
    const decoded = data.reduce((n, d) => n + d.length, 0);
    if (decoded !== rows) throw new DatasetError(`${where}: decoded ${decoded} values for ${rows} rows (truncated or corrupt chunk)`);
    // A typed array (a required numeric column) holds no nulls; arrays of several pages are
    // joined, and an optional column's nulls (undefined) become null.
    if (data.length === 1 && !Array.isArray(data[0])) return data[0] as ArrayLike<Cell>;
    const cells = (data.length === 1 ? data[0] : data.flatMap((d) => Array.from(d))) as Array<Cell | undefined>;
    for (let i = 0; i < cells.length; i++) if (cells[i] === undefined) cells[i] = null;
    return cells as Cell[];
  }

  return {
    file,
    format: 'parquet',
    rowCount,
    partCount: groupRows.length,
    partRows: (g) => groupRows[g]!,
    textCells: false,
    missingText: 'null',
    part(g) {
      if (!Number.isInteger(g) || g < 0 || g >= groupRows.length) throw new RangeError(`${file}: no row group ${g} (the file has ${groupRows.length})`);
      const cells = withFile(file, (fd) => new Map([...leaves.values()].map((leaf) => [leaf.name, decode(fd, g, leaf)] as const)));
      const part: TablePart = {
        firstRow: starts[g]!,
        rowCount: groupRows[g]!,
        column(name) {
          const values = cells.get(name);
          if (values === undefined) throw new RangeError(`${file}: column "${name}" was not opened`);
          return values;
        },
      };
      return part;
    },
    locate(row) {
      let g = 0;
      while (g + 1 < starts.length && starts[g + 1]! <= row) g++;
      return `row ${row + 1} (row group ${g})`;
    },
  };
}
