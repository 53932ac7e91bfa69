// One error class per condition, each with a stable `code`. Callers branch on the class or the
// code, never on message text. The taxonomy knows no transport: common/grpc-status.ts maps it
// to gRPC status codes.

export type ErrorCode =
  | 'JOB_SPEC_INVALID'
  | 'DATASET_ERROR'
  | 'PROTOCOL_VIOLATION'
  | 'UNKNOWN_UNIT'
  | 'STALE_MESSAGE'
  | 'BYTE_LENGTH_MISMATCH'
  | 'NON_FINITE'
  | 'MESSAGE_TOO_LARGE'
  | 'TOO_MANY_SESSIONS'
  | 'UNSUPPORTED_PROTOCOL'
  | 'WORKER_LOST'
  | 'ILLEGAL_STATE'
  | 'AGGREGATION_INPUT'
  | 'BACKEND_UNAVAILABLE'
  | 'COMPUTE_THREAD_LOST'
  | 'WEIGHTS_INCOMPLETE'
  | 'UNIT_FAILED'
  | 'RUN_ABORTED'
  | 'CONTROL_PLANE'
  | 'LEASE_HELD'
  | 'RUN_NOT_FOUND'
  | 'AUTHENTICATION_FAILED'
  | 'SECURITY_CONFIG'
  | 'INSECURE_LISTEN'
  | 'RUN_DIRECTORY_IN_USE'
  | 'MODEL_FILE_INVALID'
  | 'DATA_FETCH_FAILED';

export interface MtlErrorOptions {
  cause?: unknown;
}

export abstract class MtlError extends Error {
  abstract readonly code: ErrorCode;
  constructor(message: string, options?: MtlErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }
}

export interface SpecIssue {
  /** Dotted path into the job document, e.g. `training.optimizer.learningRate`. */
  path: string;
  message: string;
}

