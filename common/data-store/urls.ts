// Data references that are not local paths: `nats://NAME/path/inside` (a dataset stored with
// `mtl data put`) and `http(s)://...` (any web server). Parsing them, and finding every one a
// job's data specs name, whatever the dataset kind and whichever option holds the path.
import { DatasetError } from '../errors.js';

/** Dataset names are object-name prefixes: letters, digits, `-` and `_` (no dots, no slashes). */
export const DATASET_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** Characters that make a path inside a dataset a glob pattern (matched by the loader, after materialization). */
const GLOB_CHARS = /[*?[\]{}]/;

export type DataRef =
  | {
      kind: 'nats';
      /** The reference as written in the job. */
      ref: string;
      dataset: string;
      /** The path inside the dataset, without a leading slash ('' for the dataset itself). */
      inside: string;
      /** The path has glob characters: the whole dataset is fetched and the loader matches the pattern. */
      glob: boolean;
    }
  | {
      kind: 'http';
      ref: string;
      /** The URL fetched (without the `#sha256=` fragment). */
      url: string;
      /** SHA-256 (hex) the body must have, from a `#sha256=HEX` fragment. */
      sha256?: string;
    };

/** Whether a data path names remote data (nats://, http://, https://) rather than a local file. */
export function isRemoteData(pathOrUrl: string): boolean {
  return /^(nats|https?):\/\//i.test(pathOrUrl);
}

/** Parses a remote data reference; throws DatasetError naming it when it is malformed. */
export function parseDataRef(ref: string): DataRef {
  const scheme = /^([a-z]+):\/\//i.exec(ref)?.[1]?.toLowerCase();
  if (scheme === 'nats') {
    const rest = ref.slice('nats://'.length);
    const slash = rest.indexOf('/');
    const dataset = slash < 0 ? rest : rest.slice(0, slash);
    const inside = slash < 0 ? '' : rest.slice(slash + 1).replace(/^\/+/, '');
    if (!DATASET_NAME.test(dataset)) {
      throw new DatasetError(`${ref}: "${dataset}" is not a dataset name (expected nats://NAME/path with NAME of letters, digits, - and _, as given to mtl data put)`);
    }
    if (inside.split('/').some((part) => part === '..' || part === '.')) {
      throw new DatasetError(`${ref}: the path inside a dataset may not contain "." or ".." segments`);
    }
    return { kind: 'nats', ref, dataset, inside, glob: GLOB_CHARS.test(inside) };
  }
  if (scheme === 'http' || scheme === 'https') {
    let parsed: URL;
    try {
      parsed = new URL(ref);
    } catch {
      throw new DatasetError(`${ref}: not a valid URL`);
    }
    let sha256: string | undefined;
    if (parsed.hash !== '') {
      const m = /^#sha256=([0-9a-fA-F]{64})$/.exec(parsed.hash);
      if (!m) throw new DatasetError(`${ref}: the only fragment a data URL may carry is #sha256=<64 hex digits> (the digest its body must have)`);
      sha256 = m[1]!.toLowerCase();
      parsed.hash = '';
    }
    return { kind: 'http', ref, url: parsed.href, ...(sha256 !== undefined ? { sha256 } : {}) };
  }
  throw new DatasetError(`${ref}: unsupported data URL (supported: nats://NAME/path, http://..., https://...)`);
}

/** Every remote reference in a value (a task's data spec): strings anywhere in it, in document order. */
function collect(value: unknown, out: string[]): void {
  if (typeof value === 'string') {
    if (isRemoteData(value)) out.push(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collect(v, out);
  } else if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value as Record<string, unknown>)) collect(v, out);
  }
}

/**
 * The distinct remote data references of a job's tasks, in task order. Every string option of
 * a data spec is looked at, so a dataset kind with several files (inputs and targets, a label
 * table) needs nothing here; a target or column name never starts with a URL scheme.
 */
export function remoteDataRefs(tasks: Readonly<Record<string, { data: unknown }>>): string[] {
  const found: string[] = [];
  for (const { data } of Object.values(tasks)) collect(data, found);
  return [...new Set(found)];
}
