// The trained model in the TF.js Layers format: one multi-output tf.LayersModel (one output
// per task, named after it), saved as model.json + weights.bin. Loadable with
// tf.loadLayersModel in a browser (over HTTP) or in Node (`fileSystemModel(dir)` below, or
// tfjs-node's file:// handler).
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { LayerSpec } from './job-schema.js';
import { INPUT_LAYER_NAME, type ParameterLayout, type PlacedLayer } from './parameter-layout.js';
import { writeFileAtomic } from './atomic-file.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

function layerFor(spec: LayerSpec, name: string): tf.layers.Layer {
  switch (spec.type) {
    case 'dense':
      return tf.layers.dense({ name, units: spec.config.units, activation: spec.config.activation, useBias: spec.config.useBias });
    case 'conv2d':
      return tf.layers.conv2d({
        name,
        filters: spec.config.filters,
        kernelSize: spec.config.kernelSize,
        strides: spec.config.strides,
        padding: spec.config.padding,
        activation: spec.config.activation,
        useBias: spec.config.useBias,
      });
    case 'maxPooling2d':
      return tf.layers.maxPooling2d({ name, poolSize: spec.config.poolSize, strides: spec.config.strides, padding: spec.config.padding });
    case 'flatten':
      return tf.layers.flatten({ name });
    case 'dropout':
      return tf.layers.dropout({ name, rate: spec.config.rate });
  }
}

/** The tfjs-layers model of a layout, with its weights set from `params` when given. */
export function buildLayersModel(layout: ParameterLayout, name: string, params?: Float32Array): tf.LayersModel {
  const input = tf.input({ shape: [...layout.inputShape], name: INPUT_LAYER_NAME });
  const stack = (layers: readonly PlacedLayer[], x: tf.SymbolicTensor) =>
    layers.reduce((h, placed) => layerFor(placed.spec, placed.name).apply(h) as tf.SymbolicTensor, x);
  const features = stack(layout.trunk, input);
  const outputs = layout.tasks.map((task) => stack(layout.heads.get(task)!, features));
  const model = tf.model({ inputs: input, outputs, name });
  if (params) setLayersModelWeights(model, layout, params);
  return model;
}

export function setLayersModelWeights(model: tf.LayersModel, layout: ParameterLayout, params: Float32Array): void {
  const all = [...layout.trunk, ...layout.tasks.flatMap((t) => layout.heads.get(t)!)];
  for (const placed of all) {
    if (placed.tensors.length === 0) continue;
    const values = placed.tensors.map((i) => {
      const t = layout.tensors[i]!;
      return tf.tensor(params.slice(t.offset, t.offset + t.size), [...t.shape]);
    });
    try {
      model.getLayer(placed.name).setWeights(values);
    } finally {
      tf.dispose(values);
    }
  }
}

/** Writes model.json and weights.bin into `dir` (created if needed). */
export async function saveLayersModel(model: tf.LayersModel, dir: string, metadata: Record<string, unknown>): Promise<void> {
  mkdirSync(dir, { recursive: true });
  model.setUserDefinedMetadata(metadata);
  await model.save(
    tf.io.withSaveHandler((artifacts) => {
      const data = artifacts.weightData;
      const weights = data === undefined ? new ArrayBuffer(0) : Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data;
      writeFileAtomic(path.join(dir, WEIGHTS_BIN), new Uint8Array(weights));
      const json = {
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
        userDefinedMetadata: artifacts.userDefinedMetadata,
      };
      writeFileAtomic(path.join(dir, MODEL_JSON), JSON.stringify(json));
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' as const, weightDataBytes: weights.byteLength } });
    }),
  );
}

/**
 * An IOHandler that reads a saved model from the local file system, for plain Node scripts
 * without tfjs-node: `await tf.loadLayersModel(fileSystemModel('runs/x/model'))`.
 */
export function fileSystemModel(dirOrModelJson: string): tf.io.IOHandler {
  const modelJson = dirOrModelJson.endsWith('.json') ? dirOrModelJson : path.join(dirOrModelJson, MODEL_JSON);
  const dir = path.dirname(modelJson);
  return {
    load: () => {
      const json = JSON.parse(readFileSync(modelJson, 'utf8')) as tf.io.ModelJSON;
      return tf.io.getModelArtifactsForJSON(json, (manifest) => {
        const specs = manifest.flatMap((group) => group.weights);
        const buffers = manifest.flatMap((group) =>
          group.paths.map((p) => {
            const bytes = readFileSync(path.join(dir, p));
            return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
          }),
        );
        return Promise.resolve([specs, tf.io.concatenateArrayBuffers(buffers)] as [tf.io.WeightsManifestEntry[], ArrayBuffer]);
      });
    },
  };
}
