// How close a worker's training step comes to the backend's own speed: FLOP/s of one per-task
// gradient step (ModelRunner.gradients, as a worker runs it) ÷ FLOP/s of a plain 512² matMul
// on the same backend, measured in the same run. FLOPs come from the layout (bench/flops.ts).
// Goal (issue 7): ≥ 0.5 for the multimnist MLP and CNN.
import * as tf from '@tensorflow/tfjs';
import { fileURLToPath } from 'node:url';
import { loadJobFile } from '../common/job-spec.js';
import { buildLayout } from '../common/parameter-layout.js';
import { Rng } from '../common/random.js';
import { selectBackend, type BackendChoice } from '../worker/backend.js';
import { opsModeFor } from '../worker/layer-ops.js';
import { ModelRunner } from '../worker/model-runner.js';
import { initialParameters } from '../common/parameter-layout.js';
import { medianMs, option, type Bench } from './bench-types.js';
import { trainingFlops } from './flops.js';

const GOAL = 0.5;
const MATMUL = 512;
const JOBS = ['multimnist.yaml', 'multimnist-cnn.yaml'];

export function exampleJob(file: string): string {
  return fileURLToPath(new URL(`../../examples/${file}`, import.meta.url));
}

/** GFLOP/s of a plain size² matMul on the current backend. */
export function matMulGflops(size: number, reps: number): number {
  const rng = new Rng(3);
  const a = tf.tensor2d(Float32Array.from({ length: size * size }, () => rng.uniform(-1, 1)), [size, size]);
  const b = tf.tensor2d(Float32Array.from({ length: size * size }, () => rng.uniform(-1, 1)), [size, size]);
  try {
    const ms = medianMs(() => tf.tidy(() => void tf.matMul(a, b).dataSync()), reps);
    return (2 * size ** 3) / (ms * 1e6);
  } finally {
    tf.dispose([a, b]);
  }
}

export const computeBench: Bench = {
  name: 'compute',
  description: "a worker's per-task gradient step in FLOP/s ÷ the same backend's plain matMul FLOP/s",
  async run(args, progress) {
    const quick = args.includes('--quick');
    const backendChoice = (option(args, 'backend') ?? 'wasm') as BackendChoice;
    const backend = await selectBackend(backendChoice);
    tf.enableProdMode();
    const batch = Number(option(args, 'batch') ?? 64);
    const reps = quick ? 5 : 11;
    const matmul = matMulGflops(MATMUL, reps);
    progress(`compute: ${backend.name} matMul ${MATMUL}² ${matmul.toFixed(2)} GFLOP/s`);
    const rows: Array<{ job: string; task: string; batch: number; mflopPerStep: number; stepMs: number; gflops: number; ratio: number }> = [];
    for (const file of JOBS) {
      const { spec: job } = loadJobFile(exampleJob(file));
      const layout = buildLayout(job, job.model.input!);
      const objectives = new Map(Object.entries(job.tasks).map(([t, s]) => [t, { loss: s.loss, metrics: s.metrics }]));
      const runner = new ModelRunner(layout, objectives, opsModeFor(tf.getBackend()));
      runner.setWeights(initialParameters(layout, job.seed));
      const rng = new Rng(11);
      const size = layout.inputShape.reduce((a, b) => a * b, 1);
      const x = Float32Array.from({ length: batch * size }, () => rng.next());
      const y = Float32Array.from({ length: batch }, () => Math.floor(rng.next() * 10));
      try {
        const task = layout.tasks[0]!;
        const flops = trainingFlops(layout, task, batch);
        const ms = medianMs(() => void runner.gradients(task, x, y, { training: true, dropoutSeed: () => 1 }), reps);
        const gflops = flops / (ms * 1e6);
        rows.push({ job: job.name, task, batch, mflopPerStep: flops / 1e6, stepMs: ms, gflops, ratio: gflops / matmul });
        progress(`compute: ${job.name} step ${ms.toFixed(1)} ms, ${(flops / 1e6).toFixed(1)} MFLOP, ${gflops.toFixed(2)} GFLOP/s = ${(gflops / matmul).toFixed(3)} × matMul`);
      } finally {
        runner.dispose();
      }
    }
    const text = [
      `compute: one per-task gradient step (ModelRunner.gradients, batch ${batch}) in FLOP/s ÷ plain ${MATMUL}² matMul FLOP/s, ${backend.name} backend, same run`,
      '',
      '| job | MFLOP/step | step (ms) | GFLOP/s | ÷ matMul |',
      '|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.job} | ${r.mflopPerStep.toFixed(1)} | ${r.stepMs.toFixed(1)} | ${r.gflops.toFixed(2)} | ${r.ratio.toFixed(3)} |`),
      `| matMul ${MATMUL}² | ${((2 * MATMUL ** 3) / 1e6).toFixed(1)} | ${((2 * MATMUL ** 3) / (matmul * 1e6)).toFixed(1)} | ${matmul.toFixed(2)} | 1 |`,
      '',
      ...rows.map((r) => `goal (≥ ${GOAL}): ${r.job} ${r.ratio >= GOAL ? 'met' : 'not met'} (${r.ratio.toFixed(3)})`),
    ].join('\n');
    return { text, json: { backend: backend.name, matmulGflops: matmul, matmulSize: MATMUL, results: rows, goal: GOAL } };
  },
};
