// http(s):// data against a real local HTTP server (node:http): fetched once into the cache and
// revalidated with its ETag after that, a dropped connection resumed with a Range request (or
// started over when the server has no ranges), server errors retried, a 404 and a digest that
// does not match refused at once.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { materializeData, resolveDataPath } from '../../common/data-store/materialize.js';
import { DatasetError } from '../../common/errors.js';
import { tempDir } from '../helpers/temp-dirs.js';

const FAST_RETRY = { budgetMs: 10_000, initialMs: 20, maxMs: 200, idleMs: 2_000 };
const jobOf = (...refs: string[]) => ({ tasks: Object.fromEntries(refs.map((r, i) => [`t${i}`, { data: { path: r } }])) });
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Route {
  body: Buffer;
  etag?: string;
  ranges?: boolean;
  /** Requests (counted from 1) that get this many bytes of their answer and then a dropped connection. */
  drop?: Map<number, number>;
  /** Requests answered 503. */
  fail?: Set<number>;
}

interface Seen {
  path: string;
  range?: string;
  ifRange?: string;
  ifNoneMatch?: string;
  status: number;
  sent: number;
}

void describe('http(s) data (real local HTTP server)', () => {
  const routes = new Map<string, Route>();
  const counts = new Map<string, number>();
  const seen: Seen[] = [];
  let server: http.Server;
  let base = '';

  before(async () => {
    server = http.createServer((req, res) => {
      const route = routes.get(req.url ?? '');
      const n = (counts.get(req.url ?? '') ?? 0) + 1;
      counts.set(req.url ?? '', n);
      const record: Seen = { path: req.url ?? '', status: 200, sent: 0 };
      if (req.headers.range !== undefined) record.range = req.headers.range;
      if (typeof req.headers['if-range'] === 'string') record.ifRange = req.headers['if-range'];
      if (typeof req.headers['if-none-match'] === 'string') record.ifNoneMatch = req.headers['if-none-match'];
      seen.push(record);
      if (route === undefined || route.fail?.has(n)) {
        record.status = route === undefined ? 404 : 503;
        res.writeHead(record.status).end();
        return;
      }
      const headers: Record<string, string> = { 'content-type': 'text/csv' };
      if (route.etag !== undefined) headers.etag = route.etag;
      if (route.ranges) headers['accept-ranges'] = 'bytes';
      if (route.etag !== undefined && req.headers['if-none-match'] === route.etag) {
        record.status = 304;
        res.writeHead(304, headers).end();
        return;
      }
      let body = route.body;
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (route.ranges && range && req.headers['if-range'] === route.etag) {
        const from = Number(range[1]);
        record.status = 206;
        headers['content-range'] = `bytes ${from}-${body.length - 1}/${body.length}`;
        body = body.subarray(from);
      }
      headers['content-length'] = String(body.length);
      res.writeHead(record.status, headers);
      const cut = route.drop?.get(n);
      if (cut !== undefined) {
        record.sent = cut;
        res.write(body.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 20));
        return;
      }
      record.sent = body.length;
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const requests = (p: string) => seen.filter((s) => s.path === p);

  void it('fetches a URL into the cache once, then revalidates it with its ETag (304: nothing sent again)', async () => {
    const body = Buffer.from('x,y\n1,2\n');
    routes.set('/table.csv', { body, etag: '"v1"' });
    const cacheDir = tempDir('mtl-cache-');
    const ref = `${base}/table.csv`;
    const first = await materializeData(jobOf(ref), { cacheDir, retry: FAST_RETRY });
    assert.equal(first.fetchedBytes, body.length);
    assert.ok(readFileSync(resolveDataPath(ref, '/')).equals(body));
    assert.equal(path.basename(resolveDataPath(ref, '/')), 'table.csv', 'the file keeps its name');
    const second = await materializeData(jobOf(ref), { cacheDir, retry: FAST_RETRY });
    assert.equal(second.fetchedBytes, 0);
    assert.deepEqual(requests('/table.csv').map((r) => [r.status, r.ifNoneMatch]), [[200, undefined], [304, '"v1"']]);
    // The file changed on the server: a new ETag, the new bytes.
    routes.set('/table.csv', { body: Buffer.from('x,y\n3,4\n'), etag: '"v2"' });
    const third = await materializeData(jobOf(ref), { cacheDir, retry: FAST_RETRY });
    assert.equal(readFileSync(resolveDataPath(ref, '/'), 'utf8'), 'x,y\n3,4\n');
    for (const m of [first, second, third]) m.release();
  });

  void it('resumes a dropped transfer with a Range request, and starts over where the server offers no ranges', async () => {
    const body = randomBytes(256 * 1024);
    routes.set('/ranged.bin', { body, etag: '"r1"', ranges: true, drop: new Map([[1, 100_000]]) });
    routes.set('/plain.bin', { body, drop: new Map([[1, 100_000]]) });
    const cacheDir = tempDir('mtl-cache-');
    const got = await materializeData(jobOf(`${base}/ranged.bin`, `${base}/plain.bin`), { cacheDir, retry: FAST_RETRY });
    assert.ok(readFileSync(resolveDataPath(`${base}/ranged.bin`, '/')).equals(body));
    assert.ok(readFileSync(resolveDataPath(`${base}/plain.bin`, '/')).equals(body));
    const ranged = requests('/ranged.bin');
    assert.deepEqual(ranged.map((r) => [r.status, r.range, r.ifRange]), [[200, undefined, undefined], [206, 'bytes=100000-', '"r1"']]);
    assert.deepEqual(requests('/plain.bin').map((r) => [r.status, r.range]), [[200, undefined], [200, undefined]]);
    // Everything received counts: the resumed file came over once, the other one and a bit.
    assert.equal(got.fetchedBytes, body.length + body.length + 100_000);
    assert.deepEqual(readdirSync(path.join(cacheDir, 'tmp')), [], 'no partial download is left');
    assert.deepEqual(readdirSync(path.join(cacheDir, 'blobs')), [sha256(body)], 'one verified entry for both URLs');
    got.release();
  });

  void it('retries server errors, and refuses a 404 and a body that does not match the digest in the URL', async () => {
    const body = Buffer.from('x,y\n5,6\n');
    routes.set('/flaky.csv', { body, fail: new Set([1, 2]) });
    const cacheDir = tempDir('mtl-cache-');
    (await materializeData(jobOf(`${base}/flaky.csv`), { cacheDir, retry: FAST_RETRY })).release();
    assert.deepEqual(requests('/flaky.csv').map((r) => r.status), [503, 503, 200]);

    await assert.rejects(materializeData(jobOf(`${base}/gone.csv`), { cacheDir, retry: FAST_RETRY }), (err) => err instanceof DatasetError && err.message === `${base}/gone.csv: HTTP 404 Not Found`);
    assert.equal(requests('/gone.csv').length, 1, 'a 404 is not retried');

    routes.set('/pinned.csv', { body });
    const good = `${base}/pinned.csv#sha256=${sha256(body)}`;
    const pinned = await materializeData(jobOf(good), { cacheDir, retry: FAST_RETRY });
    assert.ok(readFileSync(resolveDataPath(good, '/')).equals(body));
    pinned.release();
    const bad = `${base}/pinned.csv#sha256=${'0'.repeat(64)}`;
    await assert.rejects(materializeData(jobOf(bad), { cacheDir, retry: FAST_RETRY }), (err) => err instanceof DatasetError && err.message.startsWith(`${base}/pinned.csv`) && /does not match the digest in the URL.*not used/.test(err.message));
    assert.throws(() => resolveDataPath(bad, '/'), DatasetError);
  });
});
