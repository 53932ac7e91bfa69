// Original file: proto/mtl/v1/coordinator.proto

import type { TensorSpec as _mtl_v1_TensorSpec, TensorSpec__Output as _mtl_v1_TensorSpec__Output } from '../../mtl/v1/TensorSpec.js';

export interface Welcome {
  'workerId'?: (string);
  'runId'?: (string);
  /**
   * The resolved job spec as JSON (defaults applied, validated).
   */
  'jobJson'?: (string);
  /**
   * Every parameter tensor, in the canonical order used by all flat buffers.
   */
  'layout'?: (_mtl_v1_TensorSpec)[];
  'protocolVersion'?: (number);
  'maxChunkBytes'?: (number);
  /**
   * Directory the job file was read from; relative data paths resolve against it.
   */
  'jobDir'?: (string);
  /**
   * A model of the user's (model.layersModel / model.module): the composed model as JSON
   * ({config, outputs}: tfjs-layers config and each task's output layer); empty otherwise.
   * Workers rebuild the model from it, so the model file need not be on their machines.
   */
  'modelJson'?: (string);
  /**
   * Streamed datasets (a table spec with `stream`): the coordinator's scan of each, as JSON
   * keyed by source key (chunk offsets and row counts, statistics, vocabularies, class labels,
   * identity, file fingerprints), so workers read only the chunks they need without scanning
   * the files; empty when the job streams no data.
   */
  'dataPlanJson'?: (string);
}

export interface Welcome__Output {
  'workerId': (string);
  'runId': (string);
  /**
   * The resolved job spec as JSON (defaults applied, validated).
   */
  'jobJson': (string);
  /**
   * Every parameter tensor, in the canonical order used by all flat buffers.
   */
  'layout': (_mtl_v1_TensorSpec__Output)[];
  'protocolVersion': (number);
  'maxChunkBytes': (number);
  /**
   * Directory the job file was read from; relative data paths resolve against it.
   */
  'jobDir': (string);
  /**
   * A model of the user's (model.layersModel / model.module): the composed model as JSON
   * ({config, outputs}: tfjs-layers config and each task's output layer); empty otherwise.
   * Workers rebuild the model from it, so the model file need not be on their machines.
   */
  'modelJson': (string);
  /**
   * Streamed datasets (a table spec with `stream`): the coordinator's scan of each, as JSON
   * keyed by source key (chunk offsets and row counts, statistics, vocabularies, class labels,
   * identity, file fingerprints), so workers read only the chunks they need without scanning
   * the files; empty when the job streams no data.
   */
  'dataPlanJson': (string);
}
