// The trained model in the TF.js Layers format: one multi-output tf.LayersModel (one output
// per task, named after it), saved as model.json + weights.bin. Loadable with
// tf.loadLayersModel in a browser (over HTTP) or in Node (`fileSystemModel(dir)` below, or
// tfjs-node's file:// handler).
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tfLayerFor } from './yaml-layers.js';
import { allLayers, INPUT_LAYER_NAME, taskInputName, type ParameterLayout, type PlacedLayer } from './parameter-layout.js';
import { writeFileAtomic } from './atomic-file.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

/** The tfjs-layers model of a layout, with its weights set from `params` when given. */
export function buildLayersModel(layout: ParameterLayout, name: string, params?: Float32Array): tf.LayersModel {
  const stack = (layers: readonly PlacedLayer[], x: tf.SymbolicTensor) =>
    layers.reduce((h, placed) => tfLayerFor(placed.spec, placed.name).apply(h) as tf.SymbolicTensor, x);
  // Inputs: `input` for the tasks that read the trunk's input directly, `input_<task>` for each
  // task with an adapter. The trunk's layers are built once and applied to every stream, so
  // the streams share its weights.
  const plain = layout.tasks.filter((t) => !layout.adapters.has(t));
  // Named inputs: one model input per name, each with its tower, concatenated before the trunk.
  const named = layout.namedInputs.map((n) => ({ input: tf.input({ shape: [n.size], name: n.name }), tower: n.tower }));
  const input = named.length > 0 ? undefined : plain.length > 0 ? tf.input({ shape: [...layout.inputShape], name: INPUT_LAYER_NAME }) : undefined;
  const adapterInputs = new Map([...layout.adapters.keys()].map((t) => [t, tf.input({ shape: [...layout.taskInputShapes.get(t)!], name: taskInputName(t) })]));
  const trunkLayers = layout.trunk.map((placed) => tfLayerFor(placed.spec, placed.name));
  const trunkOf = (x: tf.SymbolicTensor) => trunkLayers.reduce((h, l) => l.apply(h) as tf.SymbolicTensor, x);
  const towers = named.map((n) => stack(n.tower, n.input));
  const merged = towers.length > 1 ? (tf.layers.concatenate({ name: 'inputs_concat', axis: -1 }).apply(towers) as tf.SymbolicTensor) : towers[0];
  const shared = merged ? trunkOf(merged) : input && trunkOf(input);
  const features = layout.experts
    ? expertFeatures(layout, shared!, stack)
    : new Map(layout.tasks.map((t) => [t, layout.adapters.has(t) ? trunkOf(stack(layout.adapters.get(t)!, adapterInputs.get(t)!)) : shared!]));
  const outputs = layout.tasks.map((task) => stack(layout.heads.get(task)!, features.get(task)!));
  const inputs = [...named.map((n) => n.input), ...(input ? [input] : []), ...adapterInputs.values()];
  const model = tf.model({ inputs: inputs.length === 1 ? inputs[0]! : inputs, outputs, name });
  if (params) setLayersModelWeights(model, layout, params);
  return model;
}

/**
 * The mixture-of-experts part with built-in layers only, so that the exported model loads with
 * plain tf.loadLayersModel: each expert's output is reshaped to a row [1, D], the rows a gate
 * mixes are concatenated to [E, D], and a Dot layer contracts the gate's [E] weights with them.
 */
function expertFeatures(layout: ParameterLayout, trunk: tf.SymbolicTensor, stack: (layers: readonly PlacedLayer[], x: tf.SymbolicTensor) => tf.SymbolicTensor): Map<string, tf.SymbolicTensor> {
  const experts = layout.experts!;
  const d = experts.outputShape[0]!;
  let sharedIn = trunk;
  const taskIn = new Map(layout.tasks.map((t) => [t, trunk]));
  experts.levels.forEach((level, l) => {
    const row = (x: tf.SymbolicTensor, name: string) => tf.layers.reshape({ name: `${name}_row`, targetShape: [1, d] }).apply(x) as tf.SymbolicTensor;
    const shared = level.shared.map((e, i) => row(stack(e, sharedIn), `x${l}_s${i}`));
    const own = new Map(layout.tasks.map((t) => [t, level.perTask.get(t)!.map((e, i) => row(stack(e, taskIn.get(t)!), `x${l}_${t}_${i}`))]));
    const mix = (gate: PlacedLayer, input: tf.SymbolicTensor, rows: tf.SymbolicTensor[], name: string) => {
      const g = tfLayerFor(gate.spec, gate.name).apply(input) as tf.SymbolicTensor;
      const stacked = tf.layers.concatenate({ name: `${name}_experts`, axis: 1 }).apply(rows) as tf.SymbolicTensor;
      return tf.layers.dot({ name, axes: [1, 1] }).apply([g, stacked]) as tf.SymbolicTensor;
    };
    const next = new Map(layout.tasks.map((t) => [t, mix(level.gates.get(t)!, taskIn.get(t)!, [...shared, ...own.get(t)!], `mix${l}_${t}`)]));
    if (level.sharedGate) sharedIn = mix(level.sharedGate, sharedIn, [...shared, ...layout.tasks.flatMap((t) => own.get(t)!)], `mix${l}_shared`);
    for (const [t, x] of next) taskIn.set(t, x);
  });
  return taskIn;
}

export function setLayersModelWeights(model: tf.LayersModel, layout: ParameterLayout, params: Float32Array): void {
  const all = allLayers(layout);
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
