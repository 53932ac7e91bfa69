// The HTTP endpoints over a real coordinator (in-process, real gRPC, a scripted honest worker):
// probes agree with grpc.health.v1, /api/run and /api/stream carry the run, /metrics is per
// coordinator, the static files and nothing else are served, and the listen rule holds.
import * as grpc from '@grpc/grpc-js';
import * as tf from '@tensorflow/tfjs';
import { service as healthService } from 'grpc-health-check';
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, it } from 'node:test';
import { InsecureListenError } from '../../common/errors.js';
import { loadJobFile } from '../../common/job-spec.js';
import { silentLogger } from '../../common/logging.js';
import { Coordinator } from '../../coordinator/coordinator.js';
import { CoordinatorDashboardSource, type RunView } from '../../coordinator/dashboard-source.js';
import { DashboardServer } from '../../coordinator/http-server.js';
import { prepareRun } from '../../coordinator/prepare-run.js';
import { RunDirectoryView } from '../../coordinator/run-directory-view.js';
import { writeJob } from '../helpers/jobs.js';
import { parsePrometheus, sampleValue } from '../helpers/prometheus-text.js';
import { ScriptedWorker } from '../helpers/scripted-worker.js';
import { tinyJob } from '../helpers/security.js';
import { tempDir } from '../helpers/temp-dirs.js';

const STEPS = 6;

function coordinator(outDir = tempDir('mtl-http-')): Coordinator {
  return new Coordinator({ prepared: prepareRun(loadJobFile(writeJob(tinyJob(STEPS)))), listen: '127.0.0.1:0', outDir, minWorkers: 1, waitForWorkersMs: 60_000, logger: silentLogger });
}

/** GET with an explicit Host header (fetch does not let us set one). */
function get(url: string, path: string, host?: string): Promise<{ status: number; type: string; body: string }> {
  const u = new URL(path, url);
  return new Promise((resolve, reject) => {
    http
      .get({ hostname: u.hostname, port: u.port, path: u.pathname, headers: host ? { host } : {} }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
      })
      .on('error', reject);
  });
}

async function healthStatus(address: string, service: string): Promise<string> {
  const Health = grpc.makeClientConstructor(healthService, 'Health');
  const client = new Health(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & { check: (req: object, cb: (e: grpc.ServiceError | null, r?: { status: string }) => void) => void };
  try {
    return await new Promise((resolve, reject) => client.check({ service }, (e, r) => (e ? reject(e) : resolve(r!.status))));
  } finally {
    client.close();
  }
}

/** The server-sent events of /api/stream until `count` of type `type` have arrived, or the stream ends. */
function streamEvents(url: string, type: string, count: number): Promise<Array<{ event: string; data: unknown }>> {
  return new Promise((resolve, reject) => {
    const events: Array<{ event: string; data: unknown }> = [];
    const req = http.get(new URL('api/stream', url), (res) => {
      assert.equal(res.headers['content-type'], 'text/event-stream');
      let buffer = '';
      res.on('data', (d: Buffer) => {
        buffer += d.toString();
        let i: number;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) });
          if (events.filter((e) => e.event === type).length >= count) {
            req.destroy();
            resolve(events);
          }
        }
      });
      res.on('end', () => resolve(events));
    });
    req.on('error', reject);
  });
}

