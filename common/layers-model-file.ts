// A user's model given as a TF.js Layers model file (`model: { layersModel: path/to/model.json }`):
// the model.json of `tf.LayersModel.save`, or of the tensorflowjs converter from a Keras 2 or
// Keras 3 model, with its weight shards. Everything here is synchronous (job preparation is):
// files are read with node:fs, weights decoded here, and the topology deserialized through
// tfjs-layers' class registry, without tf.loadLayersModel's asynchronous path.
// Weights are read and decoded in common/model-weights.ts.
import * as tf from '@tensorflow/tfjs';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ModelFileError, errorMessage, type ModelFileLocation } from './errors.js';
import { readWeights, type WeightValues } from './model-weights.js';
import { isJsonObject, normalizeTopology, type JsonObject, type KerasFlavour } from './keras-topology.js';

export { ModelFileError } from './errors.js';

export type { WeightValues } from './model-weights.js';

export interface ModelFile {
  /** The file as given and resolved (a directory is taken to hold model.json). */
  path: string;
  /** keras2 (tfjs converter / model.save), keras3 (Keras 3 config, normalized by us). */
  flavour: KerasFlavour;
  /** Topology normalized to what tfjs-layers 4.22 deserializes ({class_name, config, ...}, Keras-2 style). */
  topology: Record<string, unknown>;
  /** JSON path of `topology` in the file (`modelTopology` or `modelTopology.model_config`), for messages. */
  topologyPath: string;
  /** Weights by name (the manifest's names), dequantized to float32 (int32 stays int32), when every shard is present. */
  weights?: WeightValues;
  /** Every shard the manifest lists, as it writes them. */
  shards: string[];
  /** Shards the manifest lists that are absent (weights is then undefined), as the manifest writes them. */
  missingShards: string[];
  /** The file's `generatedBy` and `convertedBy`, when it has them. */
  generatedBy?: string;
  convertedBy?: string;
}

/** Where a topology came from, for messages. */
export interface TopologyOrigin {
  file: string;
  /** JSON path of the topology in the file. */
  jsonPath?: string;
}

const MODEL_JSON = 'model.json';

// ---------------------------------------------------------------------------------------------
// model.json

/** Reads a TF.js Layers model.json and its weights. Throws ModelFileError. */
export function readLayersModelFile(file: string): ModelFile {
  let resolved = path.resolve(file);
  let text: string;
  try {
    if (statSync(resolved).isDirectory()) resolved = path.join(resolved, MODEL_JSON);
    text = readFileSync(resolved, 'utf8');
  } catch (err) {
    throw new ModelFileError(resolved, `cannot read the model file: ${errorMessage(err)}`, {}, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelFileError(resolved, `not JSON: ${errorMessage(err)}`, {}, { cause: err });
  }
  if (!isJsonObject(json)) throw new ModelFileError(resolved, 'not a TF.js model file: the JSON is not an object');
  const format = json.format;
  const raw = json.modelTopology;
  if (format === 'graph-model' || (format === undefined && isJsonObject(raw) && Array.isArray(raw.node))) {
    throw new ModelFileError(resolved, 'this is a TF.js graph model (format "graph-model"): only Layers models (format "layers-model", from tf.LayersModel.save or tensorflowjs_converter --output_format=tfjs_layers_model) can be trained', { jsonPath: 'format' });
  }
  if (format !== undefined && format !== 'layers-model') {
    throw new ModelFileError(resolved, `unknown format ${JSON.stringify(format)}: expected "layers-model"`, { jsonPath: 'format' });
  }
  if (raw === undefined || raw === null) throw new ModelFileError(resolved, 'the file has no modelTopology (a weights-only manifest?)', { jsonPath: 'modelTopology' });
  const generatedBy = typeof json.generatedBy === 'string' ? json.generatedBy : undefined;
  const convertedBy = typeof json.convertedBy === 'string' ? json.convertedBy : undefined;
  const normalized = normalizeTopology(raw, { file: resolved, jsonPath: 'modelTopology', keras3: generatedBy?.startsWith('keras v3') === true });
  const { weights, shards, missingShards } = readWeights(resolved, json.weightsManifest);
  const result: ModelFile = {
    path: resolved,
    flavour: normalized.flavour,
    topology: normalized.topology,
    topologyPath: normalized.jsonPath,
    shards,
    missingShards,
  };
  if (weights) result.weights = weights;
  if (generatedBy !== undefined) result.generatedBy = generatedBy;
  if (convertedBy !== undefined) result.convertedBy = convertedBy;
  return result;
}

// ---------------------------------------------------------------------------------------------
// Topology → tf.LayersModel

// tfjs-layers' own conversion of Keras' snake_case JSON to its camelCase config (its
// convertPythonicToTs is not exported): keys and string values are camelCased, except `name`
// values and the layer names that start the entries of inbound nodes and input/output lists.
const NAME_LISTS = new Set(['inboundNodes', 'outputLayers', 'inputLayers']);

function camel(s: string): string {
  return s.length <= 1 || !s.includes('_') ? s : s.replace(/_+(\w|$)/g, (_, c: string) => c.toUpperCase());
}

function toTfjsConfig(value: unknown, key?: string): unknown {
  if (typeof value === 'string') return camel(value);
  if (Array.isArray(value)) return value.map((item, i) => (i === 0 && typeof item === 'string' && key !== undefined && NAME_LISTS.has(key) ? item : toTfjsConfig(item, key)));
  if (isJsonObject(value)) {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === 'name' && typeof v === 'string') out[k] = v;
      else {
        const ck = camel(k);
        out[ck] = toTfjsConfig(v, ck);
      }
    }
    return out;
  }
  return value;
}

