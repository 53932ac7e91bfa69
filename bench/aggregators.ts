// How expensive is each aggregation method compared with the least any method must do: one
// pass over G that sums its rows (the memory-bound floor), measured in the same run.
// Goal (issue 3): every method within 4× of the floor at T = 8, P = 10⁷.
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
  async run(args, progress) {
    const sizes = parseSizes(option(args, 'sizes'));
    const methods = option(args, 'methods')?.split(',') ?? [...aggregatorNames];
    const rows: Array<{ method: string; t: number; p: number; ms: number; ratio: number }> = [];
    const floors: Array<{ t: number; p: number; ms: number }> = [];
    for (const [t, p] of sizes) {
      const g = randomRows(t, p);
      const losses = Array.from({ length: t }, (_, i) => 1 + 0.1 * i);
      const reps = p >= 1e7 ? 3 : p >= 1e6 ? 5 : 9;
      const out = new Float32Array(p);
      const floor = medianMs(() => sumRows(g, out), reps);
      floors.push({ t, p, ms: floor });
      for (const method of methods) {
        const aggregator = createAggregator(method, {}, { seed: 1 });
        let step = 0;
        const ms = medianMs(() => void aggregator.aggregate({ grads: g, losses, step: step++ }), reps);
        rows.push({ method, t, p, ms, ratio: ms / floor });
        progress(`aggregators: T=${t} P=${p.toExponential(0)} ${method} ${ms.toFixed(1)} ms = ${(ms / floor).toFixed(2)}× floor (${floor.toFixed(1)} ms)`);
      }
      await new Promise((r) => setImmediate(r));
    }
    const header = ['method', ...sizes.map(([t, p]) => `T=${t} P=${p.toExponential(0)}`)];
    const table = [
      `| ${header.join(' | ')} |`,
      `|${header.map(() => '---').join('|')}|`,
      `| floor (ms) | ${floors.map((f) => f.ms.toFixed(1)).join(' | ')} |`,
      ...methods.map((m) => `| ${m} | ${sizes.map(([t, p]) => rows.find((r) => r.method === m && r.t === t && r.p === p)!.ratio.toFixed(2)).join(' | ')} |`),
    ];
    const goalRows = rows.filter((r) => r.t === GOAL.t && r.p === GOAL.p);
    const goal =
      goalRows.length === 0
        ? `goal (≤ ${GOAL.ratio}× floor at T=${GOAL.t}, P=1e7): not measured with these sizes`
        : `goal (≤ ${GOAL.ratio}× floor at T=${GOAL.t}, P=1e7): ${goalRows.filter((r) => r.ratio <= GOAL.ratio).length}/${goalRows.length} methods meet it` +
          (goalRows.some((r) => r.ratio > GOAL.ratio) ? `; over: ${goalRows.filter((r) => r.ratio > GOAL.ratio).map((r) => `${r.method} ${r.ratio.toFixed(2)}×`).join(', ')}` : '');
    return {
      text: [`aggregators: time of one aggregate() call ÷ time of one summing pass over G (same run)`, '', ...table, '', goal].join('\n'),
      json: { floors, results: rows, goal: { ...GOAL, met: goalRows.filter((r) => r.ratio <= GOAL.ratio).map((r) => r.method), missed: goalRows.filter((r) => r.ratio > GOAL.ratio).map((r) => r.method) } },
    };
  },
};
