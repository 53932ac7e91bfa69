// A frozen worker (SIGSTOP) does not hold the run: its units get backup copies on the other
// workers, the step completes, and its late results are dropped when it thaws.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { childPids, startCli } from '../helpers/cli-process.js';
import { chaosJob, referenceWeights, stepsDone, summaryOf, waitForSteps, weightsOf } from '../helpers/chaos.js';
import { tempDir } from '../helpers/temp-dirs.js';

const FAULT = { backupAfter: 2, minBackupMs: 300, deadAfterMs: 120_000, heartbeatMs: 200 };

void describe('stragglers', () => {
  void it('completes steps through backup units while a worker is frozen; its late result is discarded', async (t) => {
    const job = chaosJob({ steps: 40, fault: FAULT });
    // The undisturbed run of the same job with the default fault settings (worker-deaths'
    // reference, trained once per suite run): the settings only say when units are copied or
    // declared lost, never what the weights become.
    const reference = await referenceWeights(chaosJob({ steps: 40 }));
    const out = tempDir('mtl-chaos-stop-');
    const run = startCli(['run', job, '--workers', '3', '--out', out]);
    await waitForSteps(out, 6, run);
    const [frozen] = childPids(run.child.pid!);
    process.kill(frozen!, 'SIGSTOP');
    const before = stepsDone(out);
    const started = Date.now();
    try {
      // With backups after max(300 ms, 2 × the median unit time), steps keep completing.
      await waitForSteps(out, before + 3, run, 20_000);
    } finally {
      t.diagnostic(`3 steps while frozen took ${Date.now() - started} ms`);
      process.kill(frozen!, 'SIGCONT');
    }
    const r = await run.result;
    assert.equal(r.code, 0, r.stderr);
    const summary = summaryOf(out);
    t.diagnostic(`faults ${JSON.stringify(summary.faults)}`);
    assert.ok(summary.faults.backupUnits >= 1);
    assert.ok(summary.faults.discardedResults >= 1, 'the thawed worker sent a result that was dropped');
    assert.equal(summary.faults.deaths, 0);
    assert.ok(weightsOf(out).equals(reference));
  });
});
