// A streamed NumPy dataset (`stream:` in an npy spec): the inputs array is read in chunks of
// consecutive examples by byte offset (a .npy file is a header then the raw C-order array), so
// only the chunks a worker's units need are in memory, in the same byte-bounded cache as tables.
// The targets (one value per example: as small as the split's index arrays) are read whole.
// The coordinator's scan reads the inputs once, a chunk at a time, for the finiteness check
// (errors name the example as in memory) and the digest that is the sampler's identity.
//
// Not streamed: an explicit `test:` split (give testFraction), Fortran-order inputs of more than
// one value per example (their examples are not contiguous), and npz archives (adm-zip reads an
// archive whole, and np.savez_compressed members are deflated: not readable at an offset).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { DatasetError } from '../../errors.js';
import type { NpySpec } from '../../job-schema.js';
import type { TaskTargetRequest } from '../class-labels.js';
import { InputsDigest } from '../identity.js';
import { npyFiles, readTarget, targetArrays, type Inputs, type TargetColumn } from '../npy.js';
import { npyToFloat32, parseDtype, parseNpyHeader, type NpyHeader } from '../npy-format.js';
import type { TargetInfo } from '../types.js';
import { readBytes } from './chunk-files.js';
import { checkFingerprints, fingerprint, PLAN_VERSION, streamSettings, type ArrayPlan, type StreamSettings } from './plan.js';
import { splitRows } from './scan.js';
import { ChunkedRows, StreamSplit, type StreamedDataset } from './stream-table.js';

const DEFAULT_TEST_FRACTION = 0.2;
const SPLIT_SALT = 'array-split';

function readHeader(file: string): NpyHeader {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new DatasetError(`${file}: cannot read .npy file: ${reason}`, { cause: err });
  }
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(size, 1024 * 1024));
    const n = readSync(fd, head, 0, head.length, 0);
    return parseNpyHeader(head.subarray(0, n), size, file);
  } finally {
    closeSync(fd);
  }
}

