// Original file: proto/mtl/v1/coordinator.proto

import type { Long } from '@grpc/proto-loader';

export interface TensorChunk {
  'transferId'?: (number);
  /**
   * Byte offset of `data` in the transfer; chunks arrive in order, without gaps.
   */
  'offset'?: (number | string | Long);
  'data'?: (Buffer | Uint8Array | string);
}

export interface TensorChunk__Output {
  'transferId': (number);
  /**
   * Byte offset of `data` in the transfer; chunks arrive in order, without gaps.
   */
  'offset': (number);
  'data': (Buffer);
}