type Registry = Record<string, [new (...args: never[]) => unknown, (cls: unknown, config: JsonObject, customObjects?: JsonObject, fastWeightInit?: boolean) => unknown]>;

function registry(): Registry {
  return tf.serialization.SerializationMap.getMap().classNameMap as unknown as Registry;
}

function isLayerClass(entry: Registry[string] | undefined): boolean {
  return entry !== undefined && (entry[0] as unknown as { prototype: unknown }).prototype instanceof tf.layers.Layer;
}

const PYTHON_ONLY = new Set(['Lambda', 'TFOpLambda', 'SlicingOpLambda']);

/** Every layer class, activation and layer argument object must be one tfjs-layers has registered. */
function checkClasses(node: JsonObject, at: string, origin: TopologyOrigin): void {
  const reg = registry();
  const className = node.class_name as string;
  const config = node.config as JsonObject;
  const layerName = typeof config.name === 'string' ? config.name : typeof node.name === 'string' ? node.name : undefined;
  const where: ModelFileLocation = { className, jsonPath: at };
  if (layerName !== undefined) where.layer = layerName;
  if (!isLayerClass(reg[className])) {
    const module = typeof node.module === 'string' ? node.module : undefined;
    const builtIn = module === undefined ? undefined : module === 'keras' || module.startsWith('keras.');
    let hint: string;
    if (PYTHON_ONLY.has(className)) hint = `${className} layers hold Python code, which a model file cannot carry: rewrite it as a custom layer and register it with \`model: { module: ... }\``;
    else if (builtIn === true && module!.includes('.ops')) hint = `a Keras op (${module}) used directly in the model is not a layer tfjs-layers can load`;
    else if (builtIn === true) hint = `Keras has it (${module}), tfjs-layers 4.22 does not; a custom layer registered with \`model: { module: ... }\` can provide it`;
    else hint = `not a tfjs-layers 4.22 layer; if it is a custom layer, register it with \`model: { module: ... }\``;
    throw new ModelFileError(origin.file, `unsupported layer class ${className}: ${hint}`, where);
  }
  for (const [key, value] of Object.entries(config)) {
    if (key === 'layer' || key === 'layers' || key === 'backward_layer') continue;
    if ((key === 'activation' || key === 'recurrent_activation') && typeof value === 'string' && !(camel(value) in reg)) {
      throw new ModelFileError(origin.file, `unsupported activation ${JSON.stringify(value)} (${key})`, { ...where, jsonPath: `${at}.config.${key}` });
    }
    if (isJsonObject(value) && typeof value.class_name === 'string' && !(value.class_name in reg)) {
      throw new ModelFileError(origin.file, `unsupported ${key} class ${value.class_name}`, { ...where, jsonPath: `${at}.config.${key}` });
    }
  }
  const inner = config.layer;
  if (isJsonObject(inner)) checkClasses(inner, `${at}.config.layer`, origin);
  const layers = config.layers;
  if (Array.isArray(layers)) layers.forEach((l: JsonObject, i) => checkClasses(l, `${at}.config.layers[${i}]`, origin));
}

