// Lose workers at any moment: two of three SIGKILLed mid-run, a fourth joining late. The run
// finishes with bitwise the same weights as an undisturbed one, without restarting anyone.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { childPids, startCli } from '../helpers/cli-process.js';
import { CHAOS_ROUNDS, chaosJob, referenceWeights, summaryOf, waitForSteps, weightsOf, JOIN_ENV } from '../helpers/chaos.js';
import { tempDir } from '../helpers/temp-dirs.js';

void describe('worker deaths and a late joiner', () => {
  void it('kills two of three workers mid-step, adds one late: bitwise equal to an undisturbed run', async (t) => {
    const job = chaosJob({ steps: 40 });
    const reference = await referenceWeights(job);
    for (let round = 0; round < CHAOS_ROUNDS; round++) {
      const out = tempDir('mtl-chaos-kill-');
      const run = startCli(['run', job, '--workers', '3', '--out', out], JOIN_ENV);
      const address = (await run.waitFor(/listening address=(\S+)/))[1]!;
      await waitForSteps(out, 4 + 2 * round, run);
      const [first, second] = childPids(run.child.pid!);
      assert.ok(first !== undefined && second !== undefined, 'the three local workers are running');
      process.kill(first, 'SIGKILL');
      // Started now, the late joiner is ready (≈ 3 s: its compute thread loads tfjs in an
      // isolate of its own) well before the run ends, however fast the machine runs the steps.
      const late = startCli(['worker', '--coordinator', address, '--name', 'late-joiner'], JOIN_ENV);
      await waitForSteps(out, 12 + round, run);
      process.kill(second, 'SIGKILL');
      await waitForSteps(out, 18, run);
      const r = await run.result;
      const lateExit = await late.result;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(lateExit.code, 0, lateExit.stderr);
      const summary = summaryOf(out);
      t.diagnostic(`round ${round}: faults ${JSON.stringify(summary.faults)}`);
      assert.equal(summary.faults.deaths, 2);
      assert.ok(summary.faults.reassignedUnits >= 1, 'a killed worker held units (it died mid-step)');
      assert.ok((summary.workerDetails.find((w) => w.name === 'late-joiner')?.unitsDone ?? 0) > 0, 'the late joiner computed units');
      assert.ok(weightsOf(out).equals(reference), `round ${round}: weights differ from the undisturbed run`);
    }
  });
});
