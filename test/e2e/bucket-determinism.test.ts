// Gradient buckets change no bit (docs/design.md): a run whose workers stream every layer's
// gradient as its own bucket, the coordinator accumulating H block by block as they come, ends
// with bitwise the weights of one whose workers send each gradient whole at the end.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli-process.js';
import { smallMultiMnistJob, writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';

async function trainedWeights(job: object, bucketBytes: number, workers: number, compression = 'none'): Promise<Buffer> {
  const out = tempDir(`mtl-buckets-${bucketBytes}-`);
  const jobFile = writeJob({ ...job, transport: { compression, bucketBytes } });
  const r = await runCli(['run', jobFile, '--workers', String(workers), '--out', out, '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  return readFileSync(path.join(out, 'model', 'weights.bin'));
}

void describe('gradient buckets', () => {
  void it('give bitwise the same weights with one bucket per layer (2 workers) as with whole gradients (1 worker), 3 shards per task', async () => {
    const job = smallMultiMnistJob({ steps: 8, shardsPerTask: 3 });
    const whole = await trainedWeights(job, 0, 1);
    const layered = await trainedWeights(job, 4, 2);
    assert.equal(whole.length, layered.length);
    assert.ok(whole.equals(layered), 'weights differ between bucketBytes 0 and 4');
  });

  void it('give bitwise the same weights compressed (fp16), whole or in 4 KiB buckets', async () => {
    const job = smallMultiMnistJob({ steps: 5, shardsPerTask: 2 });
    const whole = await trainedWeights(job, 0, 1, 'fp16');
    const bucketed = await trainedWeights(job, 4096, 1, 'fp16');
    assert.ok(whole.equals(bucketed), 'fp16 weights differ between bucketBytes 0 and 4096');
  });
});
