// A job's model of the user's, as the coordinator prepares it: the user's model (from its file,
// or built in code by the caller), composed with the job (common/model-graph.ts), its layout
// and its initial parameters: the file's weights where it has them, seeded initializers elsewhere.
import type * as tf from '@tensorflow/tfjs';
import { graphParameters, layoutForGraph } from './graph-layout.js';
import { JobSpecError } from './errors.js';
import type { JobSpec } from './job-spec.js';
import { layerFor } from './model-files.js';
import { composeUserModel, modelFromGraphConfig, seedInitializers } from './model-graph.js';
import type { ParameterLayout } from './parameter-layout.js';

export interface BaseModel {
  readonly model: tf.LayersModel;
  /** Whether `model` holds trained weights (the file's shards were present). */
  readonly weightsLoaded: boolean;
}

/** Reads the job's model.layersModel (relative to the job file's directory `dir`). */
export function readBaseModel(job: JobSpec, dir: string): BaseModel {
  void dir;
  throw new JobSpecError('job', [{ path: job.model.layersModel !== undefined ? 'model.layersModel' : 'model.module', message: 'reading model files lands with the model-file reader' }]);
}

export interface PreparedUserModel {
  readonly layout: ParameterLayout;
  readonly initialParams: Float32Array;
}

/** Layout and initial parameters of `base` composed with `job`, for tasks whose data have `dataShapes`. */
export function prepareUserModel(
  job: JobSpec,
  base: BaseModel,
  dataShapes: ReadonlyMap<string, readonly number[]>,
  describe?: (task: string) => string,
): PreparedUserModel {
  const { model, spec } = composeUserModel(base.model, job, layerFor);
  const layout = layoutForGraph(job, model, spec, dataShapes, describe);
  const seeded = modelFromGraphConfig(seedInitializers(spec.config, job.seed));
  try {
    const initialParams = graphParameters(layout, seeded, spec);
    if (base.weightsLoaded) {
      const loaded = graphParameters(layout, model, spec);
      const fromFile = new Set(base.model.layers.map((l) => l.name));
      const byName = new Map(layout.tensors.map((t) => [t.name, t]));
      for (const row of layout.graph!.rows) {
        if (!fromFile.has(row.layer)) continue;
        for (const w of row.weights) {
          const t = byName.get(w)!;
          initialParams.set(loaded.subarray(t.offset, t.offset + t.size), t.offset);
        }
      }
    }
    return { layout, initialParams };
  } finally {
    seeded.dispose();
  }
}
