// A failed run's summary says how many steps were completed, also when it fails in the middle
// of an evaluation (the loop's step index lags the completed steps there). Real coordinator,
// real gRPC; the worker is scripted to fail an evaluation unit.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadJobFile } from '../../common/job-spec.js';
import { silentLogger } from '../../common/logging.js';
import { Coordinator } from '../../coordinator/coordinator.js';
import { prepareRun } from '../../coordinator/prepare-run.js';
import { smallMultiMnistJob, writeJob } from '../helpers/jobs.js';
import { ScriptedWorker } from '../helpers/scripted-worker.js';
import { tempDir } from '../helpers/temp-dirs.js';

void describe('failure summary', () => {
  void it('counts the steps completed before an evaluation that failed', async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
    const job = writeJob(smallMultiMnistJob({ steps: 6, shardsPerTask: 1, evalEvery: 2 }));
    const out = tempDir('mtl-fail-eval-');
    const coordinator = new Coordinator({ prepared: prepareRun(loadJobFile(job)), listen: '127.0.0.1:0', outDir: out, minWorkers: 1, waitForWorkersMs: 60_000, logger: silentLogger });
    const worker = new ScriptedWorker(await coordinator.listen(), async (unit, _honest, ctx) => {
      if (unit.kind !== 'UNIT_KIND_EVAL') return true;
      await ctx.send({ unitFailed: { unitId: unit.unitId, code: 'COMPUTE_ERROR', message: 'out of memory (scripted)' } });
      return false;
    });
    await worker.start();
    const summary = await coordinator.runToCompletion();
    await worker.shutdown;
    worker.close();
    await coordinator.close();
    assert.equal(summary.status, 'failed');
    assert.equal(summary.error?.code, 'UNIT_FAILED');
    assert.equal(summary.stepsCompleted, 2, 'the evaluation after step 2 failed: two steps were done');
    const onDisk = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { stepsCompleted: number; lastCheckpoint?: number };
    assert.equal(onDisk.stepsCompleted, 2);
    assert.equal(onDisk.lastCheckpoint, 2, 'the completed steps were kept');
  });
});
