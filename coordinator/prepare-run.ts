// Everything that can be checked before a run starts: the data (files, targets, classes),
// the model's shapes against the data, the aggregator and its options. Problems surface here
// as JobSpecError or DatasetError (exit code 2), never halfway through training.
import { bindTasks, type TaskBinding } from '../common/datasets/index.js';
import { targetWidth } from '../common/datasets/types.js';
import { JobSpecError, type SpecIssue } from '../common/errors.js';
import { hasUserModel, taskNames, usesGraphPath, type LoadedJob } from '../common/job-spec.js';
import { prepareUserModel, readBaseModel, yamlTrunkModel, type BaseModel } from '../common/user-model.js';
import { headOutputShape, initialParameters, layoutForData, type ParameterLayout } from '../common/parameter-layout.js';
import { createRunAggregator } from './aggregation/grouped.js';
import type { Aggregator } from './aggregation/types.js';
import { createOptimizer, type Optimizer } from '../common/optimizers.js';

export interface PreparedRun {
  loaded: LoadedJob;
  layout: ParameterLayout;
  bindings: ReadonlyMap<string, TaskBinding>;
  testSizes: ReadonlyMap<string, number>;
  trainSizes: ReadonlyMap<string, number>;
  aggregator: Aggregator;
  optimizer: Optimizer;
  initialParams: Float32Array;
  /** Things that are allowed but probably not meant (a batch larger than a task's data): shown, not refused. */
  warnings: SpecIssue[];
}

/**
 * A batch larger than a task's training rows is legal (batches run across epochs), but each
 * row then appears several times in every batch: almost always a batchSize meant for other data.
 */
function batchWarnings(job: LoadedJob['spec'], trainSizes: ReadonlyMap<string, number>): SpecIssue[] {
  const { batchSize } = job.training;
  return [...trainSizes]
    .filter(([, rows]) => rows > 0 && batchSize > rows)
    .map(([task, rows]) => ({
      path: 'training.batchSize',
      message: `batchSize ${batchSize} is larger than the ${rows} training rows of task ${task}: each of its rows appears about ${Math.round(batchSize / rows)} times in every batch`,
    }));
}

/** Runs `fn`, re-raising its spec problems as problems of the job file `source`. */
function attributed<T>(source: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof JobSpecError) throw new JobSpecError(source, err.issues, { cause: err });
    throw err;
  }
}

export interface PrepareOptions {
  /** The user's model (for jobs with model.layersModel / model.module), already read; default: read from the job's file. */
  baseModel?: BaseModel;
}

/** A YAML model on the graph path: its trunk as the base model, the first task's data shape as its input (the shapes are checked against it after). */
function yamlBase(job: LoadedJob['spec'], dataShapes: ReadonlyMap<string, readonly number[]>): BaseModel {
  return { model: yamlTrunkModel(job, dataShapes.get(taskNames(job)[0]!) ?? []), weightsLoaded: false };
}

export function prepareRun(loaded: LoadedJob, prepare: PrepareOptions = {}): PreparedRun {
  const { spec: job, source } = loaded;
  const bindings = bindTasks(job.tasks, loaded.dir);
  const issues: SpecIssue[] = [];
  const dataShapes = new Map([...bindings].map(([t, b]) => [t, b.dataset.inputShape] as const));
  const describe = (t: string) => bindings.get(t)!.dataset.description;

  let initialParams: Float32Array | undefined;
  const layout = attributed(source, () => {
    if (!usesGraphPath(job)) return layoutForData(job, dataShapes, describe);
    const base = prepare.baseModel ?? (hasUserModel(job) ? readBaseModel(job, loaded.dir) : yamlBase(job, dataShapes));
    const user = prepareUserModel(job, base, dataShapes, describe);
    initialParams = user.initialParams;
    return user.layout;
  });

  for (const [task, binding] of bindings) {
    const out = headOutputShape(layout, task);
    const loss = job.tasks[task]!.loss;
    const info = binding.dataset.targets[binding.target]!;
    const where = layout.graph && !job.model.heads ? `tasks.${task}.output` : `model.heads.${task}`;
    if (out.length !== 1) {
      issues.push({ path: where, message: `the head must end in a vector per example (add flatten/dense), got shape [${out.join(', ')}]` });
      continue;
    }
    const units = out[0]!;
    if (loss === 'sparseCategoricalCrossentropy') {
      const classes = info.classes?.length ?? 0;
      if (units !== classes) issues.push({ path: where, message: `the head outputs ${units} values but target "${binding.target}" has ${classes} classes` });
    } else if (info.columns !== undefined && units !== info.columns.length) {
      const what = loss === 'binaryCrossentropy' ? 'one sigmoid output per label column' : 'one output per column';
      issues.push({
        path: where,
        message: `the head outputs ${units} values but tasks.${task}.data.target has ${info.columns.length} columns (${info.columns.join(', ')}): ${loss} needs ${what}, ${info.columns.length} units`,
      });
    } else if (info.columns === undefined && targetWidth(info) > 1 && units !== targetWidth(info)) {
      const k = targetWidth(info);
      issues.push({ path: where, message: `the head outputs ${units} values but tasks.${task}.data.target holds ${k} values per example: ${loss} needs ${k} units` });
    } else if (info.columns === undefined && targetWidth(info) === 1 && units !== 1) {
      issues.push({ path: where, message: `${loss} needs a head with 1 output, got ${units}` });
    }
  }
  if (issues.length > 0) throw new JobSpecError(source, issues);

  const { name, ...options } = job.training.aggregator;
  const aggregator = attributed(source, () => createRunAggregator(layout, name, options, { seed: job.seed }));
  const trainSizes = new Map([...bindings].map(([t, b]) => [t, b.dataset.train.size]));
  return {
    loaded,
    layout,
    bindings,
    testSizes: new Map([...bindings].map(([t, b]) => [t, b.dataset.test.size])),
    trainSizes,
    warnings: batchWarnings(job, trainSizes),
    aggregator,
    optimizer: createOptimizer(job.training.optimizer, layout.totalSize),
    initialParams: initialParams ?? initialParameters(layout, job.seed),
  };
}
