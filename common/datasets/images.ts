// A dataset from a folder (or glob) of PNG and JPEG images: one example per image, resized to
// `size` with `channels` channels (common/datasets/image-decode.ts), labels from sub-folder
// names (the target `folder`) and/or from a CSV table with a `file` column (path relative to
// the table) and one column per target, so several tasks can read different columns for the
// same images (multi-task).
//
// Images are taken in sorted order of their path relative to the folder (or to the glob's
// fixed leading folders), by code unit, so the order is the same on every machine. Files are
// recognised by extension (.png, .jpg, .jpeg, any case); hidden files and folders are left out.
// Every image is decoded once when the dataset loads, so a corrupt or truncated file is an error
// naming it before training starts, never skipped. Decoded inputs are kept in a bounded cache
// (least recently used out first); the compressed bytes are never kept, and an image that fell
// out of the cache is read and decoded again when a batch needs it (the same bytes give the same
// input, so the cache cannot change a result).
import { parse } from 'csv-parse/sync';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { DatasetError } from '../errors.js';
import type { ImagesSpec } from '../job-schema.js';
import { Rng } from '../random.js';
import { classIndex, parseDecimal, type TaskTargetRequest } from './class-labels.js';
import { imageFileToInput, type PixelOptions } from './image-decode.js';
import { checkSplitRequest, type Dataset, type Split, type TargetInfo } from './types.js';
import { resolveDataPath } from '../data-store/resolve.js';
import { isRemoteData } from '../data-store/urls.js';
import { InputsDigest } from './identity.js';

/** Decoded images kept per source, by default (512 MiB: 171 000 28×28×1 images, 2 730 128×128×3 ones). */
export const DEFAULT_IMAGE_CACHE_BYTES = 512 * 1024 * 1024;
const IMAGE_FILE = /\.(?:png|jpe?g)$/i;
const FOLDER_TARGET = 'folder';

export interface ImagesOptions {
  /** Budget of the decoded-image cache in bytes (default DEFAULT_IMAGE_CACHE_BYTES). */
  cacheBytes?: number;
}

export interface ImageFile {
  /** Absolute path. */
  file: string;
  /** Path relative to the listing's base folder, with '/' separators. */
  relative: string;
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The images of `spec.path` (a folder, searched recursively, or a glob) in sorted order. */
export function listImages(named: string, baseDir: string): { base: string; images: ImageFile[] } {
  // A nats:// or http(s):// reference: its local copy (an absolute path or pattern).
  const pattern = isRemoteData(named) ? resolveDataPath(named, baseDir) : named;
  const resolved = path.resolve(baseDir, pattern);
  let base: string;
  let glob: string;
  if (isDynamicPattern(pattern)) {
    // The glob's fixed leading folders are the base its relative paths (and folder labels) start from.
    const parts = resolved.split(path.sep);
    const dynamic = parts.findIndex((p) => isDynamicPattern(p));
    base = parts.slice(0, dynamic).join(path.sep) || path.sep;
    glob = parts.slice(dynamic).join('/');
  } else {
    let isDir: boolean;
    try {
      isDir = statSync(resolved).isDirectory();
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : (err as Error).message;
      throw new DatasetError(`${resolved}: cannot read the image folder: ${reason}`, { cause: err });
    }
    if (!isDir) throw new DatasetError(`${resolved}: expected a folder of images or a glob (e.g. images/*/*.png), got a file`);
    base = resolved;
    glob = '**/*';
  }
  const found = existsSync(base) ? globSync(glob, { cwd: base, onlyFiles: true, dot: false, expandDirectories: false }) : [];
  const images = found
    .filter((f) => IMAGE_FILE.test(f))
    .map((f) => f.split(path.sep).join('/'))
    .sort(byCodeUnit)
    .map((relative) => ({ file: path.join(base, relative), relative }));
  if (images.length === 0) throw new DatasetError(`${resolved}: no PNG or JPEG files (.png, .jpg, .jpeg) found`);
  return { base, images };
}

/** Bounded least-recently-used cache of decoded inputs, by image index. */
class ImageStore {
  private readonly cache = new Map<number, Float32Array>();
  private bytes = 0;

  constructor(
    private readonly images: readonly ImageFile[],
    private readonly options: PixelOptions,
    private readonly budget: number,
  ) {}

