// The worker's compute thread (real node:worker_threads, real tfjs in the thread): it computes
// what the same code computes in this thread, bitwise; a bad unit is a unit failure and the
// thread goes on; a thread that dies fails what waits on it instead of leaving it hanging.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ComputeThreadError } from '../../common/errors.js';
import { loadJobFile, type JobSpec } from '../../common/job-spec.js';
import { initialParameters } from '../../common/parameter-layout.js';
import { selectBackend } from '../../worker/backend.js';
import { buildComputeEnvironment } from '../../worker/compute-environment.js';
import { ComputeThread, ThreadReportedError } from '../../worker/compute-thread.js';
import { openWeightsStream, publishFloats } from '../../worker/streamed-weights.js';
import { smallMultiMnistJob, writeJob } from '../helpers/jobs.js';

function loadJob(doc: object): { job: JobSpec; dir: string } {
  const loaded = loadJobFile(writeJob(doc));
  return { job: loaded.spec, dir: loaded.dir };
}

const environmentOf = (job: JobSpec, dir: string) => ({ jobJson: JSON.stringify(job), jobDir: dir, modelJson: '', dataPlanJson: '', resolved: [] });

/** Hands the thread a whole version: its values in one of the thread's shared buffers, all published. Returns that buffer. */
function giveWeights(thread: ComputeThread, params: Float32Array): Float32Array {
  const stream = openWeightsStream(thread.weightsBuffer(params.length));
  stream.params.set(params);
  publishFloats(stream, params.length);
  thread.streamWeights(stream);
  return stream.params;
}

void describe('compute thread', () => {
  let thread: ComputeThread;
  const { job, dir } = loadJob(smallMultiMnistJob());

  before(async () => {
    await selectBackend('cpu');
    tf.enableProdMode();
    thread = (await ComputeThread.start('cpu')).thread;
  });
  after(() => thread.terminate());

  void it('loads the job, takes shared weights and computes bitwise what this thread computes', async () => {
    const ready = await thread.prepare(environmentOf(job, dir));
    const here = buildComputeEnvironment(job, dir, 'cpu');
    try {
      assert.equal(ready.layout.totalSize, here.layout.totalSize);
      assert.deepEqual(ready.layout.tensors.map((t) => t.name), here.layout.tensors.map((t) => t.name));
      assert.deepEqual(new Map(ready.sources), here.computer.sources);
      const params = initialParameters(here.layout, job.seed);
      here.runner.setWeights(params);
      const sent = giveWeights(thread, params);
      assert.ok(sent.buffer instanceof SharedArrayBuffer, 'the weights are shared with the thread, not copied');
      const units = [
        { task: 'left', step: 3, shard: 1 },
        { task: 'right', step: 3, shard: 1 },
      ];
      const done = await thread.compute({ kind: 'train', units });
      const local = here.computer.trainGroup(units);
      assert.equal(done.outputs.length, 2);
      done.outputs.forEach((o, i) => {
        assert.equal(o.loss, local[i]!.loss);
        assert.equal(o.sampleCount, local[i]!.sampleCount);
        assert.equal(o.payloadSize, local[i]!.grads.length);
        assert.deepEqual(o.pieces.map((p) => p.offset), [0]);
        assert.ok(Buffer.from(o.pieces[0]!.data.buffer).equals(Buffer.from(local[i]!.grads.slice().buffer)), `${units[i]!.task}: gradients differ`);
      });
      assert.ok(done.busyMs > 0);
      const evaluated = await thread.compute({ kind: 'eval', unit: { task: 'left', shard: 0, shardCount: 2 } });
      assert.deepEqual(evaluated.outputs[0]!.metrics, here.computer.evaluate({ task: 'left', shard: 0, shardCount: 2 }).metrics);
      // The buffer comes back for the next version once applied.
      assert.equal(thread.weightsBuffer(here.layout.totalSize).length, here.layout.totalSize);
    } finally {
      here.runner.dispose();
    }
  });

  void it('fails a unit it cannot compute with the error, and goes on', async () => {
    await assert.rejects(thread.compute({ kind: 'train', units: [{ task: 'nope', step: 0, shard: 0 }] }), (err: unknown) => {
      assert.ok(err instanceof ThreadReportedError);
      assert.match(err.message, /unknown task nope/);
      return true;
    });
    const done = await thread.compute({ kind: 'lookahead', unit: { task: 'right', step: 0, shard: 0 } });
    assert.ok(Number.isFinite(done.outputs[0]!.loss));
  });

  void it('reports a job it cannot load with the file it could not read', async () => {
    const bad = loadJob({
      name: 'missing-file',
      model: { trunk: [{ dense: { units: 4 } }], heads: { y: [{ dense: { units: 1 } }] } },
      tasks: { y: { loss: 'meanSquaredError', data: { dataset: 'csv', path: 'missing.csv', features: ['a'], target: 'y' } } },
      training: { steps: 1, batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.1 } },
    });
    await assert.rejects(thread.prepare(environmentOf(bad.job, bad.dir)), (err: unknown) => {
      assert.ok(err instanceof ThreadReportedError);
      assert.equal(err.code, 'DATASET_ERROR');
      assert.ok(err.message.includes(path.join(bad.dir, 'missing.csv')), err.message);
      return true;
    });
  });

  void it('a thread that dies mid-unit fails the unit and every later request with ComputeThreadError', async () => {
    const { thread: doomed } = await ComputeThread.start('cpu');
    const big = loadJob({ ...smallMultiMnistJob(), training: { steps: 1, batchSize: 2000, shardsPerTask: 1, optimizer: { name: 'sgd', learningRate: 0.1 } } });
    const ready = await doomed.prepare(environmentOf(big.job, big.dir));
    giveWeights(doomed, new Float32Array(ready.layout.totalSize));
    const unit = doomed.compute({ kind: 'train', units: [{ task: 'left', step: 0, shard: 0 }] });
    const stopped = doomed.terminate();
    await assert.rejects(unit, ComputeThreadError);
    await stopped;
    await assert.rejects(doomed.compute({ kind: 'eval', unit: { task: 'left', shard: 0, shardCount: 1 } }), /compute thread was stopped/);
    assert.throws(() => giveWeights(doomed, new Float32Array(1)), ComputeThreadError);
  });

  void it('a thread that runs out of memory is reported as such', async () => {
    await assert.rejects(ComputeThread.start('cpu', { resourceLimits: { maxOldGenerationSizeMb: 2, maxYoungGenerationSizeMb: 1 } }), (err: unknown) => {
      assert.ok(err instanceof ComputeThreadError);
      assert.match(err.message, /compute thread ran out of memory/);
      return true;
    });
  });

  void it('leaves no thread running once terminated', async () => {
    const { thread: t } = await ComputeThread.start('cpu');
    assert.ok(ComputeThread.running >= 2);
    await t.terminate();
    assert.equal(ComputeThread.running, 1, 'only the suite thread is left');
  });
});
