// A job's model of the user's, as the coordinator prepares it: the user's model (from its file,
// or built in code by the caller), composed with the job (common/model-graph.ts), its layout
// and its initial parameters: the file's weights where it has them, seeded initializers elsewhere.
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { graphParameters, layoutForGraph } from './graph-layout.js';
import { JobSpecError } from './errors.js';
import type { JobSpec } from './job-spec.js';
import { composeUserModel, modelFromGraphConfig, seedInitializers } from './model-graph.js';
import type { ParameterLayout } from './parameter-layout.js';
import { tfLayerFor } from './yaml-layers.js';

export interface BaseModel {
  readonly model: tf.LayersModel;
  /** Whether `model` holds trained weights (the file's shards were present). */
  readonly weightsLoaded: boolean;
}

/** Reads the job's model.layersModel or builds its model.module (paths relative to the job file's directory `dir`). */
export function readBaseModel(job: JobSpec, dir: string): BaseModel {
  if (job.model.module !== undefined) return { model: buildModuleModel(path.resolve(dir, job.model.module)), weightsLoaded: false };
  throw new JobSpecError('job', [{ path: 'model.layersModel', message: 'reading model files lands with the model-file reader' }]);
}

/**
 * Loads a model module (ES module or CommonJS, loaded synchronously: Node's require of ES
 * modules, Node ≥ 20.19) and calls its default export with our tfjs. The coordinator and every
 * worker call this: a module that registers custom layer classes registers them everywhere.
 */
export function buildModuleModel(file: string): tf.LayersModel {
  const where = 'model.module';
  if (!existsSync(file)) throw new JobSpecError('job', [{ path: where, message: `no such file: ${file}` }]);
  let exported: unknown;
  try {
    exported = createRequire(import.meta.url)(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ERR_REQUIRE_ESM' || code === 'ERR_REQUIRE_ASYNC_MODULE' ? ' (model modules are loaded synchronously: Node ≥ 20.19, and no top-level await)' : '';
    throw new JobSpecError('job', [{ path: where, message: `cannot load ${file}: ${(err as Error).message}${why}` }], { cause: err });
  }
  const build = (exported as { default?: unknown }).default ?? exported;
  if (typeof build !== 'function') throw new JobSpecError('job', [{ path: where, message: `${file} must export by default a function (tf) => tf.LayersModel` }]);
  let model: unknown;
  try {
    model = (build as (t: typeof tf) => unknown)(tf);
  } catch (err) {
    throw new JobSpecError('job', [{ path: where, message: `${file}: building the model failed: ${(err as Error).message}` }], { cause: err });
  }
  if (!(model instanceof tf.LayersModel)) {
    const what = model instanceof Promise ? 'a Promise (the build must be synchronous)' : typeof model;
    throw new JobSpecError('job', [{ path: where, message: `${file}: the default export returned ${what}, not a tf.LayersModel (build it with the tf it is given)` }]);
  }
  return model;
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
  const { model, spec } = composeUserModel(base.model, job, tfLayerFor);
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
