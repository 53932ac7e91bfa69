// Datasets in the JetStream object store (bucket `mtl-data`, layout in manifest.ts): storing a
// file or a directory (`mtl data put`), listing and removing datasets, and reading one file of a
// dataset into the local cache, through the control plane's connection (which reconnects by
// itself; the callers retry what failed in between).
import { createReadStream, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { ControlPlane } from '../control/plane.js';
import { ControlPlaneError, DatasetError, errorMessage } from '../errors.js';
import { redactUrl } from '../security.js';
import { fileSha256 } from './cache.js';
import { DATA_BUCKET, datasetDigest, decodeManifest, encodeManifest, fileObject, manifestObject, MANIFEST_SUFFIX, type DatasetManifest, type ManifestFile } from './manifest.js';
import { IdleTimer, StalledTransferError } from './retry.js';
import { DATASET_NAME } from './urls.js';

/** Hex SHA-256 of an object store digest (`SHA-256=<base64url>`), or undefined for another kind. */
function objectSha256(digest: string): string | undefined {
  if (!digest.startsWith('SHA-256=')) return undefined;
  return Buffer.from(digest.slice('SHA-256='.length), 'base64url').toString('hex');
}

/** The files of a directory (or the one file), with their paths relative to it, in code-unit order. */
export function localFiles(source: string): Array<{ file: string; path: string }> {
  let stat;
  try {
    stat = statSync(source);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : errorMessage(err);
    throw new DatasetError(`${source}: ${reason}`, { cause: err });
  }
  if (stat.isFile()) return [{ file: path.resolve(source), path: path.basename(source) }];
  if (!stat.isDirectory()) throw new DatasetError(`${source}: not a file or a directory`);
  const out: Array<{ file: string; path: string }> = [];
  for (const entry of readdirSync(source, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    out.push({ file: path.resolve(file), path: path.relative(source, file).split(path.sep).join('/') });
  }
  if (out.length === 0) throw new DatasetError(`${source}: the directory holds no files`);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export interface PutResult {
  dataset: string;
  files: ManifestFile[];
  bytes: number;
  digest: string;
  /** Files whose bytes were sent (the others were already stored with the same digest). */
  uploaded: number;
  /** The dataset already held exactly this content: nothing was written. */
  unchanged: boolean;
}

export interface DatasetSummary {
  dataset: string;
  files: number;
  bytes: number;
  digest: string;
  createdAt: string;
}

/** Where a download's bytes go (a cache blob being written, a file being fetched). */
export interface ByteSink {
  /** Bytes written so far. */
  readonly bytes: number;
  write(chunk: Uint8Array): Promise<void>;
}

export class NatsDataStore {
  private constructor(
    private readonly store: ObjectStore,
    private readonly plane: ControlPlane,
    /** The object store: `mtl-data` for datasets, `mtl-results` for runs' results (run-results.ts). */
    readonly bucket: string,
  ) {}

  /** Opens the bucket; with `create`, creates it when missing. A missing bucket for a reader is a DatasetError. */
  static async open(plane: ControlPlane, create: boolean, bucket = DATA_BUCKET): Promise<NatsDataStore> {
    const objm = new Objm(plane.nc);
    try {
      return new NatsDataStore(create ? await objm.create(bucket) : await objm.open(bucket), plane, bucket);
    } catch (err) {
      if (!create && /not found/i.test(errorMessage(err))) {
        const what = bucket === DATA_BUCKET ? 'stores no datasets' : 'stores nothing here';
        const hint = bucket === DATA_BUCKET ? 'store one with mtl data put' : 'nothing was stored in it yet';
        throw new DatasetError(`NATS at ${redactUrl(plane.url)} ${what} (no object store ${bucket}): ${hint}`, { cause: err });
      }
      throw new ControlPlaneError(`cannot open the object store ${bucket}: ${errorMessage(err)}`, { cause: err });
    }
  }

  /** The dataset's manifest, or undefined when there is no such dataset. */
  async manifest(dataset: string): Promise<DatasetManifest | undefined> {
    const name = manifestObject(dataset);
    const bytes = await this.store.getBlob(name);
    return bytes === null ? undefined : decodeManifest(bytes, dataset, `nats object ${this.bucket}/${name}`);
  }

  /**
   * Stores `source` (a file or a directory) as dataset `dataset`. Files already stored with the
   * same digest are not sent again, and a dataset with exactly this content is left alone. A
   * dataset with other content is replaced only with `replace` (jobs may be reading it).
   */
  async put(source: string, dataset: string, options: { replace?: boolean; chunkBytes?: number; onFile?: (f: ManifestFile, sent: boolean) => void } = {}): Promise<PutResult> {
    if (!DATASET_NAME.test(dataset)) throw new DatasetError(`"${dataset}" is not a dataset name: letters, digits, - and _ (at most 128), starting with a letter or digit`);
    const local = localFiles(source);
    const files: ManifestFile[] = [];
    for (const f of local) files.push({ path: f.path, size: statSync(f.file).size, sha256: await fileSha256(f.file) });
    const digest = datasetDigest(files);
    const bytes = files.reduce((n, f) => n + f.size, 0);
    const old = await this.manifest(dataset);
    if (old !== undefined && datasetDigest(old.files) === digest) return { dataset, files, bytes, digest, uploaded: 0, unchanged: true };
    if (old !== undefined && options.replace !== true) {
      throw new DatasetError(`dataset ${dataset} already exists with other content (digest ${datasetDigest(old.files)}); give --replace to replace it (runs reading it would fail their digest check)`);
    }
    let uploaded = 0;
    for (const [i, f] of files.entries()) {
      const name = fileObject(dataset, f.path);
      const info = await this.store.info(name);
      const sent = !(info !== null && !info.deleted && info.size === f.size && objectSha256(info.digest) === f.sha256);
      if (sent) {
        const stream = Readable.toWeb(createReadStream(local[i]!.file, { highWaterMark: 1 << 20 })) as ReadableStream<Uint8Array>;
        await this.store.put({ name, description: `file ${f.path} of mtl dataset ${dataset}`, ...(options.chunkBytes ? { options: { max_chunk_size: options.chunkBytes } } : {}) }, stream);
        uploaded++;
      }
      options.onFile?.(f, sent);
    }
    // The manifest last: until it is written, readers see the old dataset (or none).
    const manifest: DatasetManifest = { kind: 'mtl-dataset', version: 1, name: dataset, files, createdAt: new Date().toISOString() };
    await this.store.putBlob({ name: manifestObject(dataset), description: `manifest of mtl dataset ${dataset}` }, encodeManifest(manifest));
    if (old !== undefined) {
      const kept = new Set(files.map((f) => f.path));
      for (const f of old.files) if (!kept.has(f.path)) await this.store.delete(fileObject(dataset, f.path)).catch(() => undefined);
    }
    return { dataset, files, bytes, digest, uploaded, unchanged: false };
  }

  /** Every dataset, by name. */
  async list(): Promise<DatasetSummary[]> {
    const out: DatasetSummary[] = [];
    for (const info of await this.store.list()) {
      if (info.deleted || !info.name.endsWith(MANIFEST_SUFFIX) || info.name.includes('/')) continue;
      const dataset = info.name.slice(0, -MANIFEST_SUFFIX.length);
      const m = await this.manifest(dataset);
      if (m === undefined) continue;
      out.push({ dataset, files: m.files.length, bytes: m.files.reduce((n, f) => n + f.size, 0), digest: datasetDigest(m.files), createdAt: m.createdAt });
    }
    return out.sort((a, b) => (a.dataset < b.dataset ? -1 : a.dataset > b.dataset ? 1 : 0));
  }

  /** Removes a dataset (its manifest first, so that no reader sees half of it). False when there was none. */
  async remove(dataset: string): Promise<boolean> {
    const m = await this.manifest(dataset);
    const prefix = `${dataset}/`;
    const strays = (await this.store.list()).filter((i) => !i.deleted && i.name.startsWith(prefix)).map((i) => i.name);
    if (m === undefined && strays.length === 0) return false;
    if (m !== undefined) await this.store.delete(manifestObject(dataset));
    for (const name of strays) await this.store.delete(name);
    return true;
  }

  /**
   * Streams the object of `file` into `sink` (from its start), calling `onBytes` as chunks
   * arrive. Gives up with a StalledTransferError when nothing comes for `idleMs`, and at once
   * when the connection comes back after a loss (the object's consumer does not survive a
   * server restart; the caller starts the file again).
   */
  async download(dataset: string, file: ManifestFile, sink: ByteSink, idleMs: number, what: string, onBytes?: (received: number, total: number) => void | Promise<void>): Promise<void> {
    const name = fileObject(dataset, file.path);
    const result = await this.store.get(name);
    if (result === null) throw new DatasetError(`${what}: object ${this.bucket}/${name} is missing from the store although the manifest of dataset ${dataset} lists it (removed or being replaced?)`);
    const reader = result.data.getReader();
    const idle = new IdleTimer(idleMs, what, () => void reader.cancel().catch(() => undefined));
    const unsubscribe = this.plane.onConnectionChange((connected) => {
      if (connected) idle.fire(`${what}: the connection to NATS was lost during the transfer`);
    });
    try {
      for (;;) {
        const { done, value } = await Promise.race([reader.read(), idle.expired]);
        if (done) break;
        idle.touch();
        if (value.byteLength === 0) continue;
        await sink.write(value);
        await onBytes?.(sink.bytes, file.size);
        idle.touch();
      }
      const err = await Promise.race([result.error, idle.expired]);
      if (err) throw err;
    } catch (err) {
      if (err instanceof StalledTransferError) throw err;
      void reader.cancel().catch(() => undefined);
      throw err;
    } finally {
      unsubscribe();
      idle.stop();
    }
  }
}
