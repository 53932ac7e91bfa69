// The aggregator contract (docs/aggregators.md, "The contract"): public API, exported from the
// package entry. An aggregator turns the T × P matrix of per-task gradients of one shared
// parameter group into one update direction, on the scale of the mean gradient.
import type { z } from 'zod';

export interface AggregationInput {
  /** T rows of equal length P: the per-task gradients of one shared parameter group. */
  grads: Float32Array[];
  /** The per-task losses of this step, in the same order. */
  losses: number[];
  step: number;
  /** The tasks whose gradients `grads` are, in the same order, when the caller knows them. */
  tasks?: readonly string[];
  /**
   * H = G·Gᵀ when the caller already has it (the coordinator computes it once per step for
   * its diagnostics). Methods must compute it themselves when it is absent.
   */
  gramian?: number[][];
  /**
   * Where to write the direction (length P), e.g. a buffer the caller reuses every step:
   * allocating 40 MB a step costs more than the aggregation itself. When given, the
   * result's `direction` is this array.
   */
  out?: Float32Array;
}

export interface AggregationResult {
  direction: Float32Array;
  /** Per-task coefficients with direction = Σ wᵢ gᵢ (empty where a method has none). */
  weights: number[];
  /**
   * Methods defined by loss weights (uw, dwa, ...) return them here: the multipliers λᵢ of
   * the task losses, as in LibMTL. The coordinator scales each task's head gradient by its
   * λᵢ; without them, heads use their own gradients.
   */
  lossWeights?: number[];
  /** Anything the step's diagnostics should record, e.g. a solver that fell back. */
  notes?: string[];
}

export interface Aggregator {
  readonly name: string;
  aggregate(input: AggregationInput): AggregationResult;
  /** JSON-serialisable state, for checkpoints: restore(state()) continues identically. */
  state(): unknown;
  restore(state: unknown): void;
}

/** What a method may need from the run besides its options. */
export interface AggregatorContext {
  /** Seed for methods with randomness (pcgrad's order, rlw's weights); default 0. */
  seed: number;
}

/**
 * One aggregation method: its name, its options schema (defaults applied there) and a
 * factory. Each method lives in its own file under methods/ and exports one of these.
 */
export interface AggregatorDefinition<Options extends Record<string, unknown> = Record<string, unknown>> {
  readonly name: string;
  /** One line for help texts and the table of docs/aggregators.md. */
  readonly summary: string;
  /** The paper (authors, venue, year). */
  readonly reference: string;
  readonly options: z.ZodType<Options>;
  create(options: Options, context: AggregatorContext): Aggregator;
}
