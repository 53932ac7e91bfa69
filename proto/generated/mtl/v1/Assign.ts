// Original file: proto/mtl/v1/coordinator.proto

import type { Unit as _mtl_v1_Unit, Unit__Output as _mtl_v1_Unit__Output } from '../../mtl/v1/Unit.js';

export interface Assign {
  'units'?: (_mtl_v1_Unit)[];
}

export interface Assign__Output {
  'units': (_mtl_v1_Unit__Output)[];
}
