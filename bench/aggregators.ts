// How expensive is each aggregation method compared with the least any method must do: one
// pass over G that sums its rows (the memory-bound floor), measured in the same run.
// Goal (issue 3): every method within 4× of the floor at T = 8, P = 10⁷.
//
// Two ways to call a method are timed: standalone (it computes H = G·Gᵀ itself and
// allocates its output), and as the coordinator calls it (H, which the coordinator computes
// once per step for its diagnostics anyway, and a reused output buffer are handed over).
// H alone is reported too, so the difference is visible.
import { gramian } from '../coordinator/aggregation/gramian.js';
import { aggregatorNames, createAggregator } from '../coordinator/aggregation/registry.js';
import { Rng } from '../common/random.js';
import { medianMs, option, type Bench } from './bench-types.js';

const DEFAULT_SIZES: Array<[number, number]> = [2, 4, 8, 16].flatMap((t) => [1e5, 1e6, 1e7].map((p) => [t, p] as [number, number]));
const GOAL = { t: 8, p: 1e7, ratio: 4 };

/** The floor: Σ gᵢ, four rows at a time, one write per element per group. */
function sumRows(rows: readonly Float32Array[], out: Float32Array): void {
  const p = out.length;
  const t = rows.length;
  let i = 0;
  for (; i + 3 < t; i += 4) {
    const a = rows[i]!;
    const b = rows[i + 1]!;
    const c = rows[i + 2]!;
    const d = rows[i + 3]!;
    if (i === 0) for (let k = 0; k < p; k++) out[k] = a[k]! + b[k]! + c[k]! + d[k]!;
    else for (let k = 0; k < p; k++) out[k] = out[k]! + (a[k]! + b[k]! + c[k]! + d[k]!);
  }
  for (; i < t; i++) {
    const r = rows[i]!;
    if (i === 0) out.set(r);
    else for (let k = 0; k < p; k++) out[k] = out[k]! + r[k]!;
  }
}

function randomRows(t: number, p: number): Float32Array[] {
  const rng = new Rng(12345 + t);
  // A shared component plus noise: tasks that partly agree and partly conflict, like real gradients.
  const common = Float32Array.from({ length: p }, () => rng.normal());
  return Array.from({ length: t }, (_, i) => {
    const r = new Rng(i + 1);
    const mix = i % 2 === 0 ? 0.5 : -0.2;
    return Float32Array.from(common, (v) => mix * v + r.normal());
  });
}

function parseSizes(text: string | undefined): Array<[number, number]> {
  if (!text) return DEFAULT_SIZES;
  return text.split(',').map((s) => {
    const [t, p] = s.split('x').map(Number);
    if (!Number.isInteger(t) || !Number.isFinite(p)) throw new Error(`bad size ${s} (expected TxP, e.g. 8x1e7)`);
    return [t!, p!] as [number, number];
  });
}

export const aggregatorsBench: Bench = {
  name: 'aggregators',
  description: 'each aggregation method as a multiple of one summing pass over G',
  // The full grid takes about 5½ minutes here; in the whole suite, the corners around the goal (T = 8, P = 10⁷).
  suiteDefaults: { sizes: '2x1e6,2x1e7,8x1e6,8x1e7' },
  async run(args, progress) {
    const sizes = parseSizes(option(args, 'sizes'));
    const methods = option(args, 'methods')?.split(',') ?? [...aggregatorNames];
    const rows: Array<{ method: string; t: number; p: number; mode: 'standalone' | 'coordinator'; ms: number; ratio: number }> = [];
    const floors: Array<{ t: number; p: number; ms: number; gramianMs: number }> = [];
    for (const [t, p] of sizes) {
      const g = randomRows(t, p);
      const losses = Array.from({ length: t }, (_, i) => 1 + 0.1 * i);
      const reps = p >= 1e7 ? 3 : p >= 1e6 ? 5 : 9;
      const out = new Float32Array(p);
      const floor = medianMs(() => sumRows(g, out), reps);
      const h = gramian(g);
      const gramianMs = medianMs(() => void gramian(g), reps);
      floors.push({ t, p, ms: floor, gramianMs });
      progress(`aggregators: T=${t} P=${p.toExponential(0)} floor ${floor.toFixed(1)} ms, H ${gramianMs.toFixed(1)} ms = ${(gramianMs / floor).toFixed(2)}×`);
      for (const method of methods) {
        for (const mode of ['standalone', 'coordinator'] as const) {
          const aggregator = createAggregator(method, {}, { seed: 1 });
          let step = 0;
          const call = mode === 'standalone' ? () => void aggregator.aggregate({ grads: g, losses, step: step++ }) : () => void aggregator.aggregate({ grads: g, losses, step: step++, gramian: h, out });
          const ms = medianMs(call, reps);
          rows.push({ method, t, p, mode, ms, ratio: ms / floor });
        }
        const [a, b] = rows.slice(-2);
        progress(`aggregators: T=${t} P=${p.toExponential(0)} ${method}: standalone ${a!.ratio.toFixed(2)}×, with H + buffer ${b!.ratio.toFixed(2)}×`);
      }
      await new Promise((r) => setImmediate(r));
    }
    const header = ['method', ...sizes.map(([t, p]) => `T=${t} P=${p.toExponential(0)}`)];
    const table = (mode: 'standalone' | 'coordinator') => [
      `| ${header.join(' | ')} |`,
      `|${header.map(() => '---').join('|')}|`,
      ...methods.map((m) => `| ${m} | ${sizes.map(([t, p]) => rows.find((r) => r.method === m && r.t === t && r.p === p && r.mode === mode)!.ratio.toFixed(2)).join(' | ')} |`),
    ];
    const goal = (mode: 'standalone' | 'coordinator') => {
      const at = rows.filter((r) => r.t === GOAL.t && r.p === GOAL.p && r.mode === mode);
      if (at.length === 0) return `goal (≤ ${GOAL.ratio}× at T=${GOAL.t}, P=1e7, ${mode}): not measured with these sizes`;
      const over = at.filter((r) => r.ratio > GOAL.ratio);
      return `goal (≤ ${GOAL.ratio}× at T=${GOAL.t}, P=1e7, ${mode}): ${at.length - over.length}/${at.length} methods meet it${over.length ? `; over: ${over.map((r) => `${r.method} ${r.ratio.toFixed(2)}×`).join(', ')}` : ''}`;
    };
    const text = [
      'aggregators: time of one aggregate() call ÷ time of one summing pass over G (the floor), measured in the same run',
      '',
      `| | ${sizes.map(([t, p]) => `T=${t} P=${p.toExponential(0)}`).join(' | ')} |`,
      `|${['', ...sizes].map(() => '---').join('|')}|`,
      `| floor (ms) | ${floors.map((f) => f.ms.toFixed(1)).join(' | ')} |`,
      `| H = G·Gᵀ alone (× floor) | ${floors.map((f) => (f.gramianMs / f.ms).toFixed(2)).join(' | ')} |`,
      '',
      'Standalone (the method computes H itself and allocates its output):',
      '',
      ...table('standalone'),
      '',
      "As the coordinator calls it (H from the step's diagnostics, output into a reused buffer):",
      '',
      ...table('coordinator'),
      '',
      goal('standalone'),
      goal('coordinator'),
    ].join('\n');
    return { text, json: { floors, results: rows, goal: GOAL } };
  },
};
