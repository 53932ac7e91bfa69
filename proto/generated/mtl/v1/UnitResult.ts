// Original file: proto/mtl/v1/coordinator.proto

import type { UnitKind as _mtl_v1_UnitKind, UnitKind__Output as _mtl_v1_UnitKind__Output } from '../../mtl/v1/UnitKind.js';
import type { Long } from '@grpc/proto-loader';

/**
 * Header of one unit's result. TRAIN units follow it with `byte_length` bytes of f32
 * gradients (shared tensors, then the task's head tensors, in layout order).
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
   * This unit's compute time; units computed together (a shared batch) are each charged their share.
   */
  'computeMs'?: (number | string);
  /**
   * Wall time of the computation this result came out of: for units computed together, the whole
   * group's. The worker was silent that long; the coordinator's failure detector judges silence by it.
   */
  'busyMs'?: (number | string);
}

/**
 * Header of one unit's result. TRAIN units follow it with `byte_length` bytes of f32
 * gradients (shared tensors, then the task's head tensors, in layout order).
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
   * This unit's compute time; units computed together (a shared batch) are each charged their share.
   */
  'computeMs': (number);
  /**
   * Wall time of the computation this result came out of: for units computed together, the whole
   * group's. The worker was silent that long; the coordinator's failure detector judges silence by it.
   */
  'busyMs': (number);
}
