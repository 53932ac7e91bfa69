// The local cache of remote data, shared by every process on a machine that names the same
// directory (a coordinator and its local workers):
//
//   blobs/<sha256>          verified file contents, by digest (one copy however many names)
//   http/<sha256(url)>.json what an http(s) URL served last: ETag, Last-Modified, size, digest
//   tmp/                    downloads in progress (never a cache entry until verified)
//   pins/<id>/...           one process's view of the data it uses: hard links to blobs, laid
//                           out as nats/<dataset>@<digest>/<path> and http/<url hash>/<name>
//
// Blobs are written to tmp/, fsynced, checked against their digest and renamed into place, so a
// partial download never becomes an entry and two processes fetching one file at once just
// rename the same bytes over each other. A blob some process uses has a hard link in its pin
// directory (link count > 1): eviction, oldest use first, only removes blobs nobody links, and a
// process that links a blob then verifies the link, so what it reads is what it checked. Pin
// directories are touched every minute while their process lives; one untouched for 10 minutes
// belongs to a process that is gone and is removed.
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, createReadStream, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, utimesSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import { DatasetError } from '../errors.js';
import type { Logger } from '../logging.js';

const PIN_TOUCH_MS = 60_000;
const PIN_STALE_MS = 10 * 60_000;
const TMP_STALE_MS = 60 * 60_000;

/** This process's pin directory in each cache (by its pins/ directory), removed when the process exits. */
const ownPinDirs = new Map<string, string>();

function processPinDir(pinsDir: string): string {
  let dir = ownPinDirs.get(pinsDir);
  if (dir === undefined) {
    dir = path.join(pinsDir, `${process.pid}-${randomBytes(4).toString('hex')}`);
    ownPinDirs.set(pinsDir, dir);
    if (ownPinDirs.size === 1) {
      process.once('exit', () => {
        for (const d of ownPinDirs.values()) rmSync(d, { recursive: true, force: true });
      });
      const touch = setInterval(() => {
        const now = new Date();
        for (const d of ownPinDirs.values()) {
          try {
            utimesSync(d, now, now);
          } catch {
            // Not created yet, or removed under us: the next pin creates it again.
          }
        }
      }, PIN_TOUCH_MS);
      touch.unref();
    }
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** SHA-256 (hex) of a file's bytes. */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Writes all of `chunk` at `position`: a short write is continued from where it stopped (as writeFileAtomic does). */
async function writeAllAt(handle: FileHandle, chunk: Uint8Array, position: number, file: string): Promise<void> {
  for (let offset = 0; offset < chunk.byteLength; ) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset, position + offset);
    if (bytesWritten <= 0) throw new Error(`cannot write ${file}: no progress`);
    offset += bytesWritten;
  }
}

/**
 * A download in progress: bytes go to a temporary file and through SHA-256 as they arrive. What
 * becomes of the file at the end (a cache blob, a fetched result) is the subclass's.
 */
export class HashedFileWriter {
  private hash = createHash('sha256');
  private written = 0;

  protected constructor(
    protected readonly tmp: string,
    private handle: FileHandle | undefined,
  ) {}

  get bytes(): number {
    return this.written;
  }

  async write(chunk: Uint8Array): Promise<void> {
    await writeAllAt(this.handle!, chunk, this.written, this.tmp);
    this.hash.update(chunk);
    this.written += chunk.byteLength;
  }

  /** Starts over (the server could not resume): nothing written so far is kept. */
  async reset(): Promise<void> {
    await this.handle!.truncate(0);
    this.hash = createHash('sha256');
    this.written = 0;
  }

  /** Ends the writing: fsync and close. The temporary file stays, for the caller to check and rename. */
  protected async close(): Promise<{ sha256: string; size: number }> {
    const handle = this.handle!;
    this.handle = undefined;
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    return { sha256: this.hash.digest('hex'), size: this.written };
  }

  /** Abandons the download and removes its temporary file. */
  async discard(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close().catch(() => undefined);
    this.removeTemporary();
  }

