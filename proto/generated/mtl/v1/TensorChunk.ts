// Original file: proto/mtl/v1/coordinator.proto

import type { Long } from '@grpc/proto-loader';

export interface TensorChunk {
  'transferId'?: (number);
  /**
   * Byte offset of `data` in the transfer. Weights: chunks arrive in order, without gaps. A
   * unit's result: in any order; each chunk starts and ends on a value boundary (4 bytes, 2 when
   * compressed), lies within [0, byte_length) and overlaps no other chunk of the transfer.
   */
  'offset'?: (number | string | Long);
  'data'?: (Buffer | Uint8Array | string);
}

export interface TensorChunk__Output {
  'transferId': (number);
  /**
   * Byte offset of `data` in the transfer. Weights: chunks arrive in order, without gaps. A
   * unit's result: in any order; each chunk starts and ends on a value boundary (4 bytes, 2 when
   * compressed), lies within [0, byte_length) and overlaps no other chunk of the transfer.
   */
  'offset': (number);
  'data': (Buffer);
}
