// Datasets in the NATS object store against a real nats-server: storing a file and a directory,
// fetching them through the local cache, digests that catch a tampered cache file or object, a
// server restart in the middle of a fetch, several processes fetching into one cache at once,
// and the cache's size bound.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Objm } from '@nats-io/obj';
import { ControlPlane } from '../../common/control/plane.js';
import { DATA_BUCKET } from '../../common/data-store/manifest.js';
import { materializeData, resolveDataPath } from '../../common/data-store/materialize.js';
import { NatsDataStore } from '../../common/data-store/nats-data.js';
import { DatasetError } from '../../common/errors.js';
import { silentLogger, type Logger } from '../../common/logging.js';
import { NatsServer } from '../helpers/nats-server.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { tempDir } from '../helpers/temp-dirs.js';

const FAST_RETRY = { budgetMs: 20_000, initialMs: 50, maxMs: 500, idleMs: 2_000 };

/** A job naming the given data references (only `tasks[*].data` matters to materializeData). */
const jobOf = (...refs: string[]) => ({ tasks: Object.fromEntries(refs.map((r, i) => [`t${i}`, { data: { dataset: 'csv', path: r, features: ['x'], target: 'y' } }])) });

/** A logger that keeps its warnings. */
function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const log: Logger & { warnings: string[] } = {
    warnings,
    debug: () => undefined,
    info: () => undefined,
    warn: (m, f) => void warnings.push(`${m} ${JSON.stringify(f ?? {})}`),
    error: () => undefined,
    child: () => log,
  };
  return log;
}

/** Waits until the connection is back and JetStream answers (after a server restart). */
async function jetStreamReady(plane: ControlPlane): Promise<void> {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(100)) {
    try {
      await plane.jsm.getAccountInfo();
      return;
    } catch {
      // not yet
    }
  }
  throw new Error('JetStream did not come back within 20 s');
}

