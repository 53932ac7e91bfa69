// The one function dataset loaders call to turn a data path of the job into a file to open:
// a local path resolves against the job file's directory; a nats:// or http(s):// reference is
// the verified local copy that materializeData (materialize.ts) made in this process. Kept apart
// from materialize.ts so that loaders do not load the NATS client.
import path from 'node:path';
import { DatasetError } from '../errors.js';
import { isRemoteData } from './urls.js';

/** The references this process has materialized (the latest for each). */
const resolved = new Map<string, string>();

/** Records where materialized references live (materializeData calls it). */
export function recordResolved(paths: ReadonlyMap<string, string>): void {
  for (const [ref, local] of paths) resolved.set(ref, local);
}

/** Forgets references whose copies were released (only where they still point there). */
export function forgetResolved(paths: ReadonlyMap<string, string>): void {
  for (const [ref, local] of paths) if (resolved.get(ref) === local) resolved.delete(ref);
}

/**
 * The file (or glob pattern) a loader opens for a data path of the job: a local path resolves
 * against `baseDir` (the job file's directory); a nats:// or http(s):// reference is where
 * materializeData put it in this process, and a DatasetError naming it when that never ran.
 */
export function resolveDataPath(pathOrUrl: string, baseDir: string): string {
  if (!isRemoteData(pathOrUrl)) return path.resolve(baseDir, pathOrUrl);
  const local = resolved.get(pathOrUrl);
  if (local === undefined) {
    throw new DatasetError(
      `${pathOrUrl}: remote data was not fetched in this process (materializeData must run before the datasets load; ` +
        'mtl does it when it knows the NATS server: --nats, --data-nats or MTL_DATA_NATS)',
    );
  }
  return local;
}
