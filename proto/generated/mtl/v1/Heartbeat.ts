// Original file: proto/mtl/v1/coordinator.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Sent every fault.heartbeatMs, also while a unit computes and between the chunks of a result
 * streaming out, so that the coordinator can tell a busy worker from a dead one.
 */
export interface Heartbeat {
  'sentAtMs'?: (number | string | Long);
}

/**
 * Sent every fault.heartbeatMs, also while a unit computes and between the chunks of a result
 * streaming out, so that the coordinator can tell a busy worker from a dead one.
 */
export interface Heartbeat__Output {
  'sentAtMs': (number);
}
