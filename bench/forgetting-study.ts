// `npm run study:forgetting`: sequential training on MultiMNIST (examples/sequential-multimnist.yaml:
// left digit, then right digit) with each forgetting protection, several seeds, with the real
// CLI; writes docs/sequential-results.md (+ .json). The number that matters is the left task's
// retention: its accuracy after stage 2 as a fraction of its accuracy after stage 1.
//
// Options: --seeds 1,2,3  --concurrency 2  --quick (short stages: a smoke test, not results)
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { loadJobFile, type JobSpec } from '../common/job-spec.js';
import type { StageSpec } from '../common/job-schema.js';
import { option } from './bench-types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const RUNS = path.join(ROOT, 'runs', 'forgetting-study');

/** The protections compared: stage 2's `protect`, and a label. */
const VARIANTS: Array<{ key: string; label: string; protect: Record<string, unknown> }> = [
  { key: 'none', label: 'no protection', protect: {} },
  { key: 'ewc', label: 'EWC (λ = 10⁴, sampled Fisher of 1000 examples)', protect: { ewc: { lambda: 10000 } } },
  { key: 'ewc-decoupled', label: 'EWC, decoupled proximal step (λ = 10⁶)', protect: { ewc: { lambda: 1000000, decoupled: true } } },
  { key: 'l2sp', label: 'L2-SP (α = 0.1)', protect: { l2sp: { alpha: 0.1 } } },
  { key: 'replay', label: 'replay (fraction 0.25: 16 left-digit examples per step)', protect: { replay: { fraction: 0.25 } } },
];

interface Outcome {
  variant: string;
  seed: number;
  /** R[stage][task]. */
  matrix: Array<Record<string, number>>;
  retention: number;
  wallTimeS: number;
}

function jobFor(base: JobSpec, protect: Record<string, unknown>, seed: number, quick: boolean): JobSpec {
  const stages = base.training.stages!.map((s, i): StageSpec => ({
    ...s,
    steps: quick ? 100 : s.steps,
    protect: i === 1 ? (protect as StageSpec['protect']) : s.protect,
  }));
  const steps = stages.reduce((n, s) => n + s.steps, 0);
  return { ...base, seed, training: { ...base.training, stages, steps, evalEvery: undefined } };
}

function runOne(job: JobSpec, variant: string, seed: number): Promise<Outcome> {
  const dir = path.join(RUNS, `${variant}-seed${seed}`);
  mkdirSync(dir, { recursive: true });
  const jobFile = path.join(dir, 'study-job.yaml');
  const text = YAML.stringify(job);
  const summaryFile = path.join(dir, 'summary.json');
  const read = (): Outcome => {
    const s = JSON.parse(readFileSync(summaryFile, 'utf8')) as { status: string; wallTimeS: number; continual: { matrix: Array<Record<string, number>>; retention: Record<string, number> } };
    if (s.status !== 'succeeded') throw new Error(`${variant} seed ${seed}: ${s.status}`);
    return { variant, seed, matrix: s.continual.matrix, retention: s.continual.retention.left!, wallTimeS: s.wallTimeS };
  };
  // A finished run of the same job is reused, so an interrupted study resumes.
  if (existsSync(summaryFile) && existsSync(jobFile) && readFileSync(jobFile, 'utf8') === text) {
    try {
      return Promise.resolve(read());
    } catch {
      // failed before: run again
    }
  }
  writeFileSync(jobFile, text);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'run', jobFile, '--out', dir, '--quiet', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      if (code !== 0 || !existsSync(summaryFile)) return reject(new Error(`${variant} seed ${seed}: exit ${code}\n${stderr}`));
      resolve(read());
    });
  });
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]): number => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));
const fmt = (xs: number[]): string => `${mean(xs).toFixed(3)} ± ${std(xs).toFixed(3)}`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const seeds = (option(args, 'seeds') ?? '1,2,3').split(',').map(Number);
  const concurrency = Number(option(args, 'concurrency') ?? 2);
  const quick = args.includes('--quick');
  const base = loadJobFile(path.join(ROOT, 'examples', 'sequential-multimnist.yaml')).spec;
  const todo = VARIANTS.flatMap((v) => seeds.map((seed) => ({ v, seed })));
  const results: Outcome[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < todo.length) {
      const { v, seed } = todo[next++]!;
      const r = await runOne(jobFor(base, v.protect, seed, quick), v.key, seed);
      results.push(r);
      process.stderr.write(`${v.key} seed ${seed}: left ${r.matrix[0]!.left!.toFixed(4)} → ${r.matrix[1]!.left!.toFixed(4)} (retention ${r.retention.toFixed(3)}), right ${r.matrix[1]!.right!.toFixed(4)}, ${r.wallTimeS.toFixed(0)} s\n`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  // The runs' own wall times (reused runs included), not this invocation's.
  const minutes = results.reduce((t, r) => t + r.wallTimeS, 0) / 60;

  const rows = VARIANTS.map((v) => {
    const rs = results.filter((r) => r.variant === v.key);
    return `| ${v.label} | ${fmt(rs.map((r) => r.matrix[0]!.left!))} | ${fmt(rs.map((r) => r.matrix[1]!.left!))} | **${fmt(rs.map((r) => r.retention))}** | ${fmt(rs.map((r) => r.matrix[1]!.right!))} |`;
  });
  const md = [
    '# Sequential training: forgetting and its protections',
    '',
    `Generated by \`npm run study:forgetting\`${quick ? ' --quick (smoke test: short stages, not results)' : ''} on ${new Date().toISOString().slice(0, 10)}: ` +
      `examples/sequential-multimnist.yaml (stage 1: left digit, ${jobFor(base, {}, 1, quick).training.stages![0]!.steps} steps; stage 2: right digit, same trunk, ` +
      `${jobFor(base, {}, 1, quick).training.stages![1]!.steps} steps; Adam 0.001, batch 64, MLP 256-128), seeds ${seeds.join(', ')}, mean ± std over seeds, ` +
      `wasm backend, 1 worker per run, 2 runs at a time on 2 cores; the runs' wall times add up to ${minutes.toFixed(0)} min. Accuracy on the 10 000 held-out images.`,
    '',
    '| stage 2 protection | left after stage 1 | left after stage 2 | left retention | right after stage 2 |',
    '|---|---|---|---|---|',
    ...rows,
    '',
    'Retention = left accuracy after stage 2 ÷ after stage 1 (1 = nothing forgotten). Per run: runs/forgetting-study/*/summary.json (`continual`).',
    '',
  ].join('\n');
  writeFileSync(path.join(ROOT, 'docs', 'sequential-results.md'), md);
  writeFileSync(path.join(ROOT, 'docs', 'sequential-results.json'), JSON.stringify({ seeds, quick, runs: results }, null, 1) + '\n');
  process.stdout.write(md);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
