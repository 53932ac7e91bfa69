// Datasets from NumPy arrays: `npy` (one .npy file per array, paths relative to the job file)
// and `npz` (named arrays in one np.savez / np.savez_compressed archive). The inputs array has
// shape [N, ...] (one example is the rest of the shape; [N] means one value per example), every
// target [N] or [N, 1]. Several tasks may read one inputs array with their own target arrays.
//
// The split is a seeded permutation of the N examples keyed by the seed and N only (not by any
// path, so moving the files does not change it), or an explicit `test: { inputs, target }`.
// Archives are read with adm-zip, which checks every member's CRC-32 (so a corrupt member is
// an error, not silently wrong numbers), reads zip64 headers (numpy always writes them) and
// stored as well as deflated members.
import AdmZip from 'adm-zip';
import { readFileSync } from 'node:fs';
import { DatasetError } from '../errors.js';
import type { NpySpec, NpzSpec } from '../job-schema.js';
import { Rng } from '../random.js';
import { allRows, ArraySplit } from './array-split.js';
import { numericClasses, type TaskTargetRequest } from './class-labels.js';
import { npyToFloat32, npyToFloat64, parseNpy, type NpyArray } from './npy-format.js';
import type { Dataset, TargetInfo } from './types.js';
import { resolveDataPath } from '../data-store/resolve.js';
import { InputsDigest } from './identity.js';

const DEFAULT_TEST_FRACTION = 0.2;

/** Reads one named array of a source; `where` names it in errors. */
export interface ArrayReader {
  read(name: string): NpyArray;
  where(name: string): string;
  /** The whole source, for the description. */
  readonly description: string;
}

function readBytes(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new DatasetError(`${file}: cannot read ${what}: ${reason}`, { cause: err });
  }
}

export function npyFiles(baseDir: string): ArrayReader {
  const resolve = (name: string): string => resolveDataPath(name, baseDir);
  return {
    read: (name) => parseNpy(readBytes(resolve(name), '.npy file'), resolve(name)),
    where: resolve,
    description: `npy files in ${baseDir}`,
  };
}

function npzArchive(file: string): ArrayReader {
  let zip: AdmZip;
  try {
    zip = new AdmZip(readBytes(file, '.npz archive'));
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    throw new DatasetError(`${file}: not a readable .npz (zip) archive: ${(err as Error).message}`, { cause: err });
  }
  const members = zip.getEntries().filter((e) => !e.isDirectory);
  const names = members.map((e) => e.entryName.replace(/\.npy$/, ''));
  const where = (name: string): string => `${file} (array "${name}")`;
  return {
    read(name) {
      const entry = members.find((e) => e.entryName === `${name}.npy`) ?? members.find((e) => e.entryName === name);
      if (entry === undefined) throw new DatasetError(`${file}: the archive has no array "${name}" (arrays: ${names.join(', ') || 'none'})`);
      let bytes: Buffer;
      try {
        bytes = entry.getData();
      } catch (err) {
        throw new DatasetError(`${where(name)}: corrupt archive member ${entry.entryName}: ${(err as Error).message}`, { cause: err });
      }
      return parseNpy(bytes, where(name));
    },
    where,
    description: `npz ${file}`,
  };
}