  get width(): number {
    return this.options.size[0] * this.options.size[1] * this.options.channels;
  }

  input(i: number): Float32Array {
    const hit = this.cache.get(i);
    if (hit !== undefined) {
      this.cache.delete(i);
      this.cache.set(i, hit);
      return hit;
    }
    const { file } = this.images[i]!;
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      throw new DatasetError(`${file}: cannot read image: ${(err as Error).message}`, { cause: err });
    }
    const value = imageFileToInput(bytes, file, this.options);
    if (value.byteLength <= this.budget) {
      this.cache.set(i, value);
      this.bytes += value.byteLength;
      for (const [k, v] of this.cache) {
        if (this.bytes <= this.budget) break;
        this.cache.delete(k);
        this.bytes -= v.byteLength;
      }
    }
    return value;
  }
}

class ImageSplit implements Split {
  readonly size: number;

  constructor(
    private readonly store: ImageStore,
    private readonly targetValues: ReadonlyMap<string, Float32Array>,
    private readonly rows: Uint32Array,
    private readonly where: string,
  ) {
    this.size = rows.length;
  }

  inputs(indices: ArrayLike<number>, out: Float32Array): void {
    const width = this.store.width;
    checkSplitRequest(this.size, indices, out, width);
    for (let j = 0; j < indices.length; j++) out.set(this.store.input(this.rows[indices[j]!]!), j * width);
  }

  targets(target: string, indices: ArrayLike<number>, out: Float32Array): void {
    const values = this.targetValues.get(target);
    if (values === undefined) throw new DatasetError(`${this.where}: "${target}" is not a target of this dataset (targets: ${[...this.targetValues.keys()].join(', ')})`);
    checkSplitRequest(this.size, indices, out, 1);
    for (let j = 0; j < indices.length; j++) out[j] = values[this.rows[indices[j]!]!]!;
  }
}

/** One target's label cell for each image, and where image i's cell came from (for errors). */
interface Column {
  cells: string[];
  source: (i: number) => string;
}

function folderLabels(images: readonly ImageFile[], base: string, required: boolean): Map<string, Column> {
  const columns: Map<string, Column> = new Map();
  const cells: string[] = [];
  for (const { file, relative } of images) {
    const slash = relative.indexOf('/');
    if (slash < 0) {
      if (required) throw new DatasetError(`${file}: labels: from-folders needs every image in a sub-folder of ${base} (its class), but this one is not`);
      return columns;
    }
    cells.push(relative.slice(0, slash));
  }
  columns.set(FOLDER_TARGET, { cells, source: (i) => `${images[i]!.file} (folder)` });
  return columns;
}

