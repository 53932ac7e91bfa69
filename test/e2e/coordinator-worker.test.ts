// The two roles as separate processes, as on separate machines: `mtl coordinator` and
// `mtl worker`, plus the status and health endpoints a probe would use.
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { RunStatus__Output } from '../../proto/generated/mtl/v1/RunStatus.js';
import { CHANNEL_OPTIONS, protocol } from '../../common/protocol.js';
import { startCli } from '../helpers/cli-process.js';
import { EXAMPLES } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp-dirs.js';
import { writeJob } from '../helpers/jobs.js';
import { loadJobFile } from '../../common/job-spec.js';

function unary<T>(fn: (cb: (err: grpc.ServiceError | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value!))));
}

void describe('mtl coordinator + mtl worker', () => {
  void it('trains across separate processes; GetStatus and grpc.health.v1 answer while waiting for workers', async () => {
    // The synthetic example, shortened.
    const spec = loadJobFile(path.join(EXAMPLES, 'synthetic.yaml')).spec;
    const job = writeJob({ ...spec, training: { ...spec.training, steps: 40, evalEvery: 20 } });
    const out = tempDir('mtl-coord-');
    const coordinator = startCli(['coordinator', job, '--listen', '127.0.0.1:0', '--out', out, '--json']);
    const address = (await coordinator.waitFor(/listening address=(\S+)/))[1]!;

    const Client = protocol().mtl.v1.Coordinator;
    const client = new Client(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    const status = await unary<RunStatus__Output>((cb) => client.getStatus({}, cb));
    assert.equal(status.state, 'waiting-for-workers');
    assert.equal(status.totalSteps, 40);
    assert.equal(status.workers.length, 0);
    client.close();

    const Health = grpc.makeClientConstructor(healthService, 'Health');
    const health = new Health(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & { check: (req: object, cb: (e: grpc.ServiceError | null, r?: { status: string }) => void) => void };
    for (const service of ['', 'mtl.v1.Coordinator']) {
      const r = await unary<{ status: string }>((cb) => health.check({ service }, cb));
      assert.equal(r.status, 'SERVING');
    }
    health.close();

    const worker = startCli(['worker', '--coordinator', address, '--name', 'remote-1']);
    const [c, w] = await Promise.all([coordinator.result, worker.result]);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(w.code, 0, w.stderr);
    const summary = JSON.parse(c.stdout.trim()) as { status: string; workerDetails: Array<{ name: string; unitsDone: number }> };
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.workerDetails[0]!.name, 'remote-1');
    assert.ok(summary.workerDetails[0]!.unitsDone >= 80);
    assert.deepEqual(JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')), summary);
  });

  void it('a worker that cannot reach its coordinator gives up with a clear message', async () => {
    const worker = startCli(['worker', '--coordinator', '127.0.0.1:1', '--connect-timeout', '2']);
    const r = await worker.result;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach coordinator at 127\.0\.0\.1:1/);
  });
});