function shapeText(shape: readonly number[]): string {
  return `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;
}

export interface Inputs {
  features: Float32Array;
  exampleShape: number[];
  count: number;
}

function readInputs(reader: ArrayReader, name: string): Inputs {
  const array = reader.read(name);
  const where = reader.where(name);
  if (array.shape.length === 0) throw new DatasetError(`${where}: the inputs array is a scalar; expected shape (N, ...) with one row per example`);
  const count = array.shape[0]!;
  if (count === 0) throw new DatasetError(`${where}: the inputs array has no examples (shape ${shapeText(array.shape)})`);
  const exampleShape = array.shape.length === 1 ? [1] : array.shape.slice(1);
  if (exampleShape.some((d) => d === 0)) throw new DatasetError(`${where}: the inputs array has empty examples (shape ${shapeText(array.shape)})`);
  const features = npyToFloat32(array);
  const width = features.length / count;
  for (let i = 0; i < features.length; i++) {
    if (!Number.isFinite(features[i]!)) {
      throw new DatasetError(`${where}: example ${Math.floor(i / width)} holds ${features[i]} (value ${i % width} of the example); inputs must be finite`);
    }
  }
  return { features, exampleShape, count };
}

export function readTarget(reader: ArrayReader, name: string, inputs: Inputs, inputsName: string, kind: TaskTargetRequest['kind']): TargetColumn {
  const array = reader.read(name);
  const where = reader.where(name);
  const { shape } = array;
  if (!(shape.length === 1 || (shape.length === 2 && (shape[1] === 1 || kind === 'regression')))) {
    throw new DatasetError(`${where}: a target must have shape (N,) or (N, 1)${kind === 'regression' ? ', or (N, k) for k values per example' : ' (a class target)'}, got ${shapeText(shape)}`);
  }
  if (shape[0] !== inputs.count) {
    throw new DatasetError(
      `${where} has ${shape[0]} examples but the inputs ${reader.where(inputsName)} have ${inputs.count} (shapes ${shapeText(shape)} and (${[inputs.count, ...inputs.exampleShape].join(', ')}))`,
    );
  }
  const values = npyToFloat64(array);
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new DatasetError(`${where}: example ${bad} holds ${values[bad]}; targets must be finite`);
  return { values, boolean: array.dtype.kind === 'b', width: shape.length === 2 ? shape[1]! : 1 };
}

export interface TargetColumn {
  values: Float64Array;
  boolean: boolean;
  /** Values per example: k for a regression target of shape (N, k). */
  width: number;
}

/** Train and test targets of one name: class indices over the classes of both splits, or values. */
export function targetArrays(kind: TaskTargetRequest['kind'], train: TargetColumn, test?: TargetColumn): { info: TargetInfo; train: Float32Array; test?: Float32Array } {
  if (kind === 'regression') {
    if (test && test.width !== train.width) throw new DatasetError(`the test target has ${test.width} values per example, the train target ${train.width}`);
    const info: TargetInfo = train.width === 1 ? { kind } : { kind, width: train.width };
    return { info, train: Float32Array.from(train.values), ...(test ? { test: Float32Array.from(test.values) } : {}) };
  }
  const both = new Float64Array(train.values.length + (test?.values.length ?? 0));
  both.set(train.values);
  if (test) both.set(test.values, train.values.length);
  const { classes, indices } = numericClasses(both, train.boolean && (test?.boolean ?? true));
  const n = train.values.length;
  return { info: { kind, classes }, train: indices.subarray(0, n), ...(test ? { test: indices.subarray(n) } : {}) };
}

function loadArrays(spec: NpySpec | NpzSpec, reader: ArrayReader, requests: readonly TaskTargetRequest[]): Dataset {
  if (spec.test !== undefined && spec.testFraction !== undefined) {
    throw new DatasetError(`${reader.description}: give either test (an explicit test split) or testFraction, not both`);
  }
  const inputs = readInputs(reader, spec.inputs);
  const width = inputs.features.length / inputs.count;
  const targets: Record<string, TargetInfo> = {};
  const trainValues = new Map<string, Float32Array>();
  const testValues = new Map<string, Float32Array>();
  const widths = new Map<string, number>();

  if (spec.test !== undefined) {
    const testInputs = readInputs(reader, spec.test.inputs);
    if (testInputs.exampleShape.join() !== inputs.exampleShape.join()) {
      throw new DatasetError(
        `${reader.where(spec.test.inputs)}: test examples have shape (${testInputs.exampleShape.join(', ')}) but the train examples of ${reader.where(spec.inputs)} (${inputs.exampleShape.join(', ')})`,
      );
    }
    for (const { name, kind, testTarget } of requests) {
      const t = targetArrays(kind, readTarget(reader, name, inputs, spec.inputs, kind), readTarget(reader, testTarget ?? spec.test.target, testInputs, spec.test.inputs, kind));
      targets[name] = t.info;
      if (t.info.width !== undefined) widths.set(name, t.info.width);
      trainValues.set(name, t.train);
      testValues.set(name, t.test!);
    }
    return {
      inputShape: inputs.exampleShape,
      targets,
      train: new ArraySplit(inputs.features, width, trainValues, allRows(inputs.count), reader.where(spec.inputs), widths),
      test: new ArraySplit(testInputs.features, width, testValues, allRows(testInputs.count), reader.where(spec.test.inputs), widths),
      identity: new InputsDigest('arrays', width).add(inputs.features).add(testInputs.features).finish(allRows(inputs.count)),
      description: `${spec.dataset} ${reader.where(spec.inputs)}: examples of shape (${inputs.exampleShape.join(', ')}), ${inputs.count} train / ${testInputs.count} test (${reader.where(spec.test.inputs)})`,
    };
  }

  const fraction = spec.testFraction ?? DEFAULT_TEST_FRACTION;
  const testSize = Math.round(inputs.count * fraction);
  const trainSize = inputs.count - testSize;
  if (testSize < 1 || trainSize < 1) {
    throw new DatasetError(
      `${reader.where(spec.inputs)}: ${inputs.count} examples with testFraction ${fraction} give ${trainSize} train / ${testSize} test examples (need at least 1 of each)`,
    );
  }
  // Keyed by the seed and the example count only: the split does not depend on file names.
  const order = Rng.fromKey(spec.seed, 'array-split', inputs.count).permutation(inputs.count);
  for (const { name, kind } of requests) {
    const t = targetArrays(kind, readTarget(reader, name, inputs, spec.inputs, kind));
    targets[name] = t.info;
    if (t.info.width !== undefined) widths.set(name, t.info.width);
    trainValues.set(name, t.train);
  }
  const where = reader.where(spec.inputs);
  return {
    inputShape: inputs.exampleShape,
    targets,
    train: new ArraySplit(inputs.features, width, trainValues, order.subarray(0, trainSize), where, widths),
    test: new ArraySplit(inputs.features, width, trainValues, order.subarray(trainSize), where, widths),
    identity: new InputsDigest('arrays', width).add(inputs.features).finish(order.subarray(0, trainSize)),
    description: `${spec.dataset} ${where}: examples of shape (${inputs.exampleShape.join(', ')}), ${trainSize} train / ${testSize} test, seed ${spec.seed}`,
  };
}

/** `{ dataset: npy }`: `spec.inputs` and every requested target are .npy files relative to `baseDir`. */
export function loadNpy(spec: NpySpec, baseDir: string, requests: readonly TaskTargetRequest[]): Dataset {
  return loadArrays(spec, npyFiles(baseDir), requests);
}

/** `{ dataset: npz }`: arrays of the archive `spec.path` (relative to `baseDir`). */
export function loadNpz(spec: NpzSpec, baseDir: string, requests: readonly TaskTargetRequest[]): Dataset {
  return loadArrays(spec, npzArchive(resolveDataPath(spec.path, baseDir)), requests);
}
