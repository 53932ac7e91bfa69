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
  for (const compression of ['fp16', 'bf16']) {
    void it(`${compression}: 1 and 2 workers agree bitwise, and the run learns like float32`, async () => {
      const base = smallMultiMnistJob({ steps: 40, shardsPerTask: 2, dropout: 0 });
      const job = { ...base, transport: { compression } };
      const [one, two, f32] = [await train(job, 1), await train(job, 2), await train(base, 2)];
      assert.ok(weightsOf(one.out).equals(weightsOf(two.out)), `${compression}: 1 and 2 workers end with different weights`);
      assert.ok(!weightsOf(two.out).equals(weightsOf(f32.out)), 'the compressed run is not the float32 run');
      for (const task of ['left', 'right']) {
        // 40 steps of a tiny model: well above chance (0.1), and within rounding of float32.
        assert.ok(two.accuracy[task]! > 0.15, `${task} learns (${two.accuracy[task]})`);
        assert.ok(Math.abs(two.accuracy[task]! - f32.accuracy[task]!) < 0.03, `${task}: ${compression} ${two.accuracy[task]} vs float32 ${f32.accuracy[task]}`);
      }
    });
  }
});
