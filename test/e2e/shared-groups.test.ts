// A model whose tower two of three tasks share, through the product: `mtl validate` names the
// partly shared layer, and `mtl run` aggregates it over its two tasks (one aggregation per task
// set) to bitwise the same weights with 1 and 2 workers.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';

const MODULE = `
export default function build(tf) {
  const x = tf.input({ shape: [12], name: 'x' });
  const trunk = tf.layers.dense({ units: 8, activation: 'relu', name: 'trunk' }).apply(x);
  const pair = tf.layers.dense({ units: 6, activation: 'relu', name: 'pair' }).apply(trunk);
  const out = (name, from) => tf.layers.dense({ units: 1, name }).apply(from);
  return tf.model({ inputs: x, outputs: [out('out_a', pair), out('out_b', pair), out('out_c', trunk)] });
}
`;

void describe('shared parameters by task set, end to end', () => {
  const dir = tempDir('mtl-groups-job-');
  writeFileSync(path.join(dir, 'three.mjs'), MODULE);
  const data = (target: number) => ({ dataset: 'synthetic', tasks: 3, target, dim: 12, samples: 200 });
  const task = (t: string, target: number) => ({ output: `out_${t}`, loss: 'meanSquaredError', data: data(target) });
  const jobFile = writeJob(
    {
      name: 'groups',
      seed: 2,
      model: { module: './three.mjs' },
      tasks: { a: task('a', 0), b: task('b', 1), c: task('c', 2) },
      training: { steps: 8, batchSize: 8, shardsPerTask: 2, aggregator: { name: 'upgrad' }, optimizer: { name: 'adam', learningRate: 0.01 } },
    },
    dir,
  );

  void it('validate names the layer only some tasks reach', async () => {
    const r = await runCli(['validate', jobFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /note: pair feeds some but not all tasks/);
    assert.match(r.stdout, /pair\s+Dense\s+2\s+54\s+shared\s+a, b\n/);
  });

  void it('trains to bitwise the same weights with 1 and 2 workers', async () => {
    const weights: Buffer[] = [];
    for (const workers of [1, 2]) {
      const out = tempDir(`mtl-groups-${workers}-`);
      const r = await runCli(['run', jobFile, '--workers', String(workers), '--out', out, '--quiet']);
      assert.equal(r.code, 0, r.stderr);
      weights.push(readFileSync(path.join(out, 'model', 'weights.bin')));
    }
    assert.ok(weights[0]!.equals(weights[1]!), 'weights differ between 1 and 2 workers');
  });
});