function inputsOf(file: string, header: NpyHeader): Inputs & { width: number } {
  const { shape } = header;
  const shapeText = `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;
  if (shape.length === 0) throw new DatasetError(`${file}: the inputs array is a scalar; expected shape (N, ...) with one row per example`);
  const count = shape[0]!;
  if (count === 0) throw new DatasetError(`${file}: the inputs array has no examples (shape ${shapeText})`);
  const exampleShape = shape.length === 1 ? [1] : shape.slice(1);
  if (exampleShape.some((d) => d === 0)) throw new DatasetError(`${file}: the inputs array has empty examples (shape ${shapeText})`);
  const width = exampleShape.reduce((a, b) => a * b, 1);
  if (header.fortranOrder && shape.length > 1 && width > 1) {
    throw new DatasetError(`${file}: a Fortran-order array cannot be streamed (its examples are not contiguous): save it in C order (np.ascontiguousarray), or drop stream`);
  }
  return { features: new Float32Array(0), exampleShape, count, width };
}

/** The float32 inputs of examples [first, first + rows), checked finite (errors name the example as in memory). */
function readChunk(file: string, plan: Pick<ArrayPlan, 'dataStart' | 'descr' | 'exampleShape'>, width: number, first: number, rows: number): Float32Array {
  const dtype = parseDtype(plan.descr, file);
  const rowBytes = width * dtype.size;
  const bytes = readBytes(file, plan.dataStart + first * rowBytes, plan.dataStart + (first + rows) * rowBytes, '.npy');
  const features = npyToFloat32({ shape: [rows, ...plan.exampleShape], dtype, fortranOrder: false, bytes });
  for (let i = 0; i < features.length; i++) {
    if (!Number.isFinite(features[i]!)) {
      throw new DatasetError(`${file}: example ${first + Math.floor(i / width)} holds ${features[i]} (value ${i % width} of the example); inputs must be finite`);
    }
  }
  return features;
}

/** The scan: the inputs' header and chunks (finiteness, digest), the targets (shape, classes), the split. */
/** A target read whole (one value per example: a target of shape (N, k) is not streamed yet). */
function streamedTarget(reader: ReturnType<typeof npyFiles>, name: string, inputs: Inputs, inputsName: string, kind: TaskTargetRequest['kind']): TargetColumn {
  const t = readTarget(reader, name, inputs, inputsName, kind);
  if (t.width !== 1) throw new DatasetError(`${reader.where(name)}: stream takes targets of one value per example, this one has ${t.width}: drop stream for it`);
  return t;
}

function scanArrays(spec: NpySpec, baseDir: string, requests: readonly TaskTargetRequest[], settings: StreamSettings): ArrayPlan {
  const reader = npyFiles(baseDir);
  const file = reader.where(spec.inputs);
  const header = readHeader(file);
  const inputs = inputsOf(file, header);
  const rowsPerChunk = Math.max(1, Math.floor(settings.chunk / (inputs.width * header.dtype.size)));
  const fraction = spec.testFraction ?? DEFAULT_TEST_FRACTION;
  const testSize = Math.round(inputs.count * fraction);
  if (testSize < 1 || inputs.count - testSize < 1) {
    throw new DatasetError(`${file}: ${inputs.count} examples with testFraction ${fraction} give ${inputs.count - testSize} train / ${testSize} test examples (need at least 1 of each)`);
  }
  const targets: Record<string, TargetInfo> = {};
  for (const { name, kind } of requests) targets[name] = targetArrays(kind, streamedTarget(reader, name, inputs, spec.inputs, kind)).info;
  const split = { kind: 'fraction' as const, seed: spec.seed, testSize };
  const digest = new InputsDigest('arrays-stream', inputs.width);
  const plan = { dataStart: header.dataStart, descr: header.dtype.descr, exampleShape: inputs.exampleShape };
  for (let first = 0; first < inputs.count; first += rowsPerChunk) digest.add(readChunk(file, plan, inputs.width, first, Math.min(rowsPerChunk, inputs.count - first)));
  const targetFiles = requests.map((r) => reader.where(r.name));
  return {
    version: PLAN_VERSION,
    format: 'npy',
    where: file,
    files: [file, ...targetFiles].map(fingerprint),
    targetFiles: requests.map((r) => r.name),
    count: inputs.count,
    ...plan,
    rowsPerChunk,
    rowCount: inputs.count,
    split,
    targets,
    identity: digest.finish(splitRows({ rowCount: inputs.count, split }, SPLIT_SALT).train),
    settings,
  };
}

/** A streamed npy dataset, from the coordinator's `plan` (checked by fingerprint) or from a scan. */
export function loadStreamedNpy(spec: NpySpec, baseDir: string, requests: readonly TaskTargetRequest[], plan?: ArrayPlan): StreamedDataset<ArrayPlan> {
  const settings = streamSettings(spec.stream);
  if (settings === undefined) throw new RangeError('loadStreamedNpy: the spec is not streamed');
  const reader = npyFiles(baseDir);
  if (spec.test !== undefined) throw new DatasetError(`${reader.where(spec.inputs)}: stream does not take an explicit test split yet: give testFraction, or drop stream`);
  const scanned = plan === undefined;
  if (plan === undefined) plan = scanArrays(spec, baseDir, requests, settings);
  else checkFingerprints({ where: plan.where, files: plan.files }, [reader.where(spec.inputs), ...plan.targetFiles.map((t) => reader.where(t))]);
  const file = reader.where(spec.inputs);
  const width = plan.exampleShape.reduce((a, b) => a * b, 1);
  const inputs: Inputs = { features: new Float32Array(0), exampleShape: plan.exampleShape, count: plan.count };
  const values = new Map<string, Float32Array>();
  for (const { name, kind } of requests) {
    const t = targetArrays(kind, streamedTarget(reader, name, inputs, spec.inputs, kind));
    if (JSON.stringify(t.info) !== JSON.stringify(plan.targets[name])) throw new DatasetError(`${reader.where(name)}: the target differs from the one the coordinator scanned`);
    values.set(name, t.train);
  }
  const chunks = Array.from({ length: Math.ceil(plan.count / plan.rowsPerChunk) }, (_, c) => Math.min(plan.rowsPerChunk, plan.count - c * plan.rowsPerChunk));
  const p = plan;
  const rows = new ChunkedRows(
    chunks,
    plan.settings.cache,
    (c) => {
      const first = c * p.rowsPerChunk;
      const features = readChunk(file, p, width, first, chunks[c]!);
      const targets = new Map([...values].map(([name, v]) => [name, v.subarray(first, first + chunks[c]!)] as const));
      return { features, targets, bytes: features.byteLength };
    },
    width,
    file,
    requests.map((r) => r.name),
  );
  const { train, test } = splitRows(plan, SPLIT_SALT);
  return {
    inputShape: plan.exampleShape,
    targets: plan.targets,
    train: new StreamSplit(rows, train),
    test: new StreamSplit(rows, test),
    description: `npy ${file}, streamed (${chunks.length} chunks, cache ${plan.settings.cache} bytes): examples of shape (${plan.exampleShape.join(', ')}), ${train.length} train / ${test.length} test, seed ${spec.seed}`,
    identity: plan.identity,
    plan,
    scanned,
    cacheStats: rows.cache.stats,
    sampling: { blockRows: plan.settings.blockRows, window: plan.settings.window },
  };
}
