// How close a worker's training steps come to the backend's own speed: FLOP/s of the per-task
// gradient steps of a batch (ModelRunner, as a worker runs it: tfjs autodiff, the fast path one
// unit at a time, and the fast path with the tasks sharing the batch) ÷ FLOP/s of a plain
// 512² matMul on the same backend, measured in the same run. FLOPs are the work each
// computation needs, counted from the layout (bench/flops.ts).
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
import { sharedBatchFlops, trainingFlops } from './flops.js';

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

type Variant = 'autodiff' | 'fast, one unit at a time' | 'fast, units sharing the batch';

export const computeBench: Bench = {
  name: 'compute',
  description: "a worker's per-task gradient steps in FLOP/s ÷ the same backend's plain matMul FLOP/s",
  async run(args, progress) {
    const quick = args.includes('--quick');
    const backendChoice = (option(args, 'backend') ?? 'wasm') as BackendChoice;
    const backend = await selectBackend(backendChoice);
    tf.enableProdMode();
    const batch = Number(option(args, 'batch') ?? 64);
    const reps = quick ? 5 : 11;
    const rows: Array<{ job: string; variant: Variant; tasks: number; batch: number; mflop: number; ms: number; msPerTask: number; gflops: number; ratio: number }> = [];
    const matmuls: number[] = [];
    for (const file of JOBS) {
      const { spec: job } = loadJobFile(exampleJob(file));
      const layout = buildLayout(job, job.model.input!);
      const objectives = new Map(Object.entries(job.tasks).map(([t, s]) => [t, { loss: s.loss, metrics: s.metrics }]));
      const runners = [false, true].map((fastPath) => {
        const r = new ModelRunner(layout, objectives, opsModeFor(tf.getBackend()), { fastPath });
        r.setWeights(initialParameters(layout, job.seed));
        return r;
      });
      const [autodiff, fast] = runners as [ModelRunner, ModelRunner];
      const rng = new Rng(11);
      const size = layout.inputShape.reduce((a, b) => a * b, 1);
      const x = Float32Array.from({ length: batch * size }, () => rng.next());
      // Every task of these jobs reads the same data source: one batch, a target per task.
      const tasks = layout.tasks.map((task) => ({ task, targets: Float32Array.from({ length: batch }, () => Math.floor(rng.next() * 10)), opts: { training: true, dropoutSeed: () => 1 } }));
      const opts = tasks[0]!.opts;
      try {
        const alone = layout.tasks.reduce((sum, t) => sum + trainingFlops(layout, t, batch), 0);
        const variants: Array<[Variant, number, () => void]> = [
          ['autodiff', alone, () => tasks.forEach((t) => autodiff.gradients(t.task, x, t.targets, t.opts))],
          ['fast, one unit at a time', alone, () => tasks.forEach((t) => fast.gradients(t.task, x, t.targets, t.opts))],
          ['fast, units sharing the batch', sharedBatchFlops(layout, layout.tasks, batch), () => void fast.sharedGradients(x, opts, tasks)],
        ];
        // The matMul reference is measured next to each job's steps, so that load drifts hit both.
        const matmul = matMulGflops(MATMUL, reps);
        matmuls.push(matmul);
        for (const [variant, flops, fn] of variants) {
          // Short steps get more repetitions (about half a second's worth): a median of 11 steps
          // of 4 ms moved by ±30 % between runs with garbage collections and other load.
          const start = performance.now();
          for (let i = 0; i < 3; i++) fn();
          const estimate = (performance.now() - start) / 3;
          const ms = medianMs(fn, Math.min(200, Math.max(reps, Math.ceil((quick ? 150 : 500) / estimate))));
          const gflops = flops / (ms * 1e6);
          rows.push({ job: job.name, variant, tasks: tasks.length, batch, mflop: flops / 1e6, ms, msPerTask: ms / tasks.length, gflops, ratio: gflops / matmul });
          progress(`compute: ${job.name} ${variant}: ${ms.toFixed(1)} ms for ${tasks.length} tasks, ${gflops.toFixed(2)} GFLOP/s = ${(gflops / matmul).toFixed(3)} × matMul (${matmul.toFixed(1)} GFLOP/s)`);
        }
      } finally {
        for (const r of runners) r.dispose();
      }
    }
    const goalRows = rows.filter((r) => r.variant === 'fast, units sharing the batch');
    const matmul = matmuls.reduce((a, b) => a + b, 0) / matmuls.length;
    const text = [
      `compute: the per-task gradient steps of every task on one batch of ${batch} (each job's tasks read the same data), in FLOP/s of the work`,
      `they need (bench/flops.ts) ÷ plain ${MATMUL}² matMul FLOP/s, ${backend.name} backend, measured next to each job in the same run`,
      '',
      '| job | computation | MFLOP | ms (all tasks) | ms per task | GFLOP/s | ÷ matMul |',
      '|---|---|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.job} | ${r.variant} | ${r.mflop.toFixed(1)} | ${r.ms.toFixed(1)} | ${r.msPerTask.toFixed(1)} | ${r.gflops.toFixed(2)} | ${r.ratio.toFixed(3)} |`),
      `| matMul ${MATMUL}² (mean of ${matmuls.length}) | | ${((2 * MATMUL ** 3) / 1e6).toFixed(1)} | ${((2 * MATMUL ** 3) / (matmul * 1e6)).toFixed(1)} | | ${matmul.toFixed(2)} | 1 |`,
      '',
      ...goalRows.map((r) => `goal (≥ ${GOAL}): ${r.job} ${r.ratio >= GOAL ? 'met' : 'not met'} (${r.ratio.toFixed(3)}, the fast path with units sharing the batch)`),
    ].join('\n');
    return { text, json: { backend: backend.name, matmulGflops: matmuls, matmulSize: MATMUL, results: rows, goal: GOAL } };
  },
};
