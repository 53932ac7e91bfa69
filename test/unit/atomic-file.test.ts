// writeFileAtomic: every byte is written even when writeSync writes less than asked; a write
// or rename that fails leaves the target as it was and no temporary file behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../../common/atomic-file.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp-dirs.js';

const ATOMIC_FILE = pathToFileURL(path.join(REPO_ROOT, 'dist', 'common', 'atomic-file.js')).href;

function payload(bytes: number): Buffer {
  return Buffer.from(Array.from({ length: bytes }, (_, i) => (i * 31 + 7) % 256));
}

void describe('writeFileAtomic', () => {
  void it('a file-size limit: the first write comes back short, the next fails; the old file stays, no temporary file', () => {
    const dir = tempDir('mtl-atomic-');
    const target = path.join(dir, 'summary.json');
    writeFileSync(target, 'the previous version\n');
    // With RLIMIT_FSIZE at 16 KiB (and SIGXFSZ ignored, as a handler does), write(2) writes up
    // to the limit and returns that short count; the write after it fails with EFBIG.
    const child = `
      import { writeFileAtomic } from ${JSON.stringify(ATOMIC_FILE)};
      process.on('SIGXFSZ', () => {});
      const data = Buffer.alloc(100000, 120);
      try {
        writeFileAtomic(${JSON.stringify(target)}, data);
        console.log(JSON.stringify({ error: null }));
      } catch (err) {
        console.log(JSON.stringify({ error: err.code ?? err.message }));
      }`;
    const r = spawnSync('bash', ['-c', 'ulimit -f 16 && exec "$0" --input-type=module -e "$1"', process.execPath, child], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim()), { error: 'EFBIG' }, 'the write failed instead of leaving 16 KiB of 100 KB');
    assert.equal(readFileSync(target, 'utf8'), 'the previous version\n');
    assert.deepEqual(readdirSync(dir), ['summary.json']);
  });

  void it('writes everything through short writes', () => {
    const dir = tempDir('mtl-atomic-');
    const target = path.join(dir, 'weights.bin');
    const data = payload(10_000);
    const calls: number[] = [];
    writeFileAtomic(target, data, {
      fs: {
        // At most 999 bytes per call, like a write interrupted again and again.
        writeSync: (fd, buffer, offset, length) => {
          const n = writeSync(fd, buffer, offset, Math.min(length, 999));
          calls.push(n);
          return n;
        },
      },
    });
    assert.ok(readFileSync(target).equals(data));
    assert.equal(calls.length, Math.ceil(10_000 / 999));
    assert.deepEqual(readdirSync(dir), ['weights.bin']);
  });

  void it('a rename that fails (the target is a directory) removes the temporary file and touches nothing else', () => {
    const dir = tempDir('mtl-atomic-');
    const target = path.join(dir, 'model');
    mkdirSync(target);
    writeFileSync(path.join(target, 'kept'), 'x');
    assert.throws(() => writeFileAtomic(target, 'data'), (err: NodeJS.ErrnoException) => err.code === 'EISDIR' || err.code === 'ENOTEMPTY' || err.code === 'EEXIST');
    assert.deepEqual(readdirSync(dir), ['model']);
    assert.deepEqual(readdirSync(target), ['kept']);
  });

  void it('a write that fails midway keeps the old file and removes the temporary one', () => {
    const dir = tempDir('mtl-atomic-');
    const target = path.join(dir, 'ckpt.mtlckpt');
    writeFileSync(target, 'old checkpoint');
    let calls = 0;
    const failing = (fd: number, buffer: Uint8Array, offset: number, length: number): number => {
      if (++calls > 1) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      return writeSync(fd, buffer, offset, Math.min(length, 100));
    };
    assert.throws(() => writeFileAtomic(target, payload(1000), { fs: { writeSync: failing } }), { code: 'ENOSPC' });
    assert.equal(readFileSync(target, 'utf8'), 'old checkpoint');
    assert.deepEqual(readdirSync(dir), ['ckpt.mtlckpt']);
  });
});
