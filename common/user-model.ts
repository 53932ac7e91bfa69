// A job's model of the user's, as the coordinator prepares it: the user's model (from its file,
// or built in code by the caller), composed with the job (common/model-graph.ts), its layout
// and its initial parameters: the file's weights where it has them, seeded initializers elsewhere.
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { graphParameters, layoutForGraph } from './graph-layout.js';
import { configWithInputShapes, resolveInputShapes, type DeclaredShape } from './input-shapes.js';
import { JobSpecError, ModelFileError } from './errors.js';
import { matchWeights, modelFromTopology, readLayersModelFile, setWeightsByName } from './layers-model-file.js';
import { taskNames, trunkLayers, type JobSpec } from './job-spec.js';
import { FAST_PATH_LAYER_TYPES } from './job-schema.js';
import { composeUserModel, graphTensors, modelFromGraphConfig, seedInitializers, type GraphSpec } from './model-graph.js';
import { INPUT_LAYER_NAME, type ParameterLayout } from './parameter-layout.js';
import { tfLayerFor } from './yaml-layers.js';

export interface BaseModel {
  readonly model: tf.LayersModel;
  /** Whether `model` holds trained weights (the file's shards were present). */
  readonly weightsLoaded: boolean;
}

/**
 * The trunk of a YAML model that needs the graph path (layers beyond the fast path's five), as
 * a tfjs-layers model: input `input`, layers `trunk_<i>_<type>` as the fast path names them.
 */
export function yamlTrunkModel(job: JobSpec, inputShape: readonly number[]): tf.LayersModel {
  const m = job.model;
  for (const k of ['experts', 'inputs'] as const) {
    if (m[k] !== undefined) throw new JobSpecError('job', [{ path: `model.${k}`, message: `layers beyond ${FAST_PATH_LAYER_TYPES.join(', ')} need the general path, which does not take model.${k} yet` }]);
  }
  if (Object.keys(m.adapters).length > 0) throw new JobSpecError('job', [{ path: 'model.adapters', message: `layers beyond ${FAST_PATH_LAYER_TYPES.join(', ')} need the general path, which does not take model.adapters yet` }]);
  const input = tf.input({ shape: [...(m.input ?? inputShape)], name: INPUT_LAYER_NAME });
  let h = input;
  trunkLayers(job).forEach((spec, i) => {
    try {
      h = tfLayerFor(spec, `trunk_${i}_${spec.type}`).apply(h) as tf.SymbolicTensor;
    } catch (err) {
      throw new JobSpecError('job', [{ path: `model.trunk[${i}].${spec.type}`, message: `cannot apply to [${h.shape.slice(1).join(', ')}]: ${(err as Error).message}` }], { cause: err });
    }
  });
  if (h === input) h = tf.layers.activation({ activation: 'linear', name: 'trunk' }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: h, name: `${job.name}_trunk` });
}

/** Reads the job's model.layersModel or builds its model.module (paths relative to the job file's directory `dir`). */
export function readBaseModel(job: JobSpec, dir: string): BaseModel {
  if (job.model.module !== undefined) return { model: buildModuleModel(path.resolve(dir, job.model.module)), weightsLoaded: false };
  const where = 'model.layersModel';
  const file = path.resolve(dir, job.model.layersModel!);
  try {
    const read = readLayersModelFile(file);
    // All shards absent: the topology alone (seeded initial weights). Some: a broken copy.
    if (read.missingShards.length > 0 && read.missingShards.length < read.shards.length) {
      throw new JobSpecError('job', [{ path: where, message: `${file}: weight shard(s) missing: ${read.missingShards.join(', ')} (copy them next to model.json, or remove every shard to start from seeded initial weights)` }]);
    }
    const model = modelFromTopology(read.topology, { file, jsonPath: read.topologyPath });
    if (read.weights) {
      const { unset } = matchWeights(model, read.weights);
      if (unset.length > 0) {
        throw new JobSpecError('job', [{ path: where, message: `${file}: the weights do not cover the model: no value for ${unset.slice(0, 5).join(', ')}${unset.length > 5 ? ` and ${unset.length - 5} more` : ''}` }]);
      }
      setWeightsByName(model, read.weights, file);
    }
    return { model, weightsLoaded: read.weights !== undefined };
  } catch (err) {
    if (err instanceof ModelFileError) throw new JobSpecError('job', [{ path: where, message: err.message }], { cause: err });
    throw err;
  }
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

/**
 * Layout and initial parameters of `base` composed with `job`, for tasks whose data have
 * `dataShapes`. Input sizes the model leaves unknown are taken from the data first
 * (common/input-shapes.ts), so the composition is built for the data's shape.
 */
export function prepareUserModel(
  job: JobSpec,
  base: BaseModel,
  dataShapes: ReadonlyMap<string, readonly number[]>,
  describe: (task: string) => string = (t) => `task ${t}'s data`,
): PreparedUserModel {
  const resolved = resolveInputShapes(base.model, dataShapes, taskNames(job), describe);
  const rebuilt = resolved.model !== base.model;
  const composed = composeUserModel(resolved.model, job, tfLayerFor);
  const { model } = composed;
  const spec: GraphSpec = resolved.declared
    ? { ...composed.spec, declaredInputs: resolved.declared, exportDeclared: buildsWithDeclaredInputs(model, composed.spec, resolved.declared, taskNames(job)) }
    : composed.spec;
  const seeded = modelFromGraphConfig(seedInitializers(spec.config, job.seed));
  try {
    const layout = layoutForGraph(job, model, spec, dataShapes, describe);
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
    // The rebuild (and the heads composed on it) are ours; `base` is the caller's. Their layers
    // overlap (layer disposal is counted per model), so free the variables themselves.
    if (rebuilt) for (const v of new Set([...model.weights, ...resolved.model.weights])) v.dispose();
  }
}

/**
 * Whether the composition still builds, with the same weights, when its inputs declare the
 * user's model's own shapes (unknown sizes and all): then the exported model takes any size
 * there, as the user's model did. Not when a layer needs the sizes (a flatten before a dense).
 */
function buildsWithDeclaredInputs(composed: tf.LayersModel, spec: GraphSpec, declared: readonly DeclaredShape[], tasks: readonly string[]): boolean {
  let model: tf.LayersModel;
  try {
    model = modelFromGraphConfig(configWithInputShapes(spec.config, declared));
  } catch {
    // tfjs refuses to build a layer whose weights need a size left unknown (Flatten → Dense).
    return false;
  }
  try {
    const want = graphTensors(composed, spec, tasks).tensors;
    const got = graphTensors(model, spec, tasks).tensors;
    return got.length === want.length && got.every((t, i) => t.name === want[i]!.name && t.shape.join(',') === want[i]!.shape.join(','));
  } finally {
    model.dispose();
  }
}
