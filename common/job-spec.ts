// Reading and validating job files. Every problem is reported at once, each with its path;
// nothing starts until the whole spec is valid.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { JobSpecError, type SpecIssue } from './errors.js';
import { isFastPathLayer, jobSchema, layerSpec, type LayerSpec, type ParsedJob } from './job-schema.js';
import { nearestName } from './nearest-name.js';
import { specIssues } from './spec-issues.js';

/** A validated job with defaults applied. Task order is the order of `tasks` in the file. */
export type JobSpec = ParsedJob;

export interface ValidateOptions {
  /** Known aggregator names; when given, an unknown `training.aggregator.name` is reported with the other problems. */
  aggregatorNames?: readonly string[];
}

export interface LoadedJob {
  spec: JobSpec;
  /** Absolute directory of the job file; relative data paths resolve against it. */
  dir: string;
  source: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const CLASSIFICATION_LOSSES = new Set(['sparseCategoricalCrossentropy', 'binaryCrossentropy']);
const REGRESSION_LOSSES = new Set(['meanSquaredError', 'meanAbsoluteError']);

/** Architectures: what each mixture type allows. */
function expertChecks(e: Record<string, unknown>): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const shared = num(e.shared) ?? 0;
  const perTask = num(e.perTask) ?? 0;
  const levels = num(e.levels) ?? 1;
  if (e.type === 'mmoe') {
    if (perTask !== 0) issues.push({ path: 'model.experts.perTask', message: 'mmoe has shared experts only: use cgc or ple for task-specific experts' });
    if (shared < 2) issues.push({ path: 'model.experts.shared', message: `a gate needs at least 2 experts to mix, got ${shared}` });
  }
  if ((e.type === 'cgc' || e.type === 'ple') && perTask < 1) issues.push({ path: 'model.experts.perTask', message: `${e.type} needs task-specific experts (perTask ≥ 1)` });
  if ((e.type === 'cgc' || e.type === 'ple') && shared + perTask < 2) issues.push({ path: 'model.experts.shared', message: 'a gate needs at least 2 experts to mix' });
  if (e.type !== 'ple' && levels !== 1) issues.push({ path: 'model.experts.levels', message: `${String(e.type)} has one level; use ple for several` });
  return issues;
}

/**
 * A model of the user's (`layersModel` or `module`): our own model fields do not apply; either
 * YAML heads on its trunk for every task, or each task names one of the model's outputs.
 */
function userModelChecks(model: Record<string, unknown>, tasks: Record<string, unknown> | undefined): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const source = model.layersModel !== undefined ? 'layersModel' : model.module !== undefined ? 'module' : undefined;
  const outputs = Object.entries(tasks ?? {}).filter(([, t]) => isRecord(t) && t.output !== undefined);
  if (!source) {
    if (!('heads' in model)) issues.push({ path: 'model.heads', message: 'expected a head for each task (or model.layersModel / model.module with tasks.<task>.output)' });
    for (const k of ['trunkOutput', 'trainable'] as const) {
      if (model[k] !== undefined) issues.push({ path: `model.${k}`, message: `${k} applies to a model of your own: give model.layersModel or model.module` });
    }
    for (const [t] of outputs) issues.push({ path: `tasks.${t}.output`, message: 'output names a layer of a model of your own: give model.layersModel or model.module' });
    return issues;
  }
  if (model.layersModel !== undefined && model.module !== undefined) issues.push({ path: 'model.module', message: 'give model.layersModel or model.module, not both' });
  for (const k of ['input', 'trunk', 'experts', 'inputs', 'adapters'] as const) {
    const v = model[k];
    const empty = v === undefined || (Array.isArray(v) && v.length === 0) || (isRecord(v) && Object.keys(v).length === 0);
    if (!empty) issues.push({ path: `model.${k}`, message: `model.${source} brings its own ${k === 'input' ? 'input shape' : 'layers'}: remove model.${k}` });
  }
  if (isRecord(model.heads)) {
    for (const [t] of outputs) issues.push({ path: `tasks.${t}.output`, message: 'with model.heads the tasks read the heads; output is for a model whose own outputs are the tasks' });
  } else {
    if (model.trunkOutput !== undefined) issues.push({ path: 'model.trunkOutput', message: 'trunkOutput cuts the model for YAML heads: give model.heads too' });
    for (const [t, spec] of Object.entries(tasks ?? {})) {
      if (isRecord(spec) && spec.output === undefined) issues.push({ path: `tasks.${t}.output`, message: `expected the name of the model output task "${t}" trains (or model.heads)` });
    }
  }
  return issues;
}

