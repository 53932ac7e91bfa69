// Original file: proto/mtl/v1/coordinator.proto


export interface Hello {
  'name'?: (string);
  'protocolVersion'?: (number);
  /**
   * tensorflow | wasm | cpu (what the worker actually loaded).
   */
  'backend'?: (string);
  'device'?: (string);
  /**
   * How many units the worker computes at once (one per process today).
   */
  'capacity'?: (number);
  /**
   * Join credential; empty when the coordinator requires none.
   */
  'token'?: (string);
}

export interface Hello__Output {
  'name': (string);
  'protocolVersion': (number);
  /**
   * tensorflow | wasm | cpu (what the worker actually loaded).
   */
  'backend': (string);
  'device': (string);
  /**
   * How many units the worker computes at once (one per process today).
   */
  'capacity': (number);
  /**
   * Join credential; empty when the coordinator requires none.
   */
  'token': (string);
}
