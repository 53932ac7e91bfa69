// Original file: proto/mtl/v1/coordinator.proto


export interface UnitFailed {
  'unitId'?: (string);
  'code'?: (string);
  'message'?: (string);
}

export interface UnitFailed__Output {
  'unitId': (string);
  'code': (string);
  'message': (string);
}
