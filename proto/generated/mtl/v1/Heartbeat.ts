// Original file: proto/mtl/v1/coordinator.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Sent between units (never inside a transfer) so that the coordinator can tell a busy worker
 * from a dead one.
 */
export interface Heartbeat {
  'sentAtMs'?: (number | string | Long);
}

/**
 * Sent between units (never inside a transfer) so that the coordinator can tell a busy worker
 * from a dead one.
 */
export interface Heartbeat__Output {
  'sentAtMs': (number);
}
