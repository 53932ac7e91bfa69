// dwa: dynamic weight average. Losses are averaged over consecutive windows of `window` steps
// (LibMTL: epochs). Once two windows are complete, each task's rate rᵢ = (mean loss of the last
// window) / (mean loss of the one before) sets the loss weights λ = T·softmax(r / temp): a task
// whose loss fell less (r closer to 1 or above) gets more weight. Until then λ = 1. The weights
// stay fixed within a window, as LibMTL's stay fixed within an epoch.
// d = (1/T) Σ λᵢ gᵢ, and each head's gradient is scaled by λᵢ.
//
// window default 100 (aggregated steps): LibMTL's epochs are hundreds of steps; our example jobs
// run 1500–3000 steps, so 100 lets the weights adapt 15–30 times per run while a window mean of
// 100 minibatch losses has ~10× less noise than one loss (the ratio of two such means then
// moves λ by a few percent at most from noise alone, at temp 2).
import { z } from 'zod';
import { AggregationInputError } from '../../../common/errors.js';
import { checkLossWeightingInput, lossWeightedResult, softmax } from '../loss-weighting.js';
import { stateRecord } from '../state-codec.js';
import type { AggregatorDefinition } from '../types.js';

type DwaOptions = { temp: number; window: number };

interface Windows {
  /** Mean losses of the last two complete windows, older first (fewer at the start). */
  complete: number[][];
  /** Running mean of the current window (a running mean cannot overflow as a sum could). */
  current: number[];
  count: number;
}

function finiteNumbers(value: unknown, length: number): value is number[] {
  return Array.isArray(value) && value.length === length && value.every((v) => typeof v === 'number' && Number.isFinite(v));
}

/** T·softmax(r / temp); a ratio that does not exist (older mean ≤ 0) counts as 1. */
function dwaWeights(older: readonly number[], newer: readonly number[], temp: number, notes: string[]): number[] {
  const rates = newer.map((l, i) => {
    const r = l / older[i]!;
    return older[i]! > 0 && Number.isFinite(r) ? r : NaN;
  });
  if (rates.some(Number.isNaN)) notes.push('dwa: a window mean loss is ≤ 0, so its rate is undefined; that task counts as rate 1');
  const scaled = rates.map((r) => (Number.isNaN(r) ? 1 : r) / temp);
  return softmax(scaled, scaled.length);
}

export const dwa: AggregatorDefinition<DwaOptions> = {
  name: 'dwa',
  summary: 'dynamic weight average: loss weights T·softmax(r/temp), r = ratio of mean losses over the last two windows',
  reference: 'S. Liu, E. Johns, A. J. Davison: End-to-End Multi-Task Learning with Attention, CVPR 2019',
  options: z.strictObject({
    /** Softmax temperature (paper and LibMTL: 2). */
    temp: z.number().positive().default(2),
    /** Steps per averaging window (LibMTL: one epoch; see the file comment for the default). */
    window: z.int().positive().default(100),
  }),
  create(options) {
    let windows: Windows = { complete: [], current: [], count: 0 };
    return {
      name: 'dwa',
      aggregate(input) {
        const p = checkLossWeightingInput(input, 'dwa');
        const t = input.grads.length;
        const notes: string[] = [];
        if (windows.current.length !== t) {
          if (windows.current.length > 0) notes.push(`dwa: task count changed to ${t}, loss windows restarted`);
          windows = { complete: [], current: new Array<number>(t).fill(0), count: 0 };
        }
        const [older, newer] = windows.complete;
        const lossWeights = older && newer ? dwaWeights(older, newer, options.temp, notes) : new Array<number>(t).fill(1);

        // This step's losses belong to the current window; they affect the weights only once it
        // is complete (as an epoch's losses do in LibMTL).
        windows.count++;
        windows.current = windows.current.map((m, i) => m + (input.losses[i]! - m) / windows.count);
        if (windows.count === options.window) {
          windows.complete = [...windows.complete, windows.current].slice(-2);
          windows.current = new Array<number>(t).fill(0);
          windows.count = 0;
        }

        return lossWeightedResult(input, p, lossWeights, notes);
      },
      state: () => ({ complete: windows.complete.map((w) => w.slice()), current: windows.current.slice(), count: windows.count }),
      restore(state) {
        const record = stateRecord(state, 'dwa');
        const { complete, current, count } = record;
        const t = Array.isArray(current) ? current.length : -1;
        const valid =
          finiteNumbers(current, t) &&
          Array.isArray(complete) &&
          complete.length <= 2 &&
          complete.every((w) => finiteNumbers(w, t)) &&
          Number.isSafeInteger(count) &&
          (count as number) >= 0 &&
          (count as number) < options.window;
        if (!valid) throw new AggregationInputError('dwa: state must hold up to two window means, the current mean and a count below the window');
        windows = { complete: complete.map((w) => w.slice()), current: current.slice(), count: count as number };
      },
    };
  },
};
