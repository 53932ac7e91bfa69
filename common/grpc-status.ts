// The single mapping of our error taxonomy (common/errors.ts) to gRPC status codes: what a peer
// sees when a session or a call ends with one of our errors.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { AUTHENTICATION_FAILED_DETAILS, AuthenticationError, MtlError, type ErrorCode } from './errors.js';

const GRPC_STATUS: Record<ErrorCode, GrpcStatus> = {
  JOB_SPEC_INVALID: GrpcStatus.INVALID_ARGUMENT,
  DATASET_ERROR: GrpcStatus.FAILED_PRECONDITION,
  PROTOCOL_VIOLATION: GrpcStatus.INVALID_ARGUMENT,
  UNKNOWN_UNIT: GrpcStatus.NOT_FOUND,
  STALE_MESSAGE: GrpcStatus.FAILED_PRECONDITION,
  BYTE_LENGTH_MISMATCH: GrpcStatus.INVALID_ARGUMENT,
  NON_FINITE: GrpcStatus.INVALID_ARGUMENT,
  MESSAGE_TOO_LARGE: GrpcStatus.RESOURCE_EXHAUSTED,
  TOO_MANY_SESSIONS: GrpcStatus.RESOURCE_EXHAUSTED,
  UNSUPPORTED_PROTOCOL: GrpcStatus.FAILED_PRECONDITION,
  WORKER_LOST: GrpcStatus.UNAVAILABLE,
  ILLEGAL_STATE: GrpcStatus.FAILED_PRECONDITION,
  AGGREGATION_INPUT: GrpcStatus.INVALID_ARGUMENT,
  BACKEND_UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  COMPUTE_THREAD_LOST: GrpcStatus.INTERNAL,
  WEIGHTS_INCOMPLETE: GrpcStatus.UNAVAILABLE,
  UNIT_FAILED: GrpcStatus.INTERNAL,
  RUN_ABORTED: GrpcStatus.ABORTED,
  CONTROL_PLANE: GrpcStatus.UNAVAILABLE,
  LEASE_HELD: GrpcStatus.FAILED_PRECONDITION,
  RUN_NOT_FOUND: GrpcStatus.NOT_FOUND,
  AUTHENTICATION_FAILED: GrpcStatus.UNAUTHENTICATED,
  SECURITY_CONFIG: GrpcStatus.FAILED_PRECONDITION,
  INSECURE_LISTEN: GrpcStatus.FAILED_PRECONDITION,
  RUN_DIRECTORY_IN_USE: GrpcStatus.FAILED_PRECONDITION,
  MODEL_FILE_INVALID: GrpcStatus.FAILED_PRECONDITION,
  DATA_FETCH_FAILED: GrpcStatus.UNAVAILABLE,
};

/** The gRPC status for an error; anything that is not ours is INTERNAL. */
export function toGrpcStatus(err: unknown): { code: GrpcStatus; details: string } {
  if (err instanceof AuthenticationError) return { code: GrpcStatus.UNAUTHENTICATED, details: AUTHENTICATION_FAILED_DETAILS };
  if (err instanceof MtlError) return { code: GRPC_STATUS[err.code], details: `${err.code}: ${err.message}` };
  return { code: GrpcStatus.INTERNAL, details: 'internal error' };
}
