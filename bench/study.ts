// `npm run study`: the quality study of issue 3. Trains single-task baselines and every
// aggregation method, several seeds each, on the synthetic benchmark at several task
// correlations and on MultiMNIST, with the real CLI (`mtl run`), and writes
// docs/results.md (+ docs/results.json with every run's numbers).
//
// Options: --seeds 1,2,3  --concurrency 2  --methods a,b  --only synthetic|multimnist
//          --quick (1 seed, short runs: a smoke test of the pipeline, not results)
//          --report-only (write the report from the runs already finished; run nothing)
// Runs recorded in docs/results.json are reused too when their job (hash of the resolved spec)
// is unchanged, so a study finished on one machine need not be redone on the next.
// Finished runs are reused (runs/study/.../summary.json), so an interrupted study resumes.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { loadJobFile, type JobSpec } from '../common/job-spec.js';
import { aggregatorNames } from '../coordinator/aggregation/registry.js';
import { jobHash } from '../coordinator/checkpoints.js';
import { option } from './bench-types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const RUNS = path.join(ROOT, 'runs', 'study');

interface Setting {
  /** Table title. */
  title: string;
  key: string;
  job: JobSpec;
  /** The metric compared per task, and whether higher is better. */
  metric: string;
  higherIsBetter: boolean;
}

interface RunOutcome {
  setting: string;
  method: string;
  seed: number;
  metrics: Record<string, number>;
  wallTimeS: number;
  /** Hash of the run's resolved job: a recorded run is reused only for the same job. */
  jobHash: string;
}

const runKey = (r: Pick<RunOutcome, 'setting' | 'method' | 'seed' | 'jobHash'>) => `${r.setting}|${r.method}|${r.seed}|${r.jobHash}`;

/** Runs recorded by an earlier study in docs/results.json (those with a job hash). */
function recordedRuns(file: string): Map<string, RunOutcome> {
  if (!existsSync(file)) return new Map();
  const { runs } = JSON.parse(readFileSync(file, 'utf8')) as { runs?: Array<Partial<RunOutcome>> };
  return new Map((runs ?? []).filter((r): r is RunOutcome => typeof r.jobHash === 'string').map((r) => [runKey(r), r]));
}

function settings(quick: boolean, only: string | undefined): Setting[] {
  const out: Setting[] = [];
  if (only === undefined || only === 'synthetic') {
    const base = loadJobFile(path.join(ROOT, 'examples', 'synthetic.yaml')).spec;
    for (const rho of [0.9, 0.5, 0, -0.5]) {
      const tasks = Object.fromEntries(
        Object.entries(base.tasks).map(([t, s]) => [t, { ...s, data: { ...s.data, rho } as typeof s.data }]),
      );
      const job: JobSpec = { ...base, tasks, training: { ...base.training, steps: quick ? 200 : base.training.steps, evalEvery: undefined } };
      out.push({ title: `synthetic (MMoE benchmark), rho = ${rho}`, key: `synthetic-rho${rho}`, job, metric: 'mse', higherIsBetter: false });
    }
  }
  if (only === undefined || only === 'multimnist') {
    const base = loadJobFile(path.join(ROOT, 'examples', 'multimnist.yaml')).spec;
    const job: JobSpec = { ...base, training: { ...base.training, steps: quick ? 200 : base.training.steps, evalEvery: undefined } };
    out.push({ title: 'MultiMNIST (examples/multimnist.yaml)', key: 'multimnist', job, metric: 'accuracy', higherIsBetter: true });
  }
  return out;
}

/** The job for one method ('stl:<task>' = that task alone, the single-task baseline). */
function jobFor(setting: Setting, method: string, seed: number): JobSpec {
  const job = setting.job;
  if (method.startsWith('stl:')) {
    const task = method.slice(4);
    return {
      ...job,
      seed,
      name: `${job.name}-stl-${task}`,
      tasks: { [task]: job.tasks[task]! },
      model: { ...job.model, ...(job.model.heads ? { heads: { [task]: job.model.heads[task]! } } : {}) },
      training: { ...job.training, aggregator: { name: 'mean' } },
    };
  }
  return { ...job, seed, name: `${job.name}-${method}`, training: { ...job.training, aggregator: { name: method } } };
}

