// Remote data made local before datasets load: `materializeData` fetches every nats:// and
// http(s):// file a job names into the data cache (verified against its digest, see cache.ts)
// and records where each reference now lives; `resolveDataPath` is the one function dataset
// loaders call to turn a data path of the job into a file to open. The coordinator and every
// worker run it, each into its own or a shared cache, and read the same verified bytes.
//
// The job's data specs are left as they are: split and batch keys see the reference as written,
// never a cache path, which differs from machine to machine.
import { mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import envPaths from 'env-paths';
import { ControlPlane } from '../control/plane.js';
import { DatasetError, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../logging.js';
import { redactUrl, type NatsSecurity } from '../security.js';
import { BlobWriter, DataCache } from './cache.js';
import { fetchHttp } from './http-fetch.js';
import { datasetDigest, type DatasetManifest, type ManifestFile } from './manifest.js';
import { NatsDataStore } from './nats-data.js';
import { DEFAULT_RETRY, withRetry, type RetryPolicy } from './retry.js';
import { forgetResolved, recordResolved } from './resolve.js';
import { parseDataRef, remoteDataRefs, type DataRef } from './urls.js';

export { isRemoteData } from './urls.js';
export { resolveDataPath } from './resolve.js';

/** Default bound of the data cache: 10 GiB. */
export const DEFAULT_CACHE_MAX_BYTES = 10 * 1024 ** 3;

/** The default cache directory: the OS cache directory ($XDG_CACHE_HOME or ~/.cache on Linux) + mtl-orchestrator/data. */
export function defaultCacheDir(): string {
  return path.join(envPaths('mtl-orchestrator', { suffix: '' }).cache, 'data');
}

/** Where nats:// data comes from: a connection the caller holds, or a server to connect to for the fetch. */
export type NatsDataSource = { plane: ControlPlane } | { url: string; security?: NatsSecurity };

export interface MaterializeOptions {
  /** Cache directory (default: defaultCacheDir()). */
  cacheDir?: string;
  /** Bound on the cache's size (default 10 GiB); files in use are kept even beyond it. */
  cacheMaxBytes?: number;
  /** Needed when the job names nats:// data. */
  nats?: NatsDataSource;
  logger?: Logger;
  retry?: Partial<RetryPolicy>;
  /** Progress of each download (tests use it to act mid-transfer). */
  onBytes?: (ref: string, received: number, total: number | undefined) => void | Promise<void>;
}

export interface MaterializedData {
  /** Each remote reference of the job → the local path loaders open (a file, or a glob under a directory). */
  paths: ReadonlyMap<string, string>;
  files: number;
  /** Bytes that came over the network (the rest was in the cache). */
  fetchedBytes: number;
  /** What the nats:// datasets were when read: name → digest. */
  datasets: ReadonlyMap<string, string>;
  /** Drops this process's links to the files (they become evictable) and forgets the paths. */
  release(): void;
}

/** Materializations so far in this process: each gets its own view directory under the pin root. */
let sequence = 0;

function selectFiles(manifest: DatasetManifest, ref: string, inside: string, glob: boolean): { files: ManifestFile[]; local: (view: string) => string } {
  const all = manifest.files;
  const listing = () => all.slice(0, 10).map((f) => f.path).join(', ') + (all.length > 10 ? `, ... (${all.length} files)` : '');
  if (glob) return { files: all, local: (view) => path.join(view, inside) };
  if (inside === '') {
    if (all.length === 1) return { files: all, local: (view) => path.join(view, all[0]!.path) };
    return { files: all, local: (view) => view };
  }
  const exact = all.find((f) => f.path === inside);
  if (exact !== undefined) return { files: [exact], local: (view) => path.join(view, exact.path) };
  const dir = inside.endsWith('/') ? inside : `${inside}/`;
  const under = all.filter((f) => f.path.startsWith(dir));
  if (under.length > 0) return { files: under, local: (view) => path.join(view, inside) };
  throw new DatasetError(`${ref}: dataset ${manifest.name} has no file ${inside} (files: ${listing()})`);
}

interface Context {
  cache: DataCache;
  /** This materialization's view directory (pins). */
  root: string;
  retry: RetryPolicy;
  log: Logger;
  onBytes: MaterializeOptions['onBytes'];
  fetchedBytes: number;
}

/** Pins a file of a nats:// dataset, fetching it first when the cache lacks it (or holds it damaged). */
async function materializeNatsFile(ctx: Context, store: NatsDataStore, dataset: string, file: ManifestFile, pinPath: string, ref: string): Promise<void> {
  const what = `nats://${dataset}/${file.path}`;
  if (await ctx.cache.pin(file.sha256, file.size, pinPath, what)) return;
  await withRetry(what, ctx.retry, ctx.log, async () => {
    const writer = await BlobWriter.create(ctx.cache);
    try {
      await store.download(dataset, file, writer, ctx.retry.idleMs, what, (received, total) => ctx.onBytes?.(ref, received, total));
    } catch (err) {
      ctx.fetchedBytes += writer.bytes;
      await writer.discard();
      throw err;
    }
    ctx.fetchedBytes += writer.bytes;
    if (writer.bytes < file.size) {
      // The object's stream ended early (nats-server restarted mid-read): a transport failure,
      // retried, not a content mismatch.
      await writer.discard();
      throw new Error(`${what}: the transfer ended after ${writer.bytes} of ${file.size} bytes`);
    }
    await writer.commit(what, { sha256: file.sha256, size: file.size, source: `the manifest of dataset ${dataset}` });
  });
  if (!(await ctx.cache.pin(file.sha256, file.size, pinPath, what))) throw new DatasetError(`${what}: the fetched file vanished from the cache ${ctx.cache.dir} before it could be used`);
}

async function materializeHttp(ctx: Context, url: string, expectedSha256: string | undefined, ref: string): Promise<string> {
  const name = path.posix.basename(new URL(url).pathname) || 'index';
  const pinPath = path.join(ctx.root, 'http', ctx.cache.httpKey(url), name);
  // With a digest in the URL, a cached copy with that digest is the file: no request at all.
  if (expectedSha256 !== undefined) {
    const record = ctx.cache.readHttpRecord(url);
    if (record?.sha256 === expectedSha256 && (await ctx.cache.pin(record.sha256, record.size, pinPath, ref))) return pinPath;
  }
  const onBytes = (received: number, total: number | undefined) => ctx.onBytes?.(ref, received, total);
  let record = ctx.cache.readHttpRecord(url);
  // The cached copy must be intact before the server is asked whether it is still current.
  if (record !== undefined && !(await ctx.cache.pin(record.sha256, record.size, pinPath, ref))) record = undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    const got = await fetchHttp(url, ctx.cache, { ...(record ? { cached: record } : {}), ...(expectedSha256 ? { expectedSha256 } : {}), retry: ctx.retry, log: ctx.log, onBytes });
    ctx.fetchedBytes += got.fetchedBytes;
    if (expectedSha256 !== undefined && got.sha256 !== expectedSha256) {
      throw new DatasetError(`${ref}: the cached body (SHA-256 ${got.sha256}) does not match the digest in the URL; not used`);
    }
    if (await ctx.cache.pin(got.sha256, got.size, pinPath, ref)) return pinPath;
    record = undefined; // evicted or damaged between the answer and the link: fetch the whole body
  }
  throw new DatasetError(`${ref}: the fetched file vanished from the cache ${ctx.cache.dir} before it could be used`);
}

/**
 * Fetches the remote data of `job` (every nats:// and http(s):// string in its tasks' data specs)
 * into the cache, verifies it, and makes resolveDataPath answer for it in this process. A job
 * without remote data costs nothing (no cache directory, no connection).
 */
export async function materializeData(job: { tasks: Readonly<Record<string, { data: unknown }>> }, options: MaterializeOptions = {}): Promise<MaterializedData> {
  const refs = remoteDataRefs(job.tasks).map(parseDataRef);
  const datasets = new Map<string, string>();
  if (refs.length === 0) return { paths: new Map(), files: 0, fetchedBytes: 0, datasets, release: () => undefined };
  const log = options.logger ?? silentLogger;
  const dir = options.cacheDir ?? defaultCacheDir();
  mkdirSync(dir, { recursive: true });
  const cache = new DataCache({ dir, maxBytes: options.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES, logger: log });
  const root = path.join(cache.pinRoot(), String(++sequence));
  const ctx: Context = { cache, root, retry: { ...DEFAULT_RETRY, ...options.retry }, log, onBytes: options.onBytes, fetchedBytes: 0 };
  const paths = new Map<string, string>();
  let files = 0;
  try {
    files = await fetchAll(ctx, refs, options, paths, datasets);
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  try {
    const evicted = ctx.cache.evict();
    if (evicted.removedFiles > 0) log.info('data cache trimmed', { removedFiles: evicted.removedFiles, removedBytes: evicted.removedBytes, bytes: evicted.bytes });
  } catch (err) {
    log.warn('cannot trim the data cache', { dir: ctx.cache.dir, error: errorMessage(err) });
  }
  recordResolved(paths);
  log.info('remote data ready', { files, fetchedBytes: ctx.fetchedBytes, cache: ctx.cache.dir });
  return {
    paths,
    files,
    fetchedBytes: ctx.fetchedBytes,
    datasets,
    release: () => {
      forgetResolved(paths);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Fetches and pins every reference; returns the number of files. */
async function fetchAll(ctx: Context, refs: DataRef[], options: MaterializeOptions, paths: Map<string, string>, datasets: Map<string, string>): Promise<number> {
  const { log } = ctx;
  let files = 0;

  const nats = refs.filter((r) => r.kind === 'nats');
  if (nats.length > 0) {
    if (options.nats === undefined) {
      throw new DatasetError(`${nats[0]!.ref}: the job reads data from the NATS object store, but no NATS server was given (--nats, --data-nats or MTL_DATA_NATS)`);
    }
    const owned = 'plane' in options.nats ? undefined : await ControlPlane.connect({ url: options.nats.url, name: `mtl data ${os.hostname()}`, logger: log.child('nats'), ...(options.nats.security ? { security: options.nats.security } : {}) });
    const plane = 'plane' in options.nats ? options.nats.plane : owned!;
    try {
      const store = await withRetry(`NATS object store at ${redactUrl(plane.url)}`, ctx.retry, log, () => NatsDataStore.open(plane, false));
      const manifests = new Map<string, DatasetManifest>();
      for (const ref of nats) {
        let manifest = manifests.get(ref.dataset);
        if (manifest === undefined) {
          manifest = await withRetry(`nats://${ref.dataset}`, ctx.retry, log, () => store.manifest(ref.dataset));
          if (manifest === undefined) throw new DatasetError(`${ref.ref}: NATS at ${redactUrl(plane.url)} has no dataset ${ref.dataset} (store it with mtl data put DIR --name ${ref.dataset})`);
          manifests.set(ref.dataset, manifest);
          datasets.set(ref.dataset, datasetDigest(manifest.files));
        }
        const digest = datasets.get(ref.dataset)!;
        const view = path.join(ctx.root, 'nats', `${ref.dataset}@${digest.slice(0, 16)}`);
        const { files: needed, local } = selectFiles(manifest, ref.ref, ref.inside, ref.glob);
        for (const f of needed) await materializeNatsFile(ctx, store, ref.dataset, f, path.join(view, ...f.path.split('/')), ref.ref);
        files += needed.length;
        paths.set(ref.ref, local(view));
      }
    } finally {
      await owned?.close();
    }
  }
  for (const ref of refs) {
    if (ref.kind !== 'http') continue;
    paths.set(ref.ref, await materializeHttp(ctx, ref.url, ref.sha256, ref.ref));
    files++;
  }
  return files;
}