/** Sequential mode: stages name known tasks, each task trains in exactly one stage, steps add up. */
function stageChecks(training: Record<string, unknown>, tasks: Record<string, unknown> | undefined): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const mode = training.mode ?? 'simultaneous';
  const stages = Array.isArray(training.stages) ? training.stages : undefined;
  if (mode === 'simultaneous') {
    if (training.steps === undefined) issues.push({ path: 'training.steps', message: 'expected the number of training steps' });
    if (training.stages !== undefined) issues.push({ path: 'training.stages', message: 'stages need training.mode: sequential' });
    if (training.baselines !== undefined) issues.push({ path: 'training.baselines', message: 'baselines (for forward transfer) need training.mode: sequential' });
    return issues;
  }
  if (mode !== 'sequential') return issues;
  if (!stages) {
    if (training.stages === undefined) issues.push({ path: 'training.stages', message: 'sequential mode needs stages (each: tasks, steps)' });
    return issues;
  }
  const names = tasks ? Object.keys(tasks) : undefined;
  const stageOf = new Map<string, number>();
  let total = 0;
  stages.forEach((st: unknown, i) => {
    if (!isRecord(st)) return;
    total += num(st.steps) ?? 0;
    const stageTasks = Array.isArray(st.tasks) ? st.tasks.filter((t): t is string => typeof t === 'string') : [];
    stageTasks.forEach((t, j) => {
      if (names && !names.includes(t)) issues.push({ path: `training.stages[${i}].tasks[${j}]`, message: `unknown task "${t}" (tasks: ${names.join(', ')})` });
      else if (stageOf.has(t)) issues.push({ path: `training.stages[${i}].tasks[${j}]`, message: `task "${t}" already trains in stage ${stageOf.get(t)! + 1}` });
      else stageOf.set(t, i);
    });
    const freeze = Array.isArray(st.freeze) ? st.freeze : [];
    freeze.forEach((g: unknown, j) => {
      if (typeof g === 'string' && g !== 'shared' && names && !names.includes(g)) {
        issues.push({ path: `training.stages[${i}].freeze[${j}]`, message: `expected "shared" or a task name (${names.join(', ')}), got "${g}"` });
      }
    });
    const protect = isRecord(st.protect) ? st.protect : {};
    if (i === 0) {
      for (const k of ['ewc', 'l2sp', 'replay']) {
        if (protect[k] !== undefined) issues.push({ path: `training.stages[0].protect.${k}`, message: 'the first stage has no earlier tasks to protect' });
      }
    }
  });
  for (const t of names ?? []) if (!stageOf.has(t)) issues.push({ path: 'training.stages', message: `task "${t}" is in no stage` });
  const steps = num(training.steps);
  if (steps !== undefined && steps !== total) issues.push({ path: 'training.steps', message: `expected the sum of the stages' steps (${total}) or nothing, got ${steps}` });
  if (isRecord(training.baselines) && names) {
    for (const t of Object.keys(training.baselines)) if (!names.includes(t)) issues.push({ path: `training.baselines.${t}`, message: `unknown task "${t}"` });
  }
  return issues;
}

/**
 * Checks across fields. They read the raw document (each check only where its inputs have
 * the right types), so they are reported together with the schema's problems.
 */
