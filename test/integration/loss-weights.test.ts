// Heads follow the method: when an aggregator returns loss weights, each head's gradient is
// scaled by its task's weight; the trunk takes the aggregated direction. Checked on the
// weights after one SGD step, against a run with plain mean.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadJobFile } from '../../common/job-spec.js';
import { silentLogger } from '../../common/logging.js';
import { createAggregator } from '../../coordinator/aggregation/registry.js';
import type { Aggregator } from '../../coordinator/aggregation/types.js';
import { Coordinator } from '../../coordinator/coordinator.js';
import { prepareRun } from '../../coordinator/prepare-run.js';
import { startCli } from '../helpers/cli-process.js';
import { smallMultiMnistJob, writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';
import { initialWeights, loadExportedModel, weightsByName } from '../helpers/training-runs.js';

const JOB = writeJob(smallMultiMnistJob({ steps: 1, shardsPerTask: 1, dropout: 0, optimizer: { name: 'sgd', learningRate: 0.5 } }));

/** Trains one step with `aggregator` and returns the final weights by tfjs weight name. */
async function oneStep(aggregator: Aggregator): Promise<Map<string, Float32Array>> {
  const prepared = { ...prepareRun(loadJobFile(JOB)), aggregator };
  const out = tempDir('mtl-lw-');
  const coordinator = new Coordinator({ prepared, listen: '127.0.0.1:0', outDir: out, minWorkers: 1, waitForWorkersMs: 60_000, logger: silentLogger });
  const worker = startCli(['worker', '--coordinator', await coordinator.listen(), '--backend', 'cpu']);
  const summary = await coordinator.runToCompletion();
  await coordinator.close();
  await worker.result;
  assert.equal(summary.status, 'succeeded', JSON.stringify(summary.error));
  const model = await loadExportedModel(out);
  const weights = weightsByName(model);
  model.dispose();
  return weights;
}

void describe('loss weights', () => {
  void it('scale each head by its task weight and leave the trunk to the direction', async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
    const initial = initialWeights(JOB);
    const mean = createAggregator('mean');
    const base = await oneStep(mean);
    // Same direction as mean, but loss weights 2 (left) and 0 (right).
    const scaled = await oneStep({
      name: 'scaled-heads',
      aggregate: (input) => ({ ...mean.aggregate(input), lossWeights: [2, 0] }),
      state: () => null,
      restore: () => undefined,
    });
    let checked = 0;
    for (const [name, init] of initial) {
      const a = base.get(name)!;
      const b = scaled.get(name)!;
      if (name.startsWith('trunk_')) {
        assert.deepEqual(b, a, `${name}: the trunk follows the direction only`);
      } else if (name.startsWith('right/')) {
        assert.deepEqual(b, init, `${name}: weight 0 leaves the head where it was`);
      } else {
        assert.ok(name.startsWith('left/'));
        let moved = 0;
        for (let k = 0; k < init.length; k++) {
          const stepA = a[k]! - init[k]!;
          const stepB = b[k]! - init[k]!;
          assert.ok(Math.abs(stepB - 2 * stepA) <= 1e-6 * (1 + Math.abs(init[k]!)), `${name}[${k}]: ${stepB} vs 2 × ${stepA}`);
          if (stepA !== 0) moved++;
        }
        assert.ok(moved > 0, `${name} moved`);
      }
      checked++;
    }
    assert.ok(checked >= 6);
  });
});
