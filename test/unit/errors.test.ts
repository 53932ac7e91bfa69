import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AggregationInputError,
  AuthenticationError,
  InsecureListenError,
  RunDirectoryInUseError,
  SecurityConfigError,
  BackendUnavailableError,
  ByteLengthError,
  ComputeThreadError,
  WeightsIncompleteError,
  ControlPlaneError,
  DataFetchError,
  DatasetError,
  IllegalStateError,
  JobSpecError,
  LeaseHeldError,
  MessageTooLargeError,
  ModelFileError,
  MtlError,
  NonFiniteError,
  ProtocolViolationError,
  RunAbortedError,
  RunNotFoundError,
  StaleMessageError,
  UnitFailedError,
  UnknownUnitError,
  TooManySessionsError,
  UnsupportedProtocolError,
  WorkerLostError,
  errorMessage,
  isRejectedMessage,
  type ErrorCode,
} from '../../common/errors.js';
import { toGrpcStatus } from '../../common/grpc-status.js';

type PlainCtor = new (message: string, options?: { cause?: unknown }) => MtlError;

// Expected codes and statuses written out here, so a silent change to either fails a test.
const PLAIN: Array<[PlainCtor, ErrorCode, status, rejected: boolean]> = [
  [DatasetError, 'DATASET_ERROR', status.FAILED_PRECONDITION, false],
  [ProtocolViolationError, 'PROTOCOL_VIOLATION', status.INVALID_ARGUMENT, true],
  [UnknownUnitError, 'UNKNOWN_UNIT', status.NOT_FOUND, true],
  [StaleMessageError, 'STALE_MESSAGE', status.FAILED_PRECONDITION, true],
  [ByteLengthError, 'BYTE_LENGTH_MISMATCH', status.INVALID_ARGUMENT, true],
  [NonFiniteError, 'NON_FINITE', status.INVALID_ARGUMENT, true],
  [MessageTooLargeError, 'MESSAGE_TOO_LARGE', status.RESOURCE_EXHAUSTED, true],
  [TooManySessionsError, 'TOO_MANY_SESSIONS', status.RESOURCE_EXHAUSTED, false],
  [UnsupportedProtocolError, 'UNSUPPORTED_PROTOCOL', status.FAILED_PRECONDITION, false],
  [WorkerLostError, 'WORKER_LOST', status.UNAVAILABLE, false],
  [IllegalStateError, 'ILLEGAL_STATE', status.FAILED_PRECONDITION, false],
  [AggregationInputError, 'AGGREGATION_INPUT', status.INVALID_ARGUMENT, false],
  [BackendUnavailableError, 'BACKEND_UNAVAILABLE', status.UNAVAILABLE, false],
  [ComputeThreadError, 'COMPUTE_THREAD_LOST', status.INTERNAL, false],
  [WeightsIncompleteError, 'WEIGHTS_INCOMPLETE', status.UNAVAILABLE, false],
  [UnitFailedError, 'UNIT_FAILED', status.INTERNAL, false],
  [RunAbortedError, 'RUN_ABORTED', status.ABORTED, false],
  [ControlPlaneError, 'CONTROL_PLANE', status.UNAVAILABLE, false],
  [DataFetchError, 'DATA_FETCH_FAILED', status.UNAVAILABLE, false],
  [LeaseHeldError, 'LEASE_HELD', status.FAILED_PRECONDITION, false],
  [RunNotFoundError, 'RUN_NOT_FOUND', status.NOT_FOUND, false],
  [SecurityConfigError, 'SECURITY_CONFIG', status.FAILED_PRECONDITION, false],
  [InsecureListenError, 'INSECURE_LISTEN', status.FAILED_PRECONDITION, false],
  [RunDirectoryInUseError, 'RUN_DIRECTORY_IN_USE', status.FAILED_PRECONDITION, false],
];

