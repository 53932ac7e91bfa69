// Limits on sessions over real gRPC: the coordinator refuses connections beyond maxSessions
// with RESOURCE_EXHAUSTED (counted), closes connections that never say Hello, and then
// serves a worker as usual.
import * as grpc from '@grpc/grpc-js';
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadJobFile } from '../../common/job-spec.js';
import { silentLogger } from '../../common/logging.js';
import { CHANNEL_OPTIONS } from '../../common/protocol.js';
import { Coordinator } from '../../coordinator/coordinator.js';
import { prepareRun } from '../../coordinator/prepare-run.js';
import { writeJob } from '../helpers/jobs.js';
import { ScriptedWorker } from '../helpers/scripted-worker.js';
import { tinyJob } from '../helpers/security.js';
import { tempDir } from '../helpers/temp-dirs.js';

void describe('session limits over gRPC', () => {
  void it('refuses streams beyond maxSessions, closes silent ones after the Hello timeout, then trains', async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
    const coordinator = new Coordinator({
      prepared: prepareRun(loadJobFile(writeJob(tinyJob(2)))),
      listen: '127.0.0.1:0',
      outDir: tempDir('mtl-limits-'),
      minWorkers: 1,
      waitForWorkersMs: 30_000,
      maxSessions: 2,
      sessionLimits: { helloTimeoutMs: 400 },
      logger: silentLogger,
    });
    const address = await coordinator.listen();
    const client = new grpc.Client(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    const open = () => {
      const call = client.makeBidiStreamRequest<Buffer, Buffer>('/mtl.v1.Coordinator/Connect', (b) => b, (b) => b);
      call.on('data', () => undefined);
      call.on('error', () => undefined);
      return new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    };
    const silent = [open(), open()];
    await new Promise((r) => setTimeout(r, 150));
    const refused = await open();
    assert.equal(refused.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(refused.details, /^TOO_MANY_SESSIONS: the coordinator is at its limit of 2 sessions/);
    for (const s of await Promise.all(silent)) {
      assert.equal(s.code, grpc.status.INVALID_ARGUMENT);
      assert.match(s.details, /no Hello within 400 ms/);
    }
    client.close();

    const worker = new ScriptedWorker(address, () => Promise.resolve(true));
    await worker.start();
    const summary = await coordinator.runToCompletion();
    await worker.shutdown;
    worker.close();
    await coordinator.close();
    assert.equal(summary.status, 'succeeded', JSON.stringify(summary.error));
    assert.equal(summary.faults.sessionsRefused, 1);
    assert.equal(summary.faults.deaths, 0, 'connections that never joined are not worker deaths');
  });
});