void describe('coordinator HTTP endpoints', () => {
  void it('probes follow the coordinator (and agree with grpc.health.v1); the stream and /api/run carry the run; /metrics counts it', async (t) => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
    const outDir = tempDir('mtl-http-run-');
    const c = coordinator(outDir);
    const server = new DashboardServer({ listen: '127.0.0.1:0', source: new CoordinatorDashboardSource(c), statusIntervalMs: 100 });
    const url = await server.start();
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);

    assert.equal((await get(url, '/healthz')).status, 200);
    const before = await get(url, '/readyz');
    assert.equal(before.status, 503, 'not ready before the gRPC port is open');
    assert.match(before.body, /not ready/);

    const address = await c.listen();
    assert.equal((await get(url, '/readyz')).status, 200);
    assert.equal(await healthStatus(address, 'mtl.v1.Coordinator'), 'SERVING');

    const streamed = streamEvents(url, 'step', STEPS);
    const worker = new ScriptedWorker(address, () => Promise.resolve(true), { name: 'scripted' });
    t.after(async () => {
      // Whatever happened, nothing is left to keep the test process alive.
      worker.close();
      await Promise.all([c.close(), server.close()]);
    });
    await worker.start();
    const summary = await c.runToCompletion();
    assert.equal(summary.status, 'succeeded');
    const events = await streamed;
    assert.deepEqual(events.filter((e) => e.event === 'step').map((e) => (e.data as { step: number }).step), [1, 2, 3, 4, 5, 6]);
    assert.ok(events.some((e) => e.event === 'status'));
    assert.ok(events.some((e) => e.event === 'event' && (e.data as { type: string }).type === 'worker-joined'));

    // Over: both probes say so.
    assert.equal((await get(url, '/readyz')).status, 503);
    assert.equal(await healthStatus(address, 'mtl.v1.Coordinator'), 'NOT_SERVING');
    assert.equal((await get(url, '/healthz')).status, 200, 'the process is still up');

    const view = JSON.parse((await get(url, '/api/run')).body) as RunView;
    assert.equal(view.steps.length, STEPS);
    assert.equal(view.evals.length, 1, 'the final evaluation');
    assert.equal(view.status.step, STEPS);
    assert.deepEqual(view.status.tasks, ['task0', 'task1']);
    assert.equal(view.status.workers[0]?.name, 'scripted');
    assert.equal(view.status.workers[0]?.state, 'gone', 'dismissed at the end, still listed');
    assert.ok((view.status.workers[0]?.unitsDone ?? 0) >= STEPS * 2);

    const metrics = await get(url, '/metrics');
    const samples = parsePrometheus(metrics.body);
    assert.equal(sampleValue(samples, 'mtl_steps_completed_total'), STEPS);
    assert.equal(sampleValue(samples, 'mtl_ready'), 0);
    assert.equal(sampleValue(samples, 'mtl_run_state', { state: 'finished' }), 1);
    assert.ok(sampleValue(samples, 'mtl_received_bytes_total') > 0 && sampleValue(samples, 'mtl_sent_bytes_total') > 0);
    assert.equal(sampleValue(samples, 'mtl_checkpoint_step'), -1, 'checkpoint.every 0 and a run that succeeded: none written');

    // A second coordinator in the same process has its own registry: no "already registered".
    const other = coordinator();
    const otherServer = new DashboardServer({ listen: '127.0.0.1:0', source: new CoordinatorDashboardSource(other) });
    const otherUrl = await otherServer.start();
    const otherSamples = parsePrometheus((await get(otherUrl, '/metrics')).body);
    assert.equal(sampleValue(otherSamples, 'mtl_steps_completed_total'), 0);
    assert.notEqual(otherSamples.find((s) => s.name === 'mtl_steps')?.labels.run_id, samples.find((s) => s.name === 'mtl_steps')?.labels.run_id);
    await otherServer.close();
    await other.close();

    await c.close();
    await server.close();
    assert.equal(server.close(), server.close(), 'close() is idempotent');

    // The same run from its directory: the page's data, nothing live, no /metrics.
    const dirServer = new DashboardServer({ listen: '127.0.0.1:0', source: new RunDirectoryView(outDir) });
    const dirUrl = await dirServer.start();
    const dirView = JSON.parse((await get(dirUrl, '/api/run')).body) as RunView;
    assert.equal(dirView.status.live, false);
    assert.equal(dirView.status.state, 'succeeded');
    assert.deepEqual(dirView.steps.map((s) => s.step), view.steps.map((s) => s.step));
    assert.deepEqual(dirView.steps.map((s) => s.losses), view.steps.map((s) => s.losses));
    assert.equal(dirView.status.workers.length, 1);
    assert.equal((await get(dirUrl, '/metrics')).status, 404);
    const ended = await streamEvents(dirUrl, 'never', 1);
    assert.deepEqual(ended.map((e) => e.event), ['status', 'end'], 'a finished run: one status, then the stream ends');
    await dirServer.close();
  });

  void it('serves the page and its files and nothing else; GET and HEAD only; loopback Host names only', async () => {
    const outDir = tempDir('mtl-http-static-');
    const c = coordinator(outDir);
    const server = new DashboardServer({ listen: '127.0.0.1:0', source: new CoordinatorDashboardSource(c, { processMetrics: false }) });
    const url = await server.start();
    try {
      const page = await get(url, '/');
      assert.equal(page.status, 200);
      assert.match(page.type, /^text\/html/);
      assert.match(page.body, /<script src="\/vendor\/uPlot\.iife\.min\.js"><\/script>/);
      for (const [path, type] of [['/dashboard.js', /javascript/], ['/dashboard.css', /css/], ['/vendor/uPlot.iife.min.js', /javascript/], ['/vendor/uPlot.min.css', /css/]] as const) {
        const r = await get(url, path);
        assert.equal(r.status, 200, path);
        assert.match(r.type, type);
        assert.ok(r.body.length > 100, path);
      }
      for (const path of ['/../package.json', '/dashboard/../package.json', '/node_modules/uplot/package.json', '/%2e%2e/package.json', '/nope']) {
        assert.equal((await get(url, path)).status, 404, path);
      }
      const res = await fetch(new URL('api/run', url), { method: 'POST' });
      assert.equal(res.status, 405);
      assert.equal(res.headers.get('allow'), 'GET, HEAD');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
      // DNS rebinding: a page on another origin that points its name at 127.0.0.1.
      assert.equal((await get(url, '/api/run', 'evil.example:8080')).status, 421);
      assert.equal((await get(url, '/api/run', 'localhost:8080')).status, 200);
    } finally {
      await server.close();
      await c.close();
    }
  });

  void it('refuses a non-loopback address without --insecure', async () => {
    const source = new RunDirectoryView(tempDirWithJob());
    assert.throws(() => new DashboardServer({ listen: '0.0.0.0:0', source }), InsecureListenError);
    assert.throws(() => new DashboardServer({ listen: '10.1.2.3:8080', source }), /refusing to serve the dashboard and \/metrics on 10\.1\.2\.3:8080.*--insecure/);
    const open = new DashboardServer({ listen: '0.0.0.0:0', insecure: true, source });
    const url = await open.start();
    assert.match(url, /^http:\/\/0\.0\.0\.0:\d+\/$/);
    assert.equal((await fetch(url.replace('0.0.0.0', '127.0.0.1') + 'healthz')).status, 200);
    await open.close();
  });
});

function tempDirWithJob(): string {
  const dir = tempDir('mtl-http-dir-');
  writeJob(tinyJob(2), dir);
  return dir;
}
