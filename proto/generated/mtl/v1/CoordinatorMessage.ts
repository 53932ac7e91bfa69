// Original file: proto/mtl/v1/coordinator.proto

import type { Welcome as _mtl_v1_Welcome, Welcome__Output as _mtl_v1_Welcome__Output } from '../../mtl/v1/Welcome.js';
import type { WeightsHeader as _mtl_v1_WeightsHeader, WeightsHeader__Output as _mtl_v1_WeightsHeader__Output } from '../../mtl/v1/WeightsHeader.js';
import type { TensorChunk as _mtl_v1_TensorChunk, TensorChunk__Output as _mtl_v1_TensorChunk__Output } from '../../mtl/v1/TensorChunk.js';
import type { Assign as _mtl_v1_Assign, Assign__Output as _mtl_v1_Assign__Output } from '../../mtl/v1/Assign.js';
import type { Cancel as _mtl_v1_Cancel, Cancel__Output as _mtl_v1_Cancel__Output } from '../../mtl/v1/Cancel.js';
import type { Shutdown as _mtl_v1_Shutdown, Shutdown__Output as _mtl_v1_Shutdown__Output } from '../../mtl/v1/Shutdown.js';

export interface CoordinatorMessage {
  'welcome'?: (_mtl_v1_Welcome | null);
  'weights'?: (_mtl_v1_WeightsHeader | null);
  'chunk'?: (_mtl_v1_TensorChunk | null);
  'assign'?: (_mtl_v1_Assign | null);
  'cancel'?: (_mtl_v1_Cancel | null);
  'shutdown'?: (_mtl_v1_Shutdown | null);
  'kind'?: "welcome"|"weights"|"chunk"|"assign"|"cancel"|"shutdown";
}

export interface CoordinatorMessage__Output {
  'welcome'?: (_mtl_v1_Welcome__Output | null);
  'weights'?: (_mtl_v1_WeightsHeader__Output | null);
  'chunk'?: (_mtl_v1_TensorChunk__Output | null);
  'assign'?: (_mtl_v1_Assign__Output | null);
  'cancel'?: (_mtl_v1_Cancel__Output | null);
  'shutdown'?: (_mtl_v1_Shutdown__Output | null);
  'kind'?: "welcome"|"weights"|"chunk"|"assign"|"cancel"|"shutdown";
}