/** The job file is unreadable or invalid. `issues` holds one entry per problem. */
export class JobSpecError extends MtlError {
  readonly code = 'JOB_SPEC_INVALID';
  constructor(
    readonly source: string,
    readonly issues: readonly SpecIssue[],
    options?: MtlErrorOptions,
  ) {
    super(`${source}: invalid job spec\n${issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`).join('\n')}`, options);
  }
}

/** A dataset cannot be loaded: missing file, bad cell, unknown target. */
export class DatasetError extends MtlError {
  readonly code = 'DATASET_ERROR';
}

/**
 * Remote data (nats://, http(s)://) could not be fetched within its retry budget: the server is
 * unreachable or kept failing. A transport problem, unlike a DatasetError: trying later may work.
 */
export class DataFetchError extends MtlError {
  readonly code = 'DATA_FETCH_FAILED';
}

/** A peer sent something the protocol does not allow (wrong message kind, order, shape). */
export class ProtocolViolationError extends MtlError {
  readonly code = 'PROTOCOL_VIOLATION';
}

/** A result for a unit that does not exist or is not assigned to this worker. */
export class UnknownUnitError extends MtlError {
  readonly code = 'UNKNOWN_UNIT';
}

/** A message for a step or weights version other than the current one. */
export class StaleMessageError extends MtlError {
  readonly code = 'STALE_MESSAGE';
}

/** A tensor payload whose byte length does not match the parameter layout. */
export class ByteLengthError extends MtlError {
  readonly code = 'BYTE_LENGTH_MISMATCH';
}

/** NaN or ±Infinity where finite numbers are required. */
export class NonFiniteError extends MtlError {
  readonly code = 'NON_FINITE';
}

/** A message or transfer above the configured limits. */
export class MessageTooLargeError extends MtlError {
  readonly code = 'MESSAGE_TOO_LARGE';
}

/** The coordinator already serves its maximum of sessions: a new connection is refused. */
export class TooManySessionsError extends MtlError {
  readonly code = 'TOO_MANY_SESSIONS';
}

/** The peer speaks another protocol version. */
export class UnsupportedProtocolError extends MtlError {
  readonly code = 'UNSUPPORTED_PROTOCOL';
}

/** A worker disconnected while it held work. */
export class WorkerLostError extends MtlError {
  readonly code = 'WORKER_LOST';
}

/** A lifecycle method was called in a state that does not allow it. */
export class IllegalStateError extends MtlError {
  readonly code = 'ILLEGAL_STATE';
}

/** Aggregator input that no method can work with (T = 0, ragged rows, non-finite values). */
export class AggregationInputError extends MtlError {
  readonly code = 'AGGREGATION_INPUT';
}

/** The requested compute backend cannot be loaded here. */
export class BackendUnavailableError extends MtlError {
  readonly code = 'BACKEND_UNAVAILABLE';
}

/** A worker's compute thread died (an uncaught error, out of memory) or was stopped: the worker cannot compute. */
export class ComputeThreadError extends MtlError {
  readonly code = 'COMPUTE_THREAD_LOST';
}

/** A unit needed weights that stopped arriving (the connection to the coordinator was lost mid-transfer). */
export class WeightsIncompleteError extends MtlError {
  readonly code = 'WEIGHTS_INCOMPLETE';
}

/** A worker reported that it could not compute a unit. */
export class UnitFailedError extends MtlError {
  readonly code = 'UNIT_FAILED';
}

/** The run was stopped (signal, shutdown request) before it finished. */
export class RunAbortedError extends MtlError {
  readonly code = 'RUN_ABORTED';
}

/** The NATS control plane cannot be reached or refused an operation. */
export class ControlPlaneError extends MtlError {
  readonly code = 'CONTROL_PLANE';
}

/** Another coordinator holds the run's lease (or took it over): this one may not run it. */
export class LeaseHeldError extends MtlError {
  readonly code = 'LEASE_HELD';
}

/** No run with this id in the run registry. */
export class RunNotFoundError extends MtlError {
  readonly code = 'RUN_NOT_FOUND';
}

/**
 * A peer failed authentication (missing or wrong join token). The message says why, for the
 * log; the peer only ever sees the same generic status (toGrpcStatus), whatever the reason and
 * whatever state the coordinator is in: it must learn nothing from a failed attempt.
 */
export class AuthenticationError extends MtlError {
  readonly code = 'AUTHENTICATION_FAILED';
}

/** What a peer that failed authentication is told, always. */
export const AUTHENTICATION_FAILED_DETAILS = 'AUTHENTICATION_FAILED: authentication failed';

/** TLS, join token or NATS credential settings incomplete, unreadable or unusable. */
export class SecurityConfigError extends MtlError {
  readonly code = 'SECURITY_CONFIG';
}

/** A non-loopback listen address without TLS and without an explicit --insecure. */
export class InsecureListenError extends MtlError {
  readonly code = 'INSECURE_LISTEN';
}

/** A run directory already holds another run's files, and replacing them was not asked for. */
export class RunDirectoryInUseError extends MtlError {
  readonly code = 'RUN_DIRECTORY_IN_USE';
}

/** Where in a model file a problem lies: the layer, its class, and the JSON path to it. */
export interface ModelFileLocation {
  layer?: string;
  className?: string;
  /** Dotted path into the JSON document, e.g. `modelTopology.model_config.config.layers[3]`. */
  jsonPath?: string;
}

/**
 * A model file (TF.js Layers model.json and its weight shards) that cannot be read, decoded or
 * built. The message names the file and, where the problem has one, the layer, its class and
 * the JSON path.
 */
export class ModelFileError extends MtlError {
  readonly code = 'MODEL_FILE_INVALID';
  constructor(
    readonly file: string,
    readonly problem: string,
    readonly location: ModelFileLocation = {},
    options?: MtlErrorOptions,
  ) {
    super(`${file}: ${describeLocation(location)}${problem}`, options);
  }
}

function describeLocation(at: ModelFileLocation): string {
  const layer = at.layer === undefined ? '' : `layer "${at.layer}"${at.className === undefined ? '' : ` (${at.className})`}`;
  const where = [layer, at.jsonPath === undefined ? '' : `at ${at.jsonPath}`].filter((s) => s !== '').join(' ');
  return where === '' ? '' : `${where}: `;
}

/** Errors a session survives: the message is rejected and counted, the stream stays open. */
export function isRejectedMessage(err: unknown): err is MtlError {
  return (
    err instanceof ProtocolViolationError ||
    err instanceof UnknownUnitError ||
    err instanceof StaleMessageError ||
    err instanceof ByteLengthError ||
    err instanceof NonFiniteError ||
    err instanceof MessageTooLargeError
  );
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
