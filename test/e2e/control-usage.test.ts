// The NATS commands as a new user meets them: `mtl serve` with no --listen, `mtl watch` of a
// long run. Real nats-server, real serve, worker and watch processes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, startCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { controlPlaneFixture } from '../helpers/control-plane-fixture.js';
import { tinyJob } from '../helpers/security.js';
import { tempDir } from '../helpers/temp-dirs.js';

const STEPS = 200;

void describe('mtl serve and mtl watch, defaults', () => {
  const nats = controlPlaneFixture();
  let runId: string | undefined;
  /** Set once the first test's run has succeeded: only then has the second something to watch. */
  let trained = false;


  void it('mtl serve with no --listen starts (loopback), says how to expose it, and trains a queued job', { timeout: 180_000 }, async () => {
    const submit = await runCli(['submit', writeJob(tinyJob(STEPS)), '--nats', nats.server.url]);
    assert.equal(submit.code, 0, submit.stderr);
    runId = submit.stdout.trim();
    const serve = startCli(['serve', '--nats', nats.server.url, '--out-root', tempDir('mtl-serve-default-')]);
    const worker = startCli(['worker', '--nats', nats.server.url, '--run', runId, '--backend', 'cpu']);
    try {
      await serve.waitFor(/coordinators listen on 127\.0\.0\.1: only workers on this machine can join/);
      assert.match((await serve.waitFor(/For workers elsewhere, .*/))[0], /--listen 0\.0\.0\.0:PORT with --tls-ca, --tls-cert, --tls-key .* or add --insecure/);
      const deadline = Date.now() + 120_000;
      let status: string | undefined;
      while (Date.now() < deadline) {
        status = (await nats.registry.get(runId))?.status;
        if (status === 'succeeded' || status === 'failed' || serve.child.exitCode !== null) break;
        await sleep(200);
      }
      assert.equal(status, 'succeeded', (await nats.registry.get(runId).then((r) => JSON.stringify(r))) ?? '');
      assert.equal((await worker.result).code, 0);
      trained = true;
    } finally {
      serve.child.kill('SIGTERM');
      worker.child.kill('SIGTERM');
    }
    const r = await serve.result;
    assert.equal(r.code, 0, r.stderr);
  });

  void it(`mtl watch of a ${STEPS}-step run prints a few step lines (the last among them) and every event; --json and --all-steps print all`, { timeout: 180_000 }, async () => {
    assert.ok(runId !== undefined && trained, 'the run of the previous test succeeded');
    const text = await runCli(['watch', runId, '--nats', nats.server.url]);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trim().split('\n');
    const steps = lines.filter((l) => / step \d+ /.test(l));
    assert.ok(steps.length >= 1 && steps.length <= 40, `${steps.length} step lines:\n${text.stdout}`);
    assert.match(steps.at(-1)!, new RegExp(` step ${STEPS} `));
    for (const type of ['run-started', 'worker-joined', 'run-succeeded']) assert.ok(lines.some((l) => l.includes(` ${type}: `)), `${type} in\n${text.stdout}`);

    const json = await runCli(['watch', runId, '--nats', nats.server.url, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const records = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { subject: string; step?: number });
    assert.deepEqual(records.filter((r) => r.subject.endsWith('.metrics')).map((r) => r.step), Array.from({ length: STEPS }, (_, i) => i + 1));

    const all = await runCli(['watch', runId, '--nats', nats.server.url, '--all-steps']);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(all.stdout.split('\n').filter((l) => / step \d+ /.test(l)).length, STEPS);
  });
});
