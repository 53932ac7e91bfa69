// The coordinator is SIGKILLed mid-run and started again with --resume on the same address:
// its workers reconnect (fresh sessions) and the run ends with bitwise the undisturbed weights.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { startCli } from '../helpers/cli-process.js';
import { chaosJob, referenceWeights, summaryOf, waitForSteps, weightsOf } from '../helpers/chaos.js';
import { freePort } from '../helpers/tcp-proxy.js';
import { tempDir } from '../helpers/temp-dirs.js';

void describe('coordinator crash and resume', () => {
  void it('SIGKILL mid-run, resume from the latest checkpoint: bitwise equal, every step recorded once', async () => {
    const job = chaosJob({ steps: 30, checkpoint: { every: 5 } });
    const reference = await referenceWeights(job);
    const out = tempDir('mtl-chaos-resume-');
    const address = `127.0.0.1:${await freePort()}`;
    const first = startCli(['coordinator', job, '--listen', address, '--workers', '2', '--out', out]);
    await first.waitFor(/listening/);
    const workers = [1, 2].map((i) => startCli(['worker', '--coordinator', address, '--name', `w${i}`, '--reconnect-timeout', '60']));
    await waitForSteps(out, 13, first);
    first.child.kill('SIGKILL');
    await first.result;
    assert.ok(!existsSync(path.join(out, 'summary.json')), 'a killed coordinator writes no summary');
    assert.ok(readdirSync(path.join(out, 'checkpoints')).includes('ckpt-000000010.mtlckpt'));

    const second = startCli(['coordinator', '--resume', out, '--listen', address, '--workers', '2']);
    const r = await second.result;
    assert.equal(r.code, 0, r.stderr);
    for (const w of workers) assert.equal((await w.result).code, 0);
    const summary = summaryOf(out) as ReturnType<typeof summaryOf> & { resumedFrom: number };
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.faults.resumes, 1);
    assert.ok(summary.resumedFrom >= 10);
    assert.ok(weightsOf(out).equals(reference), 'resumed run ends with other weights');
    const steps = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    assert.deepEqual(steps, Array.from({ length: 30 }, (_, i) => i + 1));
  });

  void it('refuses to resume a run with another job, or a directory without checkpoints (exit 2)', async () => {
    const empty = tempDir('mtl-chaos-nockpt-');
    const none = await startCli(['run', '--resume', empty]).result;
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no usable checkpoint/);
    const job = chaosJob({ steps: 6, checkpoint: { every: 2 } });
    const out = tempDir('mtl-chaos-other-');
    assert.equal((await startCli(['run', job, '--out', out, '--quiet']).result).code, 0);
    const other = await startCli(['run', chaosJob({ steps: 7, checkpoint: { every: 2 } }), '--resume', out]).result;
    assert.equal(other.code, 2);
    // The run succeeded: the job is checked against it before the checkpoints are looked at.
    assert.match(other.stderr, /not the job of the run in .*, which has already succeeded/);
  });
});
