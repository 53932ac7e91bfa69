// Original file: proto/mtl/v1/coordinator.proto

import type { UnitKind as _mtl_v1_UnitKind, UnitKind__Output as _mtl_v1_UnitKind__Output } from '../../mtl/v1/UnitKind.js';

export interface Unit {
  'unitId'?: (string);
  'kind'?: (_mtl_v1_UnitKind);
  'step'?: (number);
  'task'?: (string);
  'shard'?: (number);
  'weightsVersion'?: (number);
  /**
   * EVAL and FISHER units: how many shards the examples are cut into.
   */
  'shardCount'?: (number);
}

export interface Unit__Output {
  'unitId': (string);
  'kind': (_mtl_v1_UnitKind__Output);
  'step': (number);
  'task': (string);
  'shard': (number);
  'weightsVersion': (number);
  /**
   * EVAL and FISHER units: how many shards the examples are cut into.
   */
  'shardCount': (number);
}
