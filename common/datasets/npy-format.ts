// The NumPy .npy format (NEP 1; format versions 1.0, 2.0 and 3.0): a magic string, a header
// that is a Python dict literal ({'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }),
// then the raw array. We read numeric and boolean arrays of any shape, little- or big-endian,
// in C or Fortran order (Fortran order is transposed to C order on reading).
//
// Written here rather than taken from npm: the parsers there (npyjs, numpy-parser) do not read
// big-endian data, do not check the data length against the shape (a truncated file reads as a
// shorter array) and parse the header with regular expressions. Every error names `where` (the
// file, or the archive and member) so it can be fixed.
import { DatasetError } from '../errors.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export type NpyKind = 'f' | 'i' | 'u' | 'b';

export interface NpyDtype {
  /** The descr as written, e.g. '<f4', '>i8', '|u1', '|b1'. */
  readonly descr: string;
  readonly kind: NpyKind;
  /** Bytes per element. */
  readonly size: number;
  readonly littleEndian: boolean;
}

export interface NpyArray {
  readonly shape: readonly number[];
  readonly dtype: NpyDtype;
  readonly fortranOrder: boolean;
  /** The raw element bytes (C or Fortran order, as in the file), exactly shape × size bytes. */
  readonly bytes: Uint8Array;
}

const SIZES: Readonly<Record<NpyKind, readonly number[]>> = { f: [4, 8], i: [1, 2, 4, 8], u: [1, 2, 4, 8], b: [1] };

/** The Python literal values a .npy header uses. */
type Literal = string | boolean | number | Literal[] | { [key: string]: Literal };

/** A parser for the small subset of Python literals numpy writes: dicts, tuples, strings, ints, booleans. */
class LiteralParser {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly where: string,
  ) {}

  parseAll(): Literal {
    const value = this.value();
    this.skipSpace();
    if (this.pos !== this.text.length) this.fail(`unexpected ${JSON.stringify(this.text.slice(this.pos, this.pos + 10))}`);
    return value;
  }

  private fail(message: string): never {
    throw new DatasetError(`${this.where}: malformed .npy header (${message} at character ${this.pos}): ${JSON.stringify(this.text.trim())}`);
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
  }

  private value(): Literal {
    this.skipSpace();
    const c = this.text[this.pos];
    if (c === '{') return this.dict();
    if (c === '(' || c === '[') return this.sequence(c === '(' ? ')' : ']');
    if (c === "'" || c === '"') return this.string();
    const word = /^(?:True|False|-?\d+L?)/.exec(this.text.slice(this.pos));
    if (word === null) this.fail('expected a value');
    this.pos += word[0].length;
    if (word[0] === 'True' || word[0] === 'False') return word[0] === 'True';
    return Number(word[0].replace(/L$/, ''));
  }

  private string(): string {
    const quote = this.text[this.pos++]!;
    const end = this.text.indexOf(quote, this.pos);
    if (end < 0) this.fail('unterminated string');
    const s = this.text.slice(this.pos, end);
    this.pos = end + 1;
    return s;
  }

  /** Items separated by commas, an optional trailing comma, up to `close`. */
  private items<T>(close: string, item: () => T): T[] {
    this.pos++;
    const out: T[] = [];
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === close) break;
      out.push(item());
      this.skipSpace();
      if (this.text[this.pos] === ',') this.pos++;
      else if (this.text[this.pos] !== close) this.fail(`expected "," or "${close}"`);
    }
    this.pos++;
    return out;
  }

  private sequence(close: string): Literal[] {
    return this.items(close, () => this.value());
  }

  private dict(): { [key: string]: Literal } {
    const entries = this.items('}', () => {
      this.skipSpace();
      const c = this.text[this.pos];
      if (c !== "'" && c !== '"') this.fail('expected a string key');
      const key = this.string();
      this.skipSpace();
      if (this.text[this.pos] !== ':') this.fail('expected ":"');
      this.pos++;
      return [key, this.value()] as const;
    });
    return Object.fromEntries(entries);
  }
}

