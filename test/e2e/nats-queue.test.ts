// The control plane end to end, with real processes and a real nats-server: a sweep worked
// through by `mtl serve` and a pool of discovering workers; a serving coordinator killed
// mid-job and its job resumed elsewhere from the object store; a NATS restart during a run;
// cancellation; and bad submissions.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { JOBS_STREAM, subjects } from '../../common/control/plane.js';
import { chaosJob, referenceWeights, stepsDone, waitForSteps, weightsOf } from '../helpers/chaos.js';
import { childPids, isAlive, runCli, startCli, type RunningCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { controlPlaneFixture } from '../helpers/control-plane-fixture.js';
import { tempDir } from '../helpers/temp-dirs.js';

/** Two small regression tasks: a run of 40 steps takes a couple of seconds. */
function syntheticJob(steps = 40, checkpointEvery = 10): string {
  const data = (target: number) => ({ dataset: 'synthetic', target, dim: 8, samples: 1000 });
  return writeJob({
    name: 'queued',
    seed: 5,
    model: { trunk: [{ dense: { units: 16, activation: 'relu' } }], heads: { task0: [{ dense: { units: 1 } }], task1: [{ dense: { units: 1 } }] } },
    tasks: { task0: { loss: 'meanSquaredError', metrics: ['mae'], data: data(0) }, task1: { loss: 'meanSquaredError', metrics: ['mae'], data: data(1) } },
    training: { steps, batchSize: 16, optimizer: { name: 'adam', learningRate: 0.01 }, aggregator: { name: 'mgda' } },
    checkpoint: { every: checkpointEvery },
  });
}

async function waitUntil<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function stopAll(processes: RunningCli[]): Promise<void> {
  for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  await Promise.all(processes.map((p) => p.result));
}

void describe('NATS job queue, registry and discovery (real processes)', () => {
  const nats = controlPlaneFixture();


  const statusOf = (runId: string) => nats.registry.get(runId);
  const ended = (runId: string) =>
    waitUntil(`run ${runId} to end`, async () => {
      const r = await statusOf(runId);
      return r && ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined;
    });
  // The resume tests' job and its undisturbed weights, computed once.
  const resumeJob = chaosJob({ steps: 30, checkpoint: { every: 5 } });
  let reference: Promise<Buffer> | undefined;
  const undisturbed = () => (reference ??= referenceWeights(resumeJob));

  void it('a 3-point sweep, mtl serve --concurrency 2 and a worker pool: three succeeded runs with metrics and models', async () => {
    const job = syntheticJob();
    const submit = await runCli(['submit', job, '--nats', nats.server.url, '--sweep', 'training.optimizer.learningRate=0.01,0.02,0.05', '--json']);
    assert.equal(submit.code, 0, submit.stderr);
    const runs = submit.stdout.trim().split('\n').map((l) => JSON.parse(l) as { runId: string; sweep: Record<string, number> });
    assert.deepEqual(runs.map((r) => r.sweep['training.optimizer.learningRate']), [0.01, 0.02, 0.05]);
    for (const { runId } of runs) assert.equal((await statusOf(runId))?.status, 'queued');

    const outRoot = tempDir('mtl-serve-');
    const serve = startCli(['serve', '--nats', nats.server.url, '--concurrency', '2', '--listen', '127.0.0.1:0', '--out-root', outRoot]);
    const workers = [1, 2].map((i) => startCli(['worker', '--nats', nats.server.url, '--pool', 'default', '--name', `pool-${i}`, '--backend', 'wasm']));
    try {
      for (const { runId } of runs) {
        const done = await waitUntil(`run ${runId} to end`, async () => {
          const r = await statusOf(runId);
          return r && ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined;
        });
        assert.equal(done.status, 'succeeded', JSON.stringify(done));
        assert.equal(done.step, 40);
        assert.equal(done.attempts, 1);
        assert.ok(done.losses && Number.isFinite(done.losses.task0) && Number.isFinite(done.losses.task1));
        assert.ok(done.evaluation && Number.isFinite(done.evaluation.task0!.mae));
        assert.equal(done.lease, undefined, 'a finished run holds no lease');
        assert.equal(done.outDir, path.resolve(outRoot, runId));
        assert.ok(existsSync(path.join(outRoot, runId, 'model', 'model.json')));
        const summary = JSON.parse(readFileSync(path.join(outRoot, runId, 'summary.json'), 'utf8')) as { runId: string; status: string };
        assert.deepEqual([summary.runId, summary.status], [runId, 'succeeded']);
      }
      // Each job was acked: nothing is left in the work queue.
      assert.equal((await nats.plane.jsm.streams.info(JOBS_STREAM)).state.messages, 0);
      const table = await runCli(['status', '--nats', nats.server.url]);
      assert.equal(table.code, 0, table.stderr);
      for (const { runId } of runs) assert.match(table.stdout, new RegExp(`${runId}\\s+succeeded\\s+40/40`));
      // The same run history, live or afterwards, from mtl watch.
      const watch = await runCli(['watch', runs[0]!.runId, '--nats', nats.server.url, '--json']);
      assert.equal(watch.code, 0, watch.stderr);
      const lines = watch.stdout.trim().split('\n').map((l) => JSON.parse(l) as { subject: string; type?: string; step?: number });
      assert.deepEqual(lines.filter((l) => l.subject.endsWith('.metrics')).map((l) => l.step), Array.from({ length: 40 }, (_, i) => i + 1));
      assert.ok(lines.some((l) => l.type === 'run-succeeded'));
      assert.ok(lines.some((l) => l.type === 'worker-joined'));
    } finally {
      await stopAll([serve, ...workers]);
    }
    for (const w of workers) assert.equal((await w.result).code, 0, 'a pool worker leaves cleanly on SIGTERM');
    assert.equal((await serve.result).code, 0);
  });

  void it('a coordinator killed mid-job: another one resumes it from the object store, with bitwise the undisturbed weights', async () => {
    const job = resumeJob;
    const reference = await undisturbed();
    const submit = await runCli(['submit', job, '--nats', nats.server.url, '--pool', 'resume']);
    assert.equal(submit.code, 0, submit.stderr);
    const runId = submit.stdout.trim();
    const outRoot = tempDir('mtl-serve-kill-');
    const serveArgs = ['serve', '--nats', nats.server.url, '--pool', 'resume', '--listen', '127.0.0.1:0', '--out-root', outRoot, '--ack-wait', '3', '--lease', '4'];
    const servers = [startCli(serveArgs), startCli(serveArgs)];
    const worker = startCli(['worker', '--nats', nats.server.url, '--run', runId, '--name', 'w', '--reconnect-timeout', '120']);
    try {
      const running = await waitUntil('a checkpoint in the object store', async () => {
        const r = await statusOf(runId);
        return r?.status === 'running' && (r.lastCheckpoint ?? 0) >= 10 ? r : undefined;
      });
      // The lease names the owner's pid: kill exactly that coordinator.
      const pid = Number(running.lease!.owner.split('/')[1]);
      const victim = servers.find((s) => s.child.pid === pid);
      assert.ok(victim, `lease owner ${running.lease!.owner} is one of our servers`);
      victim.child.kill('SIGKILL');
      await victim.result;
      const survivor = servers.find((s) => s !== victim)!;

      const done = await ended(runId);
      assert.equal(done.status, 'succeeded', JSON.stringify(done));
      assert.equal(done.attempts, 2, 'picked up once more after the kill');
      assert.notEqual(done.outDir, undefined);
      const summary = JSON.parse(readFileSync(path.join(done.outDir!, 'summary.json'), 'utf8')) as { resumedFrom?: number; faults: { resumes: number } };
      assert.ok((summary.resumedFrom ?? 0) >= 10, `resumed from the checkpoint (${summary.resumedFrom})`);
      assert.equal(summary.faults.resumes, 1);
      assert.ok(weightsOf(done.outDir!).equals(reference), 'the resumed run ends with other weights than an undisturbed one');
      assert.equal((await worker.result).code, 0, 'the worker found the new coordinator and finished');
      assert.ok(isAlive(survivor.child.pid!));
    } finally {
      await stopAll([...servers, worker]);
    }
  });

  void it('mtl serve stopped with SIGTERM hands its job back at once; another server resumes it bitwise', async () => {
    const reference = await undisturbed();
    const runId = (await runCli(['submit', resumeJob, '--nats', nats.server.url, '--pool', 'handoff'])).stdout.trim();
    const outRoot = tempDir('mtl-serve-handoff-');
    // A long ack wait: only the hand-back (nak), not a redelivery timeout, can move the job quickly.
    const serveArgs = ['serve', '--nats', nats.server.url, '--pool', 'handoff', '--listen', '127.0.0.1:0', '--out-root', outRoot, '--ack-wait', '600'];
    const first = startCli(serveArgs);
    const worker = startCli(['worker', '--nats', nats.server.url, '--run', runId, '--reconnect-timeout', '120']);
    let second: RunningCli | undefined;
    try {
      await waitUntil('a few steps', async () => ((await statusOf(runId))?.step ?? 0) >= 7 || undefined);
      second = startCli(serveArgs);
      first.child.kill('SIGTERM');
      const stopped = await first.result;
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.match(stopped.stdout, new RegExp(`${runId} released: stopped at step \\d+; back in the queue`));
      const done = await ended(runId);
      assert.equal(done.status, 'succeeded', JSON.stringify(done));
      assert.equal(done.attempts, 2);
      const summary = JSON.parse(readFileSync(path.join(done.outDir!, 'summary.json'), 'utf8')) as { resumedFrom?: number };
      assert.ok((summary.resumedFrom ?? 0) >= 7, `resumed from the stop checkpoint (${summary.resumedFrom})`);
      assert.ok(weightsOf(done.outDir!).equals(reference), 'the handed-over run ends with other weights than an undisturbed one');
      assert.equal((await worker.result).code, 0);
    } finally {
      await stopAll([first, worker, ...(second ? [second] : [])]);
    }
  });

  void it('training survives a NATS restart; events and metrics published during the outage arrive after it', async () => {
    // The run must outlast the outage whatever the machine's speed (a step count alone did not:
    // 60 steps ended inside the outage once the compute fast path made steps ~2× faster), so the
    // worker is frozen from a few steps into the outage until NATS is back. A generous
    // deadAfterMs keeps the frozen worker from being declared dead on a loaded machine.
    const steps = 30;
    const job = chaosJob({ steps, fault: { deadAfterMs: 60_000 } });
    const out = tempDir('mtl-nats-restart-');
    // --quiet hides progress and INFO lines; the run id is in one of those, so ask for them.
    const run = startCli(['run', job, '--nats', nats.server.url, '--workers', '1', '--out', out, '--json', '--quiet', '--log-level', 'info']);
    const runId = (await run.waitFor(/registered with the control plane run=(\S+)/))[1]!;
    // A live subscriber (its connection rides out the outage too): when did metrics arrive?
    const received: Array<{ step: number; at: number; training: boolean }> = [];
    const sub = nats.plane.nc.subscribe(subjects.metrics(runId));
    let onMetrics: (() => void) | undefined;
    void (async () => {
      for await (const m of sub) {
        received.push({ step: m.json<{ step: number }>().step, at: Date.now(), training: run.child.exitCode === null });
        onMetrics?.();
      }
    })();
    await waitForSteps(out, 4, run);
    // NATS goes down just after a step's metrics reached the subscriber, so between two
    // publishes: what this test is about is published while the server is down. (A message
    // on its way when the server stops is lost, as core NATS publishing is at most once:
    // stopping it as the step's line reached the disk once lost that step's metrics.)
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no metrics reached the subscriber (${received.length} so far)`)), 60_000);
      onMetrics = () => {
        onMetrics = undefined;
        clearTimeout(timer);
        resolve();
      };
    });
    await nats.server.stop();
    const down = Date.now();
    // Steps taken while NATS is down: their metrics and events wait in the client until it is back.
    await waitForSteps(out, stepsDone(out) + 3, run);
    const [worker] = childPids(run.child.pid!);
    assert.ok(worker !== undefined, 'the local worker is running');
    process.kill(worker, 'SIGSTOP');
    let restarted: number;
    try {
      await sleep(Math.max(0, 2000 - (Date.now() - down)));
      assert.equal(run.child.exitCode, null, 'the run is still going during the outage');
      await nats.server.restart();
      restarted = Date.now();
    } finally {
      process.kill(worker, 'SIGCONT');
    }
    const r = await run.result;
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { runId: string; status: string };
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.runId, runId);
    sub.unsubscribe();
    // Events resumed live: metrics of later steps reached the subscriber while training went on.
    const after = received.filter((x) => x.at > restarted && x.training);
    assert.ok(after.length > 0, `metrics arrived live after the restart (${received.length} in all)`);
    const record = await waitUntil('the final registry entry', async () => {
      const e = await statusOf(summary.runId).catch(() => undefined);
      return e?.status === 'succeeded' ? e : undefined;
    }, 30_000);
    assert.equal(record.step, steps);
    assert.equal(record.droppedEvents, 0);
    const watch = await runCli(['watch', summary.runId, '--nats', nats.server.url, '--json']);
    assert.equal(watch.code, 0, watch.stderr);
    const lines = watch.stdout.trim().split('\n').map((l) => JSON.parse(l) as { subject: string; type?: string; step?: number });
    // Every step exactly once, in order, including those taken while NATS was down.
    assert.deepEqual(lines.filter((l) => l.subject.endsWith('.metrics')).map((l) => l.step), Array.from({ length: steps }, (_, i) => i + 1));
    assert.ok(lines.some((l) => l.type === 'run-succeeded'));
  });

  void it('mtl cancel: a queued run leaves the queue; a running one stops and is recorded as cancelled', async () => {
    const job = syntheticJob(100_000, 0);
    const queued = await runCli(['submit', job, '--nats', nats.server.url, '--pool', 'nobody']);
    const queuedId = queued.stdout.trim();
    const before = (await nats.plane.jsm.streams.info(JOBS_STREAM)).state.messages;
    assert.equal((await runCli(['cancel', queuedId, '--nats', nats.server.url])).code, 0);
    assert.equal((await statusOf(queuedId))?.status, 'cancelled');
    assert.equal((await nats.plane.jsm.streams.info(JOBS_STREAM)).state.messages, before - 1);
    const again = await runCli(['cancel', queuedId, '--nats', nats.server.url]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already been cancelled/);
    const unknown = await runCli(['cancel', 'no-such-run', '--nats', nats.server.url]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no run no-such-run/);

    const submitted = await runCli(['submit', job, '--nats', nats.server.url, '--pool', 'cancel']);
    const runId = submitted.stdout.trim();
    const serve = startCli(['serve', '--nats', nats.server.url, '--pool', 'cancel', '--listen', '127.0.0.1:0', '--out-root', tempDir('mtl-serve-cancel-')]);
    const worker = startCli(['worker', '--nats', nats.server.url, '--run', runId]);
    try {
      await waitUntil('training', async () => ((await statusOf(runId))?.step ?? 0) > 3 || undefined);
      const cancel = await runCli(['cancel', runId, '--nats', nats.server.url]);
      assert.equal(cancel.code, 0, cancel.stderr);
      const done = await waitUntil('the cancellation', async () => {
        const r = await statusOf(runId);
        return r?.status === 'cancelled' ? r : undefined;
      }, 30_000);
      assert.ok(done.step < 100_000);
      await serve.waitFor(new RegExp(`${runId} cancelled`));
      // The coordinator dismissed its worker, saying why.
      assert.match((await worker.result).stderr, /cancelled \(mtl cancel\)/);
    } finally {
      await stopAll([serve, worker]);
    }
  });

  void it('refuses a bad sweep (exit 2, the path named) and queues nothing', async () => {
    const before = (await nats.plane.jsm.streams.info(JOBS_STREAM)).state.messages;
    const registered = (await nats.registry.list()).length;
    const r = await runCli(['submit', syntheticJob(), '--nats', nats.server.url, '--sweep', 'training.optimizer.learningRate=0.1,-2']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /training\.optimizer\.learningRate: .*sweep point training\.optimizer\.learningRate=-2/);
    assert.equal((await nats.plane.jsm.streams.info(JOBS_STREAM)).state.messages, before);
    assert.equal((await nats.registry.list()).length, registered, 'not even the valid point was registered');
  });
});
