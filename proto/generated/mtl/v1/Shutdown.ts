// Original file: proto/mtl/v1/coordinator.proto


export interface Shutdown {
  'reason'?: (string);
  /**
   * True when the run ends in failure (the worker exits non-zero).
   */
  'failed'?: (boolean);
}

export interface Shutdown__Output {
  'reason': (string);
  /**
   * True when the run ends in failure (the worker exits non-zero).
   */
  'failed': (boolean);
}
