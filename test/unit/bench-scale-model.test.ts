// The memory formula and job shape behind `npm run bench -- scale`, against hand counts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildLayout } from '../../common/parameter-layout.js';
import { validateJob } from '../../common/job-spec.js';
import { bucketSchedule, memoryModel, SCALE_INPUT_DIM, scaleJob, shardsFor, stepEfficiencies } from '../../bench/scale-model.js';

void describe('scale benchmark model', () => {
  void it('builds a job with about P shared parameters and one unit per worker', () => {
    const config = { p: 1e6, workers: 32, tasks: 8, steps: 2 };
    const job = validateJob(scaleJob(config), 'bench');
    const layout = buildLayout(job, [SCALE_INPUT_DIM]);
    // units = round(1e6 / 1001) = 999: kernel 1000·999 + bias 999.
    assert.equal(layout.shared.size, 1000 * 999 + 999);
    assert.equal(layout.tasks.length, 8);
    assert.equal(shardsFor(config), 4);
    assert.equal(job.training.shardsPerTask, 4);
  });

  void it('adds up the buffers of the formula', () => {
    // Ps = 100, two heads of 10: Ptot = 120, u = 110 per task.
    const layout = {
      totalSize: 120,
      shared: { group: 'shared', offset: 0, size: 100, tensors: [] },
      tasks: ['a', 'b'],
      headGroups: new Map([
        ['a', { group: 'task:a', offset: 100, size: 10, tensors: [] }],
        ['b', { group: 'task:b', offset: 110, size: 10, tensors: [] }],
      ]),
    };
    const one = memoryModel(layout, { p: 100, workers: 1, tasks: 2, steps: 1 }, 1000);
    // 4·120·(1 + 1 + 2 + 1 + 2) = 3360, units 4·1·220 = 880.
    assert.equal(one.bytes, 1000 + 3360 + 880);
    const four = memoryModel(layout, { p: 100, workers: 4, tasks: 2, steps: 1 });
    // S = 2: units 4·2·220 = 1760, combined 4·220 = 880.
    assert.equal(four.bytes, 3360 + 1760 + 880);
  });
});

void describe('scale-sim efficiency', () => {
  void it('holds each step against the busiest worker’s computed units', () => {
    // Steps 1 and 2 (0-based); step 1: w0 computed 2 units, w1 one; step 2: one each.
    const computed = { '0': { w0: 4 }, '1': { w0: 2, w1: 1 }, '2': { w0: 1, w1: 1 } };
    const eff = stepEfficiencies([250, 125], 1, computed, 100);
    assert.deepEqual(
      eff.map((e) => [e.step, e.maxUnitsPerWorker, e.idealMs, e.measuredMs, e.efficiency]),
      [
        [1, 2, 200, 250, 0.8],
        [2, 1, 100, 125, 0.8],
      ],
    );
  });

  void it('leaves out steps in which no unit was computed', () => {
    assert.deepEqual(stepEfficiencies([300, 100], 1, { '2': { w0: 1 } }, 50).map((e) => e.step), [2]);
    assert.deepEqual(stepEfficiencies([300], 1, {}, 50), []);
  });
});

void describe('scale-sim simulated compute', () => {
  void it('sends the gradient in buckets, last bytes first, evenly over the backward two thirds', () => {
    const plan = bucketSchedule(1000, 300, 900);
    assert.deepEqual(plan, [
      { from: 700, to: 1000, at: 300 + 600 / 4 },
      { from: 400, to: 700, at: 300 + 1200 / 4 },
      { from: 100, to: 400, at: 300 + 1800 / 4 },
      { from: 0, to: 100, at: 900 },
    ]);
  });

  void it('sends it whole at the end without buckets, or when it fits one', () => {
    assert.deepEqual(bucketSchedule(1000, 0, 900), [{ from: 0, to: 1000, at: 900 }]);
    assert.deepEqual(bucketSchedule(1000, 4096, 900), [{ from: 0, to: 1000, at: 900 }]);
    assert.deepEqual(bucketSchedule(1000, 300, 0), [{ from: 0, to: 1000, at: 0 }]);
  });

  void it('puts the job\'s bucket size in the job, or leaves the default', () => {
    const config = { p: 1e4, workers: 2, tasks: 2, steps: 2 };
    assert.equal(validateJob(scaleJob({ ...config, bucketBytes: 0 }), 'bench').transport.bucketBytes, 0);
    assert.equal(validateJob(scaleJob(config), 'bench').transport.bucketBytes, validateJob({ ...scaleJob(config), transport: {} }, 'bench').transport.bucketBytes);
  });
});
