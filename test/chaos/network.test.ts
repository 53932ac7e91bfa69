// Connections cut and slowed by a TCP proxy between workers and coordinator; a worker that
// leaves gracefully on SIGTERM. Every time, bitwise the undisturbed weights.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startCli } from '../helpers/cli-process.js';
import { chaosJob, referenceWeights, summaryOf, waitForSteps, weightsOf, JOIN_ENV } from '../helpers/chaos.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { tempDir } from '../helpers/temp-dirs.js';

void describe('network faults and graceful departure', () => {
  // The resume tests' job (checkpoints every 5 steps, unused here): its reference weights are
  // trained once per suite run for all of them (referenceWeights).
  const job = chaosJob({ steps: 30, checkpoint: { every: 5 } });
  let reference: Buffer | undefined;

  void it('survives cut and delayed connections: workers reconnect with fresh sessions', async (t) => {
    reference ??= await referenceWeights(job);
    const out = tempDir('mtl-chaos-net-');
    const coordinator = startCli(['coordinator', job, '--listen', '127.0.0.1:0', '--workers', '2', '--out', out]);
    const address = (await coordinator.waitFor(/listening address=(\S+)/))[1]!;
    const proxy = await TcpProxy.start(address);
    const workers = [1, 2].map((i) => startCli(['worker', '--coordinator', proxy.address, '--name', `w${i}`]));
    try {
      await waitForSteps(out, 6, coordinator);
      proxy.delayMs = 30;
      await waitForSteps(out, 9, coordinator);
      proxy.delayMs = 0;
      assert.ok(proxy.cutAll() >= 2);
      await waitForSteps(out, 18, coordinator);
      proxy.cutAll();
      const r = await coordinator.result;
      assert.equal(r.code, 0, r.stderr);
      for (const w of workers) assert.equal((await w.result).code, 0);
    } finally {
      await proxy.close();
    }
    const summary = summaryOf(out);
    t.diagnostic(`faults ${JSON.stringify(summary.faults)}`);
    assert.ok(summary.faults.deaths >= 4, 'both cuts broke both sessions');
    assert.ok(weightsOf(out).equals(reference));
  });

  void it('a lone worker cut off mid-step gets the step\'s units back when it reconnects', async (t) => {
    // Its units are orphaned while no worker is there; they must go to it once its new session
    // is ready, not wait for a second worker (--wait-for-workers bounds the wait if they do).
    reference ??= await referenceWeights(job);
    const out = tempDir('mtl-chaos-lone-');
    const coordinator = startCli(['coordinator', job, '--listen', '127.0.0.1:0', '--workers', '1', '--wait-for-workers', '20', '--out', out]);
    const address = (await coordinator.waitFor(/listening address=(\S+)/))[1]!;
    const proxy = await TcpProxy.start(address);
    const worker = startCli(['worker', '--coordinator', proxy.address, '--name', 'lone']);
    try {
      await waitForSteps(out, 5, coordinator);
      assert.equal(proxy.cutAll(), 1);
      await waitForSteps(out, 12, coordinator);
      assert.equal(proxy.cutAll(), 1);
      const r = await coordinator.result;
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await worker.result).code, 0);
    } finally {
      await proxy.close();
    }
    const summary = summaryOf(out);
    t.diagnostic(`faults ${JSON.stringify(summary.faults)}`);
    assert.equal(summary.faults.deaths, 2, 'each cut broke the one session');
    assert.ok(summary.faults.reassignedUnits >= 1, 'a cut landed inside a step: its units were orphaned and given back');
    assert.ok(weightsOf(out).equals(reference));
  });

  void it('a worker told to stop (SIGTERM) hands back its units and exits 0; the run carries on', async (t) => {
    reference ??= await referenceWeights(job);
    const out = tempDir('mtl-chaos-leave-');
    const run = startCli(['run', job, '--workers', '2', '--out', out], JOIN_ENV);
    const address = (await run.waitFor(/listening address=(\S+)/))[1]!;
    const leaver = startCli(['worker', '--coordinator', address, '--name', 'leaver'], JOIN_ENV);
    await waitForSteps(out, 8, run);
    leaver.child.kill('SIGTERM');
    const left = await leaver.result;
    assert.equal(left.code, 0, left.stderr);
    const r = await run.result;
    assert.equal(r.code, 0, r.stderr);
    const summary = summaryOf(out);
    t.diagnostic(`faults ${JSON.stringify(summary.faults)}`);
    assert.equal(summary.faults.departures, 1);
    assert.equal(summary.faults.deaths, 0);
    assert.ok(weightsOf(out).equals(reference));
  });
});
