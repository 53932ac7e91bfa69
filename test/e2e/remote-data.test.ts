// Data that is not on the worker's disk, through the real CLI: `mtl data put` stores a CSV in a
// real nats-server's object store, and a job naming it as nats://... trains with `mtl run
// --workers 2 --nats URL`, its coordinator and both workers fetching it; the same job with one
// worker and an empty cache ends with bitwise the same weights, and so do the job on the local
// file and on an http:// URL (the split and batches depend on the rows, not on how the file is
// named).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { NatsServer } from '../helpers/nats-server.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp-dirs.js';

const CSV = path.join(REPO_ROOT, 'node_modules', 'vega-datasets', 'data', 'seattle-weather.csv');
const FEATURES = ['precipitation', 'temp_min', 'wind'];

/** The two-task seattle-weather job (examples/seattle-weather.yaml), a few steps, reading `dataPath`. */
function weatherJob(dataPath: string): object {
  const data = (target: string) => ({ dataset: 'csv', path: dataPath, features: FEATURES, target });
  return {
    name: 'remote-weather',
    seed: 3,
    model: { trunk: [{ dense: { units: 16, activation: 'relu' } }], heads: { weather: [{ dense: { units: 5, activation: 'softmax' } }], temp_max: [{ dense: { units: 1 } }] } },
    tasks: {
      weather: { loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: data('weather') },
      temp_max: { loss: 'meanSquaredError', data: data('temp_max') },
    },
    training: { steps: 12, batchSize: 32, shardsPerTask: 2, optimizer: { name: 'adam', learningRate: 0.01 } },
  };
}

void describe('remote data through the CLI (real nats-server, local HTTP server)', () => {
  let server: NatsServer;
  let web: http.Server;
  let webUrl = '';
  before(async () => {
    server = await NatsServer.start();
    web = http.createServer((_req, res) => {
      const body = readFileSync(CSV);
      res.writeHead(200, { 'content-length': String(body.length), etag: '"w1"' }).end(body);
    });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    webUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}/seattle-weather.csv`;
  });
  after(async () => {
    await new Promise<void>((resolve) => web.close(() => resolve()));
    await server.stop();
  });

  async function train(dataPath: string, workers: number, extra: string[] = []): Promise<Buffer> {
    const out = tempDir('mtl-remote-run-');
    const r = await runCli(['run', writeJob(weatherJob(dataPath)), '--workers', String(workers), '--out', out, '--quiet', '--cache-dir', tempDir('mtl-remote-cache-'), ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return readFileSync(path.join(out, 'model', 'weights.bin'));
  }

  void it('mtl data put stores the file (exit 0), refuses a missing one (exit 2) and an unreachable server (exit 1)', async () => {
    const put = await runCli(['data', 'put', CSV, '--name', 'weather', '--nats', server.url]);
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, /stored\s+seattle-weather\.csv\s+47\.09 KB\s+sha256 0845078a/);
    assert.match(put.stdout, /dataset weather: 1 file\(s\), 47\.09 KB, digest [0-9a-f]{64}; 1 file\(s\) sent\n\s+use it as nats:\/\/weather\/seattle-weather\.csv/);
    const again = await runCli(['data', 'put', CSV, '--name', 'weather', '--nats', server.url, '--json']);
    assert.equal((JSON.parse(again.stdout) as { unchanged: boolean }).unchanged, true);
    const ls = await runCli(['data', 'ls', '--nats', server.url]);
    assert.match(ls.stdout, /^weather {2}1 file\(s\) {2}47\.09 KB/);

    const missing = await runCli(['data', 'put', path.join(REPO_ROOT, 'no-such-dir'), '--nats', server.url]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no-such-dir: no such file or directory/);
    const down = await runCli(['data', 'put', CSV, '--nats', 'nats://127.0.0.1:1']);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
  });

  void it('trains on nats:// data with 2 workers, bitwise as with 1 worker and a fresh cache, on http:// and on the local file', async () => {
    const ref = 'nats://weather/seattle-weather.csv';
    const two = await train(ref, 2, ['--nats', server.url]);
    // No control plane this time: the data's server alone (MTL_DATA_NATS would do the same).
    const one = await train(ref, 1, ['--data-nats', server.url]);
    assert.ok(two.equals(one), 'weights differ between 2 and 1 workers on nats:// data');
    const web = await train(webUrl, 1);
    const local = await train(CSV, 1);
    assert.ok(local.equals(two), 'weights differ between the local file and its nats:// copy');
    assert.ok(web.equals(two), 'weights differ between the http:// and nats:// copies');
  });

  void it('a job naming nats:// data without a NATS server fails before training, naming the reference (exit 2)', async () => {
    const r = await runCli(['run', writeJob(weatherJob('nats://weather/seattle-weather.csv')), '--out', tempDir('mtl-remote-run-'), '--quiet'], { MTL_DATA_NATS: '' });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /nats:\/\/weather\/seattle-weather\.csv: the job reads data from the NATS object store, but no NATS server was given/);
  });
});