void describe('error classes', () => {
  for (const [Ctor, code] of PLAIN) {
    void it(`${Ctor.name} has code ${code}, its own name, and keeps its cause`, () => {
      const cause = new Error('underlying');
      const err = new Ctor('what happened', { cause });
      assert.ok(err instanceof Error);
      assert.ok(err instanceof MtlError);
      assert.ok(err instanceof Ctor);
      assert.equal(err.code, code);
      assert.equal(err.name, Ctor.name);
      assert.equal(err.message, 'what happened');
      assert.equal(err.cause, cause);
      assert.ok(err.stack?.startsWith(`${Ctor.name}: what happened`));
      const bare = new Ctor('no cause');
      assert.equal(bare.cause, undefined);
      assert.ok(!('cause' in bare), 'no cause property when none was given');
    });
  }

  void it('codes are distinct', () => {
    const codes = PLAIN.map(([, code]) => code);
    assert.equal(new Set(codes).size, codes.length);
    assert.ok(!codes.includes('JOB_SPEC_INVALID'));
    assert.ok(!codes.includes('MODEL_FILE_INVALID'));
  });

  void it('ModelFileError names the file, then the layer, its class and the JSON path where known', () => {
    const cause = new Error('underlying');
    const err = new ModelFileError('/m/model.json', 'unsupported layer class Foo', { layer: 'foo_1', className: 'Foo', jsonPath: 'modelTopology.config.layers[2]' }, { cause });
    assert.equal(err.code, 'MODEL_FILE_INVALID');
    assert.equal(err.name, 'ModelFileError');
    assert.equal(err.cause, cause);
    assert.equal(err.file, '/m/model.json');
    assert.equal(err.problem, 'unsupported layer class Foo');
    assert.equal(err.message, '/m/model.json: layer "foo_1" (Foo) at modelTopology.config.layers[2]: unsupported layer class Foo');
    assert.equal(new ModelFileError('/m/model.json', 'not JSON').message, '/m/model.json: not JSON');
    assert.equal(new ModelFileError('f', 'bad shard', { jsonPath: 'weightsManifest[0]' }).message, 'f: at weightsManifest[0]: bad shard');
    assert.equal(isRejectedMessage(err), false);
  });

  void it('JobSpecError keeps source, issues and cause, and lists each issue on its own line', () => {
    const cause = new Error('ENOENT');
    const issues = [
      { path: 'training.optimizer.learningRate', message: 'expected a positive number, got -1' },
      { path: 'colour', message: 'unknown key' },
      { path: '', message: 'YAML BAD_INDENT at line 3' },
    ];
    const err = new JobSpecError('job.yaml', issues, { cause });
    assert.equal(err.code, 'JOB_SPEC_INVALID');
    assert.equal(err.name, 'JobSpecError');
    assert.equal(err.source, 'job.yaml');
    assert.deepEqual(err.issues, issues);
    assert.equal(err.cause, cause);
    assert.deepEqual(err.message.split('\n'), [
      'job.yaml: invalid job spec',
      '  training.optimizer.learningRate: expected a positive number, got -1',
      '  colour: unknown key',
      '  (root): YAML BAD_INDENT at line 3',
    ]);
  });
});

void describe('toGrpcStatus', () => {
  for (const [Ctor, code, grpcStatus] of PLAIN) {
    void it(`maps ${Ctor.name} to ${status[grpcStatus]}`, () => {
      const s = toGrpcStatus(new Ctor('boom'));
      assert.equal(s.code, grpcStatus);
      assert.equal(s.details, `${code}: boom`);
    });
  }

  void it('maps JobSpecError to INVALID_ARGUMENT', () => {
    const s = toGrpcStatus(new JobSpecError('x', [{ path: 'name', message: 'bad' }]));
    assert.equal(s.code, status.INVALID_ARGUMENT);
    assert.match(s.details, /^JOB_SPEC_INVALID: /);
    assert.match(s.details, /name: bad/);
  });

  void it('maps ModelFileError to FAILED_PRECONDITION', () => {
    const s = toGrpcStatus(new ModelFileError('m.json', 'truncated'));
    assert.deepEqual(s, { code: status.FAILED_PRECONDITION, details: 'MODEL_FILE_INVALID: m.json: truncated' });
  });

  void it('maps AuthenticationError to UNAUTHENTICATED with the same generic details whatever the reason', () => {
    for (const reason of ['no token in Hello', 'wrong token', 'the run is over']) {
      const err = new AuthenticationError(reason);
      assert.equal(err.code, 'AUTHENTICATION_FAILED');
      assert.equal(isRejectedMessage(err), false);
      assert.deepEqual(toGrpcStatus(err), { code: status.UNAUTHENTICATED, details: 'AUTHENTICATION_FAILED: authentication failed' });
    }
  });

  void it('maps anything else to INTERNAL without leaking its message', () => {
    for (const err of [new Error('secret token abc123'), new TypeError('secret'), 'secret', undefined, { code: 'WORKER_LOST', message: 'secret' }]) {
      const s = toGrpcStatus(err);
      assert.equal(s.code, status.INTERNAL);
      assert.equal(s.details, 'internal error');
    }
  });
});

void describe('isRejectedMessage', () => {
  for (const [Ctor, , , rejected] of PLAIN) {
    void it(`is ${rejected} for ${Ctor.name}`, () => {
      assert.equal(isRejectedMessage(new Ctor('x')), rejected);
    });
  }

  void it('is false for job spec errors, plain errors and non-errors', () => {
    assert.equal(isRejectedMessage(new JobSpecError('x', [])), false);
    assert.equal(isRejectedMessage(new Error('x')), false);
    assert.equal(isRejectedMessage(undefined), false);
    assert.equal(isRejectedMessage({ code: 'PROTOCOL_VIOLATION' }), false);
  });
});

void describe('errorMessage', () => {
  void it('reads the message of errors and stringifies the rest', () => {
    assert.equal(errorMessage(new WorkerLostError('gone')), 'gone');
    assert.equal(errorMessage('plain'), 'plain');
    assert.equal(errorMessage(42), '42');
  });
});
