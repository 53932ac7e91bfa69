// A run's results in the NATS object store: when a run with --nats ends, its coordinator stores
// the run directory (summary, metrics, evaluations, events, job, the exported model) in the
// bucket `mtl-results` under the run's id, laid out as a dataset (manifest.ts: each file's size
// and SHA-256), so that `mtl fetch RUN --nats URL` brings it to any machine that reaches NATS —
// no access to the coordinator's disk or volume needed. Files are fetched whole, checked
// against the manifest, and renamed into place; a fetch never leaves a partial file behind.
import { mkdirSync, renameSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { ControlPlane } from '../control/plane.js';
import { DatasetError, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../logging.js';
import { HashedFileWriter } from './cache.js';
import { NatsDataStore, type PutResult } from './nats-data.js';
import { DEFAULT_RETRY, withRetry, type RetryPolicy } from './retry.js';

export const RESULTS_BUCKET = 'mtl-results';

/** Stores (or replaces) the files of run directory `dir` as the results of run `runId`. */
export async function storeRunResults(plane: ControlPlane, runId: string, dir: string): Promise<PutResult> {
  const store = await NatsDataStore.open(plane, true, RESULTS_BUCKET);
  return store.put(dir, runId, { replace: true });
}

/**
 * storeRunResults, logged: a run's outcome does not depend on it, so a failure (NATS down at
 * the end of the run) is a warning, and the run directory still holds everything.
 */
export async function publishRunResults(plane: ControlPlane, runId: string, dir: string, log: Logger): Promise<boolean> {
  try {
    const r = await storeRunResults(plane, runId, dir);
    log.info('results stored in NATS', { run: runId, files: r.files.length, bytes: r.bytes, fetch: `mtl fetch ${runId} --nats URL` });
    return true;
  } catch (err) {
    log.warn('cannot store the results in NATS; the run directory holds them', { run: runId, dir, error: errorMessage(err) });
    return false;
  }
}

/** A file being fetched: written beside its destination, hashed as it arrives. */
class FetchedFile extends HashedFileWriter {
  static async create(dest: string): Promise<FetchedFile> {
    mkdirSync(path.dirname(dest), { recursive: true });
    const tmp = `${dest}.part-${process.pid}`;
    return new FetchedFile(tmp, await open(tmp, 'w'));
  }

  /** Checks size and digest, then renames into place; a mismatch removes the file and names it. */
  async finish(dest: string, what: string, expected: { sha256: string; size: number }): Promise<void> {
    const { sha256, size } = await this.close();
    if (sha256 !== expected.sha256 || size !== expected.size) {
      this.removeTemporary();
      throw new DatasetError(`${what}: received ${size} bytes with SHA-256 ${sha256}, the manifest says ${expected.size} bytes, SHA-256 ${expected.sha256}; not kept`);
    }
    renameSync(this.tmp, dest);
  }
}

export interface FetchOptions {
  logger?: Logger;
  retry?: Partial<RetryPolicy>;
}

/**
 * Fetches the stored results of run `runId` into `outDir` (created; the files keep their paths
 * in the run directory). A DatasetError when NATS has no results of that run.
 */
export async function fetchRunResults(plane: ControlPlane, runId: string, outDir: string, options: FetchOptions = {}): Promise<{ files: number; bytes: number }> {
  const retry = { ...DEFAULT_RETRY, ...options.retry };
  const log = options.logger ?? silentLogger;
  const store = await NatsDataStore.open(plane, false, RESULTS_BUCKET);
  const manifest = await store.manifest(runId);
  if (manifest === undefined) throw new DatasetError(`NATS holds no results of run ${runId} (they are stored when a run with --nats ends; mtl status --nats URL lists the runs)`);
  const root = path.resolve(outDir);
  let bytes = 0;
  for (const file of manifest.files) {
    const dest = path.resolve(root, ...file.path.split('/'));
    if (!dest.startsWith(root + path.sep)) throw new DatasetError(`results of run ${runId}: the manifest names ${file.path}, outside the run directory`);
    const what = `results of run ${runId}: ${file.path}`;
    await withRetry(what, retry, log, async () => {
      const sink = await FetchedFile.create(dest);
      try {
        await store.download(runId, file, sink, retry.idleMs, what);
        await sink.finish(dest, what, file);
      } catch (err) {
        await sink.discard();
        throw err;
      }
    });
    bytes += file.size;
  }
  return { files: manifest.files.length, bytes };
}
