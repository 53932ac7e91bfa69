// A result that is still streaming when its step ends (a backup copy won meanwhile) is read
// and dropped, counted, never applied, and never closes the session: the regression CI found
// when a frozen worker thawed mid-upload. Real gRPC, a real worker process, a scripted one.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadJobFile } from '../../common/job-spec.js';
import { silentLogger } from '../../common/logging.js';
import { Coordinator } from '../../coordinator/coordinator.js';
import { prepareRun } from '../../coordinator/prepare-run.js';
import { startCli } from '../helpers/cli-process.js';
import { smallMultiMnistJob, writeJob } from '../helpers/jobs.js';
import { ScriptedWorker } from '../helpers/scripted-worker.js';
import { tempDir } from '../helpers/temp-dirs.js';

// Backups soon after the median unit time; nobody is declared dead during the test.
const JOB = writeJob({ ...smallMultiMnistJob({ steps: 4, shardsPerTask: 2 }), fault: { backupAfter: 1, minBackupMs: 100, deadAfterMs: 120_000, heartbeatMs: 200 } });

function coordinatorFor(out: string, minWorkers: number): Coordinator {
  return new Coordinator({ prepared: prepareRun(loadJobFile(JOB)), listen: '127.0.0.1:0', outDir: out, minWorkers, waitForWorkersMs: 60_000, logger: silentLogger });
}

function weights(out: string): Buffer {
  return readFileSync(path.join(out, 'model', 'weights.bin'));
}

void describe('late results', () => {
  void it('drops a result whose upload completes after its step ended, and keeps the session', async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');

    const cleanOut = tempDir('mtl-late-clean-');
    const clean = coordinatorFor(cleanOut, 1);
    const solo = startCli(['worker', '--coordinator', await clean.listen(), '--backend', 'cpu']);
    assert.equal((await clean.runToCompletion()).status, 'succeeded');
    await clean.close();
    await solo.result;

    const out = tempDir('mtl-late-');
    const coordinator = coordinatorFor(out, 2);
    const address = await coordinator.listen();
    let held: string | undefined;
    let sentAfterStep = false;
    const scripted = new ScriptedWorker(address, async (unit, honest, ctx) => {
      if (held !== undefined || unit.kind !== 'UNIT_KIND_TRAIN') return true;
      // First training unit: open the upload (the header is valid, so the coordinator starts
      // reading it into the unit's buffer), hold the payload until the step is over, then send it.
      held = unit.unitId;
      await ctx.send({ unitResult: honest.header });
      await ctx.weightsAfter(ctx.weightsVersion);
      let offset = 0;
      const bytes = Buffer.from(honest.payload!.buffer, honest.payload!.byteOffset, honest.payload!.byteLength);
      for (let i = 0; i < bytes.length; i += 1 << 20) {
        const data = bytes.subarray(i, i + (1 << 20));
        await ctx.send({ chunk: { transferId: honest.header.transferId, offset, data } });
        offset += data.length;
      }
      await ctx.send({ resultEnd: { transferId: honest.header.transferId, computeMs: 1, busyMs: 1 } });
      sentAfterStep = true;
      return false;
    });
    await scripted.start();
    const real = startCli(['worker', '--coordinator', address, '--backend', 'cpu', '--name', 'real']);
    const summary = await coordinator.runToCompletion();
    await scripted.shutdown;
    scripted.close();
    await coordinator.close();
    await real.result;

    assert.equal(summary.status, 'succeeded', JSON.stringify(summary.error));
    assert.ok(held !== undefined && sentAfterStep, `the scripted worker held a result past its step (held ${held}, sent ${sentAfterStep}, ${JSON.stringify(summary.faults)}, workers ${JSON.stringify(summary.workerDetails)})`);
    assert.ok(summary.faults.backupUnits >= 1, 'the held unit got a backup copy');
    assert.ok(summary.faults.discardedResults >= 1, 'the late payload was dropped');
    assert.equal(summary.faults.deaths, 0, 'the scripted worker kept its session');
    assert.equal(summary.rejectedMessages, 0);
    assert.ok(weights(out).equals(weights(cleanOut)), 'weights differ from the undisturbed run');
  });
});
