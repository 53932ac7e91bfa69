// What the distributed machinery costs: samples/s of `mtl run --workers 1` (coordinator and
// one worker process over gRPC) ÷ samples/s of an in-process loop doing the same computation
// (per-task gradients with ModelRunner, mean aggregation, the job's optimizer) on the same
// backend, same job, same steps; and `--workers 2` ÷ `--workers 1` on this machine's cores.
// Measured for the multimnist MLP (communication-bound) and CNN (compute-bound).
// Goals (issue 7): ≥ 0.9 and ≥ 1.6.
import * as tf from '@tensorflow/tfjs';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { DEFAULT_BUCKET_BYTES } from '../common/job-schema.js';
import { loadJobFile } from '../common/job-spec.js';
import { prepareRun } from '../coordinator/prepare-run.js';
import { selectBackend } from '../worker/backend.js';
import { opsModeFor } from '../worker/layer-ops.js';
import { ModelRunner } from '../worker/model-runner.js';
import { UnitComputer } from '../worker/unit-compute.js';
import { option, type Bench } from './bench-types.js';
import { exampleJob } from './compute.js';

const GOALS = { oneWorker: 0.9, twoWorkers: 1.6 };

/**
 * The jobs measured: the MLP moves ~1 MB of weights and ~1 MB of gradients per task each step
 * for ~4 ms of compute (communication-bound on one machine); the CNN computes ~15× longer per
 * step on a third of the parameters (compute-bound).
 */
const JOBS = [
  { file: 'multimnist.yaml', steps: 300, quickSteps: 60 },
  { file: 'multimnist-cnn.yaml', steps: 150, quickSteps: 30 },
];

/** An example job with `steps` steps and no intermediate evaluation (and `bucketBytes`, if given), written to `dir`. */
function benchJob(dir: string, example: string, steps: number, bucketBytes?: number): string {
  const doc = YAML.parse(readFileSync(exampleJob(example), 'utf8')) as { training: Record<string, unknown>; transport?: Record<string, unknown> };
  doc.training.steps = steps;
  delete doc.training.evalEvery;
  if (bucketBytes !== undefined) doc.transport = { ...doc.transport, bucketBytes };
  const file = path.join(dir, example);
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
      // As a worker holding all of a step's units computes them: the tasks share the batch.
      const outs = computer.trainGroup(layout.tasks.map((task) => ({ task, step, shard: 0 })));
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

interface JobRatios {
  job: string;
  steps: number;
  inProcess: { samplesPerS: number; ms: number; samples: number };
  workers1: { samplesPerS: number; trainTimeS: number; wallS: number };
  workers2: { samplesPerS: number; trainTimeS: number; wallS: number };
  ratios: { workers1OverInProcess: number; workers2OverWorkers1: number };
}

export const overheadBench: Bench = {
  name: 'overhead',
  description: 'samples/s of mtl run --workers 1 ÷ an in-process loop; --workers 2 ÷ --workers 1 (MLP and CNN)',
  async run(args, progress) {
    const quick = args.includes('--quick');
    const stepsOption = option(args, 'steps');
    const only = option(args, 'job');
    // --bucket-bytes N: the mtl runs' transport.bucketBytes (default: the job's, DEFAULT_BUCKET_BYTES).
    const bucketOption = option(args, 'bucket-bytes');
    const bucketBytes = bucketOption === undefined ? undefined : Number(bucketOption);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mtl-bench-overhead-'));
    const results: JobRatios[] = [];
    try {
      for (const { file, steps: full, quickSteps } of JOBS.filter((j) => only === undefined || j.file.startsWith(only))) {
        const steps = Number(stepsOption ?? (quick ? quickSteps : full));
        const name = file.replace(/\.yaml$/, '');
        const jobFile = benchJob(dir, file, steps, bucketBytes);
        const inProcess = await inProcessSamplesPerS(jobFile);
        progress(`overhead: ${name} in-process ${inProcess.samplesPerS.toFixed(0)} samples/s (${steps} steps, ${(inProcess.ms / 1000).toFixed(1)} s)`);
        const one = await mtlRun(jobFile, 1, path.join(dir, `${name}-w1`));
        progress(`overhead: ${name} mtl run --workers 1: ${one.samplesPerS.toFixed(0)} samples/s (train ${one.trainTimeS.toFixed(1)} s, wall ${one.wallS.toFixed(1)} s)`);
        const two = await mtlRun(jobFile, 2, path.join(dir, `${name}-w2`));
        progress(`overhead: ${name} mtl run --workers 2: ${two.samplesPerS.toFixed(0)} samples/s (train ${two.trainTimeS.toFixed(1)} s, wall ${two.wallS.toFixed(1)} s)`);
        const ratios = { workers1OverInProcess: one.samplesPerS / inProcess.samplesPerS, workers2OverWorkers1: two.samplesPerS / one.samplesPerS };
        results.push({ job: name, steps, inProcess, workers1: one, workers2: two, ratios });
      }
      const cores = os.availableParallelism();
      const met = (r: number, goal: number) => `${r >= goal ? 'met' : 'not met'} (${r.toFixed(3)})`;
      const text = [
        `overhead: examples/multimnist.yaml (MLP) and multimnist-cnn.yaml (CNN), wasm backend, ${cores} cores; samples/s over the training steps (mtl run: summary.samplesPerS); gradient buckets of ${bucketBytes ?? DEFAULT_BUCKET_BYTES} bytes`,
        '',
        '| job | steps | in-process loop | --workers 1 | ÷ in-process | --workers 2 | ÷ --workers 1 |',
        '|---|---|---|---|---|---|---|',
        ...results.map(
          (r) =>
            `| ${r.job} | ${r.steps} | ${r.inProcess.samplesPerS.toFixed(0)} | ${r.workers1.samplesPerS.toFixed(0)} | ${r.ratios.workers1OverInProcess.toFixed(3)} | ${r.workers2.samplesPerS.toFixed(0)} | ${r.ratios.workers2OverWorkers1.toFixed(3)} |`,
        ),
        '',
        ...results.flatMap((r) => [
          `goal (≥ ${GOALS.oneWorker}): ${r.job} --workers 1 ÷ in-process ${met(r.ratios.workers1OverInProcess, GOALS.oneWorker)}`,
          `goal (≥ ${GOALS.twoWorkers}): ${r.job} --workers 2 ÷ --workers 1 ${met(r.ratios.workers2OverWorkers1, GOALS.twoWorkers)}`,
        ]),
      ].join('\n');
      return { text, json: { cores, bucketBytes: bucketBytes ?? DEFAULT_BUCKET_BYTES, results, goals: GOALS } };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
