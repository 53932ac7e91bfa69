// The job spec (YAML) schema. Every field has a documented default; unknown keys are errors.
// docs/job-spec.md documents the same fields: keep the two in step. The layer vocabulary lives
// in common/layer-schema.ts (re-exported here).
import { parseByteSize } from './byte-size.js';
import { z } from 'zod';
import { layer, name, nonNegInt, posInt, positive } from './layer-schema.js';

export * from './layer-schema.js';

const multimnistData = z.strictObject({
  dataset: z.literal('multimnist'),
  target: z.enum(['left', 'right']),
  trainSize: posInt.default(60000),
  testSize: posInt.default(10000),
  shift: nonNegInt.max(8).default(4),
  testFraction: z.number().gt(0).lt(1).default(0.15),
  seed: nonNegInt.default(0),
});
const syntheticData = z
  .strictObject({
    dataset: z.literal('synthetic'),
    target: nonNegInt,
    tasks: posInt.max(64).default(2),
    dim: posInt.default(100),
    /**
     * The shape each example is given in (row-major, the same `dim` values), e.g. [8, 8, 3] for
     * a model that reads images; its sizes multiply to `dim`. Default: [dim].
     */
    shape: z.array(posInt).min(1).max(4).optional(),
    rho: z.number().min(-1).max(1).default(0.5),
    /** Task groups (a partition of 0..tasks−1): rho holds within a group, 0 across groups. */
    groups: z.array(z.array(nonNegInt).min(1)).min(1).optional(),
    samples: posInt.min(10).default(10000),
    noise: z.number().nonnegative().default(0.1),
    testFraction: z.number().gt(0).lt(1).default(0.2),
    seed: nonNegInt.default(0),
  })
  .check((ctx) => {
    const { shape, dim } = ctx.value;
    const values = shape?.reduce((a, b) => a * b, 1);
    if (shape && values !== dim) {
      ctx.issues.push({ code: 'custom', input: shape, path: ['shape'], message: `shape [${shape.join(', ')}] holds ${values} values per example, but dim is ${dim} (set dim: ${values})` });
    }
  });
