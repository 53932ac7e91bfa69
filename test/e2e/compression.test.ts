// transport.compression end to end: gradients and weights travel as 16-bit values; the run
// stays deterministic (1 and 2 workers bitwise equal), trains, and differs from float32 only
// by the rounding.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli-process.js';
import { weightsOf } from '../helpers/chaos.js';
import { smallMultiMnistJob, writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';

async function train(job: object, workers: number): Promise<{ out: string; accuracy: Record<string, number> }> {
  const out = tempDir('mtl-compress-');
  const r = await runCli(['run', writeJob(job), '--workers', String(workers), '--out', out, '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { tasks: Record<string, { accuracy: number }> };
  return { out, accuracy: Object.fromEntries(Object.entries(s.tasks).map(([t, v]) => [t, v.accuracy])) };
}

void describe('transport compression', () => {
  void it('fp16: 1 and 2 workers agree bitwise; fp16 and bf16 runs learn like float32 and differ from it only by rounding', async () => {
    const base = smallMultiMnistJob({ steps: 40, shardsPerTask: 2, dropout: 0 });
    const f32 = await train(base, 2);
    const one = await train({ ...base, transport: { compression: 'fp16' } }, 1);
    const runs = { fp16: await train({ ...base, transport: { compression: 'fp16' } }, 2), bf16: await train({ ...base, transport: { compression: 'bf16' } }, 2) };
    assert.ok(weightsOf(one.out).equals(weightsOf(runs.fp16.out)), 'fp16: 1 and 2 workers end with different weights');
    for (const [compression, run] of Object.entries(runs)) {
      assert.ok(!weightsOf(run.out).equals(weightsOf(f32.out)), `the ${compression} run is not the float32 run`);
      for (const task of ['left', 'right']) {
        // 40 steps of a tiny model: well above chance (0.1), and within rounding of float32.
        assert.ok(run.accuracy[task]! > 0.15, `${compression} ${task} learns (${run.accuracy[task]})`);
        assert.ok(Math.abs(run.accuracy[task]! - f32.accuracy[task]!) < 0.03, `${task}: ${compression} ${run.accuracy[task]} vs float32 ${f32.accuracy[task]}`);
      }
    }
  });
});