function runOne(setting: Setting, method: string, seed: number, reportOnly: boolean, recorded: ReadonlyMap<string, RunOutcome>): Promise<RunOutcome | undefined> {
  const hash = jobHash(jobFor(setting, method, seed));
  const before = recorded.get(runKey({ setting: setting.key, method, seed, jobHash: hash }));
  if (before) return Promise.resolve(before);
  const dir = path.join(RUNS, setting.key, `${method.replace(':', '-')}-seed${seed}`);
  const summaryFile = path.join(dir, 'summary.json');
  const done = (): RunOutcome => {
    const s = JSON.parse(readFileSync(summaryFile, 'utf8')) as { status: string; wallTimeS: number; tasks: Record<string, Record<string, number>>; error?: { message: string } };
    if (s.status !== 'succeeded') throw new Error(`${setting.key} ${method} seed ${seed}: ${s.status}: ${s.error?.message ?? ''}`);
    const metrics = Object.fromEntries(Object.entries(s.tasks).map(([t, m]) => [t, m[setting.metric]!]));
    return { setting: setting.key, method, seed, metrics, wallTimeS: s.wallTimeS, jobHash: hash };
  };
  if (existsSync(summaryFile)) {
    try {
      return Promise.resolve(done());
    } catch {
      // A failed earlier attempt: run again.
    }
  }
  if (reportOnly) return Promise.resolve(undefined);
  mkdirSync(dir, { recursive: true });
  // The study's data sets need no files, so the job can live in its run directory.
  const jobFile = path.join(dir, 'study-job.yaml');
  writeFileSync(jobFile, YAML.stringify(jobFor(setting, method, seed)));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'run', jobFile, '--workers', '1', '--out', dir, '--quiet', '--json', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      try {
        if (code !== 0 && !existsSync(summaryFile)) throw new Error(`exit ${code}: ${stderr}`);
        resolve(done());
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}

async function pool<T>(tasks: Array<() => Promise<T>>, concurrency: number): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]!();
      }
    }),
  );
  return results;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: readonly number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
const pm = (xs: readonly number[], digits: number) => (xs.length === 0 ? '—' : `${mean(xs).toFixed(digits)} ± ${std(xs).toFixed(digits)}`);

