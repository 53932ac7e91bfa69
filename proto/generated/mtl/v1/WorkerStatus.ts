// Original file: proto/mtl/v1/coordinator.proto


export interface WorkerStatus {
  'workerId'?: (string);
  'name'?: (string);
  'backend'?: (string);
  'state'?: (string);
  'unitsDone'?: (number);
  'meanUnitMs'?: (number | string);
}

export interface WorkerStatus__Output {
  'workerId': (string);
  'name': (string);
  'backend': (string);
  'state': (string);
  'unitsDone': (number);
  'meanUnitMs': (number);
}