function deserialize(node: JsonObject): unknown {
  const ts = toTfjsConfig(node) as JsonObject;
  const reg = registry();
  const className = ts.className as string;
  const entry = reg[className];
  if (!entry) throw new Error(`unknown class ${className}`);
  const [cls, fromConfig] = entry;
  return fromConfig(cls, ts.config as JsonObject, {}, false);
}

/** After tfjs failed to build the model: the first layer that cannot be built on its own, if any. */
function culprit(node: JsonObject, at: string): { node: JsonObject; at: string; err: unknown } | undefined {
  const config = node.config as JsonObject;
  const layers = config.layers;
  if (Array.isArray(layers)) {
    for (const [i, layer] of (layers as JsonObject[]).entries()) {
      const found = culprit(layer, `${at}.config.layers[${i}]`);
      if (found) return found;
    }
    return undefined;
  }
  try {
    tf.tidy(() => {
      deserialize(node);
    });
  } catch (err) {
    return { node, at, err };
  }
  return undefined;
}

/**
 * Builds the model a topology describes, synchronously, without weights (its initializers
 * run). The topology may be raw (Keras 2 or 3, bare or wrapped) or already normalized.
 * Throws ModelFileError naming the layer, its class and the JSON path where it can.
 */
export function modelFromTopology(topology: Record<string, unknown>, origin: TopologyOrigin = { file: '(topology)' }): tf.LayersModel {
  const { topology: normalized, jsonPath } = normalizeTopology(topology, { file: origin.file, jsonPath: origin.jsonPath ?? '(topology)' });
  checkClasses(normalized, jsonPath, origin);
  let model: unknown;
  try {
    model = deserialize(normalized);
  } catch (err) {
    const found = culprit(normalized, jsonPath);
    const where: ModelFileLocation = { jsonPath: found?.at ?? jsonPath };
    const node = found?.node ?? normalized;
    const config = node.config as JsonObject;
    where.className = node.class_name as string;
    if (typeof config.name === 'string') where.layer = config.name;
    throw new ModelFileError(origin.file, `tfjs-layers cannot build it: ${errorMessage(found?.err ?? err)}`, where, { cause: found?.err ?? err });
  }
  if (!(model instanceof tf.LayersModel)) throw new ModelFileError(origin.file, 'the topology does not describe a model', { jsonPath });
  return model;
}

// ---------------------------------------------------------------------------------------------
// Weights → model

export interface WeightMatch {
  /** File weight name → the model variable it sets. */
  pairs: Array<{ name: string; variable: tf.LayerVariable }>;
  /** File weights no model variable takes. */
  unmatched: string[];
  /** Model variables (original names) no file weight sets. */
  unset: string[];
}

/**
 * The names a file may give a model variable, in the order tried: the name itself; without
 * the RNN cell scope (`lstm/lstm_cell/kernel`, TF 2.2+); without leading scopes
 * (`sequential/dense/kernel`, Keras 3's variable paths).
 */
function nameCandidates(name: string): string[] {
  const parts = name.split('/');
  const forms = [parts];
  if (parts.length >= 3) forms.push([...parts.slice(0, -2), parts[parts.length - 1]!]);
  const out: string[] = forms.map((p) => p.join('/'));
  for (const p of forms) for (let k = 1; k <= p.length - 2; k++) out.push(p.slice(k).join('/'));
  return out;
}

