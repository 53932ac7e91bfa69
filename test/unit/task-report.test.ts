// What `mtl validate` says of each task's data beyond its description: how the split is made
// for every kind of dataset, the columns or arrays read, and long class lists shortened.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { bindTasks } from '../../common/datasets/index.js';
import { validateJob } from '../../common/job-spec.js';
import { reportLines, shortList, splitDescription, taskDataReport } from '../../cli/task-report.js';
import { tempDir } from '../helpers/temp-dirs.js';

function dataOf(data: Record<string, unknown>, loss = 'meanSquaredError') {
  const job = validateJob(
    {
      name: 'report',
      model: { heads: { t: [{ dense: { units: 1 } }] } },
      tasks: { t: { loss, data } },
      training: { steps: 1, batchSize: 1, optimizer: { name: 'sgd', learningRate: 0.1 } },
    },
    'job.yaml',
  );
  return job.tasks.t!.data;
}

void describe('mtl validate: the per-task data report', () => {
  void it('says how the split is made, for each kind of dataset', () => {
    const table = { dataset: 'csv', path: 'a.csv', features: ['x'], target: 'y' };
    assert.equal(splitDescription(dataOf(table)), 'seeded fraction 0.2 (seed 0)');
    assert.equal(splitDescription(dataOf({ ...table, testFraction: 0.3, seed: 7 })), 'seeded fraction 0.3 (seed 7)');
    assert.equal(splitDescription(dataOf({ ...table, test: 'test-*.csv' })), 'test file(s) test-*.csv');
    assert.equal(splitDescription(dataOf({ ...table, split: { column: 'set', test: ['test', 'val'] } })), 'column `set` in [test, val]');
    assert.equal(splitDescription(dataOf({ dataset: 'synthetic', target: 0, seed: 2 })), 'seeded fraction 0.2 (seed 2)');
    assert.equal(splitDescription(dataOf({ dataset: 'npy', inputs: 'x.npy', target: 'y.npy', test: { inputs: 'tx.npy', target: 'ty.npy' } })), 'test arrays tx.npy (inputs) and ty.npy (target)');
    assert.equal(splitDescription(dataOf({ dataset: 'images', path: 'imgs', target: 'folder', size: [8, 8] })), 'seeded fraction 0.2 (seed 0)');
    assert.match(splitDescription(dataOf({ dataset: 'multimnist', target: 'left', testSize: 500 }, 'sparseCategoricalCrossentropy')), /^500 test images drawn from the MNIST digits held out by seeded fraction 0\.15 \(seed 0\)$/);
  });

  void it('lists the columns read and the classes, shortening more than 10 labels with …', () => {
    assert.equal(shortList(['a', 'b']), 'a, b');
    assert.equal(shortList(Array.from({ length: 12 }, (_, i) => `c${i}`)), 'c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, … (12)');

    const dir = tempDir('mtl-task-report-');
    writeFileSync(path.join(dir, 'a.csv'), ['x,z,label', ...Array.from({ length: 24 }, (_, i) => `${i},${-i},k${i % 12}`)].join('\n'));
    const data = dataOf({ dataset: 'csv', path: 'a.csv', features: ['x', 'z'], target: 'label', testFraction: 0.25 });
    const b = bindTasks({ t: { loss: 'sparseCategoricalCrossentropy', data } }, dir).get('t')!;
    const report = taskDataReport(data, b);
    assert.deepEqual(report.rows, { train: 18, test: 6 });
    assert.deepEqual(report.columns, { features: ['x', 'z'], targets: ['label'] });
    assert.ok(report.classes !== null && 'count' in report.classes && report.classes.count === 12 && report.classes.labels.length === 12, 'the JSON keeps every label');
    assert.deepEqual(reportLines(report), [
      'rows: 18 train / 6 test; split: seeded fraction 0.25 (seed 0)',
      'reads: x, z → target label',
      'classes: 12 (k0, k1, k10, k11, k2, k3, k4, k5, k6, k7, … (12))',
    ]);
  });
});
