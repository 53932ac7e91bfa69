// What the session thread and the compute thread (compute-thread-main.ts) say to each other.
// Types only: both sides import this file, and neither pulls the other's code with it.
import type { BackendChoice } from './backend-choices.js';
import type { WeightsStream } from './streamed-weights.js';
import type { SelectedBackend } from './backend.js';
import type { EvalUnitSpec, FisherUnitSpec, TrainUnitSpec } from './unit-compute.js';

/** Given to the thread when it starts (workerData). */
export interface ComputeThreadData {
  backend: BackendChoice;
}

/** A job to build the compute environment of (the Welcome's, with its remote data already fetched). */
export interface EnvironmentRequest {
  jobJson: string;
  jobDir: string;
  modelJson: string;
  /** The Welcome's data plans (streamed datasets). */
  dataPlanJson: string;
  /** Remote data references → the local copies the session thread made (resolve.ts keeps them per thread). */
  resolved: Array<[string, string]>;
}

/** What the session needs of a layout: the tensors, to check them against the Welcome's, and the size. */
export interface LayoutSummary {
  tensors: ReadonlyArray<{ name: string; group: string; shape: readonly number[] }>;
  totalSize: number;
}

export interface EnvironmentReady {
  layout: LayoutSummary;
  /** The runner's compute fast path (units sharing a batch are computed together only with it). */
  fastPath: boolean;
  /** Each task's data source key (units of one source, step and shard read the same batch). */
  sources: Array<[string, string]>;
}

export type ComputeRequest =
  /** With `bucketBytes`, the fast path streams each unit's result as it computes it (StreamEvent). */
  | { kind: 'train'; units: TrainUnitSpec[]; bucketBytes?: number }
  | { kind: 'fisher'; unit: FisherUnitSpec }
  | { kind: 'lookahead'; unit: TrainUnitSpec }
  | { kind: 'eval'; unit: EvalUnitSpec };

/** A part of a unit's payload: `data` goes at float `offset`. */
export interface PayloadPiece {
  offset: number;
  data: Float32Array;
}

export interface UnitOutput {
  sampleCount: number;
  loss: number;
  metrics: Record<string, number>;
  /** Payload floats in all (0 for units without a payload: lookahead, eval). */
  payloadSize: number;
  /** The payload, unless it was streamed (`streamed`): then empty. */
  pieces: PayloadPiece[];
  /** The unit went out as StreamEvents while it was computed (begin, pieces, end): nothing is left to send. */
  streamed?: boolean;
}

/**
 * A unit of a streaming train request, while the thread computes it: its header (`begin`, once
 * the loss is known), its payload's buckets as the backward pass makes them (`piece`, last
 * layers first), then `end` with the time since the previous unit's end (or the start).
 */
export type StreamEvent =
  | { kind: 'begin'; unit: number; sampleCount: number; loss: number; payloadSize: number }
  | { kind: 'piece'; unit: number; piece: PayloadPiece }
  | { kind: 'end'; unit: number; computeMs: number };

export interface ComputeDone {
  /** One per unit of the request, in its order. */
  outputs: UnitOutput[];
  /** Wall time of the computation in the thread (queueing excluded). */
  busyMs: number;
}

/** What a streamed dataset's chunk cache did (for the worker's 'streamed data read' log). */
export interface StreamedDataStats {
  data: string;
  scanned: boolean | null;
  stats: Record<string, number>;
}

/** An error as it crosses the thread boundary. */
export interface ThreadErrorInfo {
  name: string;
  message: string;
  code?: string;
}

export type ToThread =
  | { type: 'environment'; id: number; request: EnvironmentRequest }
  /**
   * The next weights, while they still arrive (streamed-weights.ts): shared, not transferred.
   * Compute requests posted later may start at once and wait for the values they need.
   */
  | { type: 'weights-stream'; stream: WeightsStream }
  | { type: 'compute'; id: number; request: ComputeRequest }
  | { type: 'stats'; id: number };

export type FromThread =
  | { type: 'started'; backend?: SelectedBackend; error?: ThreadErrorInfo }
  | { type: 'reply'; id: number; environment?: EnvironmentReady; done?: ComputeDone; streamed?: StreamedDataStats[]; error?: ThreadErrorInfo }
  /** Part of compute request `id`'s results, ahead of its reply. A piece's buffer is transferred. */
  | { type: 'stream'; id: number; event: StreamEvent }
  /** A stream's weights buffer, handed back once the runner no longer reads it (the session reuses it for the next version). */
  | { type: 'buffer'; params: Float32Array }
  /** The thread cannot go on (weights that could not be applied). */
  | { type: 'fatal'; error: ThreadErrorInfo };
