// Run directories across runs: --out never silently replaces another run, --resume continues
// with the run's own worker count and wall time, and a finished run is not trained again.
// Real `mtl run` / `mtl coordinator` processes and files.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { waitForSteps } from '../helpers/chaos.js';
import { runCli, startCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { tinyJob } from '../helpers/security.js';
import { tempDir } from '../helpers/temp-dirs.js';

interface Summary {
  runId: string;
  status: string;
  stepsCompleted: number;
  wallTimeS: number;
  workers: number;
  resumedFrom?: number;
}

const summaryOf = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'summary.json'), 'utf8')) as Summary;
const read = (dir: string, file: string) => readFileSync(path.join(dir, file), 'utf8');

void describe('--out of an earlier run', () => {
  void it('is refused (exit 2), naming the directory and the run in it, and nothing of it is touched; --force replaces it', async () => {
    const out = path.join(tempDir('mtl-reuse-'), 'run');
    const first = await runCli(['run', writeJob(tinyJob(4)), '--out', out, '--backend', 'cpu', '--quiet', '--json']);
    assert.equal(first.code, 0, first.stderr);
    const before = { summary: read(out, 'summary.json'), metrics: read(out, 'metrics.jsonl'), job: read(out, 'job.yaml') };
    const { runId } = JSON.parse(first.stdout) as Summary;

    const other = writeJob({ ...tinyJob(6), name: 'another' });
    const again = await runCli(['run', other, '--out', out, '--backend', 'cpu', '--quiet']);
    assert.equal(again.code, 2, again.stderr);
    assert.ok(again.stderr.includes(`${out} already holds run ${runId} of job "tiny", succeeded after 4/4 steps; job.yaml, summary.json, metrics.jsonl`), again.stderr);
    assert.match(again.stderr, /--force/);
    const coordinator = await runCli(['coordinator', other, '--listen', '127.0.0.1:0', '--out', out]);
    assert.equal(coordinator.code, 2, 'mtl coordinator refuses too');
    assert.deepEqual({ summary: read(out, 'summary.json'), metrics: read(out, 'metrics.jsonl'), job: read(out, 'job.yaml') }, before, 'the earlier run is intact');

    const forced = await runCli(['run', other, '--out', out, '--backend', 'cpu', '--quiet', '--force', '--json']);
    assert.equal(forced.code, 0, forced.stderr);
    const replaced = summaryOf(out);
    assert.notEqual(replaced.runId, runId);
    assert.equal(replaced.stepsCompleted, 6);
  });

  void it('a directory holding other files only (no run) is used, and they are kept', async () => {
    const out = tempDir('mtl-reuse-notes-');
    writeFileSync(path.join(out, 'notes.txt'), 'mine');
    const r = await runCli(['run', writeJob(tinyJob(2)), '--out', out, '--backend', 'cpu', '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(read(out, 'notes.txt'), 'mine');
  });
});

void describe('--resume', () => {
  void it('of a run that succeeded: exit 0, "already succeeded", its summary again, nothing trained', async () => {
    const out = tempDir('mtl-done-');
    // With checkpoints, the last of them at the final step: there is something to resume from.
    const first = await runCli(['run', writeJob({ ...tinyJob(4), checkpoint: { every: 2 } }), '--out', out, '--backend', 'cpu', '--quiet', '--json']);
    assert.equal(first.code, 0, first.stderr);
    const before = { summary: read(out, 'summary.json'), metrics: read(out, 'metrics.jsonl'), events: read(out, 'events.jsonl') };
    for (const args of [['run', '--resume', out, '--json'], ['coordinator', '--resume', out, '--listen', '127.0.0.1:0', '--json']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /already succeeded \(4\/4 steps\); nothing to resume/);
      assert.deepEqual(JSON.parse(r.stdout), JSON.parse(first.stdout), 'the stored summary, as printed when the run finished');
      assert.deepEqual({ summary: read(out, 'summary.json'), metrics: read(out, 'metrics.jsonl'), events: read(out, 'events.jsonl') }, before, `${args[0]} trained nothing`);
    }
    const other = await runCli(['run', writeJob(tinyJob(5)), '--resume', out]);
    assert.equal(other.code, 2, 'another job named with --resume is still refused');
    assert.match(other.stderr, /not the job of the run in .*, which has already succeeded/);
  });

  void it('continues with the run\'s own worker count, says where it resumed, and its wallTimeS covers both segments', async () => {
    const out = tempDir('mtl-resume-workers-');
    const first = startCli(['run', writeJob(tinyJob(300)), '--workers', '2', '--backend', 'cpu', '--out', out, '--quiet']);
    await waitForSteps(out, 20, first);
    first.child.kill('SIGTERM');
    const stopped = await first.result;
    assert.equal(stopped.code, 143, stopped.stderr);
    const segment1 = summaryOf(out);
    assert.equal(segment1.status, 'stopped');
    const wrongJob = await runCli(['run', writeJob(tinyJob(301)), '--resume', out]);
    assert.equal(wrongJob.code, 2, 'a stopped run resumes with its own job only');
    assert.match(wrongJob.stderr, /not the job that wrote the checkpoints in /);

    const resumed = await runCli(['run', '--resume', out, '--backend', 'cpu']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /INFO {2}coordinator: resumed at step \d+ /);
    assert.match(resumed.stderr, /waiting for workers have=0 need=2/);
    const summary = summaryOf(out);
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.workers, 2);
    assert.ok(summary.resumedFrom !== undefined && summary.resumedFrom >= 20);
    // The second segment's own length, from its events: wallTimeS must be the first's plus about
    // that. Not exactly: the first segment's time is counted up to its last checkpoint (its summary
    // was written a little later), and the events bracket the segment a little wider than its
    // clock. Half a second of slack is far less than the first segment (two worker processes
    // starting, 20 steps), which a count of the second alone would miss.
    const events = read(out, 'events.jsonl').trim().split('\n').map((l) => JSON.parse(l) as { type: string; time: string });
    const from = Date.parse(events.find((e) => e.type === 'run-resumed')!.time);
    const to = Date.parse(events.find((e) => e.type === 'run-succeeded')!.time);
    assert.ok(summary.wallTimeS >= segment1.wallTimeS + (to - from) / 1000 - 0.5, `wallTimeS ${summary.wallTimeS} s: first segment ${segment1.wallTimeS} s, second at least ${(to - from) / 1000} s`);
  });

  void it('an explicit --workers still wins over the remembered count', async () => {
    const out = tempDir('mtl-resume-explicit-');
    const address = '127.0.0.1:0';
    const first = startCli(['coordinator', writeJob(tinyJob(3000)), '--listen', address, '--workers', '2', '--out', out]);
    const listening = await first.waitFor(/listening address=(\S+)/);
    const workers = [1, 2].map(() => startCli(['worker', '--coordinator', listening[1]!, '--backend', 'cpu']));
    await waitForSteps(out, 10, first);
    first.child.kill('SIGTERM');
    assert.equal((await first.result).code, 143);
    await Promise.all(workers.map((w) => w.result));

    const second = startCli(['coordinator', '--resume', out, '--listen', address, '--workers', '1']);
    await second.waitFor(/waiting for workers have=0 need=1/);
    second.child.kill('SIGTERM');
    assert.equal((await second.result).code, 143);
  });
});