function snakeCase(name: string): string {
  return name
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

interface WalkLayer {
  getClassName(): string;
  weights: tf.LayerVariable[];
  layers?: WalkLayer[];
  forwardLayer?: WalkLayer;
  backwardLayer?: WalkLayer;
  cell?: WalkLayer;
  layer?: WalkLayer;
}

/**
 * Keras 3 `.keras` files (and the converter's output from them) name weights by where Keras
 * saves them, not by layer: `layers/dense_1/vars/0` is the first variable of the second Dense
 * layer of the model (layers are named after their class, numbered in the model's order).
 */
function kerasSavePaths(model: tf.LayersModel): Map<string, tf.LayerVariable> {
  const out = new Map<string, tf.LayerVariable>();
  const visitLayer = (layer: WalkLayer, p: string): void => {
    if (Array.isArray(layer.layers)) visitContainer(layer, `${p}/`);
    else if (layer.forwardLayer && layer.backwardLayer) {
      visitLayer(layer.forwardLayer, `${p}/forward_layer`);
      visitLayer(layer.backwardLayer, `${p}/backward_layer`);
    } else if (layer.cell) layer.cell.weights.forEach((v, i) => out.set(`${p}/cell/vars/${i}`, v));
    else if (layer.layer) visitLayer(layer.layer, `${p}/layer`);
    else layer.weights.forEach((v, i) => out.set(`${p}/vars/${i}`, v));
  };
  const visitContainer = (container: WalkLayer, prefix: string): void => {
    const used = new Map<string, number>();
    for (const layer of container.layers!) {
      const base = snakeCase(layer.getClassName());
      const n = used.get(base);
      used.set(base, n === undefined ? 0 : n + 1);
      visitLayer(layer, `${prefix}layers/${n === undefined ? base : `${base}_${n + 1}`}`);
    }
  };
  visitContainer(model, '');
  return out;
}

function kerasSavePath(name: string): string | undefined {
  if (!/(^|\/)vars\/\d+$/.test(name)) return undefined;
  return name
    .split('/')
    .map((s) => s.replace(/^_+/, ''))
    .map((s) => (s === 'layer_checkpoint_dependencies' ? 'layers' : s))
    .join('/');
}

/** Which file weight sets which model variable. */
export function matchWeights(model: tf.LayersModel, weights: WeightValues | undefined): WeightMatch {
  const variables = model.weights;
  const byName = new Map<string, tf.LayerVariable>();
  for (const v of variables) if (!byName.has(v.originalName)) byName.set(v.originalName, v);
  const claimed = new Set<tf.LayerVariable>();
  let savePaths: Map<string, tf.LayerVariable> | undefined;
  const pairs: WeightMatch['pairs'] = [];
  const unmatched: string[] = [];
  for (const name of weights?.keys() ?? []) {
    let found = nameCandidates(name)
      .map((c) => byName.get(c))
      .find((v) => v !== undefined && !claimed.has(v));
    const keras = found ? undefined : kerasSavePath(name);
    if (keras !== undefined) {
      savePaths ??= kerasSavePaths(model);
      const v = savePaths.get(keras);
      if (v && !claimed.has(v)) found = v;
    }
    if (found) {
      claimed.add(found);
      pairs.push({ name, variable: found });
    } else unmatched.push(name);
  }
  return { pairs, unmatched, unset: variables.filter((v) => !claimed.has(v)).map((v) => v.originalName) };
}

/**
 * Sets the model's variables from the file's weights, matched by name (see matchWeights).
 * Returns the names of the file's weights that no model variable takes. A weight whose shape
 * or dtype differs from its variable's throws ModelFileError. `weights` undefined sets nothing.
 */
export function setWeightsByName(model: tf.LayersModel, weights: ModelFile['weights'], source = '(weights)'): string[] {
  const { pairs, unmatched } = matchWeights(model, weights);
  for (const { name, variable } of pairs) {
    const w = weights!.get(name)!;
    const same = w.shape.length === variable.shape.length && w.shape.every((d, i) => d === variable.shape[i]);
    if (!same || w.dtype !== variable.dtype) {
      throw new ModelFileError(source, `weight "${name}" is ${w.dtype} [${w.shape.join(', ')}] in the file, but the model's variable ${variable.originalName} is ${variable.dtype} [${variable.shape.join(', ')}]`);
    }
  }
  for (const { name, variable } of pairs) {
    const w = weights!.get(name)!;
    const t = tf.tensor(w.values, w.shape, w.dtype);
    try {
      variable.write(t);
    } finally {
      t.dispose();
    }
  }
  return unmatched;
}