void describe('datasets in the NATS object store (real nats-server)', () => {
  let server: NatsServer;
  let plane: ControlPlane;
  let store: NatsDataStore;
  const src = tempDir('mtl-data-src-');
  before(async () => {
    server = await NatsServer.start();
    plane = await ControlPlane.connect({ url: server.url, name: 'test', logger: silentLogger });
    store = await NatsDataStore.open(plane, true);
  });
  after(async () => {
    await plane.close();
    await server.stop();
  });

  void it('stores a file and a directory, fetches them through the cache once, and re-putting the same content is a no-op', async () => {
    const file = path.join(src, 'table.csv');
    writeFileSync(file, 'x,y\n1,2\n3,4\n');
    const dir = path.join(src, 'parts');
    mkdirSync(path.join(dir, 'sub'), { recursive: true });
    writeFileSync(path.join(dir, 'a.csv'), 'x,y\n5,6\n');
    writeFileSync(path.join(dir, 'sub', 'b.csv'), 'x,y\n7,8\n');

    const one = await store.put(file, 'table');
    assert.deepEqual(one.files.map((f) => f.path), ['table.csv']);
    assert.equal(one.uploaded, 1);
    const many = await store.put(dir, 'parts');
    assert.deepEqual(many.files.map((f) => f.path), ['a.csv', 'sub/b.csv']);
    assert.equal(many.bytes, 16);
    const again = await store.put(dir, 'parts');
    assert.equal(again.unchanged, true);
    assert.equal(again.digest, many.digest);
    assert.deepEqual((await store.list()).map((d) => [d.dataset, d.files]), [['parts', 2], ['table', 1]]);

    const cacheDir = tempDir('mtl-cache-');
    const refs = ['nats://table/table.csv', 'nats://table', 'nats://parts/sub/b.csv', 'nats://parts/*.csv', 'nats://parts/sub'];
    const first = await materializeData(jobOf(...refs), { cacheDir, nats: { plane }, retry: FAST_RETRY });
    assert.equal(first.fetchedBytes, 12 + 16);
    assert.equal(readFileSync(resolveDataPath('nats://table/table.csv', '/elsewhere'), 'utf8'), 'x,y\n1,2\n3,4\n');
    assert.equal(resolveDataPath('nats://table', '/'), resolveDataPath('nats://table/table.csv', '/'), 'a one-file dataset is that file');
    assert.equal(readFileSync(resolveDataPath('nats://parts/sub/b.csv', '/'), 'utf8'), 'x,y\n7,8\n');
    // A glob stays a glob, over a directory that holds the whole dataset; a directory is one.
    const glob = resolveDataPath('nats://parts/*.csv', '/');
    assert.equal(path.basename(glob), '*.csv');
    assert.deepEqual(readdirSync(path.dirname(glob)).sort(), ['a.csv', 'sub']);
    assert.deepEqual(readdirSync(resolveDataPath('nats://parts/sub', '/')), ['b.csv']);
    assert.equal(resolveDataPath('local.csv', '/jobs'), '/jobs/local.csv');

    const second = await materializeData(jobOf(...refs), { cacheDir, nats: { plane }, retry: FAST_RETRY });
    assert.equal(second.fetchedBytes, 0, 'everything came from the cache');
    assert.deepEqual(readdirSync(path.join(cacheDir, 'tmp')), [], 'no temporary file is left');
    first.release();
    second.release();
  });

  void it('refuses other content under an existing name without replace, and removes a dataset', async () => {
    const file = path.join(src, 'v.csv');
    writeFileSync(file, 'x,y\n1,1\n');
    await store.put(file, 'versioned');
    writeFileSync(file, 'x,y\n2,2\n');
    await assert.rejects(store.put(file, 'versioned'), (err) => err instanceof DatasetError && /already exists with other content.*--replace/.test(err.message));
    const replaced = await store.put(file, 'versioned', { replace: true });
    assert.equal(replaced.uploaded, 1);
    assert.equal(await store.remove('versioned'), true);
    assert.equal(await store.manifest('versioned'), undefined);
    assert.equal(await store.remove('versioned'), false);
    await assert.rejects(store.put(path.join(src, 'missing.csv'), 'x'), (err) => err instanceof DatasetError && /missing\.csv: no such file/.test(err.message));
  });

  void it('a tampered cache file is discarded with a warning and fetched again; a tampered object is an error naming the URL', async () => {
    const file = path.join(src, 'tamper.csv');
    writeFileSync(file, 'x,y\n10,20\n');
    const put = await store.put(file, 'tamper');
    const cacheDir = tempDir('mtl-cache-');
    const ref = 'nats://tamper/tamper.csv';
    (await materializeData(jobOf(ref), { cacheDir, nats: { plane }, retry: FAST_RETRY })).release();
    const blob = path.join(cacheDir, 'blobs', put.files[0]!.sha256);
    writeFileSync(blob, 'x,y\n66,66\n'); // same size, other bytes

    const log = recordingLogger();
    const again = await materializeData(jobOf(ref), { cacheDir, nats: { plane }, retry: FAST_RETRY, logger: log });
    assert.equal(again.fetchedBytes, put.bytes, 'fetched again');
    assert.equal(readFileSync(resolveDataPath(ref, '/'), 'utf8'), 'x,y\n10,20\n');
    assert.ok(log.warnings.some((w) => w.includes('does not match its digest') && w.includes(ref)), log.warnings.join('\n'));
    again.release();

    // The object changes behind the manifest's back (not through mtl data put).
    const os = await new Objm(plane.nc).open(DATA_BUCKET);
    await os.putBlob({ name: 'tamper/tamper.csv' }, Buffer.from('x,y\n99,99\n'));
    const fresh = tempDir('mtl-cache-');
    await assert.rejects(
      materializeData(jobOf(ref), { cacheDir: fresh, nats: { plane }, retry: FAST_RETRY }),
      (err) => err instanceof DatasetError && err.message.startsWith(ref) && /does not match the manifest of dataset tamper.*not used/.test(err.message),
    );
    assert.deepEqual(readdirSync(path.join(fresh, 'blobs')), [], 'the mismatching bytes never became a cache entry');
    assert.deepEqual(readdirSync(path.join(fresh, 'tmp')), []);
  });

  void it('names what is missing: the dataset, a file inside it', async () => {
    const cacheDir = tempDir('mtl-cache-');
    await assert.rejects(materializeData(jobOf('nats://nope/x.csv'), { cacheDir, nats: { plane }, retry: FAST_RETRY }), (err) => err instanceof DatasetError && /nats:\/\/nope\/x\.csv: NATS at .* has no dataset nope/.test(err.message));
    await assert.rejects(materializeData(jobOf('nats://parts/c.csv'), { cacheDir, nats: { plane }, retry: FAST_RETRY }), (err) => err instanceof DatasetError && /has no file c\.csv \(files: a\.csv, sub\/b\.csv\)/.test(err.message));
    await assert.rejects(materializeData(jobOf('nats://parts/a.csv'), { cacheDir }), (err) => err instanceof DatasetError && /no NATS server was given/.test(err.message));
    assert.throws(() => resolveDataPath('nats://never/fetched.csv', '/'), (err) => err instanceof DatasetError && /never\/fetched\.csv: remote data was not fetched/.test(err.message));
  });

  void it('completes a fetch while nats-server restarts in the middle of it', async (t) => {
    const file = path.join(src, 'large.bin');
    const bytes = randomBytes(4 * 1024 * 1024);
    writeFileSync(file, bytes);
    await store.put(file, 'large', { chunkBytes: 16 * 1024 });
    const cacheDir = tempDir('mtl-cache-');
    // Through a slow link (about 3 MB/s), so that the server dies with most of the object unsent.
    const proxy = await TcpProxy.start(`127.0.0.1:${server.port}`);
    proxy.throttleMs = 10;
    const slow = await ControlPlane.connect({ url: `nats://${proxy.address}`, name: 'slow', logger: silentLogger, reconnectWaitMs: 100 });
    let restarted: Promise<void> | undefined;
    let upAgainAt = 0;
    const log = recordingLogger();
    let got;
    try {
      got = await materializeData(jobOf('nats://large/large.bin'), {
        cacheDir,
        logger: log,
        nats: { plane: slow },
        // The idle timer would catch a stalled transfer only after 30 s: the reconnection restarts it.
        retry: { ...FAST_RETRY, idleMs: 30_000 },
        onBytes: (_ref, received) => {
          if (restarted === undefined && received >= 1024 * 1024) {
            restarted = (async () => {
              await server.restart();
              upAgainAt = performance.now();
            })();
          }
        },
      });
    } finally {
      await slow.close();
      await proxy.close();
    }
    const doneAt = performance.now();
    await restarted;
    assert.ok(upAgainAt > 0 && doneAt > upAgainAt, 'the rest of the object came from the restarted server');
    t.diagnostic(`retries: ${log.warnings.length} ${log.warnings.join(" / ")}`);
    assert.ok(readFileSync(resolveDataPath('nats://large/large.bin', '/')).equals(bytes));
    assert.deepEqual(readdirSync(path.join(cacheDir, 'tmp')), [], 'the broken transfer left nothing behind');
    got.release();
    await jetStreamReady(plane);
  });

  void it('lets several processes fetch one file into a shared cache at once', async () => {
    const file = path.join(src, 'shared.bin');
    const bytes = randomBytes(512 * 1024);
    writeFileSync(file, bytes);
    const put = await store.put(file, 'shared', { chunkBytes: 32 * 1024 });
    const cacheDir = tempDir('mtl-cache-');
    const child = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'materialize-child.js');
    const runs = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<{ code: number | null; out: string }>((resolve) => {
            const p = spawn(process.execPath, [child, server.url, cacheDir, 'nats://shared/shared.bin'], { stdio: ['ignore', 'pipe', 'inherit'] });
            let out = '';
            p.stdout.on('data', (d: Buffer) => (out += d.toString()));
            p.on('close', (code) => resolve({ code, out }));
          }),
      ),
    );
    for (const r of runs) {
      assert.equal(r.code, 0);
      assert.equal((JSON.parse(r.out) as { sha256: string }).sha256, put.files[0]!.sha256, 'every process read the right bytes');
    }
    assert.deepEqual(readdirSync(path.join(cacheDir, 'blobs')), [put.files[0]!.sha256], 'one entry');
    assert.deepEqual(readdirSync(path.join(cacheDir, 'tmp')), []);
    assert.deepEqual(readdirSync(path.join(cacheDir, 'pins')), [], 'each process removed its links when it exited');
  });

  void it('keeps the cache within its bound by removing the least recently used files nobody uses', async () => {
    const cacheDir = tempDir('mtl-cache-');
    const sizes = { a: 300_000, b: 300_000, c: 300_000 };
    const blobs: Record<string, string> = {};
    for (const [name, size] of Object.entries(sizes)) {
      const file = path.join(src, `${name}.bin`);
      writeFileSync(file, randomBytes(size));
      blobs[name] = (await store.put(file, `evict-${name}`)).files[0]!.sha256;
    }
    const opts = { cacheDir, cacheMaxBytes: 700_000, nats: { plane }, retry: FAST_RETRY };
    const a = await materializeData(jobOf('nats://evict-a'), opts);
    const b = await materializeData(jobOf('nats://evict-b'), opts);
    a.release();
    b.release();
    const c = await materializeData(jobOf('nats://evict-c'), opts);
    // a (used longest ago) goes; b and c fit.
    assert.deepEqual(readdirSync(path.join(cacheDir, 'blobs')).sort(), [blobs.b!, blobs.c!].sort());
    // Files in use stay even past the bound: c is held, b is not.
    const tight = await materializeData(jobOf('nats://evict-a'), { ...opts, cacheMaxBytes: 100_000 });
    assert.deepEqual(readdirSync(path.join(cacheDir, 'blobs')).sort(), [blobs.a!, blobs.c!].sort());
    assert.ok(existsSync(resolveDataPath('nats://evict-c', '/')));
    c.release();
    tight.release();
  });
});
