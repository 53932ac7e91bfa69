// Which files a table dataset's `path` names: one file, or a glob (`data/part-*.parquet`,
// `logs/**/*.jsonl`, tinyglobby's syntax). A glob's files are read in the order of their paths
// relative to the glob's static base (the directories before its first pattern segment),
// compared by UTF-16 code unit, so the same tree mounted elsewhere, or named by another
// relative path, gives the same files in the same order: never the file system's order.
import { statSync } from 'node:fs';
import path from 'node:path';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { DatasetError } from '../errors.js';
import { resolveDataPath } from '../data-store/resolve.js';
import { isRemoteData } from '../data-store/urls.js';

export interface TableFiles {
  /** The resolved file, or the glob with its static base resolved: what messages name. */
  readonly shown: string;
  readonly glob: boolean;
  /** Absolute paths, in reading order. */
  readonly files: readonly string[];
}

function isDirectory(file: string): boolean {
  try {
    return statSync(file).isDirectory();
  } catch {
    return false;
  }
}

/** Code-unit order, the same on every machine and locale. */
const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Resolves `pattern` against `baseDir` (the job file's directory). A path that is not a glob
 * (or that names an existing file although it looks like one) is one file, which the reader
 * then opens (and reports when absent). A glob that matches nothing is a DatasetError naming
 * the pattern and the directory searched.
 */
export function resolveTableFiles(named: string, baseDir: string, extension: string): TableFiles {
  // A nats:// or http(s):// reference: its local copy (an absolute path or pattern).
  const pattern = isRemoteData(named) ? resolveDataPath(named, baseDir) : named;
  const literal = path.resolve(baseDir, pattern);
  if (isDirectory(literal)) {
    throw new DatasetError(`${literal}: is a directory; name its files with a glob, e.g. ${path.posix.join(pattern, `*.${extension}`)}`);
  }
  let exists = false;
  try {
    exists = statSync(literal).isFile();
  } catch {
    exists = false;
  }
  if (exists || !isDynamicPattern(pattern)) return { shown: literal, glob: false, files: [literal] };

  const segments = pattern.split('/');
  const first = segments.findIndex((s) => isDynamicPattern(s));
  const base = path.resolve(baseDir, segments.slice(0, first).join('/') || '.');
  const rest = segments.slice(first).join('/');
  const shown = path.join(base, rest);
  const matches = isDirectory(base) ? globSync(rest, { cwd: base, onlyFiles: true, expandDirectories: false, followSymbolicLinks: true }) : [];
  if (matches.length === 0) {
    throw new DatasetError(`no file matches the glob "${pattern}" (searched ${base}${isDirectory(base) ? '' : ', which is not a directory'})`);
  }
  return { shown, glob: true, files: matches.sort(byCodeUnit).map((m) => path.join(base, m)) };
}
