// A decoded chunk's cells typed as the in-memory path types them (tabular.ts's numberOf and
// labelOf: the same checks, missing policy and messages naming file, line and column), then the
// tensors a worker trains on: standardised features and vocabulary ids as float32, class indices
// or regression values. A row with a cell missing under `missing: drop` is left out, so a chunk's
// kept rows are a pure function of its bytes: the plan keeps only their count.
import { createHash, type Hash } from 'node:crypto';
import type { TargetKind } from '../types.js';
import type { ColumnTransform, TargetInfo } from '../types.js';
import { labelOf, numberOf, type MissingPolicy } from '../tabular.js';
import { Vocabulary } from '../vocabulary.js';
import { classIndex } from '../class-labels.js';
import type { RawChunk } from './chunk-files.js';

/** Which columns a streamed table reads, and how. */
export interface TableColumns {
  features: readonly string[];
  categorical: readonly boolean[];
  targets: ReadonlyMap<string, TargetKind>;
  policy: MissingPolicy;
}

/** The kept rows of a chunk, typed: numbers in double precision, categories and labels as text. */
export interface TypedChunk {
  kept: number;
  /** kept × width, row-major; a categorical feature's slot is 0 (its text is in `categories`). */
  numbers: Float64Array;
  categories: ReadonlyArray<string[] | undefined>;
  targetNumbers: ReadonlyMap<string, Float64Array>;
  labels: ReadonlyMap<string, string[]>;
}

export function typeChunk(raw: RawChunk, cols: TableColumns): TypedChunk {
  const n = raw.rows;
  const width = cols.features.length;
  const dropped = new Uint8Array(n);
  const numbers = new Float64Array(n * width);
  const categories: Array<string[] | undefined> = cols.features.map((_, f) => (cols.categorical[f] ? new Array<string>(n) : undefined));
  const targetNumbers = new Map<string, Float64Array>();
  const labels = new Map<string, string[]>();
  cols.features.forEach((column, f) => {
    const cells = raw.column(column);
    const names = categories[f];
    if (names) {
      for (let r = 0; r < n; r++) {
        const v = labelOf(cells[r], raw.site, r, column, cols.policy, 'a category');
        if (v === undefined) dropped[r] = 1;
        else names[r] = v;
      }
      return;
    }
    for (let r = 0; r < n; r++) {
      const cell = cells[r];
      // A number column of a typed format (a Parquet FLOAT): no conversion, only the finiteness check.
      if (typeof cell === 'number' && cell - cell === 0) {
        numbers[r * width + f] = cell;
        continue;
      }
      const v = numberOf(cell, raw.site, r, column, cols.policy);
      if (v === undefined) dropped[r] = 1;
      else numbers[r * width + f] = v;
    }
  });
  for (const [column, kind] of cols.targets) {
    const cells = raw.column(column);
    if (kind === 'classification') {
      const values = new Array<string>(n);
      for (let r = 0; r < n; r++) {
        const v = labelOf(cells[r], raw.site, r, column, cols.policy);
        if (v === undefined) dropped[r] = 1;
        else values[r] = v;
      }
      labels.set(column, values);
    } else {
      const values = new Float64Array(n);
      for (let r = 0; r < n; r++) {
        const v = numberOf(cells[r], raw.site, r, column, cols.policy);
        if (v === undefined) dropped[r] = 1;
        else values[r] = v;
      }
      targetNumbers.set(column, values);
    }
  }
  let kept = n;
  for (let r = 0; r < n; r++) kept -= dropped[r]!;
  if (kept === n) return { kept, numbers, categories, targetNumbers, labels };
  // Compact the kept rows.
  const keptRows = Uint32Array.from({ length: n }, (_, r) => r).filter((r) => dropped[r] === 0);
  const compactNumbers = new Float64Array(kept * width);
  keptRows.forEach((from, r) => compactNumbers.set(numbers.subarray(from * width, (from + 1) * width), r * width));
  return {
    kept,
    numbers: compactNumbers,
    categories: categories.map((c) => (c ? Array.from(keptRows, (r) => c[r]!) : undefined)),
    targetNumbers: new Map([...targetNumbers].map(([k, v]) => [k, Float64Array.from(keptRows, (r) => v[r]!)] as const)),
    labels: new Map([...labels].map(([k, v]) => [k, Array.from(keptRows, (r) => v[r]!)] as const)),
  };
}

