// How close a worker's training steps come to the backend's own speed: FLOP/s of the per-task
// gradient steps of a batch (as a worker runs them: ModelRunner with tfjs autodiff, the fast
// path one unit at a time, and the fast path with the tasks sharing the batch; GraphRunner for
// a model of the user's) ÷ FLOP/s of a plain 512² matMul on the same backend, measured in the
// same run. FLOPs are the work each computation needs, counted from the layout or the model's
// layers (bench/flops.ts).
// Goal (issue 7): ≥ 0.5 for the multimnist MLP and CNN. Issue 16: what a user's layers model
// (examples/pretrained-trunk.yaml) costs on the graph path next to the same network in YAML
// layers on the fast path (bench/yaml-twin.ts). `--conv-compare` also times the graph path with
// wasm's own Conv2DBackpropInput (before issue 18) interleaved with ours.
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
import { setWasmConvFormulation } from '../worker/wasm-gradient-kernels.js';
import { ModelRunner, type TaskObjective, type UnitRunner } from '../worker/model-runner.js';
import { option, type Bench } from './bench-types.js';
import { graphTrainingFlops, sharedBatchFlops, trainingFlops } from './flops.js';
import { yamlTwin } from './yaml-twin.js';

const GOAL = 0.5;
const MATMUL = 512;
const JOBS = ['multimnist.yaml', 'multimnist-cnn.yaml'];
const LAYERS_MODEL_JOB = 'pretrained-trunk.yaml';

export function exampleJob(file: string): string {
  return fileURLToPath(new URL(`../../examples/${file}`, import.meta.url));
}

const GRAPH = 'graph path (tfjs autodiff), one unit at a time';
/** With --conv-compare: the graph path again with wasm's own Conv2DBackpropInput (before issue 18), interleaved. */
const GRAPH_OLD_CONV = `${GRAPH} [wasm's own Conv2DBackpropInput]`;
type Variant = 'autodiff' | 'fast, one unit at a time' | 'fast, units sharing the batch' | typeof GRAPH | typeof GRAPH_OLD_CONV;

/** One computation to time: every task's gradient step on one batch, with the FLOPs it needs. */
interface Computation {
  job: string;
  variant: Variant;
  tasks: number;
  flops: number;
  run: () => void;
}

/** Computations timed side by side (interleaved, with the matMul reference), and what to free after. */
interface Group {
  computations: Computation[];
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
  const tasks = layout.tasks.length;
  return {
    computations: [
      { job: label, variant: 'autodiff', tasks, flops: alone, run: eachTask(autodiff, data) },
      { job: label, variant: 'fast, one unit at a time', tasks, flops: alone, run: eachTask(fast, data) },
      { job: label, variant: 'fast, units sharing the batch', tasks, flops: sharedBatchFlops(layout, layout.tasks, batch), run: () => void fast.sharedGradients(data.x, data.tasks[0]!.opts, data.tasks) },
    ],
    dispose: () => runners.forEach((r) => r.dispose()),
  };
}

/** `run` with wasm's own Conv2DBackpropInput in place of ours (wasm-gradient-kernels.ts). */
function withWasmConvInputGrad(run: () => void): () => void {
  return () => {
    const previous = setWasmConvFormulation('wasm');
    try {
      run();
    } finally {
      setWasmConvFormulation(previous);
    }
  };
}

/** A layers-model job through GraphRunner, as a worker runs it (each unit on its own); with `compare`, also with wasm's own Conv2DBackpropInput. */
function graphGroup(job: JobSpec, dir: string, label: string, batch: number, compare = false): Group {
  const base = readBaseModel(job, dir);
  const shape = base.model.inputs[0]!.shape.slice(1) as number[];
  const { layout, initialParams } = prepareUserModel(job, base, new Map(Object.keys(job.tasks).map((t) => [t, shape])));
  base.model.dispose();
  const runner = new GraphRunner(layout, objectivesOf(job));
  runner.setWeights(initialParams);
  const model = modelFromGraphConfig(layout.graph!.spec.config);
  const flops = layout.tasks.reduce((sum, t) => sum + graphTrainingFlops(layout, model, t, batch), 0);
  model.dispose();
  const run = eachTask(runner, batchFor(layout, batch));
  const tasks = layout.tasks.length;
  const computations: Computation[] = [{ job: label, variant: GRAPH, tasks, flops, run }];
  if (compare) computations.push({ job: label, variant: GRAPH_OLD_CONV, tasks, flops, run: withWasmConvInputGrad(run) });
  return { computations, dispose: () => runner.dispose() };
}

/**
 * Median ms of each of `fns`, measured in rounds that run every one once, so that load from
 * other processes on this shared machine drifts into all of them alike (rounds: about
 * `budgetMs` per computation, at least `minRounds`, at most 200).
 */
function interleavedMedians(fns: ReadonlyArray<() => void>, minRounds: number, budgetMs: number): number[] {
  const start = performance.now();
  for (let i = 0; i < 3; i++) for (const fn of fns) fn();
  const roundMs = (performance.now() - start) / 3;
  const rounds = Math.min(200, Math.max(minRounds, Math.ceil((budgetMs * fns.length) / roundMs)));
  const times = fns.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    fns.forEach((fn, i) => {
      const t = performance.now();
      fn();
      times[i]!.push(performance.now() - t);
    });
  }
  return times.map((ts) => ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)]!);
}

