// The coordinator's one bounded-memory scan of a streamed table: two passes over the chunks,
// holding one decoded chunk at a time. Pass 1 cuts the files into chunks and counts each
// chunk's rows and kept rows (decoding csv/jsonl, and parquet only under `missing: drop`: its
// footer has the counts); the split follows from the kept row count as in memory (seeded by
// seed and row count). Pass 2 decodes every chunk for the train statistics (double precision,
// compensated sums of values shifted by the first train value), the train vocabularies, the
// class labels, and the digest of the rows (the sampler's identity). Peak memory: one chunk,
// plus O(rows) bytes for the split's index arrays.
import { DatasetError } from '../../errors.js';
import type { TableSpec } from '../../job-schema.js';
import { Rng } from '../../random.js';
import type { ColumnRequest } from '../table-reader.js';
import { resolveTableFiles } from '../table-files.js';
import { checkRequests, DEFAULT_TEST_FRACTION, READERS, type TargetRequest } from '../tabular.js';
import type { ColumnTransform, TargetInfo } from '../types.js';
import { cutByBytes, csvHeader, openChunkFile, parquetChunks, type ChunkBounds, type ChunkFile } from './chunk-files.js';
import { fingerprint, PLAN_VERSION, type ChunkRef, type StreamSettings, type TablePlan } from './plan.js';
import { digestRows, newRowsDigest, sortedClasses, typeChunk, type TableColumns } from './typed-chunk.js';
import { Vocabulary } from '../vocabulary.js';
import { missingColumnMessage } from '../table-reader.js';

/** A sum in double precision with Neumaier's compensation (order-insensitive to within an ulp or so). */
class Sum {
  private s = 0;
  private c = 0;
  add(x: number): void {
    const t = this.s + x;
    this.c += Math.abs(this.s) >= Math.abs(x) ? this.s - t + x : x - t + this.s;
    this.s = t;
  }
  get value(): number {
    return this.s + this.c;
  }
}

/** Mean and population std of a stream of values, shifted by the first one so that the squares do not cancel. */
class Moments {
  private shift: number | undefined;
  private n = 0;
  private readonly d = new Sum();
  private readonly d2 = new Sum();
  add(x: number): void {
    this.shift ??= x;
    const d = x - this.shift;
    this.n++;
    this.d.add(d);
    this.d2.add(d * d);
  }
  result(): { mean: number; std: number } {
    const k = this.shift ?? 0;
    const m = this.d.value / this.n;
    const variance = Math.max(0, this.d2.value / this.n - m * m);
    return { mean: k + m, std: Math.sqrt(variance) };
  }
}

/** Train and test rows (indices of kept rows), each ascending, from the plan's split. */
export function splitRows(plan: Pick<TablePlan, 'rowCount' | 'split'>, salt = 'table-split'): { train: Uint32Array; test: Uint32Array } {
  const { rowCount, split } = plan;
  if (split.kind === 'files') {
    return { train: Uint32Array.from({ length: split.trainRows }, (_, i) => i), test: Uint32Array.from({ length: rowCount - split.trainRows }, (_, i) => split.trainRows + i) };
  }
  // The test set as in memory (keyed by seed and row count), served in ascending row order.
  const isTest = new Uint8Array(rowCount);
  {
    const order = Rng.fromKey(split.seed, salt, rowCount).permutation(rowCount);
    for (let i = rowCount - split.testSize; i < rowCount; i++) isTest[order[i]!] = 1;
  }
  const train = new Uint32Array(rowCount - split.testSize);
  const test = new Uint32Array(split.testSize);
  let a = 0;
  let b = 0;
  for (let r = 0; r < rowCount; r++) {
    if (isTest[r]) test[b++] = r;
    else train[a++] = r;
  }
  return { train, test };
}

