// Original file: proto/mtl/v1/coordinator.proto

import type { UnitKind as _mtl_v1_UnitKind, UnitKind__Output as _mtl_v1_UnitKind__Output } from '../../mtl/v1/UnitKind.js';
import type { Long } from '@grpc/proto-loader';

/**
 * Header of one unit's result. TRAIN and FISHER units follow it with `byte_length` bytes of
 * gradients (shared tensors, then the task's head tensors, in layout order) in TensorChunks,
 * then a ResultEnd; their compute_ms and busy_ms come in the ResultEnd (here they are 0). EVAL
 * and LOOKAHEAD results are this message alone.
 */
export interface UnitResult {
  'unitId'?: (string);
  'kind'?: (_mtl_v1_UnitKind);
  'step'?: (number);
  'task'?: (string);
  'shard'?: (number);
  'weightsVersion'?: (number);
  'sampleCount'?: (number);
  /**
   * Mean loss over the unit's samples.
   */
  'loss'?: (number | string);
  /**
   * Mean of each configured metric over the unit's samples.
   */
  'metrics'?: ({[key: string]: number | string});
  'byteLength'?: (number | string | Long);
  'transferId'?: (number);
  /**
   * This unit's compute time. Units computed together (a shared batch) stream their results one
   * after the other: each is charged the time from the previous one's end (or the start) to its own.
   */
  'computeMs'?: (number | string);
  /**
   * Wall time the worker computed without finishing a result: the time from the previous result of
   * its computation (or the start) to this one. The failure detector's stall rule judges progress by it.
   */
  'busyMs'?: (number | string);
}

/**
 * Header of one unit's result. TRAIN and FISHER units follow it with `byte_length` bytes of
 * gradients (shared tensors, then the task's head tensors, in layout order) in TensorChunks,
 * then a ResultEnd; their compute_ms and busy_ms come in the ResultEnd (here they are 0). EVAL
 * and LOOKAHEAD results are this message alone.
 */
export interface UnitResult__Output {
  'unitId': (string);
  'kind': (_mtl_v1_UnitKind__Output);
  'step': (number);
  'task': (string);
  'shard': (number);
  'weightsVersion': (number);
  'sampleCount': (number);
  /**
   * Mean loss over the unit's samples.
   */
  'loss': (number);
  /**
   * Mean of each configured metric over the unit's samples.
   */
  'metrics': ({[key: string]: number});
  'byteLength': (number);
  'transferId': (number);
  /**
   * This unit's compute time. Units computed together (a shared batch) stream their results one
   * after the other: each is charged the time from the previous one's end (or the start) to its own.
   */
  'computeMs': (number);
  /**
   * Wall time the worker computed without finishing a result: the time from the previous result of
   * its computation (or the start) to this one. The failure detector's stall rule judges progress by it.
   */
  'busyMs': (number);
}
