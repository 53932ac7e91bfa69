import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Assign as _mtl_v1_Assign, Assign__Output as _mtl_v1_Assign__Output } from './mtl/v1/Assign.js';
import type { Cancel as _mtl_v1_Cancel, Cancel__Output as _mtl_v1_Cancel__Output } from './mtl/v1/Cancel.js';
import type { CoordinatorClient as _mtl_v1_CoordinatorClient, CoordinatorDefinition as _mtl_v1_CoordinatorDefinition } from './mtl/v1/Coordinator.js';
import type { CoordinatorMessage as _mtl_v1_CoordinatorMessage, CoordinatorMessage__Output as _mtl_v1_CoordinatorMessage__Output } from './mtl/v1/CoordinatorMessage.js';
import type { GetStatusRequest as _mtl_v1_GetStatusRequest, GetStatusRequest__Output as _mtl_v1_GetStatusRequest__Output } from './mtl/v1/GetStatusRequest.js';
import type { Goodbye as _mtl_v1_Goodbye, Goodbye__Output as _mtl_v1_Goodbye__Output } from './mtl/v1/Goodbye.js';
import type { Heartbeat as _mtl_v1_Heartbeat, Heartbeat__Output as _mtl_v1_Heartbeat__Output } from './mtl/v1/Heartbeat.js';
import type { Hello as _mtl_v1_Hello, Hello__Output as _mtl_v1_Hello__Output } from './mtl/v1/Hello.js';
import type { ResultEnd as _mtl_v1_ResultEnd, ResultEnd__Output as _mtl_v1_ResultEnd__Output } from './mtl/v1/ResultEnd.js';
import type { RunStatus as _mtl_v1_RunStatus, RunStatus__Output as _mtl_v1_RunStatus__Output } from './mtl/v1/RunStatus.js';
import type { Shutdown as _mtl_v1_Shutdown, Shutdown__Output as _mtl_v1_Shutdown__Output } from './mtl/v1/Shutdown.js';
import type { TensorChunk as _mtl_v1_TensorChunk, TensorChunk__Output as _mtl_v1_TensorChunk__Output } from './mtl/v1/TensorChunk.js';
import type { TensorSpec as _mtl_v1_TensorSpec, TensorSpec__Output as _mtl_v1_TensorSpec__Output } from './mtl/v1/TensorSpec.js';
import type { Unit as _mtl_v1_Unit, Unit__Output as _mtl_v1_Unit__Output } from './mtl/v1/Unit.js';
import type { UnitFailed as _mtl_v1_UnitFailed, UnitFailed__Output as _mtl_v1_UnitFailed__Output } from './mtl/v1/UnitFailed.js';
import type { UnitResult as _mtl_v1_UnitResult, UnitResult__Output as _mtl_v1_UnitResult__Output } from './mtl/v1/UnitResult.js';
import type { WeightsHeader as _mtl_v1_WeightsHeader, WeightsHeader__Output as _mtl_v1_WeightsHeader__Output } from './mtl/v1/WeightsHeader.js';
import type { Welcome as _mtl_v1_Welcome, Welcome__Output as _mtl_v1_Welcome__Output } from './mtl/v1/Welcome.js';
import type { WorkerMessage as _mtl_v1_WorkerMessage, WorkerMessage__Output as _mtl_v1_WorkerMessage__Output } from './mtl/v1/WorkerMessage.js';
import type { WorkerStatus as _mtl_v1_WorkerStatus, WorkerStatus__Output as _mtl_v1_WorkerStatus__Output } from './mtl/v1/WorkerStatus.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  mtl: {
    v1: {
      Assign: MessageTypeDefinition<_mtl_v1_Assign, _mtl_v1_Assign__Output>
      Cancel: MessageTypeDefinition<_mtl_v1_Cancel, _mtl_v1_Cancel__Output>
      Coordinator: SubtypeConstructor<typeof grpc.Client, _mtl_v1_CoordinatorClient> & { service: _mtl_v1_CoordinatorDefinition }
      CoordinatorMessage: MessageTypeDefinition<_mtl_v1_CoordinatorMessage, _mtl_v1_CoordinatorMessage__Output>
      Encoding: EnumTypeDefinition
      GetStatusRequest: MessageTypeDefinition<_mtl_v1_GetStatusRequest, _mtl_v1_GetStatusRequest__Output>
      Goodbye: MessageTypeDefinition<_mtl_v1_Goodbye, _mtl_v1_Goodbye__Output>
      Heartbeat: MessageTypeDefinition<_mtl_v1_Heartbeat, _mtl_v1_Heartbeat__Output>
      Hello: MessageTypeDefinition<_mtl_v1_Hello, _mtl_v1_Hello__Output>
      ResultEnd: MessageTypeDefinition<_mtl_v1_ResultEnd, _mtl_v1_ResultEnd__Output>
      RunStatus: MessageTypeDefinition<_mtl_v1_RunStatus, _mtl_v1_RunStatus__Output>
      Shutdown: MessageTypeDefinition<_mtl_v1_Shutdown, _mtl_v1_Shutdown__Output>
      TensorChunk: MessageTypeDefinition<_mtl_v1_TensorChunk, _mtl_v1_TensorChunk__Output>
      TensorSpec: MessageTypeDefinition<_mtl_v1_TensorSpec, _mtl_v1_TensorSpec__Output>
      Unit: MessageTypeDefinition<_mtl_v1_Unit, _mtl_v1_Unit__Output>
      UnitFailed: MessageTypeDefinition<_mtl_v1_UnitFailed, _mtl_v1_UnitFailed__Output>
      UnitKind: EnumTypeDefinition
      UnitResult: MessageTypeDefinition<_mtl_v1_UnitResult, _mtl_v1_UnitResult__Output>
      WeightsHeader: MessageTypeDefinition<_mtl_v1_WeightsHeader, _mtl_v1_WeightsHeader__Output>
      Welcome: MessageTypeDefinition<_mtl_v1_Welcome, _mtl_v1_Welcome__Output>
      WorkerMessage: MessageTypeDefinition<_mtl_v1_WorkerMessage, _mtl_v1_WorkerMessage__Output>
      WorkerStatus: MessageTypeDefinition<_mtl_v1_WorkerStatus, _mtl_v1_WorkerStatus__Output>
    }
  }
}