  protected removeTemporary(): void {
    rmSync(this.tmp, { force: true });
  }
}

/** A download into the cache: committed as the blob of its digest. */
export class BlobWriter extends HashedFileWriter {
  private constructor(
    private readonly cache: DataCache,
    tmp: string,
    handle: FileHandle,
  ) {
    super(tmp, handle);
  }

  static async create(cache: DataCache): Promise<BlobWriter> {
    const tmp = path.join(cache.tmpDir, `${process.pid}-${randomBytes(6).toString('hex')}`);
    return new BlobWriter(cache, tmp, await open(tmp, 'w'));
  }

  /**
   * Ends the download: fsync, and with `expected` a digest check (a mismatch is a DatasetError
   * naming `what`, and nothing is kept), then the rename into blobs/. Returns the digest.
   */
  async commit(what: string, expected?: { sha256: string; size?: number; source: string }): Promise<{ sha256: string; size: number }> {
    const { sha256, size } = await this.close();
    if (expected !== undefined && (sha256 !== expected.sha256 || (expected.size !== undefined && size !== expected.size))) {
      this.removeTemporary();
      throw new DatasetError(
        `${what}: the data received (${size} bytes, SHA-256 ${sha256}) does not match ${expected.source} (` +
          `${expected.size !== undefined ? `${expected.size} bytes, ` : ''}SHA-256 ${expected.sha256}); not used`,
      );
    }
    renameSync(this.tmp, this.cache.blobPath(sha256));
    return { sha256, size };
  }
}

/** What an http(s) URL answered when it was last fetched. */
export interface HttpCacheRecord {
  url: string;
  etag?: string;
  lastModified?: string;
  size: number;
  sha256: string;
  fetchedAt: string;
}

export interface DataCacheOptions {
  dir: string;
  /** Bound on the blobs' total size; blobs in use are never removed, so it may be exceeded while they are. */
  maxBytes: number;
  logger: Logger;
}

export interface EvictionResult {
  removedFiles: number;
  removedBytes: number;
  /** Total size of the blobs left. */
  bytes: number;
}

export class DataCache {
  readonly dir: string;
  readonly blobsDir: string;
  readonly tmpDir: string;
  readonly httpDir: string;
  readonly pinsDir: string;
  private linksWork = true;

  constructor(private readonly opts: DataCacheOptions) {
    this.dir = path.resolve(opts.dir);
    this.blobsDir = path.join(this.dir, 'blobs');
    this.tmpDir = path.join(this.dir, 'tmp');
    this.httpDir = path.join(this.dir, 'http');
    this.pinsDir = path.join(this.dir, 'pins');
    try {
      for (const d of [this.blobsDir, this.tmpDir, this.httpDir, this.pinsDir]) mkdirSync(d, { recursive: true });
    } catch (err) {
      throw new DatasetError(`cannot use the data cache directory ${this.dir} (--cache-dir): ${(err as Error).message}`, { cause: err });
    }
  }

  get maxBytes(): number {
    return this.opts.maxBytes;
  }

  blobPath(sha256: string): string {
    return path.join(this.blobsDir, sha256);
  }

  /** This process's pin directory, created on first use and removed when the process exits. */
  pinRoot(): string {
    return processPinDir(this.pinsDir);
  }