function columnsOf(spec: TableSpec, shown: string, targetColumns: readonly TargetRequest[]) {
  const requested = checkRequests(spec, shown, targetColumns);
  const categoricalColumns = spec.categorical ?? [];
  for (const c of categoricalColumns) {
    if (!spec.features.includes(c)) throw new DatasetError(`${shown}: categorical column "${c}" is not one of the features (${spec.features.join(', ')})`);
  }
  const requests: ColumnRequest[] = [...spec.features.map((name) => ({ name, role: 'feature' })), ...[...requested.keys()].map((name) => ({ name, role: 'target' }))];
  const cols: TableColumns = { features: spec.features, categorical: spec.features.map((c) => categoricalColumns.includes(c)), targets: requested, policy: spec.missing ?? 'error' };
  return { requests, cols };
}

/** The files of a streamed table (train, then the test split's own), as `loadTable` resolves them. */
export function streamFiles(spec: TableSpec, baseDir: string) {
  const extension = READERS[spec.dataset].extension;
  const train = resolveTableFiles(spec.path, baseDir, extension);
  const test = spec.test === undefined ? undefined : resolveTableFiles(spec.test, baseDir, extension);
  const describe = (f: typeof train) => (f.glob ? `${f.shown} (${f.files.length} files)` : f.shown);
  return {
    shown: train.shown,
    where: describe(train) + (test ? `, test ${describe(test)}` : ''),
    files: [...train.files, ...(test?.files ?? [])],
    trainFiles: train.files.length,
  };
}

/** Every column the reader must offer, checked against a csv header / jsonl keys as in memory. */
function pass1(spec: TableSpec, files: readonly string[], requests: readonly ColumnRequest[], cols: TableColumns, settings: StreamSettings) {
  const chunks: ChunkRef[] = [];
  const headers: string[][] = [];
  const open: ChunkFile[] = [];
  const names = [...new Set(requests.map((r) => r.name))];
  files.forEach((file, index) => {
    let bounds: ChunkBounds[];
    let chunkFile: ChunkFile;
    if (spec.dataset === 'parquet') {
      bounds = parquetChunks(file, requests);
      chunkFile = openChunkFile('parquet', file, requests);
    } else {
      const cut = cutByBytes(file, spec.dataset, settings.chunk);
      bounds = cut.chunks;
      if (spec.dataset === 'csv') {
        const header = csvHeader(file, cut.headerEnd);
        headers.push(header);
        chunkFile = openChunkFile('csv', file, requests, header);
      } else chunkFile = openChunkFile('jsonl', file, requests);
    }
    open.push(chunkFile);
    const seen = new Set<string>();
    const keys = new Set<string>();
    let fileRows = 0;
    for (const b of bounds) {
      if (spec.dataset === 'parquet' && cols.policy !== 'drop') {
        chunks.push({ ...b, file: index, rows: b.rows!, kept: b.rows! });
        continue;
      }
      const raw = chunkFile.decode(b);
      raw.seen?.forEach((s, c) => s && seen.add(names[c]!));
      raw.keys?.forEach((k) => keys.add(k));
      fileRows += raw.rows;
      const kept = cols.policy === 'drop' ? typeChunk(raw, cols).kept : raw.rows;
      chunks.push({ ...b, file: index, rows: raw.rows, kept });
    }
    // jsonl: a column no line has is a wrong name, not a column of missing values (as in memory).
    if (spec.dataset === 'jsonl' && fileRows > 0) {
      for (const column of requests) if (!seen.has(column.name)) throw new DatasetError(missingColumnMessage(file, column, 'any line', [...keys]));
    }
  });
  return { chunks, headers, open };
}

/**
 * Scans the files `spec` names (the whole bounded-memory pass of streamed mode) and returns the
 * plan workers read chunks by. Errors are the in-memory path's: naming file, line or row, and column.
 */