function tableLabels(table: string, images: readonly ImageFile[], base: string): Map<string, Column> {
  let text: string;
  try {
    text = readFileSync(table, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new DatasetError(`${table}: cannot read the labels table: ${reason}`, { cause: err });
  }
  const lines: number[] = [];
  let records: string[][];
  try {
    records = parse(text, { bom: true, trim: true, skip_empty_lines: true, on_record: (r: string[], ctx) => (lines.push(ctx.lines), r) });
  } catch (err) {
    throw new DatasetError(`${table}: ${(err as Error).message}`, { cause: err });
  }
  const [header, ...rows] = records;
  if (header === undefined || rows.length === 0) throw new DatasetError(`${table}: the labels table has no ${header === undefined ? 'header' : 'rows'}`);
  const fileColumn = header.indexOf('file');
  if (fileColumn < 0) throw new DatasetError(`${table}: the labels table needs a "file" column (path of each image, relative to the table); columns: ${header.join(', ')}`);
  const dir = path.dirname(table);
  const index = new Map(images.map((img, i) => [img.file, i] as const));
  const rowOf = new Int32Array(images.length).fill(-1);
  rows.forEach((row, r) => {
    const cell = row[fileColumn] ?? '';
    const file = path.resolve(dir, cell);
    const i = index.get(file);
    if (i === undefined) {
      // A row for an image outside `path` is allowed (one table may serve several folders); a missing file is not.
      if (cell === '' || !existsSync(file)) throw new DatasetError(`${table}: line ${lines[r + 1]}, column "file": no such image ${cell === '' ? '(empty cell)' : file}`);
      return;
    }
    if (rowOf[i]! >= 0) throw new DatasetError(`${table}: lines ${lines[rowOf[i]! + 1]} and ${lines[r + 1]} both label ${file}`);
    rowOf[i] = r;
  });
  const missing = rowOf.indexOf(-1);
  if (missing >= 0) {
    const count = rowOf.filter((r) => r < 0).length;
    throw new DatasetError(`${images[missing]!.file}: image not in the labels table ${table}${count > 1 ? ` (nor are ${count - 1} more images of ${base})` : ''}`);
  }
  const columns: Map<string, Column> = new Map();
  header.forEach((name, c) => {
    if (c === fileColumn) return;
    const cells = Array.from(rowOf, (r) => rows[r]![c] ?? '');
    columns.set(name, { cells, source: (i) => `${table}: line ${lines[rowOf[i]! + 1]}, column "${name}"` });
  });
  return columns;
}

function targetValues(name: string, request: TaskTargetRequest, column: Column): { info: TargetInfo; values: Float32Array } {
  const { cells, source } = column;
  if (request.kind === 'regression') {
    const values = new Float32Array(cells.length);
    cells.forEach((cell, i) => {
      const v = parseDecimal(cell);
      if (v === undefined) throw new DatasetError(`${source(i)}: expected a number for the regression target "${name}", got ${cell === '' ? 'an empty cell' : JSON.stringify(cell)}`);
      values[i] = v;
    });
    return { info: { kind: 'regression' }, values };
  }
  const empty = cells.indexOf('');
  if (empty >= 0) throw new DatasetError(`${source(empty)}: expected a class label for target "${name}", got an empty cell`);
  const { classes, index } = classIndex(cells);
  return { info: { kind: 'classification', classes }, values: Float32Array.from(cells, (c) => index.get(c)!) };
}

/** Loads the images of `spec.path` (relative to `baseDir`) and the requested targets. */
export function loadImages(spec: ImagesSpec, baseDir: string, requests: readonly TaskTargetRequest[], options: ImagesOptions = {}): Dataset {
  const { base, images } = listImages(spec.path, baseDir);
  const fromFolders = spec.labels === 'from-folders';
  const table = fromFolders ? undefined : resolveDataPath(spec.labels, baseDir);
  const columns = folderLabels(images, base, fromFolders);
  // Table columns win over the folder target of the same name.
  if (table !== undefined) for (const [name, column] of tableLabels(table, images, base)) columns.set(name, column);

  const targets: Record<string, TargetInfo> = {};
  const values = new Map<string, Float32Array>();
  for (const request of requests) {
    const column = columns.get(request.name);
    if (column === undefined) {
      const offered = [...columns.keys()];
      throw new DatasetError(`${table ?? base}: no target "${request.name}" for the images of ${base} (targets: ${offered.join(', ') || 'none: put the images in sub-folders or give a labels table'})`);
    }
    const t = targetValues(request.name, request, column);
    targets[request.name] = t.info;
    values.set(request.name, t.values);
  }

  const n = images.length;
  const testSize = Math.round(n * spec.testFraction);
  const trainSize = n - testSize;
  if (testSize < 1 || trainSize < 1) {
    throw new DatasetError(`${base}: ${n} images with testFraction ${spec.testFraction} give ${trainSize} train / ${testSize} test images (need at least 1 of each)`);
  }
  const store = new ImageStore(images, { size: spec.size, channels: spec.channels, resize: spec.resize }, options.cacheBytes ?? DEFAULT_IMAGE_CACHE_BYTES);
  // Decode every image now: a bad file fails the load (and `mtl validate`), not a training step.
  const [h, w] = spec.size;
  const digest = new InputsDigest('images', h * w * spec.channels);
  for (let i = 0; i < n; i++) digest.add(store.input(i));
  // Keyed by the seed and the image count only: the split does not depend on where the folder is.
  const order = Rng.fromKey(spec.seed, 'images-split', n).permutation(n);
  return {
    inputShape: [h, w, spec.channels],
    targets,
    train: new ImageSplit(store, values, order.subarray(0, trainSize), base),
    test: new ImageSplit(store, values, order.subarray(trainSize), base),
    identity: digest.finish(order.subarray(0, trainSize)),
    description:
      `images ${base}: ${n} images as ${h}×${w}×${spec.channels} (${spec.resize} resize of other sizes), ` +
      `labels ${table ?? 'from folders'}, ${trainSize} train / ${testSize} test, seed ${spec.seed}`,
  };
}