/** A size² matMul step on the current backend, and its FLOPs. */
function matMulStep(size: number): { flops: number; run: () => void; dispose: () => void } {
  const rng = new Rng(3);
  const a = tf.tensor2d(Float32Array.from({ length: size * size }, () => rng.uniform(-1, 1)), [size, size]);
  const b = tf.tensor2d(Float32Array.from({ length: size * size }, () => rng.uniform(-1, 1)), [size, size]);
  return { flops: 2 * size ** 3, run: () => tf.tidy(() => void tf.matMul(a, b).dataSync()), dispose: () => tf.dispose([a, b]) };
}

export const computeBench: Bench = {
  name: 'compute',
  description: "a worker's per-task gradient steps in FLOP/s ÷ the same backend's plain matMul FLOP/s (YAML models and a user's layers model)",
  async run(args, progress) {
    const quick = args.includes('--quick');
    const compare = args.includes('--conv-compare');
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
    // The user's layers model and the same network in YAML layers: one group, timed interleaved.
    const layersJob = loadJobFile(exampleJob(LAYERS_MODEL_JOB));
    const fineTuned: JobSpec = { ...layersJob.spec, model: { ...layersJob.spec.model, trainable: true } };
    const name = layersJob.spec.name;
    const graphLabel = `${name} (layers model, fine-tuned)`;
    const twinLabel = `${name} in YAML layers (the same network)`;
    groups.push(() => {
      const parts = [
        graphGroup(fineTuned, layersJob.dir, graphLabel, batch, compare),
        graphGroup(layersJob.spec, layersJob.dir, `${name} (layers model, frozen as shipped)`, batch, compare),
      ];
      const base = readBaseModel(fineTuned, layersJob.dir);
      const twin = yamlTwin(fineTuned, base.model);
      base.model.dispose();
      parts.push(yamlGroup(twin, twinLabel, batch));
      return { computations: parts.flatMap((p) => p.computations), dispose: () => parts.forEach((p) => p.dispose()) };
    });

    for (const make of groups) {
      const group = make();
      // The matMul reference runs in the same rounds as the group's steps, so that load drifts hit both.
      const matmul = matMulStep(MATMUL);
      try {
        const [matmulMs, ...times] = interleavedMedians([matmul.run, ...group.computations.map((c) => c.run)], reps, quick ? 150 : 500);
        const matmulGflops = matmul.flops / (matmulMs! * 1e6);
        matmuls.push(matmulGflops);
        group.computations.forEach((c, i) => {
          const ms = times[i]!;
          const gflops = c.flops / (ms * 1e6);
          rows.push({ job: c.job, variant: c.variant, tasks: c.tasks, batch, mflop: c.flops / 1e6, ms, msPerTask: ms / c.tasks, gflops, ratio: gflops / matmulGflops });
          progress(`compute: ${c.job} ${c.variant}: ${ms.toFixed(1)} ms for ${c.tasks} tasks, ${gflops.toFixed(2)} GFLOP/s = ${(gflops / matmulGflops).toFixed(3)} × matMul (${matmulGflops.toFixed(1)} GFLOP/s)`);
        });
      } finally {
        matmul.dispose();
        group.dispose();
      }
    }
    const goalRows = rows.filter((r) => r.variant === 'fast, units sharing the batch' && JOBS.some((f) => f === `${r.job}.yaml`));
    const matmul = matmuls.reduce((a, b) => a + b, 0) / matmuls.length;
    const ms = (job: string, variant: Variant) => rows.find((r) => r.job === job && r.variant === variant)?.ms ?? NaN;
    const graphMs = ms(graphLabel, GRAPH);
    const times = (variant: Variant) => `${(graphMs / ms(twinLabel, variant)).toFixed(2)}×`;
    const text = [
      `compute: the per-task gradient steps of every task on one batch of ${batch} (each job's tasks read the same data), in FLOP/s of the work`,
      `they need (bench/flops.ts) ÷ plain ${MATMUL}² matMul FLOP/s, ${backend.name} backend; each job's computations and the matMul are timed in`,
      'interleaved rounds (medians), so load from other processes hits them alike',
      '',
      '| job | computation | MFLOP | ms (all tasks) | ms per task | GFLOP/s | ÷ matMul |',
      '|---|---|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.job} | ${r.variant} | ${r.mflop.toFixed(1)} | ${r.ms.toFixed(1)} | ${r.msPerTask.toFixed(1)} | ${r.gflops.toFixed(2)} | ${r.ratio.toFixed(3)} |`),
      `| matMul ${MATMUL}² (mean of ${matmuls.length}) | | ${((2 * MATMUL ** 3) / 1e6).toFixed(1)} | ${((2 * MATMUL ** 3) / (matmul * 1e6)).toFixed(1)} | | ${matmul.toFixed(2)} | 1 |`,
      '',
      ...goalRows.map((r) => `goal (≥ ${GOAL}): ${r.job} ${r.ratio >= GOAL ? 'met' : 'not met'} (${r.ratio.toFixed(3)}, the fast path with units sharing the batch)`),
      `a user's layers model (${graphLabel}, graph path) takes ${times('autodiff')} the time of the same network in YAML layers with autodiff, ` +
        `${times('fast, one unit at a time')} the fast path one unit at a time, ${times('fast, units sharing the batch')} the fast path with units sharing the batch`,
      ...(compare ? [`with our Conv2DBackpropInput the graph path takes ${(graphMs / ms(graphLabel, GRAPH_OLD_CONV)).toFixed(2)}× the time it takes with wasm's own (${graphLabel}, interleaved)`] : []),
    ].join('\n');
    return { text, json: { backend: backend.name, matmulGflops: matmuls, matmulSize: MATMUL, results: rows, goal: GOAL } };
  },
};
