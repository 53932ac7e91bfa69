// The aggregator contract (DESIGN.md, "Aggregator contract"): public API, exported from the
// package entry. An aggregator turns the T × P matrix of per-task gradients of one shared
// parameter group into one update direction, on the scale of the mean gradient.
import type { z } from 'zod';

export interface AggregationInput {
  /** T rows of equal length P: the per-task gradients of one shared parameter group. */
  grads: Float32Array[];
  /** The per-task losses of this step, in the same order. */
  losses: number[];
  step: number;
}

export interface AggregationResult {
  direction: Float32Array;
  /** Per-task coefficients with direction = Σ wᵢ gᵢ (empty where a method has none). */
  weights: number[];
}

export interface Aggregator {
  readonly name: string;
  aggregate(input: AggregationInput): AggregationResult;
  /** JSON-serialisable state, for checkpoints. */
  state(): unknown;
  restore(state: unknown): void;
}

/**
 * One aggregation method: its name, its options schema (defaults applied there) and a
 * factory. Each method lives in its own file under methods/ and exports one of these.
 */
export interface AggregatorDefinition<Options extends Record<string, unknown> = Record<string, unknown>> {
  readonly name: string;
  /** One line for `mtl` help and the README table. */
  readonly summary: string;
  readonly options: z.ZodType<Options>;
  create(options: Options): Aggregator;
}
