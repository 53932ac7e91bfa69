// Original file: proto/mtl/v1/coordinator.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CoordinatorMessage as _mtl_v1_CoordinatorMessage, CoordinatorMessage__Output as _mtl_v1_CoordinatorMessage__Output } from '../../mtl/v1/CoordinatorMessage.js';
import type { GetStatusRequest as _mtl_v1_GetStatusRequest, GetStatusRequest__Output as _mtl_v1_GetStatusRequest__Output } from '../../mtl/v1/GetStatusRequest.js';
import type { RunStatus as _mtl_v1_RunStatus, RunStatus__Output as _mtl_v1_RunStatus__Output } from '../../mtl/v1/RunStatus.js';
import type { WorkerMessage as _mtl_v1_WorkerMessage, WorkerMessage__Output as _mtl_v1_WorkerMessage__Output } from '../../mtl/v1/WorkerMessage.js';

export interface CoordinatorClient extends grpc.Client {
  /**
   * A worker session. The worker speaks first (Hello); the coordinator answers Welcome,
   * then Weights and Assign messages; the worker streams UnitResults back.
   */
  Connect(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_mtl_v1_WorkerMessage, _mtl_v1_CoordinatorMessage__Output>;
  Connect(options?: grpc.CallOptions): grpc.ClientDuplexStream<_mtl_v1_WorkerMessage, _mtl_v1_CoordinatorMessage__Output>;
  /**
   * A worker session. The worker speaks first (Hello); the coordinator answers Welcome,
   * then Weights and Assign messages; the worker streams UnitResults back.
   */
  connect(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_mtl_v1_WorkerMessage, _mtl_v1_CoordinatorMessage__Output>;
  connect(options?: grpc.CallOptions): grpc.ClientDuplexStream<_mtl_v1_WorkerMessage, _mtl_v1_CoordinatorMessage__Output>;
  
  /**
   * A snapshot of the run, for people and probes.
   */
  GetStatus(argument: _mtl_v1_GetStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mtl_v1_RunStatus__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _mtl_v1_GetStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mtl_v1_RunStatus__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _mtl_v1_GetStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mtl_v1_RunStatus__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _mtl_v1_GetStatusRequest, callback: grpc.requestCallback<_mtl_v1_RunStatus__Output>): grpc.ClientUnaryCall;
  /**
   * A snapshot of the run, for people and probes.
   */
  getStatus(argument: _mtl_v1_GetStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mtl_v1_RunStatus__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _mtl_v1_GetStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mtl_v1_RunStatus__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _mtl_v1_GetStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mtl_v1_RunStatus__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _mtl_v1_GetStatusRequest, callback: grpc.requestCallback<_mtl_v1_RunStatus__Output>): grpc.ClientUnaryCall;
  
}

export interface CoordinatorHandlers extends grpc.UntypedServiceImplementation {
  /**
   * A worker session. The worker speaks first (Hello); the coordinator answers Welcome,
   * then Weights and Assign messages; the worker streams UnitResults back.
   */
  Connect: grpc.handleBidiStreamingCall<_mtl_v1_WorkerMessage__Output, _mtl_v1_CoordinatorMessage>;
  
  /**
   * A snapshot of the run, for people and probes.
   */
  GetStatus: grpc.handleUnaryCall<_mtl_v1_GetStatusRequest__Output, _mtl_v1_RunStatus>;
  
}

export interface CoordinatorDefinition extends grpc.ServiceDefinition {
  Connect: MethodDefinition<_mtl_v1_WorkerMessage, _mtl_v1_CoordinatorMessage, _mtl_v1_WorkerMessage__Output, _mtl_v1_CoordinatorMessage__Output>
  GetStatus: MethodDefinition<_mtl_v1_GetStatusRequest, _mtl_v1_RunStatus, _mtl_v1_GetStatusRequest__Output, _mtl_v1_RunStatus__Output>
}