export function parseDtype(descr: Literal | undefined, where: string): NpyDtype {
  if (Array.isArray(descr)) throw new DatasetError(`${where}: structured arrays (dtype with fields) are not supported; save a plain numeric array`);
  if (typeof descr !== 'string') throw new DatasetError(`${where}: malformed .npy header: 'descr' is ${JSON.stringify(descr)}, expected a dtype string`);
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr);
  if (m === null) throw new DatasetError(`${where}: unsupported dtype '${descr}' (supported: f4, f8, i1, i2, i4, i8, u1, u2, u4, u8, bool)`);
  const [, order, letter, digits] = m as unknown as [string, string, string, string];
  const size = Number(digits);
  if (letter === 'U' || letter === 'S' || letter === 'a') {
    throw new DatasetError(`${where}: string arrays ('${descr}') are not supported: store class labels as integers`);
  }
  if (letter === 'O') throw new DatasetError(`${where}: object arrays ('${descr}') are not supported (they are pickled Python objects)`);
  const kind = letter as NpyKind;
  if (!(kind in SIZES) || !SIZES[kind].includes(size)) {
    throw new DatasetError(`${where}: unsupported dtype '${descr}' (supported: f4, f8, i1, i2, i4, i8, u1, u2, u4, u8, bool)`);
  }
  if (order === '=' && size > 1) throw new DatasetError(`${where}: dtype '${descr}' has native byte order, which a file cannot have; expected '<' or '>'`);
  return { descr, kind, size, littleEndian: order !== '>' };
}

/** A .npy header: the array's shape, dtype and order, and where its data starts. */
export interface NpyHeader {
  readonly shape: readonly number[];
  readonly dtype: NpyDtype;
  readonly fortranOrder: boolean;
  readonly dataStart: number;
}

/**
 * Parses the header of a .npy file of `fileSize` bytes from its first bytes `head` (enough to
 * hold the header: at most 10 + 2^16 bytes for version 1.0), and checks the file holds exactly
 * the data the shape needs.
 */
