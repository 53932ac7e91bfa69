// A coordinator with --nats and --run-id is SIGKILLed mid-run and started again with exactly the
// same command line, as the Job controller does when it replaces a pod: the new process finds
// the run's newest checkpoint in the NATS object store, takes the lapsed lease over, its
// workers reconnect, and the run ends with bitwise the undisturbed weights. Started once more
// after the run succeeded, it trains nothing.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startCli } from '../helpers/cli-process.js';
import { chaosJob, referenceWeights, summaryOf, waitForSteps, weightsOf } from '../helpers/chaos.js';
import { NatsServer } from '../helpers/nats-server.js';
import { freePort } from '../helpers/tcp-proxy.js';
import { tempDir } from '../helpers/temp-dirs.js';

void describe('coordinator replaced with the same command line (--nats --run-id)', () => {
  let nats: NatsServer;
  before(async () => {
    nats = await NatsServer.start();
  });
  after(async () => {
    await nats.stop();
  });

  void it('SIGKILL mid-run, the same command again: resumes from NATS, bitwise equal, every step once; a third start trains nothing', async () => {
    const job = chaosJob({ steps: 30, checkpoint: { every: 5 } });
    const reference = await referenceWeights(job);
    const out = tempDir('mtl-chaos-nats-restart-');
    const address = `127.0.0.1:${await freePort()}`;
    const command = ['coordinator', job, '--listen', address, '--workers', '2', '--out', out, '--nats', nats.url, '--run-id', 'replaced-coordinator', '--lease', '3'];
    const first = startCli(command);
    await first.waitFor(/listening/);
    const workers = [1, 2].map((i) => startCli(['worker', '--coordinator', address, '--name', `w${i}`, '--reconnect-timeout', '90']));
    await waitForSteps(out, 13, first);
    first.child.kill('SIGKILL');
    await first.result;
    assert.ok(!existsSync(path.join(out, 'summary.json')), 'a killed coordinator writes no summary');
    assert.ok(!existsSync(path.join(out, 'checkpoints')), 'with --nats the checkpoints are in the object store, not the run directory');

    // Another job under the same run id is refused before anything starts (and before the lease wait).
    const other = await startCli(['coordinator', chaosJob({ steps: 31, checkpoint: { every: 5 } }), '--listen', '127.0.0.1:0', '--out', tempDir('mtl-chaos-nats-other-'), '--nats', nats.url, '--run-id', 'replaced-coordinator']).result;
    assert.equal(other.code, 2, other.stderr);
    assert.match(other.stderr, /run replaced-coordinator: its checkpoints in NATS were written by another job/);

    const second = startCli(command);
    const r = await second.result;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /taking it over once the lease lapses/);
    assert.match(r.stderr, /resumed at step 1[05]/);
    for (const w of workers) assert.equal((await w.result).code, 0);
    const summary = summaryOf(out) as ReturnType<typeof summaryOf> & { resumedFrom: number };
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.faults.resumes, 1);
    assert.ok(summary.resumedFrom >= 10);
    assert.ok(weightsOf(out).equals(reference), 'the replaced coordinator ends with other weights');
    const steps = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    assert.deepEqual(steps, Array.from({ length: 30 }, (_, i) => i + 1));

    const third = await startCli(command).result;
    assert.equal(third.code, 0, third.stderr);
    assert.match(third.stderr, /run replaced-coordinator already succeeded \(30\/30 steps\).*: not started again/);
    assert.ok(weightsOf(out).equals(reference), 'a start after success leaves the run directory alone');
  });
});
