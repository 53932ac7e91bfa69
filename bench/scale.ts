// The coordinator under load: W simulated workers (real gRPC clients answering at once with
// precomputed gradients) for P shared parameters and T = 8 tasks. Step time is split as the
// coordinator records it (StepRecord.timeMs): units ≈ receive (assignment to last result; it
// includes the workers' receipt of the previous weights, since they answer only then),
// aggregate, optimize, broadcast (encode + queue). Reported: medians over the steps after the
// first, their growth with W (÷ W = 1) and with P (÷ the smallest P), and the coordinator's
// peak RSS during steps ÷ the memory formula of bench/scale-model.ts.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { option, type Bench } from './bench-types.js';
import { shardsFor, type ScaleConfig, type ScaleRunResult } from './scale-model.js';

const PARTS = ['units', 'aggregate', 'optimize', 'broadcast', 'total'] as const;
type Part = (typeof PARTS)[number];

/** Runs one configuration in its own process (bench/scale-run.ts). */
export function runConfig(config: ScaleConfig): Promise<ScaleRunResult> {
  const script = fileURLToPath(new URL('./scale-run.js', import.meta.url));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, JSON.stringify(config)], { maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`scale run ${JSON.stringify(config)} failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as ScaleRunResult);
    });
  });
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export const list = (text: string | undefined, fallback: number[]) => (text ? text.split(',').map(Number) : fallback);
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

export const scaleBench: Bench = {
  name: 'scale',
  description: 'coordinator step time (receive, aggregate, optimize, broadcast) and peak RSS for W simulated workers × P parameters, T = 8',
  async run(args, progress) {
    const quick = args.includes('--quick');
    const ps = list(option(args, 'params'), quick ? [1e5, 1e6] : [1e6, 1e7]);
    const ws = list(option(args, 'workers'), quick ? [1, 8] : [1, 8, 32, 64]);
    const tasks = 8;
    const steps = Number(option(args, 'steps') ?? (quick ? 3 : 4));
    const rows: Array<{ p: number; w: number; shards: number; parameters: number; ms: Record<Part, number>; peakRssMB: number; baselineRssMB: number; formulaMB: number; rssOverFormula: number; terms: Record<string, number> }> = [];
    for (const p of ps) {
      for (const w of ws) {
        const r = await runConfig({ p, workers: w, tasks, steps });
        const later = r.steps.slice(1).length > 0 ? r.steps.slice(1) : r.steps;
        const ms = Object.fromEntries(PARTS.map((k) => [k, median(later.map((s) => s[k]))])) as Record<Part, number>;
        const row = { p, w, shards: shardsFor({ workers: w, tasks }), parameters: r.parameters, ms, peakRssMB: r.peakRss / 2 ** 20, baselineRssMB: r.baselineRss / 2 ** 20, formulaMB: r.model.bytes / 2 ** 20, rssOverFormula: r.peakRss / r.model.bytes, terms: r.model.terms };
        rows.push(row);
        progress(`scale: P=${p.toExponential(0)} W=${w}: step ${ms.total.toFixed(0)} ms (units ${ms.units.toFixed(0)}, aggregate ${ms.aggregate.toFixed(0)}, optimize ${ms.optimize.toFixed(0)}, broadcast ${ms.broadcast.toFixed(0)}), peak RSS ${mb(r.peakRss)} MiB vs formula ${mb(r.model.bytes)} MiB`);
      }
    }
    const at = (p: number, w: number) => rows.find((r) => r.p === p && r.w === w)!;
    const growth = rows.map((r) => ({ p: r.p, w: r.w, overW1: r.ms.total / at(r.p, ws[0]!).ms.total, overPmin: r.ms.total / at(ps[0]!, r.w).ms.total }));
    const text = [
      `scale: coordinator step with W simulated gRPC workers (one process), T = ${tasks}, shards per task = ⌈W/T⌉, mean aggregator, Adam; medians of steps 2..${steps} (ms)`,
      '',
      '| P | W | units (receive) | aggregate | optimize | broadcast | step | ÷ W=' + ws[0] + ' | ÷ P=' + ps[0]!.toExponential(0) + ' | peak RSS (MiB) | formula (MiB) | RSS ÷ formula |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...rows.map((r, i) => `| ${r.p.toExponential(0)} | ${r.w} | ${r.ms.units.toFixed(0)} | ${r.ms.aggregate.toFixed(0)} | ${r.ms.optimize.toFixed(0)} | ${r.ms.broadcast.toFixed(0)} | ${r.ms.total.toFixed(0)} | ${growth[i]!.overW1.toFixed(2)} | ${growth[i]!.overPmin.toFixed(2)} | ${r.peakRssMB.toFixed(0)} | ${r.formulaMB.toFixed(0)} | ${r.rssOverFormula.toFixed(2)} |`),
      '',
      'formula = baseline RSS (measured before the run) + 4 B × (Ptot initial + Ptot θ + 2·Ptot Adam + Ptot update + 2·Ptot encoded broadcast + S·Σₜ uₜ unit results [+ Σₜ uₜ combined shards + 2·max u accumulator when S > 1]); uₜ = shared + head of task t.',
    ].join('\n');
    return { text, json: { tasks, steps, results: rows, growth } };
  },
};
