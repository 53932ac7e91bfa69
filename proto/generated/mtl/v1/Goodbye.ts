// Original file: proto/mtl/v1/coordinator.proto


/**
 * The worker leaves on purpose (e.g. SIGTERM): it has sent the results it finished and hands
 * back `returned_unit_ids`, which it will not compute. The coordinator reassigns them at once.
 */
export interface Goodbye {
  'reason'?: (string);
  'returnedUnitIds'?: (string)[];
}

/**
 * The worker leaves on purpose (e.g. SIGTERM): it has sent the results it finished and hands
 * back `returned_unit_ids`, which it will not compute. The coordinator reassigns them at once.
 */
export interface Goodbye__Output {
  'reason': (string);
  'returnedUnitIds': (string)[];
}
