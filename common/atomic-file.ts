// Whole-file writes that readers never see half done: write a temporary file beside the
// target, fsync it, rename it over the target. On any failure the temporary file is removed
// and the target is left as it was.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';

/** The file-system calls a write goes through; tests replace some to provoke what a real disk rarely does. */
export interface AtomicWriteFs {
  writeSync: (fd: number, buffer: Uint8Array, offset: number, length: number) => number;
  fsyncSync: (fd: number) => void;
  renameSync: (from: string, to: string) => void;
}

const REAL_FS: AtomicWriteFs = { writeSync, fsyncSync, renameSync };

export interface AtomicWriteOptions {
  fs?: Partial<AtomicWriteFs>;
}

export function writeFileAtomic(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  const fs = { ...REAL_FS, ...options.fs };
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    try {
      // writeSync may write less than asked (a signal, a full pipe or disk quota): go on
      // from where it stopped until every byte is written or it throws.
      for (let offset = 0; offset < bytes.byteLength; ) {
        const written = fs.writeSync(fd, bytes, offset, bytes.byteLength - offset);
        if (written <= 0) throw new Error(`cannot write ${tmp}: no progress after ${offset} of ${bytes.byteLength} bytes`);
        offset += written;
      }
      fs.fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // Already gone, or the directory is not writable any more: nothing else to do.
    }
    throw err;
  }
}
