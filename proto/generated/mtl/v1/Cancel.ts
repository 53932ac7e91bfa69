// Original file: proto/mtl/v1/coordinator.proto


export interface Cancel {
  'unitIds'?: (string)[];
  'reason'?: (string);
}

export interface Cancel__Output {
  'unitIds': (string)[];
  'reason': (string);
}
