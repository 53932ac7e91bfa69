// Public API of mtl-orchestrator. Everything else is internal and may change.
export { createAggregator, aggregatorNames } from './coordinator/aggregation/registry.js';
export type { Aggregator, AggregationInput, AggregationResult, AggregatorDefinition } from './coordinator/aggregation/types.js';
export { loadJobFile, parseJobText, validateJob, type JobSpec, type LoadedJob } from './common/job-spec.js';
export { fileSystemModel, buildLayersModel } from './common/model-files.js';
export { loadModel, TrainedModel, type TrainedTask, type TaskPrediction, type RawRow } from './common/trained-model.js';
export { buildLayout, type ParameterLayout, type TensorSpec } from './common/parameter-layout.js';
export {
  MtlError,
  JobSpecError,
  DatasetError,
  AggregationInputError,
  ProtocolViolationError,
  UnknownUnitError,
  StaleMessageError,
  ByteLengthError,
  NonFiniteError,
  MessageTooLargeError,
  TooManySessionsError,
  UnsupportedProtocolError,
  WorkerLostError,
  IllegalStateError,
  BackendUnavailableError,
  UnitFailedError,
  RunAbortedError,
  AuthenticationError,
  SecurityConfigError,
  InsecureListenError,
  RunDirectoryInUseError,
  DataFetchError,
  type ErrorCode,
  type SpecIssue,
} from './common/errors.js';
export { toGrpcStatus } from './common/grpc-status.js';
export { Coordinator, type CoordinatorOptions } from './coordinator/coordinator.js';
export type { RunSummary } from './coordinator/run-summary.js';
export { prepareRun, type PreparedRun } from './coordinator/prepare-run.js';
export { materializeData, resolveDataPath, type MaterializeOptions, type MaterializedData } from './common/data-store/materialize.js';
export { Worker, type WorkerOptions } from './worker/worker.js';
export { loadTlsMaterial, loadToken, type TlsMaterial } from './common/security.js';
