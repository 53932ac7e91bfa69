// How close a worker's training steps come to the backend's own speed: FLOP/s of the per-task
// gradient steps of a batch (as a worker runs them: ModelRunner with tfjs autodiff, the fast
// path one unit at a time, and the fast path with the tasks sharing the batch; GraphRunner for
// a model of the user's) ÷ FLOP/s of a plain 512² matMul on the same backend, measured in the
// same run. FLOPs are the work each computation needs, counted from the layout or the model's
// layers (bench/flops.ts).
// Goal (issue 7): ≥ 0.5 for the multimnist MLP and CNN. Issue 16: what a user's layers model
// (examples/pretrained-trunk.yaml) costs on the graph path next to the same network in YAML
// layers on the fast path (bench/yaml-twin.ts).
import * as tf from '@tensorflow/tfjs';
import { fileURLToPath } from 'node:url';
import { loadJobFile, type JobSpec } from '../common/job-spec.js';
import { modelFromGraphConfig } from '../common/model-graph.js';
import { buildLayout, initialParameters, type ParameterLayout } from '../common/parameter-layout.js';
import { Rng } from '../common/random.js';
import { prepareUserModel, readBaseModel } from '../common/user-model.js';
import { selectBackend, type BackendChoice } from '../worker/backend.js';
import { GraphRunner } from '../worker/graph-runner.js';
import { opsModeFor } from '../worker/layer-ops.js';
import { ModelRunner, type TaskObjective, type UnitRunner } from '../worker/model-runner.js';
import { medianMs, option, type Bench } from './bench-types.js';
import { graphTrainingFlops, sharedBatchFlops, trainingFlops } from './flops.js';
import { yamlTwin } from './yaml-twin.js';

const GOAL = 0.5;
const MATMUL = 512;
const JOBS = ['multimnist.yaml', 'multimnist-cnn.yaml'];
const LAYERS_MODEL_JOB = 'pretrained-trunk.yaml';

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

type Variant = 'autodiff' | 'fast, one unit at a time' | 'fast, units sharing the batch' | 'graph path (tfjs autodiff), one unit at a time';

/** One network's computations to time side by side, with the FLOPs each needs. */
interface Group {
  label: string;
  tasks: number;
  variants: Array<[Variant, number, () => void]>;
  dispose(): void;
}

const objectivesOf = (job: JobSpec): Map<string, TaskObjective> => new Map(Object.entries(job.tasks).map(([t, s]) => [t, { loss: s.loss, metrics: s.metrics }]));

/** A batch of `batch` random examples and a random class target per task (every task of these jobs reads the same data source). */
function batchFor(layout: ParameterLayout, batch: number) {
  const rng = new Rng(11);
  const size = layout.inputShape.reduce((a, b) => a * b, 1);
  const x = Float32Array.from({ length: batch * size }, () => rng.next());
  const tasks = layout.tasks.map((task) => ({ task, targets: Float32Array.from({ length: batch }, () => Math.floor(rng.next() * 10)), opts: { training: true, dropoutSeed: () => 1 } }));
  return { x, tasks };
}

const eachTask = (runner: UnitRunner, { x, tasks }: ReturnType<typeof batchFor>) => () => tasks.forEach((t) => runner.gradients(t.task, x, t.targets, t.opts));

/** A YAML job through ModelRunner: autodiff, the fast path per unit, the fast path sharing the batch. */
function yamlGroup(job: JobSpec, label: string, batch: number): Group {
  const layout = buildLayout(job, job.model.input!);
  const runners = [false, true].map((fastPath) => {
    const r = new ModelRunner(layout, objectivesOf(job), opsModeFor(tf.getBackend()), { fastPath });
    r.setWeights(initialParameters(layout, job.seed));
    return r;
  });
  const [autodiff, fast] = runners as [ModelRunner, ModelRunner];
  const data = batchFor(layout, batch);
  const alone = layout.tasks.reduce((sum, t) => sum + trainingFlops(layout, t, batch), 0);
  return {
    label,
    tasks: layout.tasks.length,
    variants: [
      ['autodiff', alone, eachTask(autodiff, data)],
      ['fast, one unit at a time', alone, eachTask(fast, data)],
      ['fast, units sharing the batch', sharedBatchFlops(layout, layout.tasks, batch), () => void fast.sharedGradients(data.x, data.tasks[0]!.opts, data.tasks)],
    ],
    dispose: () => runners.forEach((r) => r.dispose()),
  };
}