export function scanTable(spec: TableSpec, baseDir: string, targetColumns: readonly TargetRequest[], settings: StreamSettings): TablePlan {
  const { shown, where, files, trainFiles } = streamFiles(spec, baseDir);
  const { requests, cols } = columnsOf(spec, shown, targetColumns);
  const fingerprints = files.map(fingerprint);
  const { chunks, headers, open } = pass1(spec, files, requests, cols, settings);

  const fileRows = chunks.reduce((n, c) => n + c.rows, 0);
  const rowCount = chunks.reduce((n, c) => n + c.kept, 0);
  const keptTrainFileRows = chunks.filter((c) => c.file < trainFiles).reduce((n, c) => n + c.kept, 0);
  if (rowCount === 0) throw new DatasetError(`${where}: no data rows${fileRows > 0 ? ` (all ${fileRows} have a missing value, and missing is drop)` : ''}`);
  let split: TablePlan['split'];
  if (spec.test !== undefined) {
    if (spec.testFraction !== undefined) throw new DatasetError(`${where}: give either test (the test split's files) or testFraction, not both`);
    split = { kind: 'files', trainRows: keptTrainFileRows };
    if (keptTrainFileRows < 1 || rowCount - keptTrainFileRows < 1) {
      throw new DatasetError(`${where}: ${keptTrainFileRows} train / ${rowCount - keptTrainFileRows} test rows (need at least 1 of each)`);
    }
  } else {
    const fraction = spec.testFraction ?? DEFAULT_TEST_FRACTION;
    const testSize = Math.round(rowCount * fraction);
    if (testSize < 1 || rowCount - testSize < 1) {
      throw new DatasetError(`${where}: ${rowCount} data rows with testFraction ${fraction} give ${rowCount - testSize} train / ${testSize} test rows (need at least 1 of each)`);
    }
    split = { kind: 'fraction', seed: spec.seed, testSize };
  }
  const { train } = splitRows({ rowCount, split });
  const isTrain = new Uint8Array(rowCount);
  for (const r of train) isTrain[r] = 1;

  // Pass 2: statistics and vocabularies of the train rows, class labels of all rows, the rows' digest.
  const width = spec.features.length;
  const moments = spec.features.map((_, f) => (cols.categorical[f] ? undefined : new Moments()));
  const vocab = spec.features.map((_, f) => (cols.categorical[f] ? new Set<string>() : undefined));
  const labels = new Map([...cols.targets].filter(([, k]) => k === 'classification').map(([c]) => [c, new Set<string>()] as const));
  const digest = newRowsDigest(width);
  let base = 0;
  for (const chunk of chunks) {
    const typed = typeChunk(open[chunk.file]!.decode(chunk), cols);
    if (typed.kept !== chunk.kept) throw new DatasetError(`${files[chunk.file]}: the file changed during the scan (a chunk held ${chunk.kept} rows, now ${typed.kept})`);
    digestRows(digest, typed, width);
    for (let f = 0; f < width; f++) {
      const m = moments[f];
      const v = vocab[f];
      const names = typed.categories[f];
      for (let r = 0; r < typed.kept; r++) {
        if (!isTrain[base + r]) continue;
        if (m) m.add(typed.numbers[r * width + f]!);
        else v!.add(names![r]!);
      }
    }
    for (const [column, set] of labels) for (const label of typed.labels.get(column)!) set.add(label);
    base += typed.kept;
  }

  const columns: ColumnTransform[] = spec.features.map((column, f) => {
    const values = vocab[f];
    if (values) return { column, kind: 'categorical', vocabulary: Vocabulary.fromValues(values).values };
    return spec.normalize ? { column, kind: 'numeric', ...moments[f]!.result() } : { column, kind: 'numeric' };
  });
  const targets: Record<string, TargetInfo> = {};
  for (const [column, kind] of cols.targets) targets[column] = kind === 'classification' ? { kind, classes: sortedClasses(labels.get(column)!) } : { kind };
  digest.update(JSON.stringify({ columns, split, rowCount }));
  return {
    version: PLAN_VERSION,
    format: spec.dataset,
    where,
    shown,
    files: fingerprints,
    ...(spec.dataset === 'csv' ? { headers } : {}),
    chunks,
    rowCount,
    fileRows,
    split,
    features: [...spec.features],
    columns,
    normalize: spec.normalize,
    targets,
    identity: `table-stream:${digest.digest('hex')}`,
    settings,
  };
}
