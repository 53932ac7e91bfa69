// The data plan of a streamed table dataset: what the coordinator's one bounded-memory scan
// (scan.ts) learnt about the files, so that workers read only the chunks their units need
// without scanning anything themselves. It travels as JSON in Welcome.data_plan_json (one plan
// per streamed source, keyed by the source key), and is small: a few numbers per chunk of a
// few MiB, the statistics, the vocabularies and class labels, and each file's fingerprint.
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { DatasetError } from '../../errors.js';
import type { StreamOption, TableDatasetKind } from '../../job-schema.js';
import type { ColumnTransform, TargetInfo } from '../types.js';

export const PLAN_VERSION = 1;

/** The bounds of streamed mode, resolved from the spec's `stream` (true: every default). */
export interface StreamSettings {
  /** Bytes of decoded chunks a split keeps (the LRU bound; one chunk is always kept). */
  cache: number;
  /** Consecutive train rows per block of the sampler's block shuffle. */
  blockRows: number;
  /** Blocks whose rows are shuffled together. */
  window: number;
  /** csv and jsonl: target bytes per chunk (chunks end at a record boundary). */
  chunk: number;
}

export const STREAM_DEFAULTS: StreamSettings = { cache: 256 * 1024 * 1024, blockRows: 4096, window: 4, chunk: 4 * 1024 * 1024 };

/** The settings of `option`, or undefined when the dataset is read in memory. */
export function streamSettings(option: StreamOption | undefined): StreamSettings | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) return { ...STREAM_DEFAULTS };
  return {
    cache: option.cache ?? STREAM_DEFAULTS.cache,
    blockRows: option.blockRows ?? STREAM_DEFAULTS.blockRows,
    window: option.window ?? STREAM_DEFAULTS.window,
    chunk: option.chunk ?? STREAM_DEFAULTS.chunk,
  };
}

/** Enough of a file to notice it changed: its size and a digest of its first and last 64 KiB (a Parquet footer is in them). */
export interface FileFingerprint {
  file: string;
  size: number;
  hash: string;
}

/** One unit of reading: a byte range of whole records (csv, jsonl) or a row group (parquet). */
export interface ChunkRef {
  /** Index into `TablePlan.files`. */
  file: number;
  /** csv / jsonl: byte offset of the chunk's first record; parquet: the row group. */
  start: number;
  /** csv / jsonl: byte offset after its last record; parquet: the row group again. */
  end: number;
  /** csv / jsonl: the file's line where the chunk starts (1-based); parquet: its first row in the file (0-based). */
  firstLine: number;
  /** Records in the chunk, and of them the rows kept (all but those `missing: drop` leaves out). */
  rows: number;
  kept: number;
}

export interface TablePlan {
  version: number;
  format: TableDatasetKind;
  /** How messages name the data. */
  where: string;
  shown: string;
  files: FileFingerprint[];
  /** csv: each file's header (the column order of its records). */
  headers?: string[][];
  chunks: ChunkRef[];
  /** Rows kept, over every file (the split's rows are 0..rowCount−1, in file order). */
  rowCount: number;
  /** Rows read, kept or not. */
  fileRows: number;
  /** The split: a seeded test set of `testSize` rows, or the first `trainRows` kept rows (those of the train files). */
  split: { kind: 'fraction'; seed: number; testSize: number } | { kind: 'files'; trainRows: number };
  features: string[];
  /** Per feature: the train mean/std (numeric) or vocabulary (categorical). */
  columns: ColumnTransform[];
  normalize: boolean;
  targets: Record<string, TargetInfo>;
  identity: string;
  settings: StreamSettings;
}

/** The plan of a streamed npy dataset: the inputs' layout, chunking, split, targets and identity. */
export interface ArrayPlan {
  version: number;
  format: 'npy';
  where: string;
  /** The inputs file, then each target's, in the order of `targetFiles`. */
  files: FileFingerprint[];
  targetFiles: string[];
  count: number;
  exampleShape: number[];
  descr: string;
  dataStart: number;
  rowsPerChunk: number;
  rowCount: number;
  split: { kind: 'fraction'; seed: number; testSize: number };
  targets: Record<string, TargetInfo>;
  identity: string;
  settings: StreamSettings;
}

/** Any streamed source's plan. */
export type DataPlan = TablePlan | ArrayPlan;

const EDGE = 64 * 1024;

function readRange(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buffer, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return buffer.subarray(0, done);
}

/** The fingerprint of `file` as it is now; an unreadable file is a DatasetError naming it. */
export function fingerprint(file: string): FileFingerprint {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new DatasetError(`${file}: cannot read: ${reason}`, { cause: err });
  }
  try {
    const size = fstatSync(fd).size;
    const hash = createHash('sha256').update(`${size}\0`).update(readRange(fd, 0, Math.min(EDGE, size)));
    if (size > EDGE) hash.update(readRange(fd, Math.max(EDGE, size - EDGE), Math.min(EDGE, size - EDGE)));
    return { file, size, hash: hash.digest('hex') };
  } finally {
    closeSync(fd);
  }
}

/** Checks that the files a worker sees are the files the plan was made from; the error names the first that differs. */
export function checkFingerprints(plan: Pick<TablePlan, 'where' | 'files'>, files: readonly string[]): void {
  if (files.length !== plan.files.length) {
    throw new DatasetError(`${plan.where}: the coordinator read ${plan.files.length} files, this worker finds ${files.length} (${files.join(', ')}): the data differs between machines`);
  }
  plan.files.forEach((expected, i) => {
    const file = files[i]!;
    const now = fingerprint(file);
    if (now.size !== expected.size || now.hash !== expected.hash) {
      throw new DatasetError(
        `${file}: this file differs from the one the coordinator scanned (${now.size} bytes here, ${expected.size} there${now.size === expected.size ? ', other contents' : ''}): every machine must see the same data`,
      );
    }
  });
}

/** Parses a plan from its JSON (Welcome.data_plan_json's values); a plan of another version is refused. */
export function checkPlan(value: unknown, where: string): DataPlan {
  const plan = value as Partial<DataPlan> | null;
  if (typeof plan !== 'object' || plan === null || plan.version !== PLAN_VERSION || !Array.isArray(plan.files)) {
    throw new DatasetError(`${where}: not a data plan of version ${PLAN_VERSION} (coordinator and worker of different versions?)`);
  }
  return plan as DataPlan;
}