/** A layers-model job through GraphRunner, as a worker runs it (each unit on its own). */
function graphGroup(job: JobSpec, dir: string, label: string, batch: number): Group {
  const base = readBaseModel(job, dir);
  const shape = base.model.inputs[0]!.shape.slice(1) as number[];
  const { layout, initialParams } = prepareUserModel(job, base, new Map(Object.keys(job.tasks).map((t) => [t, shape])));
  base.model.dispose();
  const runner = new GraphRunner(layout, objectivesOf(job));
  runner.setWeights(initialParams);
  const model = modelFromGraphConfig(layout.graph!.spec.config);
  const flops = layout.tasks.reduce((sum, t) => sum + graphTrainingFlops(layout, model, t, batch), 0);
  model.dispose();
  return { label, tasks: layout.tasks.length, variants: [['graph path (tfjs autodiff), one unit at a time', flops, eachTask(runner, batchFor(layout, batch))]], dispose: () => runner.dispose() };
}

export const computeBench: Bench = {
  name: 'compute',
  description: "a worker's per-task gradient steps in FLOP/s ÷ the same backend's plain matMul FLOP/s (YAML models and a user's layers model)",
  async run(args, progress) {
    const quick = args.includes('--quick');
    const backendChoice = (option(args, 'backend') ?? 'wasm') as BackendChoice;
    const backend = await selectBackend(backendChoice);
    tf.enableProdMode();
    const batch = Number(option(args, 'batch') ?? 64);
    const reps = quick ? 5 : 11;
    const rows: Array<{ job: string; variant: Variant; tasks: number; batch: number; mflop: number; ms: number; msPerTask: number; gflops: number; ratio: number }> = [];
    const matmuls: number[] = [];

    const groups: Array<() => Group> = JOBS.map((file) => () => {
      const { spec } = loadJobFile(exampleJob(file));
      return yamlGroup(spec, spec.name, batch);
    });
    const layersJob = loadJobFile(exampleJob(LAYERS_MODEL_JOB));
    const fineTuned: JobSpec = { ...layersJob.spec, model: { ...layersJob.spec.model, trainable: true } };
    const name = layersJob.spec.name;
    groups.push(
      () => graphGroup(fineTuned, layersJob.dir, `${name} (layers model, fine-tuned)`, batch),
      () => graphGroup(layersJob.spec, layersJob.dir, `${name} (layers model, frozen as shipped)`, batch),
      () => {
        const base = readBaseModel(fineTuned, layersJob.dir);
        const twin = yamlTwin(fineTuned, base.model);
        base.model.dispose();
        return yamlGroup(twin, `${name} in YAML layers (the same network)`, batch);
      },
    );

    for (const make of groups) {
      const group = make();
      try {
        // The matMul reference is measured next to each group's steps, so that load drifts hit both.
        const matmul = matMulGflops(MATMUL, reps);
        matmuls.push(matmul);
        const { tasks } = group;
        for (const [variant, flops, fn] of group.variants) {
          // Short steps get more repetitions (about half a second's worth): a median of 11 steps
          // of 4 ms moved by ±30 % between runs with garbage collections and other load.
          const start = performance.now();
          for (let i = 0; i < 3; i++) fn();
          const estimate = (performance.now() - start) / 3;
          const ms = medianMs(fn, Math.min(200, Math.max(reps, Math.ceil((quick ? 150 : 500) / estimate))));
          const gflops = flops / (ms * 1e6);
          rows.push({ job: group.label, variant, tasks, batch, mflop: flops / 1e6, ms, msPerTask: ms / tasks, gflops, ratio: gflops / matmul });
          progress(`compute: ${group.label} ${variant}: ${ms.toFixed(1)} ms for ${tasks} tasks, ${gflops.toFixed(2)} GFLOP/s = ${(gflops / matmul).toFixed(3)} × matMul (${matmul.toFixed(1)} GFLOP/s)`);
        }
      } finally {
        group.dispose();
      }
    }
    const goalRows = rows.filter((r) => r.variant === 'fast, units sharing the batch' && !r.job.startsWith(name));
    const matmul = matmuls.reduce((a, b) => a + b, 0) / matmuls.length;
    const ms = (job: string, variant: Variant) => rows.find((r) => r.job.startsWith(job) && r.variant === variant)?.ms ?? NaN;
    const graphMs = ms(`${name} (layers model, fine-tuned)`, 'graph path (tfjs autodiff), one unit at a time');
    const twin = `${name} in YAML layers`;
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
      `a user's layers model (${name}, fine-tuned, graph path) takes ${(graphMs / ms(twin, 'autodiff')).toFixed(2)}× the time of the same network in YAML layers with autodiff, ` +
        `${(graphMs / ms(twin, 'fast, one unit at a time')).toFixed(2)}× the fast path one unit at a time, ${(graphMs / ms(twin, 'fast, units sharing the batch')).toFixed(2)}× the fast path with units sharing the batch`,
    ].join('\n');
    return { text, json: { backend: backend.name, matmulGflops: matmuls, matmulSize: MATMUL, results: rows, goal: GOAL } };
  },
};
