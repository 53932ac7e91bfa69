// Original file: proto/mtl/v1/coordinator.proto

import type { WorkerStatus as _mtl_v1_WorkerStatus, WorkerStatus__Output as _mtl_v1_WorkerStatus__Output } from '../../mtl/v1/WorkerStatus.js';
import type { Long } from '@grpc/proto-loader';

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
  /**
   * deaths, departures, reassigned_units, backup_units, discarded_results, resumes.
   */
  'faults'?: ({[key: string]: number | string | Long});
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
  /**
   * deaths, departures, reassigned_units, backup_units, discarded_results, resumes.
   */
  'faults': ({[key: string]: number});
}