  /**
   * Links the blob `sha256` at `pinPath` and verifies the linked file (size and digest). True when
   * it is there and intact; false when it is absent; a corrupt blob is reported, removed (with its
   * link) and also answers false, so that the caller fetches it again.
   */
  async pin(sha256: string, size: number, pinPath: string, what: string): Promise<boolean> {
    const blob = this.blobPath(sha256);
    mkdirSync(path.dirname(pinPath), { recursive: true });
    rmSync(pinPath, { force: true });
    try {
      if (this.linksWork) linkSync(blob, pinPath);
      else copyFileSync(blob, pinPath);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return false;
      if (!this.linksWork || !['EPERM', 'EXDEV', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK'].includes(code ?? '')) throw err;
      // No hard links on this file system: copies instead (eviction then cannot tell blobs in use).
      this.linksWork = false;
      this.opts.logger.warn('the data cache cannot hard-link files here; copying them instead', { dir: this.dir, error: code ?? '' });
      return this.pin(sha256, size, pinPath, what);
    }
    const actual = statSync(pinPath).size === size ? await fileSha256(pinPath) : undefined;
    if (actual === sha256) {
      const now = new Date();
      utimesSync(pinPath, now, now);
      return true;
    }
    this.opts.logger.warn('a cached file does not match its digest; discarding it and fetching again', { data: what, file: blob, expected: sha256, got: actual ?? 'a different size' });
    rmSync(pinPath, { force: true });
    rmSync(blob, { force: true });
    return false;
  }

  private httpRecordPath(url: string): string {
    return path.join(this.httpDir, `${createHash('sha256').update(url).digest('hex')}.json`);
  }

  /** The pin directory name of an http(s) URL: the hash of the URL. */
  httpKey(url: string): string {
    return createHash('sha256').update(url).digest('hex').slice(0, 24);
  }

  readHttpRecord(url: string): HttpCacheRecord | undefined {
    try {
      const record = JSON.parse(readFileSync(this.httpRecordPath(url), 'utf8')) as HttpCacheRecord;
      return record.url === url && typeof record.sha256 === 'string' && typeof record.size === 'number' ? record : undefined;
    } catch {
      return undefined;
    }
  }

  writeHttpRecord(record: HttpCacheRecord): void {
    writeFileAtomic(this.httpRecordPath(record.url), JSON.stringify(record));
  }

  /**
   * Removes blobs nobody links, least recently used first, until the blobs fit in maxBytes; also
   * pin directories of processes that are gone and abandoned temporary files.
   */
  evict(): EvictionResult {
    const now = Date.now();
    for (const name of safeReaddir(this.pinsDir)) {
      const dir = path.join(this.pinsDir, name);
      if (dir === ownPinDirs.get(this.pinsDir)) continue;
      const mtime = safeStat(dir)?.mtimeMs;
      if (mtime !== undefined && now - mtime > PIN_STALE_MS) rmSync(dir, { recursive: true, force: true });
    }
    for (const name of safeReaddir(this.tmpDir)) {
      const file = path.join(this.tmpDir, name);
      const mtime = safeStat(file)?.mtimeMs;
      if (mtime !== undefined && now - mtime > TMP_STALE_MS) rmSync(file, { force: true });
    }
    const blobs = safeReaddir(this.blobsDir)
      .map((name) => ({ file: path.join(this.blobsDir, name), stat: safeStat(path.join(this.blobsDir, name)) }))
      .filter((b): b is { file: string; stat: NonNullable<ReturnType<typeof safeStat>> } => b.stat !== undefined);
    let bytes = blobs.reduce((n, b) => n + b.stat.size, 0);
    let removedFiles = 0;
    let removedBytes = 0;
    const idle = blobs.filter((b) => b.stat.nlink <= 1 || !this.linksWork).sort((a, b) => a.stat.mtimeMs - b.stat.mtimeMs);
    for (const b of idle) {
      if (bytes <= this.opts.maxBytes) break;
      try {
        unlinkSync(b.file);
      } catch {
        continue; // another process removed it first
      }
      bytes -= b.stat.size;
      removedFiles++;
      removedBytes += b.stat.size;
    }
    if (bytes > this.opts.maxBytes) {
      this.opts.logger.warn('the data cache holds more than its bound in files in use', { dir: this.dir, bytes, maxBytes: this.opts.maxBytes });
    }
    return { removedFiles, removedBytes, bytes };
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function safeStat(file: string): { size: number; nlink: number; mtimeMs: number } | undefined {
  try {
    const s = statSync(file);
    return { size: s.size, nlink: s.nlink, mtimeMs: s.mtimeMs };
  } catch {
    return undefined;
  }
}
