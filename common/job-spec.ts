// Reading and validating job files. Every problem is reported at once, each with its path;
// nothing starts until the whole spec is valid.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { JobSpecError, type SpecIssue } from './errors.js';
import { jobSchema, layerSpec, type LayerSpec, type ParsedJob } from './job-schema.js';
import { specIssues } from './spec-issues.js';

/** A validated job with defaults applied. Task order is the order of `tasks` in the file. */
export type JobSpec = ParsedJob;

export interface LoadedJob {
  spec: JobSpec;
  /** Absolute directory of the job file; relative data paths resolve against it. */
  dir: string;
  source: string;
}

function crossChecks(job: JobSpec): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const tasks = Object.keys(job.tasks);
  for (const t of tasks) {
    if (!(t in job.model.heads)) issues.push({ path: `model.heads.${t}`, message: `task "${t}" has no head` });
  }
  for (const h of Object.keys(job.model.heads)) {
    if (!(h in job.tasks)) issues.push({ path: `model.heads.${h}`, message: `head for unknown task "${h}" (tasks: ${tasks.join(', ')})` });
  }
  if (job.training.shardsPerTask > job.training.batchSize) {
    issues.push({
      path: 'training.shardsPerTask',
      message: `expected at most batchSize (${job.training.batchSize}) shards, got ${job.training.shardsPerTask}`,
    });
  }
  if (job.training.evalEvery !== undefined && job.training.evalEvery > job.training.steps) {
    issues.push({ path: 'training.evalEvery', message: `expected at most steps (${job.training.steps}), got ${job.training.evalEvery}` });
  }
  for (const [t, spec] of Object.entries(job.tasks)) {
    const classification = spec.loss === 'sparseCategoricalCrossentropy' || spec.loss === 'binaryCrossentropy';
    if (!classification && spec.metrics.includes('accuracy')) {
      issues.push({ path: `tasks.${t}.metrics`, message: `accuracy needs a classification loss, got ${spec.loss}` });
    }
    const d = spec.data;
    if (d.dataset === 'synthetic') {
      if (d.tasks > 2 && d.rho < 0) {
        issues.push({ path: `tasks.${t}.data.rho`, message: `a negative correlation is only defined for 2 tasks, got ${d.rho} with ${d.tasks} tasks` });
      }
      if (d.target >= d.tasks) issues.push({ path: `tasks.${t}.data.target`, message: `expected a task index below tasks (${d.tasks}), got ${d.target}` });
      if (spec.loss !== 'meanSquaredError' && spec.loss !== 'meanAbsoluteError') {
        issues.push({ path: `tasks.${t}.loss`, message: `the synthetic dataset is a regression: expected meanSquaredError or meanAbsoluteError, got ${spec.loss}` });
      }
    }
    if (d.dataset === 'multimnist' && spec.loss !== 'sparseCategoricalCrossentropy') {
      issues.push({ path: `tasks.${t}.loss`, message: `multimnist targets are digit classes: expected sparseCategoricalCrossentropy, got ${spec.loss}` });
    }
  }
  return issues;
}

/** Validates an already-parsed document (YAML or JSON). Throws JobSpecError listing every problem. */
export function validateJob(doc: unknown, source: string): JobSpec {
  const parsed = jobSchema.safeParse(doc, { reportInput: true });
  if (!parsed.success) throw new JobSpecError(source, specIssues(parsed.error));
  const issues = crossChecks(parsed.data);
  if (issues.length > 0) throw new JobSpecError(source, issues);
  return parsed.data;
}

export function parseJobText(text: string, source: string): JobSpec {
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new JobSpecError(
      source,
      doc.errors.map((e) => ({ path: '', message: `YAML ${e.code} at line ${e.linePos?.[0].line ?? '?'}: ${e.message.split('\n')[0] ?? ''}` })),
    );
  }
  return validateJob(doc.toJS(), source);
}

export function loadJobFile(file: string): LoadedJob {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String((err as Error).message);
    throw new JobSpecError(file, [{ path: '', message: `cannot read job file: ${reason}` }], { cause: err });
  }
  return { spec: parseJobText(text, file), dir: path.dirname(abs), source: file };
}

/** The resolved spec (defaults filled in) as YAML, for the run directory. */
export function jobToYaml(job: JobSpec): string {
  return YAML.stringify(job);
}

export function taskNames(job: JobSpec): string[] {
  return Object.keys(job.tasks);
}

export function trunkLayers(job: JobSpec): LayerSpec[] {
  return job.model.trunk.map(layerSpec);
}

export function headLayers(job: JobSpec, task: string): LayerSpec[] {
  const head = job.model.heads[task];
  if (!head) throw new RangeError(`no head for task ${task}`);
  return head.map(layerSpec);
}
