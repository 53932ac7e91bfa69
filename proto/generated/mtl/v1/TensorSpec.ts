// Original file: proto/mtl/v1/coordinator.proto


export interface TensorSpec {
  'name'?: (string);
  'shape'?: (number)[];
  /**
   * shared | task:<name> (a tensor is a task's when only that task's output depends on it)
   */
  'group'?: (string);
}

export interface TensorSpec__Output {
  'name': (string);
  'shape': (number)[];
  /**
   * shared | task:<name> (a tensor is a task's when only that task's output depends on it)
   */
  'group': (string);
}