export function parseNpyHeader(head: Uint8Array, fileSize: number, where: string): NpyHeader {
  if (head.length < 10 || MAGIC.some((b, i) => head[i] !== b)) {
    throw new DatasetError(`${where}: not a .npy file (it does not start with \\x93NUMPY)`);
  }
  const major = head[6]!;
  if (major < 1 || major > 3) throw new DatasetError(`${where}: .npy format version ${major}.${head[7]!} is not supported (1.0 to 3.0 are)`);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (head.length < 8 + lengthBytes) throw new DatasetError(`${where}: truncated .npy header`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lengthBytes;
  if (head.length < start + headerLength) {
    throw new DatasetError(`${where}: truncated .npy header (${headerLength} header bytes announced, ${head.length - start} present)`);
  }
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(head.subarray(start, start + headerLength));
  const header = new LiteralParser(text, where).parseAll();
  if (typeof header !== 'object' || Array.isArray(header)) throw new DatasetError(`${where}: malformed .npy header: expected a dict, got ${JSON.stringify(text.trim())}`);
  for (const key of ['descr', 'fortran_order', 'shape']) {
    if (!(key in header)) throw new DatasetError(`${where}: malformed .npy header: no '${key}' in ${JSON.stringify(text.trim())}`);
  }
  const dtype = parseDtype(header.descr, where);
  const fortranOrder = header.fortran_order;
  if (typeof fortranOrder !== 'boolean') throw new DatasetError(`${where}: malformed .npy header: 'fortran_order' is ${JSON.stringify(fortranOrder)}`);
  const shape = header.shape;
  if (!Array.isArray(shape) || !shape.every((d): d is number => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw new DatasetError(`${where}: malformed .npy header: 'shape' is ${JSON.stringify(shape)}, expected a tuple of sizes`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLength;
  const expected = count * dtype.size;
  const present = fileSize - dataStart;
  if (present < expected) {
    throw new DatasetError(`${where}: truncated .npy data: shape (${shape.join(', ')}) of ${dtype.descr} needs ${expected} bytes, the file holds ${present}`);
  }
  if (present > expected) {
    throw new DatasetError(`${where}: ${present - expected} unexpected bytes after the .npy data (shape (${shape.join(', ')}) of ${dtype.descr} is ${expected} bytes)`);
  }
  return { shape, dtype, fortranOrder, dataStart };
}

/** Parses a whole .npy file. The returned `bytes` is a view of `file`. */
export function parseNpy(file: Uint8Array, where: string): NpyArray {
  const { shape, dtype, fortranOrder, dataStart } = parseNpyHeader(file, file.length, where);
  return { shape, dtype, fortranOrder, bytes: file.subarray(dataStart) };
}

/** Reads element `i` (in file order) as a number. 64-bit integers beyond 2^53 lose precision. */
function elementReader(array: NpyArray): (i: number) => number {
  const { bytes, dtype } = array;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = dtype.littleEndian;
  // 64-bit integers as two 32-bit halves (hi · 2^32 is exact, so the sum rounds once), much
  // faster than going through BigInt.
  const [lo, hi] = le ? [0, 4] : [4, 0];
  switch (`${dtype.kind}${dtype.size}`) {
    case 'f4':
      return (i) => view.getFloat32(4 * i, le);
    case 'f8':
      return (i) => view.getFloat64(8 * i, le);
    case 'i1':
      return (i) => view.getInt8(i);
    case 'i2':
      return (i) => view.getInt16(2 * i, le);
    case 'i4':
      return (i) => view.getInt32(4 * i, le);
    case 'i8':
      return (i) => view.getInt32(8 * i + hi, le) * 4294967296 + view.getUint32(8 * i + lo, le);
    case 'u1':
      return (i) => view.getUint8(i);
    case 'u2':
      return (i) => view.getUint16(2 * i, le);
    case 'u4':
      return (i) => view.getUint32(4 * i, le);
    case 'u8':
      return (i) => view.getUint32(8 * i + hi, le) * 4294967296 + view.getUint32(8 * i + lo, le);
    default: // b1
      return (i) => (view.getUint8(i) !== 0 ? 1 : 0);
  }
}

type NumericArray = Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array;

/** The elements as a typed array of their own type, when the platform's (little-endian) order reads them directly. */
function nativeView(array: NpyArray): NumericArray | undefined {
  const { dtype } = array;
  if (!dtype.littleEndian && dtype.size > 1) return undefined;
  // A view of the file's memory when the data is aligned there (numpy pads the header to 64
  // bytes, and a large file read whole starts a buffer of its own): float32 data is then not
  // copied at all. Otherwise a copy into a buffer of its own (not bytes.slice(), which for a
  // Buffer is a view too).
  let bytes = array.bytes;
  if (bytes.byteOffset % dtype.size !== 0) {
    bytes = new Uint8Array(bytes.length);
    bytes.set(array.bytes);
  }
  const [b, at, n] = [bytes.buffer, bytes.byteOffset, bytes.length / dtype.size];
  switch (`${dtype.kind}${dtype.size}`) {
    case 'f4':
      return new Float32Array(b, at, n);
    case 'f8':
      return new Float64Array(b, at, n);
    case 'i1':
      return new Int8Array(b, at, n);
    case 'i2':
      return new Int16Array(b, at, n);
    case 'i4':
      return new Int32Array(b, at, n);
    case 'u1':
      return new Uint8Array(b, at, n);
    case 'u2':
      return new Uint16Array(b, at, n);
    case 'u4':
      return new Uint32Array(b, at, n);
    default: // 64-bit integers and booleans go element by element
      return undefined;
  }
}

/** The element in file order that holds C-order element `c`, for a Fortran-order array. */
function fortranIndex(shape: readonly number[]): (c: number) => number {
  // Fortran strides (in elements): axis 0 varies fastest.
  const strides = shape.map((_, k) => shape.slice(0, k).reduce((a, b) => a * b, 1));
  return (c) => {
    let f = 0;
    for (let k = shape.length - 1; k >= 0; k--) {
      const d = shape[k]!;
      f += (c % d) * strides[k]!;
      c = Math.floor(c / d);
    }
    return f;
  };
}

/**
 * The array's values in C (row-major) order, as float32. Little-endian float32 data in C order
 * comes back as a view of `array.bytes` (no copy): the caller must not reuse those bytes.
 */
export function npyToFloat32(array: NpyArray): Float32Array {
  const { bytes, dtype, shape } = array;
  const fortran = array.fortranOrder && shape.length > 1;
  const count = bytes.length / dtype.size;
  const native = fortran ? undefined : nativeView(array);
  if (native instanceof Float32Array) return native;
  const out = new Float32Array(count);
  if (native !== undefined) {
    for (let c = 0; c < count; c++) out[c] = native[c]!;
    return out;
  }
  const read = elementReader(array);
  const index = fortran ? fortranIndex(shape) : (c: number) => c;
  for (let c = 0; c < count; c++) out[c] = read(index(c));
  return out;
}

/** The array's values in C order as float64 (for targets: class values and regression values). */
export function npyToFloat64(array: NpyArray): Float64Array {
  const count = array.bytes.length / array.dtype.size;
  const read = elementReader(array);
  const index = array.fortranOrder && array.shape.length > 1 ? fortranIndex(array.shape) : (c: number) => c;
  const out = new Float64Array(count);
  for (let c = 0; c < count; c++) out[c] = read(index(c));
  return out;
}
