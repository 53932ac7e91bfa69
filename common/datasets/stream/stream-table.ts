// A streamed table dataset (`stream:` in a csv, jsonl or parquet spec): the Dataset of a data
// plan. Its splits decode, on demand, the chunks holding the requested rows, keep decoded chunks
// in one LRU cache bounded in bytes (shared by the train and test splits), and serve `inputs`
// and `targets` synchronously. The coordinator makes the plan by scanning the files (scan.ts);
// a worker gets it in the Welcome and only checks that its files are the ones scanned.
import { DatasetError } from '../../errors.js';
import type { TableSpec } from '../../job-schema.js';
import type { TargetRequest } from '../tabular.js';
import { checkSplitRequest, type Dataset, type Split } from '../types.js';
import { ChunkCache, type CacheStats } from './chunk-cache.js';
import { openChunkFile, type ChunkFile } from './chunk-files.js';
import { checkFingerprints, streamSettings, type DataPlan, type TablePlan } from './plan.js';
import { scanTable, splitRows, streamFiles } from './scan.js';
import { decodeChunk, encoders, typeChunk, type DecodedChunk, type TableColumns } from './typed-chunk.js';

export interface StreamedDataset<P extends DataPlan = DataPlan> extends Dataset {
  /** What workers need to read the data without scanning it (sent in the Welcome). */
  readonly plan: P;
  /** True when this process scanned the files (the coordinator), false when it read by a plan it was given (a worker). */
  readonly scanned: boolean;
  /** The chunk cache's counters (hits, loads, evictions, bytes). */
  readonly cacheStats: CacheStats;
  /** The sampler's block shuffle (common/datasets/block-sampler.ts). */
  readonly sampling: { blockRows: number; window: number };
}

/** Rows cut into chunks decoded on demand behind one cache (a streamed table's kept rows, or an array's examples). */
export class ChunkedRows {
  /** start[c]: the first row of chunk c; start[chunks] = the row count. */
  private readonly start: Float64Array;
  readonly cache: ChunkCache<DecodedChunk>;

  constructor(
    chunkRows: readonly number[],
    cacheBytes: number,
    private readonly decode: (chunk: number) => DecodedChunk,
    readonly width: number,
    /** Names the data in errors. */
    readonly shown: string,
    readonly targetNames: readonly string[],
  ) {
    this.start = new Float64Array(chunkRows.length + 1);
    chunkRows.forEach((n, i) => (this.start[i + 1] = this.start[i]! + n));
    this.cache = new ChunkCache(cacheBytes);
  }

  /** The chunk holding row `row`. */
  chunkOf(row: number): number {
    let lo = 0;
    let hi = this.start.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.start[mid]! <= row) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * Visits the requested rows grouped by chunk (each chunk decoded at most once per request):
   * `visit(j, chunk, offset)` for request position j, its chunk and its row in the chunk.
   */
  gather(rows: Uint32Array, indices: ArrayLike<number>, visit: (j: number, chunk: DecodedChunk, offset: number) => void): void {
    const order = Array.from({ length: indices.length }, (_, j) => j).sort((a, b) => rows[indices[a]!]! - rows[indices[b]!]!);
    let current = -1;
    let decoded: DecodedChunk | undefined;
    for (const j of order) {
      const row = rows[indices[j]!]!;
      if (current < 0 || row < this.start[current]! || row >= this.start[current + 1]!) {
        current = this.chunkOf(row);
        decoded = this.cache.get(current, () => this.decode(current));
      }
      visit(j, decoded!, row - this.start[current]!);
    }
  }
}

/** A split over some of the rows of a ChunkedRows (`rows`: ascending, for locality). */
export class StreamSplit implements Split {
  readonly size: number;

  constructor(
    private readonly table: ChunkedRows,
    private readonly rows: Uint32Array,
  ) {
    this.size = rows.length;
  }

  inputs(indices: ArrayLike<number>, out: Float32Array): void {
    const w = this.table.width;
    checkSplitRequest(this.size, indices, out, w);
    this.table.gather(this.rows, indices, (j, chunk, offset) => out.set(chunk.features.subarray(offset * w, (offset + 1) * w), j * w));
  }

