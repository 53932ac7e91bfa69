// Original file: proto/mtl/v1/coordinator.proto


/**
 * Closes the transfer of a unit's result once every byte of it has been sent: what is known only
 * when the computation is over. The result is complete, and used, when this arrives.
 */
export interface ResultEnd {
  'transferId'?: (number);
  /**
   * As UnitResult.compute_ms and busy_ms.
   */
  'computeMs'?: (number | string);
  'busyMs'?: (number | string);
}

/**
 * Closes the transfer of a unit's result once every byte of it has been sent: what is known only
 * when the computation is over. The result is complete, and used, when this arrives.
 */
export interface ResultEnd__Output {
  'transferId': (number);
  /**
   * As UnitResult.compute_ms and busy_ms.
   */
  'computeMs': (number);
  'busyMs': (number);
}
