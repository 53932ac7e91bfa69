// Original file: proto/mtl/v1/coordinator.proto

import type { WorkerStatus as _mtl_v1_WorkerStatus, WorkerStatus__Output as _mtl_v1_WorkerStatus__Output } from '../../mtl/v1/WorkerStatus.js';

export interface RunStatus {
  'runId'?: (string);
  'name'?: (string);
  /**
   * starting | waiting-for-workers | training | evaluating | finishing | succeeded | failed | stopped
   */
  'state'?: (string);
  'step'?: (number);
  'totalSteps'?: (number);
  'weightsVersion'?: (number);
  'workers'?: (_mtl_v1_WorkerStatus)[];
  'lastLosses'?: ({[key: string]: number | string});
  'message'?: (string);
}

export interface RunStatus__Output {
  'runId': (string);
  'name': (string);
  /**
   * starting | waiting-for-workers | training | evaluating | finishing | succeeded | failed | stopped
   */
  'state': (string);
  'step': (number);
  'totalSteps': (number);
  'weightsVersion': (number);
  'workers': (_mtl_v1_WorkerStatus__Output)[];
  'lastLosses': ({[key: string]: number});
  'message': (string);
}
