// Original file: proto/mtl/v1/coordinator.proto

import type { Hello as _mtl_v1_Hello, Hello__Output as _mtl_v1_Hello__Output } from '../../mtl/v1/Hello.js';
import type { UnitResult as _mtl_v1_UnitResult, UnitResult__Output as _mtl_v1_UnitResult__Output } from '../../mtl/v1/UnitResult.js';
import type { TensorChunk as _mtl_v1_TensorChunk, TensorChunk__Output as _mtl_v1_TensorChunk__Output } from '../../mtl/v1/TensorChunk.js';
import type { UnitFailed as _mtl_v1_UnitFailed, UnitFailed__Output as _mtl_v1_UnitFailed__Output } from '../../mtl/v1/UnitFailed.js';
import type { Heartbeat as _mtl_v1_Heartbeat, Heartbeat__Output as _mtl_v1_Heartbeat__Output } from '../../mtl/v1/Heartbeat.js';
import type { Goodbye as _mtl_v1_Goodbye, Goodbye__Output as _mtl_v1_Goodbye__Output } from '../../mtl/v1/Goodbye.js';
import type { ResultEnd as _mtl_v1_ResultEnd, ResultEnd__Output as _mtl_v1_ResultEnd__Output } from '../../mtl/v1/ResultEnd.js';

export interface WorkerMessage {
  'hello'?: (_mtl_v1_Hello | null);
  'unitResult'?: (_mtl_v1_UnitResult | null);
  'chunk'?: (_mtl_v1_TensorChunk | null);
  'unitFailed'?: (_mtl_v1_UnitFailed | null);
  'heartbeat'?: (_mtl_v1_Heartbeat | null);
  'goodbye'?: (_mtl_v1_Goodbye | null);
  'resultEnd'?: (_mtl_v1_ResultEnd | null);
  'kind'?: "hello"|"unitResult"|"chunk"|"unitFailed"|"heartbeat"|"goodbye"|"resultEnd";
}

export interface WorkerMessage__Output {
  'hello'?: (_mtl_v1_Hello__Output | null);
  'unitResult'?: (_mtl_v1_UnitResult__Output | null);
  'chunk'?: (_mtl_v1_TensorChunk__Output | null);
  'unitFailed'?: (_mtl_v1_UnitFailed__Output | null);
  'heartbeat'?: (_mtl_v1_Heartbeat__Output | null);
  'goodbye'?: (_mtl_v1_Goodbye__Output | null);
  'resultEnd'?: (_mtl_v1_ResultEnd__Output | null);
  'kind'?: "hello"|"unitResult"|"chunk"|"unitFailed"|"heartbeat"|"goodbye"|"resultEnd";
}