/** Adds the kept rows' inputs to a digest, row by row (so how the rows are cut into chunks or files does not change it). */
export function digestRows(hash: Hash, chunk: TypedChunk, width: number): void {
  const hasCategories = chunk.categories.some((c) => c !== undefined);
  if (!hasCategories) {
    hash.update(new Uint8Array(chunk.numbers.buffer, chunk.numbers.byteOffset, chunk.numbers.byteLength));
    return;
  }
  for (let r = 0; r < chunk.kept; r++) {
    const row = chunk.numbers.subarray(r * width, (r + 1) * width);
    hash.update(new Uint8Array(row.buffer, row.byteOffset, row.byteLength));
    for (const c of chunk.categories) if (c) hash.update(`${c[r]!}\0`);
  }
}

export function newRowsDigest(width: number): Hash {
  return createHash('sha256').update(`mtl-table-stream-rows-v1\0${width}\0`);
}

/** The tensors of a typed chunk: the inputs with the plan's transforms applied, as float32; each target's values. */
export interface DecodedChunk {
  features: Float32Array;
  targets: ReadonlyMap<string, Float32Array>;
  /** What the chunk holds in memory, for the cache's bound. */
  bytes: number;
}

/** The train vocabularies and class labels of a plan, ready to map text to ids. */
export interface Encoders {
  vocabularies: ReadonlyArray<Vocabulary | undefined>;
  classes: ReadonlyMap<string, ReadonlyMap<string, number>>;
}

export function encoders(columns: readonly ColumnTransform[], targets: Readonly<Record<string, TargetInfo>>): Encoders {
  return {
    vocabularies: columns.map((t) => (t.kind === 'categorical' ? new Vocabulary(t.vocabulary) : undefined)),
    classes: new Map(
      Object.entries(targets)
        .filter(([, info]) => info.kind === 'classification')
        .map(([name, info]) => [name, new Map((info.classes ?? []).map((c, i) => [c, i] as const))] as const),
    ),
  };
}

/** Applies the transforms (standardisation with train statistics, vocabulary ids) exactly as tabular.ts does. */
export function decodeChunk(chunk: TypedChunk, columns: readonly ColumnTransform[], enc: Encoders, where: string): DecodedChunk {
  const width = columns.length;
  const features = new Float32Array(chunk.kept * width);
  columns.forEach((t, f) => {
    const names = chunk.categories[f];
    const vocabulary = enc.vocabularies[f];
    if (names && vocabulary) for (let r = 0; r < chunk.kept; r++) features[r * width + f] = vocabulary.id(names[r]!);
    else if (t.kind === 'numeric' && t.mean === undefined) for (let r = 0; r < chunk.kept; r++) features[r * width + f] = chunk.numbers[r * width + f]!;
    else if (t.kind === 'numeric') {
      // `standardised` (types.ts), inlined: the same operations in the same order.
      const mean = t.mean!;
      const std = t.std ?? 0;
      for (let r = 0; r < chunk.kept; r++) {
        const centred = chunk.numbers[r * width + f]! - mean;
        features[r * width + f] = std > 0 ? centred / std : centred;
      }
    }
  });
  const targets = new Map<string, Float32Array>();
  for (const [name, values] of chunk.targetNumbers) targets.set(name, Float32Array.from(values));
  for (const [name, values] of chunk.labels) {
    const index = enc.classes.get(name)!;
    targets.set(
      name,
      Float32Array.from(values, (label) => {
        const i = index.get(label);
        if (i === undefined) throw new RangeError(`${where}: class label ${JSON.stringify(label)} of target "${name}" is not in the plan (the data changed since it was scanned?)`);
        return i;
      }),
    );
  }
  let bytes = features.byteLength;
  for (const t of targets.values()) bytes += t.byteLength;
  return { features, targets, bytes };
}

/** Class labels in the order the in-memory path gives them. */
export function sortedClasses(labels: Iterable<string>): string[] {
  return classIndex(labels).classes;
}