  targets(target: string, indices: ArrayLike<number>, out: Float32Array): void {
    if (!this.table.targetNames.includes(target)) {
      throw new DatasetError(`${this.table.shown}: "${target}" is not a target of this dataset (targets: ${this.table.targetNames.join(', ')})`);
    }
    checkSplitRequest(this.size, indices, out, 1);
    this.table.gather(this.rows, indices, (j, chunk, offset) => (out[j] = chunk.targets.get(target)![offset]!));
  }
}

/** A chunk decoder over a table plan's files: typed as in memory, checked against the plan's counts. */
function tableDecoder(plan: TablePlan, files: readonly string[], cols: TableColumns): (chunk: number) => DecodedChunk {
  const requests = [...plan.features.map((name) => ({ name, role: 'feature' })), ...[...cols.targets.keys()].map((name) => ({ name, role: 'target' }))];
  const open: ChunkFile[] = files.map((file, i) => openChunkFile(plan.format, file, requests, plan.headers?.[i]));
  const enc = encoders(plan.columns, plan.targets);
  return (index) => {
    const ref = plan.chunks[index]!;
    const file = open[ref.file]!;
    const raw = file.decode(ref);
    const typed = typeChunk(raw, cols);
    if (raw.rows !== ref.rows || typed.kept !== ref.kept) {
      throw new DatasetError(`${file.file}: a chunk holds ${typed.kept} rows (of ${raw.rows}) where the coordinator's scan found ${ref.kept} (of ${ref.rows}): the file changed since it was scanned`);
    }
    return decodeChunk(typed, plan.columns, enc, file.file);
  };
}

/**
 * A streamed table: from `plan` (a worker: the coordinator's, checked against the files here by
 * fingerprint) or from a scan of the files (the coordinator; or any caller without a plan).
 */
export function loadStreamedTable(spec: TableSpec, baseDir: string, targetColumns: readonly TargetRequest[], plan?: TablePlan): StreamedDataset<TablePlan> {
  const settings = streamSettings(spec.stream);
  if (settings === undefined) throw new RangeError('loadStreamedTable: the spec is not streamed');
  const { files, shown } = streamFiles(spec, baseDir);
  if (spec.split !== undefined) throw new DatasetError(`${shown}: stream does not take a split by column yet: give test (the test split's files) or testFraction, or drop stream`);
  const scanned = plan === undefined;
  if (plan === undefined) plan = scanTable(spec, baseDir, targetColumns, settings);
  else checkFingerprints(plan, files);
  const categorical = spec.categorical ?? [];
  const targets = new Map(targetColumns.map((t) => [t.column, t.kind] as const));
  for (const [column, kind] of targets) {
    if (plan.targets[column]?.kind !== kind) throw new DatasetError(`${plan.where}: the data plan has no ${kind} target "${column}" (coordinator and worker read different jobs?)`);
  }
  const cols: TableColumns = { features: spec.features, categorical: spec.features.map((c) => categorical.includes(c)), targets, policy: spec.missing ?? 'error' };
  const table = new ChunkedRows(plan.chunks.map((c) => c.kept), plan.settings.cache, tableDecoder(plan, files, cols), plan.features.length, plan.shown, Object.keys(plan.targets));
  const { train, test } = splitRows(plan);
  const vocabularies = plan.columns.flatMap((t) => (t.kind === 'categorical' ? [`${t.column}: ${t.vocabulary.length} categories (ids 1..${t.vocabulary.length}, 0 unknown)`] : []));
  const dropped = plan.fileRows > plan.rowCount ? `, ${plan.fileRows - plan.rowCount} rows with missing values dropped` : '';
  return {
    inputShape: [table.width],
    targets: plan.targets,
    train: new StreamSplit(table, train),
    test: new StreamSplit(table, test),
    columns: plan.columns,
    description:
      `${spec.dataset} ${plan.where}, streamed (${plan.chunks.length} chunks, cache ${plan.settings.cache} bytes): ${table.width} features, ${train.length} train / ${test.length} test rows${dropped}` +
      `${spec.normalize ? ' (standardised with train statistics)' : ''}${vocabularies.length ? `; ${vocabularies.join('; ')}` : ''}, seed ${spec.seed}`,
    identity: plan.identity,
    plan,
    scanned,
    cacheStats: table.cache.stats,
    sampling: { blockRows: plan.settings.blockRows, window: plan.settings.window },
  };
}
