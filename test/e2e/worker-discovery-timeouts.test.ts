// A discovering worker (`mtl worker --nats URL --run RUN`) gives up when its budget is spent,
// however many discovery lookups and connection attempts it made: --connect-timeout from its
// first attempt while it never joined, --reconnect-timeout from the moment a joined session was
// lost. Real processes, a real nats-server; the registry keeps naming a coordinator that is gone.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startCli, type CliResult, type RunningCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { controlPlaneFixture } from '../helpers/control-plane-fixture.js';
import { freePort } from '../helpers/nats-server.js';
import { tinyJob } from '../helpers/security.js';
import { tempDir } from '../helpers/temp-dirs.js';

/** The process's result, or a failure if it is still running after `limitMs` (then it is killed). */
async function exitWithin(p: RunningCli, limitMs: number, what: string): Promise<CliResult & { afterMs: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), limitMs)));
  const r = await Promise.race([p.result, late]);
  clearTimeout(timer);
  if (r === 'late') {
    p.child.kill('SIGKILL');
    const killed = await p.result;
    assert.fail(`${what}: still running ${limitMs / 1000} s later; stderr:\n${killed.stderr}`);
  }
  return { ...r, afterMs: Date.now() - started };
}

void describe('discovering worker: the connect and reconnect budgets', () => {
  const nats = controlPlaneFixture();

  void it('never joined: exits once --connect-timeout has passed, not after the reconnect budget', async () => {
    const runId = 'unreachable-run';
    await nats.registry.create({ runId, name: 'tiny', status: 'running', pool: 'default', coordinator: `127.0.0.1:${await freePort()}`, updatedAt: '', step: 0, totalSteps: 5, workers: 0, attempts: 1 });
    const worker = startCli(['worker', '--nats', nats.server.url, '--run', runId, '--backend', 'cpu', '--connect-timeout', '6', '--reconnect-timeout', '300']);
    // Generous against a noisy machine, and still far below the 300 s a reset clock would take.
    const r = await exitWithin(worker, 45_000, 'the worker');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /worker stopped: cannot reach coordinator at 127\.0\.0\.1:\d+: .*; gave up after \d+ s without joining the run \(connect timeout\)/);
  });

  void it('joined, then its coordinator is killed: exits once --reconnect-timeout has passed since the loss', async () => {
    const out = tempDir('mtl-discovery-budget-');
    // Two workers wanted, one comes: the run waits, the worker stays joined until the kill.
    const coordinator = startCli(['coordinator', writeJob(tinyJob()), '--nats', nats.server.url, '--listen', '127.0.0.1:0', '--workers', '2', '--out', out]);
    const runId = (await coordinator.waitFor(/registered with the control plane run=(\S+)/))[1]!;
    const worker = startCli(['worker', '--nats', nats.server.url, '--run', runId, '--backend', 'cpu', '--reconnect-timeout', '6']);
    try {
      await worker.waitFor(/joined run/);
      coordinator.child.kill('SIGKILL');
      await coordinator.result;
      // The registry still names the dead coordinator (its lease has not run out): every
      // lookup finds it, every attempt fails. More than one 5 s attempt fits in the budget.
      assert.equal((await nats.registry.require(runId)).status, 'running');
      const r = await exitWithin(worker, 45_000, 'the worker');
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /worker stopped: .*; gave up reconnecting after \d+ s \(reconnect timeout\)/);
      assert.ok(r.afterMs >= 5000, `it kept trying for its budget first (${r.afterMs} ms)`);
    } finally {
      for (const p of [coordinator, worker]) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    }
  });
});
