// What the distributed machinery costs: samples/s of `mtl run --workers 1` (coordinator and
// one worker process over gRPC) ÷ samples/s of an in-process loop doing the same computation
// (per-task gradients with ModelRunner, mean aggregation, the job's optimizer) on the same
// backend, same job, same steps; and `--workers 2` ÷ `--workers 1` on this machine's cores.
// Goals (issue 7): ≥ 0.9 and ≥ 1.6.
import * as tf from '@tensorflow/tfjs';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { loadJobFile } from '../common/job-spec.js';
import { prepareRun } from '../coordinator/prepare-run.js';
import { selectBackend } from '../worker/backend.js';
import { opsModeFor } from '../worker/layer-ops.js';
import { ModelRunner } from '../worker/model-runner.js';
import { UnitComputer } from '../worker/unit-compute.js';
import { option, type Bench } from './bench-types.js';
import { exampleJob } from './compute.js';

const GOALS = { oneWorker: 0.9, twoWorkers: 1.6 };

/** examples/multimnist.yaml with `steps` steps and no intermediate evaluation, written to `dir`. */
function benchJob(dir: string, steps: number): string {
  const doc = YAML.parse(readFileSync(exampleJob('multimnist.yaml'), 'utf8')) as { training: Record<string, unknown> };
  doc.training.steps = steps;
  delete doc.training.evalEvery;
  const file = path.join(dir, 'job.yaml');
  writeFileSync(file, YAML.stringify(doc));
  return file;
}

/** The step loop of the coordinator and a worker, in one process, without transport. */
async function inProcessSamplesPerS(jobFile: string): Promise<{ samplesPerS: number; ms: number; samples: number }> {
  const prepared = prepareRun(loadJobFile(jobFile));
  const { layout, optimizer, aggregator, bindings } = prepared;
  const job = prepared.loaded.spec;
  await selectBackend('wasm');
  tf.enableProdMode();
  const objectives = new Map(Object.entries(job.tasks).map(([t, s]) => [t, { loss: s.loss, metrics: s.metrics }]));
  const runner = new ModelRunner(layout, objectives, opsModeFor(tf.getBackend()));
  const computer = new UnitComputer(job, bindings, runner);
  const params = prepared.initialParams.slice();
  const update = new Float32Array(layout.totalSize);
  const shared = layout.shared.size;
  let samples = 0;
  const t0 = performance.now();
  try {
    for (let step = 0; step < job.training.steps; step++) {
      runner.setWeights(params);
      const outs = layout.tasks.map((task) => computer.train({ task, step, shard: 0 }));
      const rows = outs.map((o) => o.grads.subarray(0, shared));
      const direction = aggregator.aggregate({ grads: rows, losses: outs.map((o) => o.loss), step, out: update.subarray(0, shared) }).direction;
      if (direction.buffer !== update.buffer) update.set(direction, 0);
      layout.tasks.forEach((task, i) => update.set(outs[i]!.grads.subarray(shared), layout.headGroups.get(task)!.offset));
      optimizer.step(params, update);
      samples += outs.reduce((n, o) => n + o.sampleCount, 0);
    }
  } finally {
    runner.dispose();
  }
  const ms = performance.now() - t0;
  return { samplesPerS: samples / (ms / 1000), ms, samples };
}

function mtlRun(jobFile: string, workers: number, outDir: string): Promise<{ samplesPerS: number; trainTimeS: number; wallS: number }> {
  const main = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [main, 'run', jobFile, '--workers', String(workers), '--backend', 'wasm', '--quiet', '--json', '--out', outDir], { maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`mtl run --workers ${workers} failed: ${err.message}\n${stderr}`));
      const last = stdout.trim().split('\n').pop()!;
      const summary = JSON.parse(last) as { samplesPerS: number; trainTimeS: number };
      resolve({ samplesPerS: summary.samplesPerS, trainTimeS: summary.trainTimeS, wallS: (performance.now() - t0) / 1000 });
    });
  });
}

export const overheadBench: Bench = {
  name: 'overhead',
  description: 'samples/s of mtl run --workers 1 ÷ an in-process loop; --workers 2 ÷ --workers 1',
  async run(args, progress) {
    const quick = args.includes('--quick');
    const steps = Number(option(args, 'steps') ?? (quick ? 60 : 300));
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mtl-bench-overhead-'));
    try {
      const jobFile = benchJob(dir, steps);
      const inProcess = await inProcessSamplesPerS(jobFile);
      progress(`overhead: in-process ${inProcess.samplesPerS.toFixed(0)} samples/s (${steps} steps, ${(inProcess.ms / 1000).toFixed(1)} s)`);
      const one = await mtlRun(jobFile, 1, path.join(dir, 'w1'));
      progress(`overhead: mtl run --workers 1: ${one.samplesPerS.toFixed(0)} samples/s (train ${one.trainTimeS.toFixed(1)} s, wall ${one.wallS.toFixed(1)} s)`);
      const two = await mtlRun(jobFile, 2, path.join(dir, 'w2'));
      progress(`overhead: mtl run --workers 2: ${two.samplesPerS.toFixed(0)} samples/s (train ${two.trainTimeS.toFixed(1)} s, wall ${two.wallS.toFixed(1)} s)`);
      const ratioOne = one.samplesPerS / inProcess.samplesPerS;
      const ratioTwo = two.samplesPerS / one.samplesPerS;
      const cores = os.availableParallelism();
      const text = [
        `overhead: examples/multimnist.yaml (MLP), ${steps} steps, wasm backend, ${cores} cores; samples/s over the training steps (mtl run: summary.samplesPerS)`,
        '',
        '| | samples/s | ratio |',
        '|---|---|---|',
        `| in-process loop | ${inProcess.samplesPerS.toFixed(0)} | |`,
        `| mtl run --workers 1 | ${one.samplesPerS.toFixed(0)} | ${ratioOne.toFixed(3)} of in-process |`,
        `| mtl run --workers 2 | ${two.samplesPerS.toFixed(0)} | ${ratioTwo.toFixed(3)} of --workers 1 |`,
        '',
        `goal (≥ ${GOALS.oneWorker}): --workers 1 ÷ in-process ${ratioOne >= GOALS.oneWorker ? 'met' : 'not met'} (${ratioOne.toFixed(3)})`,
        `goal (≥ ${GOALS.twoWorkers}): --workers 2 ÷ --workers 1 ${ratioTwo >= GOALS.twoWorkers ? 'met' : 'not met'} (${ratioTwo.toFixed(3)})`,
      ].join('\n');
      return {
        text,
        json: { steps, cores, inProcess, workers1: one, workers2: two, ratios: { workers1OverInProcess: ratioOne, workers2OverWorkers1: ratioTwo }, goals: GOALS },
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
