// MMoE and CGC models trained end to end by real worker processes: the exported model loads with
// tf.loadLayersModel and reproduces the run's held-out metrics; 1 and 2 workers agree bitwise.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadSynthetic } from '../../common/datasets/synthetic.js';
import { fileSystemModel } from '../../common/model-files.js';
import { runCli } from '../helpers/cli-process.js';
import { weightsOf } from '../helpers/chaos.js';
import { writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';

const DATA = { dataset: 'synthetic' as const, tasks: 2, dim: 10, rho: 0.3, samples: 1000, noise: 0.1, testFraction: 0.2, seed: 0 };

function expertsJob(experts: Record<string, unknown>): object {
  return {
    name: `${String(experts.type)}-e2e`,
    seed: 5,
    model: {
      trunk: [{ dense: { units: 8, activation: 'relu' } }],
      experts: { ...experts, layers: [{ dense: { units: 6, activation: 'relu' } }] },
      heads: { t0: [{ dense: { units: 1 } }], t1: [{ dense: { units: 1 } }] },
    },
    tasks: { t0: { loss: 'meanSquaredError', metrics: ['mse'], data: { ...DATA, target: 0 } }, t1: { loss: 'meanSquaredError', metrics: ['mse'], data: { ...DATA, target: 1 } } },
    training: { steps: 40, batchSize: 32, shardsPerTask: 2, optimizer: { name: 'adam', learningRate: 0.01 }, aggregator: { name: 'upgrad' } },
  };
}

void describe('mixture-of-experts end to end', () => {
  for (const experts of [{ type: 'mmoe', shared: 3 }, { type: 'cgc', shared: 2, perTask: 1 }]) {
    void it(`trains a ${experts.type} model on synthetic with 2 workers; the exported model loads and reproduces the held-out mse; 1 worker gives the same weights`, async () => {
      const jobFile = writeJob(expertsJob(experts));
      const out = tempDir(`mtl-${experts.type}-`);
      const r = await runCli(['run', jobFile, '--workers', '2', '--out', out, '--quiet']);
      assert.equal(r.code, 0, r.stderr);
      const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { tasks: Record<string, { mse: number }> };

      tf.enableProdMode();
      await tf.setBackend('cpu');
      const model = await tf.loadLayersModel(fileSystemModel(path.join(out, 'model')));
      const ds = loadSynthetic({ ...DATA, target: 0 });
      const n = ds.test.size;
      const idx = Uint32Array.from({ length: n }, (_, i) => i);
      const x = new Float32Array(n * DATA.dim);
      ds.test.inputs(idx, x);
      const outputs = model.predict(tf.tensor(x, [n, DATA.dim])) as tf.Tensor[];
      ['t0', 't1'].forEach((task, i) => {
        const y = new Float32Array(n);
        ds.test.targets(String(i), idx, y);
        const p = Array.from(outputs[i]!.dataSync());
        const mse = p.reduce((s: number, v: number, k: number) => s + (v - y[k]!) ** 2, 0) / n;
        const reported = summary.tasks[task]!.mse;
        assert.ok(Math.abs(mse - reported) < 1e-4 * reported, `${task}: exported model mse ${mse}, run reported ${reported}`);
      });
      tf.dispose(outputs);
      model.dispose();

      const one = tempDir(`mtl-${experts.type}-1-`);
      const r1 = await runCli(['run', jobFile, '--workers', '1', '--out', one, '--quiet']);
      assert.equal(r1.code, 0, r1.stderr);
      assert.ok(weightsOf(one).equals(weightsOf(out)), '1 and 2 workers end with different weights');
    });
  }
});
