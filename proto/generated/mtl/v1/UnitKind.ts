// Original file: proto/mtl/v1/coordinator.proto

export const UnitKind = {
  UNIT_KIND_UNSPECIFIED: 'UNIT_KIND_UNSPECIFIED',
  /**
   * Loss and gradients of one task's batch (step, task, shard).
   */
  UNIT_KIND_TRAIN: 'UNIT_KIND_TRAIN',
  /**
   * Loss and metrics of one task on one shard of its held-out split.
   */
  UNIT_KIND_EVAL: 'UNIT_KIND_EVAL',
  /**
   * Sequential mode, EWC: the diagonal empirical Fisher of one task (mean over examples of
   * the squared per-example gradients, same layout as TRAIN) on one shard of the examples
   * drawn for the stage that ends at `step`.
   */
  UNIT_KIND_FISHER: 'UNIT_KIND_FISHER',
  /**
   * Task affinity, exact lookahead (TAG): the loss of task `task` on its training batch of
   * `step` (same examples and dropout masks as the TRAIN unit), at the weights version named:
   * the coordinator's lookahead weights after a step on one other task alone. No payload.
   */
  UNIT_KIND_LOOKAHEAD: 'UNIT_KIND_LOOKAHEAD',
} as const;

export type UnitKind =
  | 'UNIT_KIND_UNSPECIFIED'
  | 0
  /**
   * Loss and gradients of one task's batch (step, task, shard).
   */
  | 'UNIT_KIND_TRAIN'
  | 1
  /**
   * Loss and metrics of one task on one shard of its held-out split.
   */
  | 'UNIT_KIND_EVAL'
  | 2
  /**
   * Sequential mode, EWC: the diagonal empirical Fisher of one task (mean over examples of
   * the squared per-example gradients, same layout as TRAIN) on one shard of the examples
   * drawn for the stage that ends at `step`.
   */
  | 'UNIT_KIND_FISHER'
  | 3
  /**
   * Task affinity, exact lookahead (TAG): the loss of task `task` on its training batch of
   * `step` (same examples and dropout masks as the TRAIN unit), at the weights version named:
   * the coordinator's lookahead weights after a step on one other task alone. No payload.
   */
  | 'UNIT_KIND_LOOKAHEAD'
  | 4

export type UnitKind__Output = typeof UnitKind[keyof typeof UnitKind]
