// Pieces the loss-weighting methods share: a stable (scaled) softmax, squared norms, and the
// Adam that trains learned weights (uw, gradnorm, famo) with its checkpoint state.
import { AggregationInputError } from '../../common/errors.js';
import { createOptimizer, type Optimizer } from '../../common/optimizers.js';
import { weightedSum } from './gramian.js';
import { checkAggregationInput } from './input-checks.js';
import { decodeFloat32, encodeFloat32, stateRecord } from './state-codec.js';
import type { AggregationInput, AggregationResult } from './types.js';

/** checkAggregationInput, plus one loss per task (the methods here read the losses). Returns P. */
export function checkLossWeightingInput(input: AggregationInput, method: string): number {
  const p = checkAggregationInput(input);
  const t = input.grads.length;
  if (input.losses.length !== t) throw new AggregationInputError(`${method} needs one loss per task, got ${input.losses.length} for ${t}`);
  return p;
}

/**
 * The result of a method defined by loss weights λ: direction Σ (λᵢ/T)·gᵢ (the mean-gradient
 * scale), heads scaled by λᵢ. A single task trains on its own gradient, unweighted.
 */
export function lossWeightedResult(input: AggregationInput, p: number, lossWeights: number[], notes: string[]): AggregationResult {
  const t = input.grads.length;
  const extra = notes.length ? { notes } : {};
  if (t === 1) return { direction: weightedSum(input.grads, [1], p, input.out), weights: [1], lossWeights: [1], ...extra };
  const weights = lossWeights.map((l) => l / t);
  return { direction: weightedSum(input.grads, weights, p, input.out), weights, lossWeights, ...extra };
}

/** scale · softmax(values), computed stably (shifted by the maximum). */
export function softmax(values: ArrayLike<number>, scale = 1): number[] {
  const list = Array.from(values);
  const top = Math.max(...list);
  const exps = list.map((v) => Math.exp(v - top));
  const total = exps.reduce((s, v) => s + v, 0);
  return exps.map((v) => (scale * v) / total);
}

/** Σ v² in double precision, in index order. */
export function squaredNorm(row: Float32Array): number {
  let s = 0;
  for (let k = 0; k < row.length; k++) s += row[k]! * row[k]!;
  return s;
}

/** The optimizer of learned task weights: the model's Adam implementation, its usual betas. */
export function weightOptimizer(size: number, lr: number): Optimizer {
  return createOptimizer({ name: 'adam', learningRate: lr, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, size);
}

export interface WeightOptimizerState {
  t: number;
  m: string;
  v: string;
}

export function weightOptimizerState(optimizer: Optimizer): WeightOptimizerState {
  const { t, slots } = optimizer.state();
  return { t, m: encodeFloat32(slots.m!), v: encodeFloat32(slots.v!) };
}

/** Rebuilds the optimizer from its state; `size` is the number of learned weights. */
export function restoreWeightOptimizer(state: unknown, size: number, lr: number, method: string): Optimizer {
  const record = stateRecord(state, `${method}.adam`);
  const m = decodeFloat32(record.m);
  const v = decodeFloat32(record.v);
  if (!Number.isSafeInteger(record.t) || (record.t as number) < 0 || m.length !== size || v.length !== size) {
    throw new AggregationInputError(`${method}: optimizer state has inconsistent sizes or step count`);
  }
  const optimizer = weightOptimizer(size, lr);
  optimizer.restore({ name: 'adam', t: record.t as number, slots: { m, v } });
  return optimizer;
}
