// The determinism rule of docs/design.md: the same seed and backend give bitwise the same final weights
// whatever the number of workers (and so whichever worker computed which unit).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli-process.js';
import { smallMultiMnistJob, writeJob } from '../helpers/jobs.js';
import { relativeError } from '../helpers/numeric.js';
import { tempDir } from '../helpers/temp-dirs.js';

async function trainedWeights(jobFile: string, workers: number): Promise<Buffer> {
  const out = tempDir(`mtl-det-${workers}-`);
  const r = await runCli(['run', jobFile, '--workers', String(workers), '--out', out, '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  return readFileSync(path.join(out, 'model', 'weights.bin'));
}

void describe('determinism', () => {
  void it('gives bitwise identical weights with 1 and 3 workers (conv, dropout, 2 shards per task, wasm)', async () => {
    // Three shards per task and two tasks: 6 units a step, spread differently over 1 and 3 workers.
    const jobFile = writeJob(smallMultiMnistJob({ steps: 12, shardsPerTask: 3 }));
    const one = await trainedWeights(jobFile, 1);
    const three = await trainedWeights(jobFile, 3);
    assert.equal(one.length, three.length);
    assert.ok(one.equals(three), 'weights differ between 1 and 3 workers');
  });

  // A short job on the fast path, trained once: the autodiff test's comparison and the seed
  // test's first run.
  const shortJob = smallMultiMnistJob({ steps: 4, shardsPerTask: 1, dropout: 0 }) as Record<string, unknown>;
  let shortRun: Promise<Buffer> | undefined;
  const shortWeights = () => (shortRun ??= trainedWeights(writeJob(shortJob), 1));

  void it("compute.fastPath false (tfjs autodiff everywhere) trains to the fast path's weights within 1e-4", async () => {
    // On this model (ReLU before the pool) the two even agree bitwise; the setting's wiring into
    // the workers is checked in test/unit/trunk-tape.test.ts.
    const job = shortJob;
    const fast = await shortWeights();
    const autodiff = await trainedWeights(writeJob({ ...job, compute: { fastPath: false } }), 1);
    const [a, b] = [fast, autodiff].map((w) => new Float32Array(w.buffer, w.byteOffset, w.byteLength / 4));
    assert.equal(a!.length, b!.length);
    assert.ok(relativeError(a!, b!) < 1e-4, `relative difference ${relativeError(a!, b!)}`);
  });

  void it('changes the weights when the seed changes (the comparison above can fail)', async () => {
    const a = await shortWeights();
    assert.notEqual(shortJob.seed, 8);
    const b = await trainedWeights(writeJob({ ...shortJob, seed: 8 }), 1);
    assert.equal(a.length, b.length);
    assert.ok(!a.equals(b));
  });
});