/** A size in bytes: a number, or text with a unit (common/byte-size.ts). */
const byteSize = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const n = typeof value === 'number' ? (Number.isFinite(value) && value >= 1 ? Math.floor(value) : undefined) : parseByteSize(value);
  if (n === undefined) {
    ctx.issues.push({ code: 'custom', input: value, message: `expected a size such as 256MiB, 4MB or 65536, got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return n;
});
/**
 * Datasets bigger than memory (common/datasets/stream/): `true`, or the bounds. Read in chunks
 * on demand, with decoded chunks in an LRU cache of at most `cache` bytes, batches drawn by a
 * block shuffle of `blockRows` consecutive train rows, rows shuffled within `window` blocks.
 */
const streamOption = z.union([
  z.boolean(),
  z.strictObject({
    cache: byteSize.optional(),
    blockRows: posInt.optional(),
    window: posInt.max(64).optional(),
    /** csv and jsonl: bytes per chunk (cut at record boundaries); npy: rows per chunk come from it too. */
    chunk: byteSize.optional(),
  }),
]);
export type StreamOption = z.output<typeof streamOption>;
/** The table formats: one set of options (a file or a glob of files, columns, split), read through one path. */
export const TABLE_DATASETS = ['csv', 'jsonl', 'parquet'] as const;
export type TableDatasetKind = (typeof TABLE_DATASETS)[number];
/** A split value: compared as label text, like class labels (`String(value)`). */
const splitValue = z.union([z.string().min(1), z.number(), z.boolean()]);
/** The test split as the rows whose `column` holds one of the `test` values; every other row trains. */
const columnSplit = z.strictObject({
  column: z.string().min(1),
  test: z.union([splitValue, z.array(splitValue).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]).map(String)),
});
export type ColumnSplitSpec = z.output<typeof columnSplit>;
const tableFields = {
  /** A file or a glob of files, relative to the job file. */
  path: z.string().min(1),
  features: z.array(z.string().min(1)).min(1),
  /** One column, or several (a vector or multi-label target). */
  target: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  /** The test split by a column's value (instead of `test` or `testFraction`). */
  split: columnSplit.optional(),
  /** Features that are categories: integer ids from the train rows' vocabulary (0: unknown), for Embedding layers. */
  categorical: z.array(z.string().min(1)).optional(),
  /** The test split's own file or glob (instead of `testFraction`). */
  test: z.string().min(1).optional(),
  /** No schema default, so that giving both it and `test` is an error; without either, 0.2. */
  testFraction: z.number().gt(0).lt(1).optional(),
  normalize: z.boolean().default(true),
  /** A missing cell: an error naming file, row and column; `drop` the row; or `{ fill: value }`. */
  missing: z.union([z.enum(['error', 'drop']), z.strictObject({ fill: z.union([z.number(), z.string()]) })]).optional(),
  /** Opt-in: read in chunks with a bounded cache (datasets bigger than memory); default in memory. */
  stream: streamOption.optional(),
  seed: nonNegInt.default(0),
};
/**
 * Checks of a table spec: target columns are distinct (a vector target, or multi-label), and
 * `split`, `test` and `testFraction` each say how the test split is made: at most one of them.
 */
function tableChecks(ctx: z.core.ParsePayload<{ target: string | string[]; split?: unknown; test?: unknown; testFraction?: unknown }>): void {
  const { target } = ctx.value;
  if (Array.isArray(target)) {
    target.forEach((c, i) => {
      if (target.indexOf(c) < i) ctx.issues.push({ code: 'custom', input: target, path: ['target', i], message: `column "${c}" is listed twice (target columns must be distinct)` });
    });
  }
  const given = (['split', 'test', 'testFraction'] as const).filter((k) => ctx.value[k] !== undefined);
  if (given.length > 1) {
    ctx.issues.push({
      code: 'custom',
      input: ctx.value,
      path: [given[1]!],
      message: `give only one of split, test and testFraction (got ${given.join(' and ')}): each says how the test split is made`,
    });
  }
}
const csvData = z.strictObject({ dataset: z.literal('csv'), ...tableFields }).check(tableChecks);
const jsonlData = z.strictObject({ dataset: z.literal('jsonl'), ...tableFields }).check(tableChecks);
const parquetData = z.strictObject({ dataset: z.literal('parquet'), ...tableFields }).check(tableChecks);
// NumPy arrays (common/datasets/npy.ts). `testFraction` has no schema default so that giving
// both it and an explicit `test` split is an error; without either, 0.2.
const arrayTest = z.strictObject({ inputs: z.string().min(1), target: z.string().min(1) });
const npyData = z.strictObject({
  dataset: z.literal('npy'),
  /** .npy file of the inputs, shape [N, ...], relative to the job file. */
  inputs: z.string().min(1),
  /** .npy file of this task's target, shape [N] or [N, 1]. */
  target: z.string().min(1),
  /** An explicit test split: its own inputs and target files (instead of `testFraction`). */
  test: arrayTest.optional(),
  testFraction: z.number().gt(0).lt(1).optional(),
  /** Opt-in: read the inputs in chunks of rows with a bounded cache (arrays bigger than memory); with testFraction only. */
  stream: streamOption.optional(),
  seed: nonNegInt.default(0),
});
const npzData = z.strictObject({
  dataset: z.literal('npz'),
  /** The .npz archive (np.savez or np.savez_compressed), relative to the job file. */
  path: z.string().min(1),
  /** Array names inside the archive. */
  inputs: z.string().min(1),
  target: z.string().min(1),
  test: arrayTest.optional(),
  testFraction: z.number().gt(0).lt(1).optional(),
  seed: nonNegInt.default(0),
});
// A folder (or glob) of PNG/JPEG images (common/datasets/images.ts).
const imagesData = z.strictObject({
  dataset: z.literal('images'),
  /** A folder (searched recursively) or a glob, relative to the job file. */
  path: z.string().min(1),
  /** `from-folders` (the target `folder`: each image's first sub-folder) or a CSV table with a `file` column. */
  labels: z.string().min(1).default('from-folders'),
  /** `folder`, or a column of the labels table. */
  target: z.string().min(1),
  /** Every image is resized to [height, width]. */
  size: z.tuple([posInt, posInt]),
  channels: z.union([z.literal(1), z.literal(3)]).default(3),
  resize: z.enum(['bilinear', 'area']).default('bilinear'),
  testFraction: z.number().gt(0).lt(1).default(0.2),
  seed: nonNegInt.default(0),
});
const data = z.discriminatedUnion('dataset', [multimnistData, syntheticData, csvData, jsonlData, parquetData, npyData, npzData, imagesData]);
export type DataSpec = z.output<typeof data>;
export type MultiMnistSpec = z.output<typeof multimnistData>;
export type SyntheticSpec = z.output<typeof syntheticData>;
export type CsvSpec = z.output<typeof csvData>;
export type NpySpec = z.output<typeof npyData>;
export type NpzSpec = z.output<typeof npzData>;
export type ImagesSpec = z.output<typeof imagesData>;
export type JsonlSpec = z.output<typeof jsonlData>;
export type ParquetSpec = z.output<typeof parquetData>;
export type TableSpec = CsvSpec | JsonlSpec | ParquetSpec;

export function isTableSpec(spec: DataSpec): spec is TableSpec {
  return (TABLE_DATASETS as readonly string[]).includes(spec.dataset);
}

export const LOSSES = ['sparseCategoricalCrossentropy', 'binaryCrossentropy', 'meanSquaredError', 'meanAbsoluteError'] as const;
export type LossName = (typeof LOSSES)[number];
export const METRICS = ['accuracy', 'mse', 'mae'] as const;
export type MetricName = (typeof METRICS)[number];

const task = z.strictObject({
  /** Shape of one example of this task's data (checked against the data, like model.input). */
  input: z.array(posInt).min(1).max(4).optional(),
  /** With `model.layersModel` (or `model.module`) and no `model.heads`: the model's output layer this task trains. */
  output: z.string().min(1).optional(),
  loss: z.enum(LOSSES),
  metrics: z.array(z.enum(METRICS)).default([]),
  data,
}).check((ctx) => {
  const { target } = ctx.value.data;
  if (ctx.value.loss === 'sparseCategoricalCrossentropy' && Array.isArray(target) && target.length > 1) {
    ctx.issues.push({
      code: 'custom',
      input: target,
      path: ['data', 'target'],
      message: `${target.length} target columns need a regression loss (meanSquaredError, meanAbsoluteError) or binaryCrossentropy (multi-label), not sparseCategoricalCrossentropy`,
    });
  }
});
export type TaskSpec = z.output<typeof task>;

const optimizer = z.discriminatedUnion('name', [
  z.strictObject({ name: z.literal('sgd'), learningRate: positive }),
  z.strictObject({
    name: z.literal('momentum'),
    learningRate: positive,
    momentum: z.number().min(0).lt(1).default(0.9),
    nesterov: z.boolean().default(false),
  }),
  z.strictObject({
    name: z.literal('adam'),
    learningRate: positive,
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.999),
    epsilon: positive.default(1e-8),
  }),
]);
export type OptimizerSpec = z.output<typeof optimizer>;

// Options other than `name` belong to the method and are validated by its own schema in
// coordinator/aggregation, so the job schema lets them through here.
const aggregator = z.looseObject({ name: z.string().min(1) });
export type AggregatorSpec = z.output<typeof aggregator>;

/** What protects earlier tasks while a stage trains new ones (sequential mode). */
const protection = z.strictObject({
  /** Elastic weight consolidation: λ/2 Σ F (θ − θ*)² on the shared parameters, F the diagonal Fisher of earlier tasks. */
  ewc: z
    .strictObject({
      lambda: positive,
      /** Training examples per task the Fisher is estimated on (per-example gradients). */
      samples: posInt.max(100_000).default(1000),
      /**
       * sampled: labels drawn from the model's own predictive distribution (the Fisher
       * information, as EWC defines it); empirical: the data's labels (cheaper to explain, but
       * near zero wherever the model is already right). Regression tasks always use the data's.
       */
      fisher: z.enum(['sampled', 'empirical']).default('sampled'),
      /** Online EWC: one penalty, anchored at the end of the last stage, with F = Σ_k decay^(age) F_k. */
      online: z.boolean().default(false),
      decay: z.number().gt(0).max(1).default(1),
      /**
       * Apply the penalty as a proximal step after the optimizer's (decoupled, like AdamW's weight
       * decay) instead of adding its gradient to the task gradients. Adaptive optimizers
       * normalise each parameter's step, which turns a stiff coupled penalty into a constant-size
       * jitter around the anchor; the proximal step keeps the Fisher weighting (needs a λ about 1/learningRate times larger). Default false: the penalty gradient, as in the paper.
       */
      decoupled: z.boolean().default(false),
    })
    .optional(),
  /** L2-SP: α/2 ‖θ_s − θ_s⁰‖² on the shared parameters (θ_s⁰ at the start of the stage) plus β/2 ‖θ‖² on the stage's heads. */
  l2sp: z.strictObject({ alpha: z.number().nonnegative().default(0.01), beta: z.number().nonnegative().default(0) }).optional(),
  /** Rehearsal: each earlier task also trains every step, on ⌈fraction · batchSize⌉ of its own examples, as its own task gradient. */
  replay: z.strictObject({ fraction: z.number().gt(0).max(1) }).optional(),
});

const stage = z.strictObject({
  /** Label in logs and summaries; default stage-<n> (1-based). */
  name: name.optional(),
  tasks: z.array(name).min(1),
  steps: posInt,
  /** This stage's learning rate; default the optimizer's. The optimizer state starts afresh each stage. */
  learningRate: positive.optional(),
  /** Parameter groups not updated in this stage: "shared" (the trunk) or task names (their heads). */
  freeze: z.array(z.string().min(1)).default([]),
  protect: protection.default({}),
});
export type StageSpec = z.output<typeof stage>;

const training = z
  .strictObject({
    mode: z.enum(['simultaneous', 'sequential']).default('simultaneous'),
    /** Total steps; in sequential mode the sum of the stages' steps (may be left out). */
    steps: posInt.optional(),
    /** Sequential mode: the stages, trained one after another. */
    stages: z.array(stage).min(1).optional(),
    /** Single-task reference value of each task's metric, for forward transfer (sequential mode). */
    baselines: z.record(z.string(), z.number()).optional(),
    batchSize: posInt,
    shardsPerTask: posInt.max(1024).default(1),
    optimizer,
    aggregator: aggregator.default({ name: 'mean' }),
    evalEvery: posInt.optional(),
    /**
     * What a result with NaN or ±Infinity (loss or gradient) does: `fail` the run; `skip-unit`:
     * drop it and compute the unit again (the run fails after MAX_INVALID_RESULTS); `skip-step`:
     * the step's update is not applied and training goes on with the next step.
     */
    nonFinite: z.enum(['fail', 'skip-unit', 'skip-step']).default('fail'),
  })
  .transform((t) => ({ ...t, steps: t.steps ?? (t.stages ?? []).reduce((n, s) => n + s.steps, 0) }));

/**
 * Mixture-of-experts layers between the trunk and the heads (docs/design.md, parameter ownership):
 * mmoe (Ma et al., KDD 2018): `shared` experts, one softmax gate per task;
 * cgc / ple (Tang et al., RecSys 2020): `shared` plus `perTask` task-specific experts per
 * level, each task's gate mixing the shared and its own experts; ple stacks `levels` of them,
 * with a shared gate over all experts feeding the next level's shared experts (cgc = 1 level).
 */
const experts = z.strictObject({
  type: z.enum(['mmoe', 'cgc', 'ple']),
  shared: posInt.max(64),
  perTask: nonNegInt.max(64).default(0),
  levels: posInt.max(8).default(1),
  /** The layers of every expert (each expert has its own weights). */
  layers: z.array(layer).min(1),
});
export type ExpertsSpec = z.output<typeof experts>;

const model = z.strictObject({
  input: z.array(posInt).min(1).max(4).optional(),
  trunk: z.array(layer).default([]),
  experts: experts.optional(),
  /**
   * Several named inputs, each with its own tower, merged by concatenation before the trunk:
   * each takes the next `features` values of an example's (flat) input, in order.
   */
  inputs: z.record(name, z.strictObject({ features: posInt, layers: z.array(layer).default([]) })).optional(),
  /**
   * Per-task input adapters: a task whose data has its own feature space gets layers of its own
   * (task-owned) that map its input to the trunk's input shape.
   */
  adapters: z.record(z.string(), z.array(layer).min(1)).default({}),
  /** Each task's head (required unless the model's own outputs are the tasks: `layersModel`/`module` with `tasks.<t>.output`). */
  heads: z.record(z.string(), z.array(layer).min(1)).optional(),
  /**
   * A TF.js Layers model (model.json, as `model.save()` or the Keras converter writes it), relative
   * to the job file. Its weights are loaded when the shards it lists are present.
   */
  layersModel: z.string().min(1).optional(),
  /** An ES module (relative to the job file) whose default export `(tf) => tf.LayersModel` builds the model: for custom layers. */
  module: z.string().min(1).optional(),
  /** With `layersModel`/`module` and `heads`: the layer whose output is the shared representation (default: the model's output). */
  trunkOutput: z.string().min(1).optional(),
  /** Which layers of a `layersModel`/`module` model train: true (as the file says; the default), false (all frozen), or a list of layer names. */
  trainable: z.union([z.boolean(), z.array(z.string().min(1)).min(1)]).optional(),
});

/** transport.bucketBytes when the job does not say (measured: docs/performance.md). */
export const DEFAULT_BUCKET_BYTES = 262_144;

export const jobSchema = z.strictObject({
  name,
  seed: nonNegInt.default(0),
  model,
  tasks: z.record(name, task).check((ctx) => {
    if (Object.keys(ctx.value).length === 0) {
      ctx.issues.push({ code: 'custom', input: ctx.value, message: 'expected at least one task' });
    }
  }),
  training,
  checkpoint: z
    .strictObject({
      /** Steps between checkpoints; 0: only when the run is stopped gracefully. */
      every: nonNegInt.default(0),
      /** How many checkpoints to keep (older ones are deleted). */
      keep: posInt.default(3),
    })
    .default({ every: 0, keep: 3 }),
  fault: z
    .strictObject({
      /** How often an idle worker says it is alive. */
      heartbeatMs: posInt.default(1000),
      /** A worker silent this long (and at least 3× its mean unit time) is declared dead. */
      deadAfterMs: posInt.default(5000),
      /** A unit running this many times the median unit time gets a backup copy on an idle worker (0: never). */
      backupAfter: z.number().min(0).default(3),
      /** ... but never before this many milliseconds. */
      minBackupMs: nonNegInt.default(1000),
    })
    .default({ heartbeatMs: 1000, deadAfterMs: 5000, backupAfter: 3, minBackupMs: 1000 }),
  transport: z
    .strictObject({
      /** Gradients and weights on the wire: float32, or 16 bits per value (half the bytes; see docs/job-spec.md). */
      compression: z.enum(['none', 'fp16', 'bf16']).default('none'),
      /**
       * Gradient bucket size (float32 bytes): a worker sends each unit's gradient in buckets of
       * about this many bytes, last layers first, as its backward pass makes them, so the upload
       * and the coordinator's aggregation overlap the rest of the backward. 0: the whole gradient
       * at the end. Changes no bit of the training (docs/design.md).
       */
      bucketBytes: nonNegInt.default(DEFAULT_BUCKET_BYTES),
    })
    .default({ compression: 'none', bucketBytes: DEFAULT_BUCKET_BYTES }),
  compute: z
    .strictObject({
      /**
       * The workers' compute fast path (one trunk forward pass per batch, a hand-written
       * backward per task; see docs/design.md). A job setting, not a worker flag: every worker must
       * compute the same way for runs to stay bitwise reproducible.
       */
      fastPath: z.boolean().default(true),
    })
    .default({ fastPath: true }),
  diagnostics: z
    .strictObject({
      /** Warn when a pair of tasks has had negatively correlated gradients for this many consecutive steps (0: never). */
      conflictWindow: nonNegInt.default(50),
      /**
       * Every this many steps, also measure task affinity exactly (TAG's lookahead): for each
       * task i, the other tasks' losses after a step on i alone, on the step's batches (T extra
       * weight broadcasts and T² forward passes). 0: only the first-order estimate, every step.
       */
      exactAffinityEvery: nonNegInt.default(0),
    })
    .default({ conflictWindow: 50, exactAffinityEvery: 0 }),
});

/** Raw schema output (defaults applied): the JobSpec the rest of the code uses. */
export type ParsedJob = z.output<typeof jobSchema>;
