// Submitted jobs: sweep expansion and the queue message. A sweep `--sweep a.b=1,2 --sweep c=x,y`
// is the cartesian product of its axes (4 runs here); every point is validated as a whole job
// before anything is published, so a bad value names its path and nothing is queued.
import { randomUUID } from 'node:crypto';
import YAML from 'yaml';
import { JobSpecError, type SpecIssue } from '../errors.js';
import { validateJob, type JobSpec, type ValidateOptions } from '../job-spec.js';

export interface SweepAxis {
  path: string[];
  values: unknown[];
}

/** Parses `key.path=v1,v2,...`; values are YAML scalars (numbers, booleans, strings). */
export function parseSweep(arg: string): SweepAxis {
  const eq = arg.indexOf('=');
  const key = eq > 0 ? arg.slice(0, eq).trim() : '';
  const raw = eq > 0 ? arg.slice(eq + 1) : '';
  if (!key || raw.trim() === '') throw new JobSpecError('--sweep', [{ path: key, message: `expected KEY=V1,V2,... (a dotted path into the job), got ${JSON.stringify(arg)}` }]);
  const path = key.split('.');
  if (path.some((p) => p === '')) throw new JobSpecError('--sweep', [{ path: key, message: 'empty segment in the key path' }]);
  const values = raw.split(',').map((v) => YAML.parse(v.trim()) as unknown);
  return { path, values };
}

function setPath(doc: unknown, path: readonly string[], value: unknown): SpecIssue | undefined {
  let node = doc as Record<string, unknown>;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i]!;
    const next = node[key];
    if (next === undefined) node[key] = {};
    else if (typeof next !== 'object' || next === null || Array.isArray(next)) return { path: path.slice(0, i + 1).join('.'), message: 'a sweep key must go through objects only' };
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
  return undefined;
}

export interface SweepPoint {
  /** The key → value of this point (empty without a sweep). */
  values: Record<string, unknown>;
  spec: JobSpec;
}

/** Every point of the sweep over `doc` (a parsed, not yet validated job), each validated. */
export function expandSweep(doc: unknown, source: string, axes: readonly SweepAxis[], options: ValidateOptions = {}): SweepPoint[] {
  let points: Array<Record<string, unknown>> = [{}];
  for (const axis of axes) points = points.flatMap((p) => axis.values.map((v) => ({ ...p, [axis.path.join('.')]: v })));
  const issues: SpecIssue[] = [];
  const out: SweepPoint[] = [];
  for (const values of points) {
    const copy = structuredClone(doc);
    const label = Object.entries(values).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ');
    let ok = true;
    for (const [k, v] of Object.entries(values)) {
      const issue = setPath(copy, k.split('.'), v);
      if (issue) {
        issues.push(issue);
        ok = false;
      }
    }
    if (!ok) continue;
    try {
      out.push({ values, spec: validateJob(copy, source, options) });
    } catch (err) {
      if (!(err instanceof JobSpecError)) throw err;
      issues.push(...err.issues.map((i) => ({ path: i.path, message: label ? `${i.message} (sweep point ${label})` : i.message })));
    }
  }
  if (issues.length > 0) throw new JobSpecError(source, issues);
  return out;
}

/** What MTL_JOBS carries for one run. */
export interface JobMessage {
  kind: 'mtl-job';
  version: 1;
  runId: string;
  /** The resolved job (defaults filled in). */
  spec: JobSpec;
  /** Absolute directory of the submitted job file: relative data paths resolve against it. */
  jobDir: string;
  pool: string;
  sweep: Record<string, unknown>;
  submittedAt: string;
}

export function newRunId(jobName: string): string {
  return `${jobName.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 100)}-${randomUUID().slice(0, 8)}`;
}

/** Parses and checks a queue message; throws JobSpecError naming what is wrong. */
export function decodeJobMessage(data: string, options: ValidateOptions = {}): JobMessage {
  let doc: unknown;
  try {
    doc = JSON.parse(data);
  } catch {
    throw new JobSpecError('queue message', [{ path: '', message: 'not JSON' }]);
  }
  const m = doc as Partial<JobMessage> | null;
  const problems: SpecIssue[] = [];
  if (m?.kind !== 'mtl-job' || m.version !== 1) problems.push({ path: 'kind', message: 'not an mtl job message (kind mtl-job, version 1)' });
  for (const key of ['runId', 'jobDir', 'pool', 'submittedAt'] as const) if (typeof m?.[key] !== 'string') problems.push({ path: key, message: 'expected a string' });
  if (problems.length > 0) throw new JobSpecError('queue message', problems);
  const spec = validateJob(m!.spec, `queued job ${m!.runId}`, options);
  return { ...(m as JobMessage), spec, sweep: m!.sweep ?? {} };
}
