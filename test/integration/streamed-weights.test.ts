// Weights streamed into the compute thread (issue 18, item 3): a real worker thread starts a
// unit with only part of the version published, computes the first layers, waits for the rest,
// and ends bitwise where whole weights take it; a transfer that is cut off fails the waiting
// unit with WEIGHTS_INCOMPLETE, and the thread goes on with the next version.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { loadJobFile } from '../../common/job-spec.js';
import { initialParameters } from '../../common/parameter-layout.js';
import { selectBackend } from '../../worker/backend.js';
import { buildComputeEnvironment } from '../../worker/compute-environment.js';
import { ComputeThread, ThreadReportedError } from '../../worker/compute-thread.js';
import { abortWeightsStream, openWeightsStream, publishFloats } from '../../worker/streamed-weights.js';
import { smallMultiMnistJob, writeJob } from '../helpers/jobs.js';

const loaded = loadJobFile(writeJob(smallMultiMnistJob()));
const job = loaded.spec;
const environment = { jobJson: JSON.stringify(job), jobDir: loaded.dir, modelJson: '', dataPlanJson: '', resolved: [] };
const units = [
  { task: 'left', step: 2, shard: 0 },
  { task: 'right', step: 2, shard: 0 },
];

void describe('weights streamed into the compute thread', () => {
  let thread: ComputeThread;
  const here = buildComputeEnvironment(job, loaded.dir, 'cpu');
  const { layout } = here;
  const params = initialParameters(layout, job.seed);
  /** Floats up to the end of layout tensor `i`. */
  const through = (i: number) => layout.tensors[i]!.offset + layout.tensors[i]!.size;

  before(async () => {
    await selectBackend('cpu');
    tf.enableProdMode();
    thread = (await ComputeThread.start('cpu')).thread;
    await thread.prepare(environment);
  });
  after(async () => {
    here.runner.dispose();
    await thread.terminate();
  });

  void it('computes a unit posted before the values are in, bitwise as with whole weights', async () => {
    assert.ok(layout.trunk.length >= 2 && layout.tensors.length > 3, 'the job has several layers to stream');
    const stream = openWeightsStream(thread.weightsBuffer(layout.totalSize));
    stream.params.set(params);
    publishFloats(stream, 0);
    thread.streamWeights(stream);
    const computing = thread.compute({ kind: 'train', units });
    // Published a tensor at a time, with pauses the thread has to wait through.
    for (let i = 0; i < layout.tensors.length; i++) {
      await sleep(5);
      publishFloats(stream, through(i));
    }
    const done = await computing;
    here.runner.setWeights(params);
    const local = here.computer.trainGroup(units);
    done.outputs.forEach((o, i) => {
      assert.equal(o.loss, local[i]!.loss);
      assert.ok(Buffer.from(o.pieces[0]!.data.buffer).equals(Buffer.from(local[i]!.grads.slice().buffer)), `${units[i]!.task}: gradients differ`);
    });
  });

  void it('runs the first layers on a partial version, then fails the unit when the transfer is cut off', async () => {
    const stream = openWeightsStream(thread.weightsBuffer(layout.totalSize));
    stream.params.set(params);
    // The first trunk layer's tensors only (kernel and bias of a dense layer).
    const firstLayer = layout.trunk[0]!.tensors;
    assert.ok(firstLayer.length > 0 && layout.trunk.slice(1).some((l) => l.tensors.length > 0), 'two weighted trunk layers');
    const published = through(Math.max(...firstLayer));
    publishFloats(stream, published);
    thread.streamWeights(stream);
    const computing = thread.compute({ kind: 'train', units });
    await sleep(200);
    abortWeightsStream(stream);
    await assert.rejects(computing, (err: unknown) => {
      assert.ok(err instanceof ThreadReportedError);
      assert.equal(err.code, 'WEIGHTS_INCOMPLETE');
      // It asked for the next layer's tensor: the first layer's forward pass had run.
      const next = layout.trunk.slice(1).find((l) => l.tensors.length > 0)!.tensors[0]!;
      assert.match(err.message, new RegExp(`after ${published} of the ${through(next)} values`));
      return true;
    });
    // The thread goes on: the next version, whole, computes as usual.
    const next = openWeightsStream(thread.weightsBuffer(layout.totalSize));
    next.params.set(params);
    publishFloats(next, layout.totalSize);
    thread.streamWeights(next);
    const done = await thread.compute({ kind: 'train', units: [units[0]!] });
    here.runner.setWeights(params);
    assert.equal(done.outputs[0]!.loss, here.computer.trainGroup([units[0]!])[0]!.loss);
  });

  void it('hands a stream\'s buffer back once every tensor is taken, for the next version', async () => {
    const stream = openWeightsStream(thread.weightsBuffer(layout.totalSize));
    stream.params.set(params);
    publishFloats(stream, layout.totalSize);
    thread.streamWeights(stream);
    // Both tasks' units take every tensor of the layout (the trunk and both heads).
    await thread.compute({ kind: 'train', units });
    // The reply comes after the 'buffer' message (one port, in order).
    const back = thread.weightsBuffer(layout.totalSize);
    assert.ok(back.buffer instanceof SharedArrayBuffer);
    assert.notEqual(params[0], 0, 'a fresh buffer would hold 0 there');
    assert.equal(back[0], params[0], 'the buffer handed back is the stream\'s (its values are still there)');
  });
});
