// One distributed step (in-process coordinator, two real worker processes over gRPC, two
// shards per task) against a single-process computation of the same step with tfjs-layers
// on the same data and parameters: the per-task gradients must agree.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { EpochSampler } from '../../common/datasets/sampler.js';
import { inputSize } from '../../common/datasets/types.js';
import { loadJobFile } from '../../common/job-spec.js';
import { silentLogger } from '../../common/logging.js';
import { buildLayersModel } from '../../common/model-files.js';
import { unitTensorIndices } from '../../common/parameter-layout.js';
import { Coordinator } from '../../coordinator/coordinator.js';
import { prepareRun, type PreparedRun } from '../../coordinator/prepare-run.js';
import { startCli } from '../helpers/cli-process.js';
import { smallMultiMnistJob, writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';
import { relativeError } from '../helpers/numeric.js';

/** The step-0 gradient of each task, computed in this process with tfjs-layers' own graph. */
function referenceGradients(prepared: PreparedRun): Map<string, Float32Array> {
  const { layout, loaded, bindings, initialParams } = prepared;
  const job = loaded.spec;
  const model = buildLayersModel(layout, job.name, initialParams);
  const variable = (tensorIndex: number): tf.Variable => {
    const spec = layout.tensors[tensorIndex]!;
    const [layerName, weight] = spec.name.split('/') as [string, string];
    const layer = model.getLayer(layerName);
    return layer.trainableWeights.find((w) => w.originalName === `${layerName}/${weight}`)!.read() as tf.Variable;
  };
  const out = new Map<string, Float32Array>();
  layout.tasks.forEach((task, taskIndex) => {
    const b = bindings.get(task)!;
    // The union of a step's shards is the 1-shard batch (sampler contract).
    const idx = new EpochSampler().indices({ seed: job.seed, source: b.source, size: b.dataset.train.size, batchSize: job.training.batchSize, shards: 1, step: 0, shard: 0 });
    const x = new Float32Array(idx.length * inputSize(b.dataset));
    const y = new Float32Array(idx.length);
    b.dataset.train.inputs(idx, x);
    b.dataset.train.targets(b.target, idx, y);
    const indices = unitTensorIndices(layout, task);
    const vars = indices.map(variable);
    const { grads } = tf.variableGrads(() => {
      const outputs = model.apply(tf.tensor(x, [idx.length, ...layout.inputShape]), { training: true }) as tf.Tensor[];
      return tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(tf.oneHot(tf.tensor1d(y, 'int32'), 10), outputs[taskIndex]!);
    }, vars);
    const flat = new Float32Array(indices.reduce((n, i) => n + layout.tensors[i]!.size, 0));
    let offset = 0;
    for (const v of vars) {
      const g = grads[v.name]!;
      flat.set(g.dataSync(), offset);
      offset += g.size;
    }
    tf.dispose(grads);
    out.set(task, flat);
  });
  model.dispose();
  return out;
}

void describe('one distributed step', () => {
  void it('matches a single-process tfjs-layers computation within 1e-6 relative, per task', async (t) => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
    const job = smallMultiMnistJob({ steps: 1, shardsPerTask: 2, dropout: 0, optimizer: { name: 'sgd', learningRate: 0.1 } }) as {
      model: { heads: Record<string, unknown> };
    };
    // Linear heads: the reference takes logits, as tf.losses.softmaxCrossEntropy expects.
    job.model.heads = { left: [{ dense: { units: 10 } }], right: [{ dense: { units: 10 } }] };
    const prepared = prepareRun(loadJobFile(writeJob(job)));
    const captured = new Map<string, Float32Array>();
    const coordinator = new Coordinator({
      prepared,
      listen: '127.0.0.1:0',
      outDir: path.join(tempDir('mtl-step-'), 'run'),
      minWorkers: 2,
      waitForWorkersMs: 60_000,
      logger: silentLogger,
      onTaskGradients: (step, grads) => {
        if (step === 0) for (const [t, g] of grads) captured.set(t, g.slice());
      },
    });
    const address = await coordinator.listen();
    const workers = [1, 2].map((i) => startCli(['worker', '--coordinator', address, '--backend', 'cpu', '--name', `w${i}`]));
    const summary = await coordinator.runToCompletion();
    await coordinator.close();
    const exits = await Promise.all(workers.map((w) => w.result));
    assert.equal(summary.status, 'succeeded', JSON.stringify(summary.error));
    assert.deepEqual(exits.map((e) => e.code), [0, 0]);
    // Both workers computed units: the step really was distributed.
    assert.deepEqual(summary.workerDetails.map((w) => w.unitsDone > 0), [true, true]);

    const reference = referenceGradients(prepared);
    const shared = prepared.layout.shared.size;
    for (const task of ['left', 'right']) {
      const got = captured.get(task)!;
      const want = reference.get(task)!;
      assert.equal(got.length, want.length);
      const trunk = relativeError(got.subarray(0, shared), want.subarray(0, shared));
      const head = relativeError(got.subarray(shared), want.subarray(shared));
      t.diagnostic(`${task}: relative error trunk ${trunk.toExponential(2)}, head ${head.toExponential(2)}`);
      assert.ok(trunk <= 1e-6, `${task} trunk gradient relative error ${trunk}`);
      assert.ok(head <= 1e-6, `${task} head gradient relative error ${head}`);
    }
    // And the comparison can fail: the two tasks' gradients are not interchangeable.
    assert.ok(relativeError(captured.get('left')!.subarray(0, shared), reference.get('right')!.subarray(0, shared)) > 0.1);
  });
});
