// What happens when things stop: a worker dies mid-run, the user presses Ctrl-C (SIGTERM),
// the launcher itself is killed. The run must end with a clear message and leave no
// worker processes behind.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { childPids, isAlive, startCli } from '../helpers/cli-process.js';
import { smallMultiMnistJob, writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';

const LONG_JOB = () => writeJob(smallMultiMnistJob({ steps: 100000, shardsPerTask: 1 }));

async function waitUntilGone(pids: number[], timeoutMs = 10_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let alive = pids.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(100);
    alive = alive.filter(isAlive);
  }
  return alive;
}

/** Resolves once the run has written `lines` step records. */
async function stepsWritten(out: string, lines: number, timeoutMs = 120_000): Promise<void> {
  const file = path.join(out, 'metrics.jsonl');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(file) && readFileSync(file, 'utf8').split('\n').length > lines) return;
    await sleep(50);
  }
  throw new Error(`no ${lines} steps in ${file} after ${timeoutMs} ms`);
}

async function startedRun(workers: number) {
  const out = tempDir('mtl-fail-');
  const run = startCli(['run', LONG_JOB(), '--workers', String(workers), '--out', out]);
  try {
    await Promise.race([stepsWritten(out, 3), run.result.then((r) => Promise.reject(new Error(`run exited early: ${r.stderr}`)))]);
    const pids = childPids(run.child.pid!);
    assert.equal(pids.length, workers, `expected ${workers} worker processes, found ${pids.length}`);
    return { run, out, pids };
  } catch (err) {
    // The run has 100000 steps: left going, its pipes would hold this file open for hours.
    run.child.kill('SIGKILL');
    throw err;
  }
}

void describe('failures and shutdown', () => {
  void it('fails the run with a clear message when all its workers are killed mid-run, and leaves no orphan', async () => {
    const { run, out, pids } = await startedRun(2);
    process.kill(pids[0]!, 'SIGKILL');
    process.kill(pids[1]!, 'SIGKILL');
    const r = await run.result;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /all 2 local worker\(s\) exited/);
    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { status: string; error: { code: string } };
    assert.equal(summary.status, 'failed');
    assert.equal(summary.error.code, 'WORKER_LOST');
    assert.deepEqual(await waitUntilGone(pids), []);
  });

  void it('stops cleanly on SIGTERM: exit 143, summary says stopped, workers gone', async () => {
    const { run, out, pids } = await startedRun(2);
    run.child.kill('SIGTERM');
    const r = await run.result;
    assert.equal(r.code, 143, r.stderr);
    assert.match(r.stderr, /received SIGTERM/);
    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { status: string };
    assert.equal(summary.status, 'stopped');
    assert.deepEqual(await waitUntilGone(pids), []);
  });

  void it('fails clearly when the workers cannot start (an unavailable backend)', async () => {
    const r = await startCli(['run', writeJob(smallMultiMnistJob({ steps: 2 })), '--workers', '2', '--backend', 'tensorflow', '--out', tempDir('mtl-nobackend-')]).result;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /backend "tensorflow" is not available .*@tensorflow\/tfjs-node-gpu/);
    assert.match(r.stderr, /worker-\d exited \(code 1\) before joining the run/);
  });

  void it('workers exit on their own when the launcher is killed with SIGKILL', async () => {
    const { run, pids } = await startedRun(2);
    run.child.kill('SIGKILL');
    await run.result;
    assert.deepEqual(await waitUntilGone(pids), []);
  });
});
