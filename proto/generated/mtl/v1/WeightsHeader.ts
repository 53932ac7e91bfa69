// Original file: proto/mtl/v1/coordinator.proto

import type { Encoding as _mtl_v1_Encoding, Encoding__Output as _mtl_v1_Encoding__Output } from '../../mtl/v1/Encoding.js';
import type { Long } from '@grpc/proto-loader';

/**
 * Announces weights version `version`: the concatenation, in layout order, of the tensors
 * listed by index in `tensors`, `byte_length` bytes in TensorChunks with this transfer_id.
 */
export interface WeightsHeader {
  'version'?: (number);
  'tensors'?: (number)[];
  'byteLength'?: (number | string | Long);
  'transferId'?: (number);
  'encoding'?: (_mtl_v1_Encoding);
}

/**
 * Announces weights version `version`: the concatenation, in layout order, of the tensors
 * listed by index in `tensors`, `byte_length` bytes in TensorChunks with this transfer_id.
 */
export interface WeightsHeader__Output {
  'version': (number);
  'tensors': (number)[];
  'byteLength': (number);
  'transferId': (number);
  'encoding': (_mtl_v1_Encoding__Output);
}