function report(all: RunOutcome[], planned: number, sets: Setting[], methods: string[], command: string, seeds: number[], wallS: number): string {
  const lines = [
    '# Quality study: aggregation methods against single-task learning',
    '',
    `Produced by \`${command}\` on ${new Date().toISOString().slice(0, 10)} (${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}), ` +
      `${seeds.length} seeds (${seeds.join(', ')}), ${(wallS / 60).toFixed(0)} minutes in all (the sum of the runs' own wall times, reused runs included, halved for two at a time). Every run is \`mtl run JOB --workers 1\` on the wasm backend; ` +
      `two runs at a time, so wall times are comparable within this study only.`,
    '',
    ...(all.length < planned ? [`**Incomplete: ${all.length} of ${planned} planned runs had finished; missing runs are left out of the means below.**`, ''] : []),
    'Per task: the held-out metric, mean ± standard deviation over seeds. Δm: the average relative change against ' +
      'the single-task baseline (STL) over tasks, in %, positive = better than STL (as in LibMTL: Δm = (1/T) Σₜ (−1)^{lₜ} (Mₜ − Mₜ,STL)/Mₜ,STL, lₜ = 1 when lower is better); ' +
      'computed per seed against the STL mean, then averaged. Time: wall seconds per run (mean).',
    '',
  ];
  for (const s of sets) {
    const tasks = Object.keys(s.job.tasks);
    const runs = all.filter((r) => r.setting === s.key);
    const stl = Object.fromEntries(tasks.map((t) => [t, mean(runs.filter((r) => r.method === `stl:${t}`).map((r) => r.metrics[t]!))]));
    const dm = (r: RunOutcome) =>
      (100 / tasks.length) * tasks.reduce((acc, t) => acc + ((s.higherIsBetter ? 1 : -1) * (r.metrics[t]! - stl[t]!)) / stl[t]!, 0);
    lines.push(`## ${s.title}`, '', `Metric: ${s.metric} (${s.higherIsBetter ? 'higher' : 'lower'} is better), ${s.job.training.steps} steps, batch ${s.job.training.batchSize}.`, '');
    lines.push(`| method | ${tasks.join(' | ')} | Δm % | time s | seeds |`, `|---|${tasks.map(() => '---').join('|')}|---|---|---|`);
    const digits = s.higherIsBetter ? 4 : 4;
    lines.push(`| STL | ${tasks.map((t) => pm(runs.filter((r) => r.method === `stl:${t}`).map((r) => r.metrics[t]!), digits)).join(' | ')} | 0 | ${mean(runs.filter((r) => r.method.startsWith('stl:')).map((r) => r.wallTimeS)).toFixed(1)} (each) | ${runs.filter((r) => r.method === `stl:${tasks[0]}`).length} |`);
    const rows = methods.map((m) => {
      const mine = runs.filter((r) => r.method === m);
      return { m, mine, dm: mine.map(dm) };
    });
    rows.sort((a, b) => (b.dm.length === 0 ? -Infinity : mean(b.dm)) - (a.dm.length === 0 ? -Infinity : mean(a.dm)));
    for (const { m, mine, dm: d } of rows) {
      const time = mine.length === 0 ? '—' : mean(mine.map((r) => r.wallTimeS)).toFixed(1);
      lines.push(`| ${m} | ${tasks.map((t) => pm(mine.map((r) => r.metrics[t]!), digits)).join(' | ')} | ${pm(d, 2)} | ${time} | ${mine.length} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const reportOnly = args.includes('--report-only');
  const seeds = (option(args, 'seeds') ?? (quick ? '1' : '1,2,3')).split(',').map(Number);
  const concurrency = Number(option(args, 'concurrency') ?? 2);
  const methods = option(args, 'methods')?.split(',') ?? [...aggregatorNames];
  const sets = settings(quick, option(args, 'only'));
  const started = performance.now();
  const docs = path.join(ROOT, 'docs');
  const name = quick ? 'results-quick' : 'results';
  const recorded = recordedRuns(path.join(docs, `${name}.json`));
  const jobs: Array<() => Promise<RunOutcome | undefined>> = [];
  for (const s of sets) {
    for (const seed of seeds) {
      for (const m of [...Object.keys(s.job.tasks).map((t) => `stl:${t}`), ...methods]) {
        jobs.push(async () => {
          const r = await runOne(s, m, seed, reportOnly, recorded);
          if (!r) return undefined;
          process.stderr.write(`${s.key} ${m} seed ${seed}: ${Object.entries(r.metrics).map(([t, v]) => `${t} ${v.toFixed(4)}`).join(' ')} (${r.wallTimeS.toFixed(1)} s)\n`);
          return r;
        });
      }
    }
  }
  process.stderr.write(`study: ${jobs.length} runs, ${concurrency} at a time\n`);
  const all = (await pool(jobs, concurrency)).filter((r): r is RunOutcome => r !== undefined);
  // The command that produced the runs (--report-only only rewrote the report from them).
  const runArgs = args.filter((a) => a !== '--report-only');
  const command = `npm run study${runArgs.length ? ` -- ${runArgs.join(' ')}` : ''}`;
  // The runs' own wall times, `concurrency` at a time: reused runs count as much as new ones.
  const wallS = all.reduce((t, r) => t + r.wallTimeS, 0) / concurrency;
  process.stderr.write(`study: this invocation took ${((performance.now() - started) / 60_000).toFixed(1)} min\n`);
  mkdirSync(docs, { recursive: true });
  writeFileSync(path.join(docs, `${name}.md`), report(all, jobs.length, sets, methods, command, seeds, wallS) + '\n');
  writeFileSync(path.join(docs, `${name}.json`), JSON.stringify({ command, seeds, runs: all }, null, 1) + '\n');
  process.stderr.write(`wrote docs/${name}.md\n`);
}

await main();
