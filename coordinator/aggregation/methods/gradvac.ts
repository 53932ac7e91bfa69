// gradvac: Gradient Vaccine. Like pcgrad, each gᵢ is checked in a seeded random order against
// every other task's original gradient gⱼ, but instead of only removing conflicts it raises the
// cosine of the pair to a target φ̂ᵢⱼ whenever the current cosine φ is below it, by adding the
// multiple of gⱼ that gives cos(gᵢ' + w·gⱼ, gⱼ) = φ̂ᵢⱼ exactly:
//   w = ‖gᵢ'‖ (φ̂ √(1−φ²) − φ √(1−φ̂²)) / (‖gⱼ‖ √(1−φ̂²)).
// After each check the target follows the observed cosine: φ̂ᵢⱼ ← (1−β) φ̂ᵢⱼ + β φ. Targets start
// at 0, so the first step is PCGrad; with β = 0 they stay 0 and every step is PCGrad.
//
// As in pcgrad.ts, projected rows live as coefficient vectors over the original rows and d is
// one weighted sum over G. Granularity: one target per ordered task pair for the whole shared
// group (LibMTL's group_type 0). We follow LibMTL's current code: φ is the cosine of the
// partially adjusted gᵢ' with gⱼ, and the target is updated after every check (also when no
// adjustment was needed). LibMTL adds 1e-8 to norms, which makes every cosine 0 for tiny
// gradients; we divide exactly and instead skip pairs whose cosine is undefined (a zero row),
// without updating their target.
import { z } from 'zod';
import { AggregationInputError } from '../../../common/errors.js';
import { weightedSum } from '../gramian.js';
import { checkedGramian } from '../input-checks.js';
import { stateRecord } from '../state-codec.js';
import type { AggregatorDefinition } from '../types.js';
import { checkStep, shuffledOthers } from './pcgrad.js';

type GradvacOptions = { beta: number; seed?: number | undefined };

/**
 * A projected row whose squared norm is below this fraction of (Σₖ |cᵢₖ| ‖gₖ‖)² is the
 * rounding residue of a cancellation (e.g. gᵢ' after removing an opposite row), not a
 * direction: H carries relative errors of ~1e-13 for long rows, so its cosine would be noise.
 */
const NEGLIGIBLE = 1e-12;

/** Targets closer than this to ±1 leave no room for √(1−φ̂²) in the denominator. */
const TARGET_LIMIT = 1 - 1e-9;

/**
 * Adjusts the rows pair by pair and returns their coefficients over the original rows
 * (result[i] = cᵢ, gᵢ' = Σₖ cᵢₖ gₖ). `targets` (T × T, row-major) is updated in place.
 * Exported for tests; methods/index.ts must re-export only the `gradvac` definition.
 */
export function raiseCosines(
  h: readonly (readonly number[])[],
  targets: number[],
  beta: number,
  orderOf: (i: number) => readonly number[],
  notes: Set<string>,
): number[][] {
  const t = h.length;
  const norms = h.map((row, k) => Math.sqrt(Math.max(0, row[k]!)));
  return Array.from({ length: t }, (_, i) => {
    const c = new Array<number>(t).fill(0);
    c[i] = 1;
    for (const j of orderOf(i)) {
      const normJ = norms[j]!;
      if (!(normJ > 0)) continue;
      let normSq = 0;
      let dot = 0;
      let magnitude = 0;
      for (let a = 0; a < t; a++) {
        let ha = 0;
        for (let b = 0; b < t; b++) ha += h[a]![b]! * c[b]!;
        normSq += c[a]! * ha;
        dot += c[a]! * h[a]![j]!;
        magnitude += Math.abs(c[a]!) * norms[a]!;
      }
      if (!(normSq > NEGLIGIBLE * magnitude * magnitude)) continue;
      const normI = Math.sqrt(normSq);
      const phi = Math.min(1, Math.max(-1, dot / normI / normJ));
      const target = targets[i * t + j]!;
      if (phi < target) {
        if (Math.abs(target) > TARGET_LIMIT) {
          notes.add('gradvac: a target cosine reached ±1, that pair was left as it is');
        } else {
          const rootTarget = Math.sqrt(1 - target * target);
          const w = (normI * (target * Math.sqrt(1 - phi * phi) - phi * rootTarget)) / (normJ * rootTarget);
          c[j] = c[j]! + w;
        }
      }
      targets[i * t + j] = (1 - beta) * target + beta * phi;
    }
    return c;
  });
}

export const gradvac: AggregatorDefinition<GradvacOptions> = {
  name: 'gradvac',
  summary: 'raises the cosine of each task-gradient pair to an EMA target (PCGrad when targets are 0); mean of the adjusted rows',
  reference:
    'Z. Wang, Y. Tsvetkov, O. Firat, Y. Cao: Gradient Vaccine: Investigating and Improving Multi-task Optimization in Massively Multilingual Models, ICLR 2021',
  options: z.strictObject({
    /** EMA rate of the target cosines (LibMTL's GradVac_beta, 0.5). */
    beta: z.number().min(0).max(1).default(0.5),
    /** Seed of the adjustment orders; the run's seed when absent. */
    seed: z.int().nonnegative().optional(),
  }),
  create(options, context) {
    const seed = options.seed ?? context.seed;
    let targets: number[] = [];
    return {
      name: 'gradvac',
      aggregate(input) {
        const { p, h } = checkedGramian(input);
        checkStep(input.step);
        const t = input.grads.length;
        const notes = new Set<string>();
        if (targets.length !== t * t) {
          if (targets.length > 0) notes.add(`gradvac: task count changed to ${t}, target cosines reset to 0`);
          targets = new Array<number>(t * t).fill(0);
        }
        if (t === 1) return { direction: weightedSum(input.grads, [1], p, input.out), weights: [1], ...(notes.size ? { notes: [...notes] } : {}) };
        const coefficients = raiseCosines(h, targets, options.beta, (i) => shuffledOthers(seed, 'gradvac', input.step, i, t), notes);
        const weights = Array.from({ length: t }, (_, k) => coefficients.reduce((s, c) => s + c[k]!, 0) / t);
        return { direction: weightedSum(input.grads, weights, p, input.out), weights, ...(notes.size ? { notes: [...notes] } : {}) };
      },
      state: () => ({ targets: targets.slice() }),
      restore(state) {
        const raw = stateRecord(state, 'gradvac').targets;
        if (!Array.isArray(raw) || raw.some((v) => typeof v !== 'number' || !(Math.abs(v) <= 1)) || !Number.isInteger(Math.sqrt(raw.length))) {
          throw new AggregationInputError('gradvac: state.targets must be a square matrix of cosines in [-1, 1]');
        }
        targets = (raw as number[]).slice();
      },
    };
  },
};