function crossChecks(doc: unknown, options: ValidateOptions): SpecIssue[] {
  const issues: SpecIssue[] = [];
  if (!isRecord(doc)) return issues;
  const tasks = isRecord(doc.tasks) ? doc.tasks : undefined;
  const model = isRecord(doc.model) ? doc.model : undefined;
  if (model && isRecord(model.heads) && tasks) {
    const names = Object.keys(tasks);
    for (const t of names) if (!(t in model.heads)) issues.push({ path: `model.heads.${t}`, message: `task "${t}" has no head` });
    for (const h of Object.keys(model.heads)) {
      if (!(h in tasks)) issues.push({ path: `model.heads.${h}`, message: `head for unknown task "${h}" (tasks: ${names.join(', ')})` });
    }
  }
  if (model) issues.push(...userModelChecks(model, tasks));

  const training = isRecord(doc.training) ? doc.training : {};
  const batchSize = num(training.batchSize);
  const shards = num(training.shardsPerTask);
  if (batchSize !== undefined && shards !== undefined && batchSize > 0 && shards > batchSize) {
    issues.push({ path: 'training.shardsPerTask', message: `expected at most batchSize (${batchSize}) shards, got ${shards}` });
  }
  const steps = num(training.steps);
  const evalEvery = num(training.evalEvery);
  if (steps !== undefined && evalEvery !== undefined && steps > 0 && evalEvery > steps) {
    issues.push({ path: 'training.evalEvery', message: `expected at most steps (${steps}), got ${evalEvery}` });
  }
  issues.push(...stageChecks(training, tasks));
  if (model && isRecord(model.experts)) issues.push(...expertChecks(model.experts));
  if (model && isRecord(model.adapters) && tasks) {
    for (const t of Object.keys(model.adapters)) {
      if (!(t in tasks)) issues.push({ path: `model.adapters.${t}`, message: `adapter for unknown task "${t}" (tasks: ${Object.keys(tasks).join(', ')})` });
    }
    if (Object.keys(model.adapters).length > 0 && isRecord(model.inputs)) {
      issues.push({ path: 'model.adapters', message: 'input adapters cannot be combined with model.inputs in this version' });
    }
    if (Object.keys(model.adapters).length > 0 && isRecord(model.experts)) {
      issues.push({ path: 'model.adapters', message: 'input adapters cannot be combined with model.experts in this version' });
    }
  }
  const aggregator = isRecord(training.aggregator) ? str(training.aggregator.name) : undefined;
  if (options.aggregatorNames && aggregator !== undefined && !options.aggregatorNames.includes(aggregator)) {
    const near = nearestName(aggregator, options.aggregatorNames);
    issues.push({ path: 'training.aggregator.name', message: `unknown aggregator ${JSON.stringify(aggregator)}${near !== undefined ? `; did you mean \`${near}\`?` : ''} (available: ${options.aggregatorNames.join(', ')})` });
  }

  for (const [t, spec] of Object.entries(tasks ?? {})) {
    if (!isRecord(spec)) continue;
    const loss = str(spec.loss);
    const metrics = Array.isArray(spec.metrics) ? spec.metrics : [];
    if (loss && REGRESSION_LOSSES.has(loss) && metrics.includes('accuracy')) {
      issues.push({ path: `tasks.${t}.metrics`, message: `accuracy needs a classification loss, got ${loss}` });
    }
    const d = isRecord(spec.data) ? spec.data : {};
    if (d.dataset === 'synthetic') {
      const count = num(d.tasks) ?? 2;
      const rho = num(d.rho);
      const target = num(d.target);
      if (count > 2 && rho !== undefined && rho < 0) {
        issues.push({ path: `tasks.${t}.data.rho`, message: `a negative correlation is only defined for 2 tasks, got ${rho} with ${count} tasks` });
      }
      if (target !== undefined && target >= count) issues.push({ path: `tasks.${t}.data.target`, message: `expected a task index below tasks (${count}), got ${target}` });
      if (loss && CLASSIFICATION_LOSSES.has(loss)) {
        issues.push({ path: `tasks.${t}.loss`, message: `the synthetic dataset is a regression: expected meanSquaredError or meanAbsoluteError, got ${loss}` });
      }
    }
    if (d.dataset === 'multimnist' && loss && loss !== 'sparseCategoricalCrossentropy' && (CLASSIFICATION_LOSSES.has(loss) || REGRESSION_LOSSES.has(loss))) {
      issues.push({ path: `tasks.${t}.loss`, message: `multimnist targets are digit classes: expected sparseCategoricalCrossentropy, got ${loss}` });
    }
  }
  return issues;
}

/** Validates an already-parsed document (YAML or JSON). Throws JobSpecError listing every problem. */
export function validateJob(doc: unknown, source: string, options: ValidateOptions = {}): JobSpec {
  const parsed = jobSchema.safeParse(doc, { reportInput: true });
  const issues = [...(parsed.success ? [] : specIssues(parsed.error, [], { schema: jobSchema, input: doc })), ...crossChecks(doc, options)];
  if (!parsed.success || issues.length > 0) throw new JobSpecError(source, issues);
  return parsed.data;
}

export function parseJobText(text: string, source: string, options: ValidateOptions = {}): JobSpec {
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new JobSpecError(
      source,
      doc.errors.map((e) => ({ path: '', message: `YAML ${e.code} at line ${e.linePos?.[0].line ?? '?'}: ${e.message.split('\n')[0] ?? ''}` })),
    );
  }
  return validateJob(doc.toJS(), source, options);
}

export function loadJobFile(file: string, options: ValidateOptions = {}): LoadedJob {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String((err as Error).message);
    throw new JobSpecError(file, [{ path: '', message: `cannot read job file: ${reason}` }], { cause: err });
  }
  return { spec: parseJobText(text, file, options), dir: path.dirname(abs), source: file };
}

/** The resolved spec (defaults filled in) as YAML, for the run directory. */
export function jobToYaml(job: JobSpec): string {
  return YAML.stringify(job);
}

export function taskNames(job: JobSpec): string[] {
  return Object.keys(job.tasks);
}

/** Whether the job's model is the user's (a Layers model file or a module) rather than our YAML layers. */
export function hasUserModel(job: JobSpec): boolean {
  return job.model.layersModel !== undefined || job.model.module !== undefined;
}

/**
 * Whether the job trains on the graph path (common/model-graph.ts): a model of the user's, or
 * YAML layers beyond the five of the fast path, which are built as a tfjs-layers model.
 */
export function usesGraphPath(job: JobSpec): boolean {
  if (hasUserModel(job)) return true;
  const m = job.model;
  const lists = [m.trunk, ...Object.values(m.heads ?? {}), ...Object.values(m.adapters), ...(m.experts ? [m.experts.layers] : []), ...Object.values(m.inputs ?? {}).map((i) => i.layers)];
  return lists.some((list) => list.some((raw) => !isFastPathLayer(layerSpec(raw))));
}

export function trunkLayers(job: JobSpec): LayerSpec[] {
  return job.model.trunk.map(layerSpec);
}

export function adapterLayers(job: JobSpec, task: string): LayerSpec[] {
  return job.model.adapters[task]?.map(layerSpec) ?? [];
}

export function expertLayers(job: JobSpec): LayerSpec[] {
  return job.model.experts?.layers.map(layerSpec) ?? [];
}

export function headLayers(job: JobSpec, task: string): LayerSpec[] {
  const head = job.model.heads?.[task];
  if (!head) throw new RangeError(`no head for task ${task}`);
  return head.map(layerSpec);
}

/**
 * The job with another aggregator (`mtl run --aggregator NAME`): the file's options are kept
 * when it names the same method, otherwise the method's defaults apply.
 */
export function withAggregator(job: JobSpec, name: string): JobSpec {
  if (job.training.aggregator.name === name) return job;
  return { ...job, training: { ...job.training, aggregator: { name } } };
}
