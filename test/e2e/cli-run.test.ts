// `mtl run` end to end: real coordinator, real worker processes, real files.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { bindTasks } from '../../common/datasets/index.js';
import { inputSize } from '../../common/datasets/types.js';
import { loadJobFile } from '../../common/job-spec.js';
import { fileSystemModel } from '../../common/model-files.js';
import { runCli } from '../helpers/cli-process.js';
import { EXAMPLES } from '../helpers/paths.js';
import { smallMultiMnistJob, writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';

interface Summary {
  status: string;
  steps: number;
  stepsCompleted: number;
  backend: string;
  workers: number;
  tasks: Record<string, { loss: number; accuracy: number; samples: number }>;
}

void describe('mtl run', () => {
  void it('trains with 2 worker processes and writes a complete run directory whose model reproduces the held-out accuracy', async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
    const jobFile = writeJob(smallMultiMnistJob({ steps: 60, evalEvery: 30, dropout: 0 }));
    const out = tempDir('mtl-run-');
    const r = await runCli(['run', jobFile, '--workers', '2', '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);

    // --json: exactly one line on stdout, the summary.
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    const printed = JSON.parse(lines[0]!) as Summary;
    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as Summary;
    assert.deepEqual(printed, summary);
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.stepsCompleted, 60);
    assert.equal(summary.workers, 2);
    assert.equal(summary.backend, 'wasm');

    type TimeKey = 'units' | 'compute' | 'transfer' | 'aggregate' | 'optimize' | 'broadcast' | 'total';
    const metrics = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: number; losses: Record<string, number>; cosine: Record<string, number>; timeMs: Record<TimeKey, number> });
    for (const m of metrics) {
      for (const k of ['units', 'compute', 'transfer', 'aggregate', 'optimize', 'broadcast', 'total'] as const) {
        assert.ok(Number.isFinite(m.timeMs[k]) && m.timeMs[k] >= 0, `step ${m.step} timeMs.${k} = ${m.timeMs[k]}`);
      }
      assert.ok(m.timeMs.units <= m.timeMs.total && m.timeMs.transfer <= m.timeMs.units);
    }
    assert.equal(metrics.length, 60);
    assert.deepEqual(metrics.map((m) => m.step), Array.from({ length: 60 }, (_, i) => i + 1));
    assert.ok(Number.isFinite(metrics[0]!.losses.left) && Number.isFinite(metrics[0]!.cosine['left/right']));
    const evals = readFileSync(path.join(out, 'eval.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number });
    assert.deepEqual(evals.map((e) => e.step), [30, 60]);
    assert.ok(existsSync(path.join(out, 'job.yaml')));
    const events = readFileSync(path.join(out, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string });
    const types = events.map((e) => e.type);
    assert.equal(types[0], 'run-started');
    assert.equal(types.filter((t) => t === 'worker-joined').length, 2);
    assert.ok(types.includes('run-succeeded'));
    // job.yaml is the resolved spec: it loads, with defaults filled in.
    assert.equal(loadJobFile(path.join(out, 'job.yaml')).spec.training.aggregator.name, 'mean');

    // The exported model: one output per task, named after it; its accuracy on the test split
    // is the one the run reported.
    const model = await tf.loadLayersModel(fileSystemModel(path.join(out, 'model')));
    assert.deepEqual(model.outputNames.map((n) => n.split('/')[0]), ['left', 'right']);
    const job = loadJobFile(jobFile).spec;
    const bindings = bindTasks(job.tasks, path.dirname(jobFile));
    const left = bindings.get('left')!;
    const n = left.dataset.test.size;
    const idx = Uint32Array.from({ length: n }, (_, i) => i);
    const x = new Float32Array(n * inputSize(left.dataset));
    left.dataset.test.inputs(idx, x);
    const outputs = model.predict(tf.tensor(x, [n, 28, 28, 1])) as tf.Tensor[];
    for (const [i, task] of ['left', 'right'].entries()) {
      const b = bindings.get(task)!;
      const y = new Float32Array(n);
      b.dataset.test.targets(b.target, idx, y);
      const predicted = tf.argMax(outputs[i]!, 1).dataSync();
      let correct = 0;
      for (let k = 0; k < n; k++) if (predicted[k] === y[k]) correct++;
      // Workers ran on wasm, this check on cpu: argmax may flip on a near-tie, nothing more.
      assert.ok(Math.abs(correct / n - summary.tasks[task]!.accuracy) <= 0.002, `${task}: model ${correct / n} vs summary ${summary.tasks[task]!.accuracy}`);
      assert.ok(summary.tasks[task]!.accuracy > 0.2, `${task} learned something (${summary.tasks[task]!.accuracy})`);
    }
    tf.dispose(outputs);
  });

  void it('rejects an invalid job with exit code 2, naming every bad path, before starting anything', async () => {
    const job = smallMultiMnistJob() as { training: Record<string, unknown>; model: { trunk: unknown[] }; tasks: Record<string, unknown> };
    job.training.optimizer = { name: 'adam', learningRate: -1 };
    job.training.batchSize = 0;
    (job as Record<string, unknown>).colour = 'blue';
    job.model.trunk[0] = { conv2d: { filters: 4, kernelSize: 3, stride: 2 } };
    const out = tempDir('mtl-invalid-');
    const r = await runCli(['run', writeJob(job), '--out', path.join(out, 'run')]);
    assert.equal(r.code, 2);
    for (const p of ['training.optimizer.learningRate', 'training.batchSize', 'colour', 'model.trunk[0].conv2d.stride']) {
      assert.match(r.stderr, new RegExp(`^\\s*${p.replace(/[[\].]/g, '\\$&')}: `, 'm'), `stderr names ${p}:\n${r.stderr}`);
    }
    assert.match(r.stderr, /learningRate: expected a positive number, got -1/);
    assert.ok(!existsSync(path.join(out, 'run')), 'no run directory for an invalid job');
  });

  void it('names the missing data file with exit code 2', async () => {
    const dir = tempDir('mtl-csv-');
    const data = { dataset: 'csv', path: 'no-such-table.csv', features: ['a'], target: 'b' };
    const job = {
      name: 'csv-missing',
      model: { trunk: [{ dense: { units: 4 } }], heads: { b: [{ dense: { units: 1 } }] } },
      tasks: { b: { loss: 'meanSquaredError', data } },
      training: { steps: 1, batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.1 } },
    };
    const r = await runCli(['run', writeJob(job, dir)]);
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes(path.join(dir, 'no-such-table.csv')), r.stderr);
  });

  void it('every example validates, data included (mtl validate --json)', async () => {
    const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 4);
    for (const f of files) {
      const r = await runCli(['validate', path.join(EXAMPLES, f), '--json']);
      assert.equal(r.code, 0, `${f}: ${r.stderr}`);
      const info = JSON.parse(r.stdout) as { parameters: { total: number; shared: number; frozen: number }; tasks: Record<string, { train: number; test: number }> };
      // Every example shares a trunk: trained (shared) or pretrained and frozen.
      assert.ok(info.parameters.total > info.parameters.shared && info.parameters.shared + info.parameters.frozen > 0, f);
      for (const t of Object.values(info.tasks)) assert.ok(t.train > 0 && t.test > 0, f);
    }
  });

  void it('--aggregator replaces the method of the job (recorded in job.yaml and the summary); an unknown one is a usage error', async () => {
    const out = tempDir('mtl-agg-');
    const spec = loadJobFile(path.join(EXAMPLES, 'synthetic.yaml')).spec;
    const job = writeJob({ ...spec, training: { ...spec.training, steps: 20, evalEvery: undefined } });
    const r = await runCli(['run', job, '--aggregator', 'sum', '--out', out, '--json', '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { aggregator: { name: string } }).aggregator.name, 'sum');
    assert.equal(loadJobFile(path.join(out, 'job.yaml')).spec.training.aggregator.name, 'sum');
    const bad = await runCli(['run', path.join(EXAMPLES, 'synthetic.yaml'), '--aggregator', 'no-such-method']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Allowed choices are .*mean/);
  });

  void it('reports a missing job file and unknown options as usage errors (exit 2)', async () => {
    const missing = await runCli(['run', '/nonexistent/job.yaml']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no such file/);
    const badFlag = await runCli(['run', 'x.yaml', '--workers', 'zero']);
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /positive integer/);
  });
});
