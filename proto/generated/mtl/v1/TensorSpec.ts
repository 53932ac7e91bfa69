// Original file: proto/mtl/v1/coordinator.proto


export interface TensorSpec {
  'name'?: (string);
  'shape'?: (number)[];
  /**
   * shared | task:<name> | shared:<t1,t2,...>
   */
  'group'?: (string);
}

export interface TensorSpec__Output {
  'name': (string);
  'shape': (number)[];
  /**
   * shared | task:<name> | shared:<t1,t2,...>
   */
  'group': (string);
}
