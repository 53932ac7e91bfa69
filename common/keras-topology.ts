// Model topologies as Keras writes them, normalized to the form tfjs-layers 4.22 deserializes:
// the Keras 2 JSON (`{class_name, config}`, snake_case keys, inbound nodes as
// `[[layer, node, tensor, kwargs], ...]`). Keras 3 writes the same models differently:
//
//   - every object carries `module` and `registered_name` (and layers `build_config`);
//   - `dtype` is a policy object, `{class_name: 'DTypePolicy', config: {name: 'float32'}}`;
//   - InputLayer has `batch_shape` where Keras 2 had `batch_input_shape`;
//   - an inbound node is `{args: [...], kwargs: {...}}`, its tensors
//     `{class_name: '__keras_tensor__', config: {keras_history: [layer, node, tensor]}}`;
//   - a nested model has no built-in first node: Keras 3 counts its calls from 0 where Keras 2
//     and tfjs count from 1 (node 0 links the nested model's own inputs to its outputs). The
//     model's `output_layers` still count from 1 for a nested Functional (Keras 3 offsets them
//     when saving and takes the offset back when loading), but from 0 for a nested Sequential;
//   - `input_layers` / `output_layers` may be a single `[layer, node, tensor]` or a dict;
//   - Bidirectional writes its forward layer (named `forward_<name>`) and its backward layer;
//   - LeakyReLU's `alpha` is `negative_slope`; regularizers L1 and L2 are their own classes;
//     `hard_sigmoid` is relu6(x + 3) / 6, no longer tfjs' (and Keras 2's) 0.2·x + 0.5.
//
// Everything here is plain JSON work: no tfjs. Problems throw ModelFileError with the layer,
// its class and the JSON path.
import { ModelFileError, type ModelFileLocation } from './errors.js';

export type JsonObject = Record<string, unknown>;
export type KerasFlavour = 'keras2' | 'keras3';

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export interface NormalizedTopology {
  /** `{class_name, config}` of the model, Keras 2 style. */
  topology: JsonObject;
  flavour: KerasFlavour;
  /** JSON path of `topology` in the document it came from. */
  jsonPath: string;
}

export interface NormalizeOptions {
  /** The file, for messages. */
  file: string;
  /** JSON path of the topology in the file (`modelTopology`). */
  jsonPath: string;
  /** The file says Keras 3 made it (e.g. `generatedBy: "keras v3.4.1"`). */
  keras3?: boolean;
}

/** The container classes: their configs hold layers. */
export const MODEL_CLASSES: ReadonlySet<string> = new Set(['Sequential', 'Functional', 'Model']);

// Keys of a serialized object that only Keras reads back (or that tfjs does not know).
const META_KEYS = ['module', 'registered_name', 'build_config', 'compile_config', 'shared_object_id'];

// Keras names that tfjs-layers spells differently (initializers and layer aliases).
const CLASS_ALIASES: Record<string, string> = {
  LecunNormal: 'LeCunNormal',
  LecunUniform: 'LeCunUniform',
  IdentityInitializer: 'Identity',
  MaxPool1D: 'MaxPooling1D',
  MaxPool2D: 'MaxPooling2D',
  MaxPool3D: 'MaxPooling3D',
  AvgPool1D: 'AveragePooling1D',
  AvgPool2D: 'AveragePooling2D',
  AvgPool3D: 'AveragePooling3D',
  GlobalAvgPool1D: 'GlobalAveragePooling1D',
  GlobalAvgPool2D: 'GlobalAveragePooling2D',
  GlobalMaxPool1D: 'GlobalMaxPooling1D',
  GlobalMaxPool2D: 'GlobalMaxPooling2D',
  Convolution1D: 'Conv1D',
  Convolution2D: 'Conv2D',
  Convolution3D: 'Conv3D',
  Convolution2DTranspose: 'Conv2DTranspose',
  SeparableConvolution2D: 'SeparableConv2D',
  DepthwiseConvolution2D: 'DepthwiseConv2D',
};

// Float dtype policies: the variables are float32 (mixed precision keeps float32 variables).
const FLOAT_POLICIES = new Set(['float32', 'float16', 'bfloat16', 'mixed_float16', 'mixed_bfloat16', 'float64']);

interface Ctx {
  file: string;
  keras3: boolean;
}

interface LayerAt {
  path: string;
  layer?: string;
  className?: string;
}

function fail(ctx: Ctx, at: LayerAt, problem: string): never {
  const location: ModelFileLocation = { jsonPath: at.path };
  if (at.layer !== undefined) location.layer = at.layer;
  if (at.className !== undefined) location.className = at.className;
  throw new ModelFileError(ctx.file, problem, location);
}

/**
 * Whether a (raw) topology uses a serialization form only Keras 3 writes. (`module` and
 * `registered_name` are no such sign: tf.keras 2.13+ writes them too.)
 */
export function hasKeras3Markers(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasKeras3Markers);
  if (!isJsonObject(value)) return false;
  if ('batch_shape' in value) return true;
  if (value.class_name === '__keras_tensor__' || value.class_name === 'DTypePolicy') return true;
  if (Array.isArray(value.inbound_nodes) && value.inbound_nodes.some(isJsonObject)) return true;
  return Object.values(value).some(hasKeras3Markers);
}

/**
 * Normalizes a model topology: a bare `{class_name, config}` or the wrapped form
 * `{keras_version, backend, model_config: {...}}`. The input is not changed.
 */
export function normalizeTopology(raw: unknown, options: NormalizeOptions): NormalizedTopology {
  const top: LayerAt = { path: options.jsonPath };
  const ctx: Ctx = { file: options.file, keras3: options.keras3 === true };
  if (!isJsonObject(raw)) fail(ctx, top, 'the model topology is not a JSON object');
  let model: unknown = raw;
  let jsonPath = options.jsonPath;
  if ('model_config' in raw) {
    jsonPath = `${jsonPath}.model_config`;
    model = typeof raw.model_config === 'string' ? parseJson(raw.model_config, ctx, jsonPath) : raw.model_config;
    if (typeof raw.keras_version === 'string' && raw.keras_version.startsWith('3')) ctx.keras3 = true;
  }
  if (!isJsonObject(model)) fail(ctx, { path: jsonPath }, 'the model config is not a JSON object');
  const topology = structuredClone(model);
  if (hasKeras3Markers(topology)) ctx.keras3 = true;
  const className = aliasClass(topology.class_name);
  if (className === undefined || !MODEL_CLASSES.has(className)) {
    fail(ctx, { path: jsonPath, className: typeof topology.class_name === 'string' ? topology.class_name : undefined }, `the top-level class must be Sequential, Functional or Model`);
  }
  normalizeLayer(topology, jsonPath, ctx);
  return { topology, flavour: ctx.keras3 ? 'keras3' : 'keras2', jsonPath };
}

function parseJson(text: string, ctx: Ctx, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    return fail(ctx, { path }, `invalid JSON: ${(err as Error).message}`);
  }
}

function aliasClass(name: unknown): string | undefined {
  if (typeof name !== 'string') return undefined;
  return CLASS_ALIASES[name] ?? name;
}

function layerNameOf(obj: JsonObject): string | undefined {
  const config = obj.config;
  if (isJsonObject(config) && typeof config.name === 'string') return config.name;
  return typeof obj.name === 'string' ? obj.name : undefined;
}

/** Normalizes one layer object `{class_name, config, ...}` in place, recursing into models and wrappers. */
function normalizeLayer(obj: JsonObject, path: string, ctx: Ctx): void {
  const at: LayerAt = { path, layer: layerNameOf(obj) };
  if (typeof obj.class_name !== 'string') fail(ctx, at, 'the layer has no class_name');
  at.className = obj.class_name;
  obj.class_name = aliasClass(obj.class_name);
  const className = obj.class_name as string;
  // Keep `module` and `registered_name` on layers (tfjs ignores them; messages about classes
  // tfjs lacks use them), drop what only Keras reads back.
  const buildConfig = obj.build_config;
  for (const key of META_KEYS) if (key !== 'module' && key !== 'registered_name') delete obj[key];
  if (className === 'Sequential' && Array.isArray(obj.config)) obj.config = { layers: obj.config };
  const config = obj.config;
  if (!isJsonObject(config)) fail(ctx, at, 'the layer has no config object');
  normalizeLayerConfig(config, className, at, ctx);
  if (className === 'Sequential') normalizeSequential(config, buildConfig, at, ctx);
  else if (className === 'Functional' || className === 'Model') normalizeFunctional(config, at, ctx);
  else if (className === 'Bidirectional' || className === 'TimeDistributed') normalizeWrapper(config, className, at, ctx);
}

function normalizeLayerConfig(config: JsonObject, className: string, at: LayerAt, ctx: Ctx): void {
  const cpath = `${at.path}.config`;
  if ('dtype' in config) config.dtype = normalizeDtype(config.dtype, { ...at, path: `${cpath}.dtype` }, ctx);
  if ('batch_shape' in config) {
    if (config.batch_input_shape === undefined) config.batch_input_shape = config.batch_shape;
    delete config.batch_shape;
  }
  for (const key of ['activation', 'recurrent_activation']) {
    if (key in config && config[key] !== null) config[key] = normalizeActivation(config[key], { ...at, path: `${cpath}.${key}` }, ctx);
  }
  for (const [key, value] of Object.entries(config)) {
    if (key === 'layer' || key === 'backward_layer' || key === 'layers' || key === 'dtype') continue;
    if (isJsonObject(value) && typeof value.class_name === 'string') config[key] = normalizeObject(value, { ...at, path: `${cpath}.${key}` }, ctx);
  }
  const unsupported = (problem: string) => fail(ctx, at, `${problem}, which tfjs-layers 4.22 does not support`);
  switch (className) {
    case 'InputLayer':
      if (config.ragged === true) unsupported('a ragged input');
      if (config.sparse === true) unsupported('a sparse input');
      delete config.ragged;
      delete config.optional;
      break;
    case 'LeakyReLU':
      if ('negative_slope' in config) {
        if (config.alpha === undefined) config.alpha = config.negative_slope;
        delete config.negative_slope;
      }
      break;
    case 'Conv1D':
    case 'Conv2D':
    case 'Conv3D':
      if (typeof config.groups === 'number' && config.groups > 1) unsupported(`grouped convolution (groups: ${config.groups})`);
      break;
    case 'Dense':
    case 'Embedding':
      if (typeof config.lora_rank === 'number' && config.lora_rank > 0) unsupported(`LoRA weights (lora_rank: ${config.lora_rank})`);
      break;
    case 'GlobalAveragePooling1D':
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling1D':
    case 'GlobalMaxPooling2D':
      if (config.keepdims === true) unsupported('keepdims: true');
      delete config.keepdims;
      break;
    case 'LayerNormalization':
      if (config.rms_scaling === true) unsupported('rms_scaling: true');
      break;
  }
}

/** A dtype policy (`{class_name: 'DTypePolicy', config: {name}}`) or a dtype name, as the dtype tfjs creates the variables with. */
function normalizeDtype(value: unknown, at: LayerAt, ctx: Ctx): unknown {
  let name = value;
  if (isJsonObject(value)) {
    const cls = value.class_name;
    if (typeof cls === 'string' && cls.startsWith('Quantized')) fail(ctx, at, `a quantized dtype policy (${cls}), which tfjs-layers 4.22 does not support`);
    const config = value.config;
    name = isJsonObject(config) ? config.name : undefined;
    if (typeof name !== 'string') fail(ctx, at, 'the dtype policy has no name');
  }
  if (typeof name !== 'string') return value;
  if (FLOAT_POLICIES.has(name)) return 'float32';
  if (name.includes('int8') || name.includes('int4') || name.includes('float8')) fail(ctx, at, `a quantized dtype policy (${name}), which tfjs-layers 4.22 does not support`);
  return name;
}

function normalizeActivation(value: unknown, at: LayerAt, ctx: Ctx): unknown {
  let name = value;
  if (isJsonObject(value)) {
    // Keras 3: `{module: 'keras.activations', class_name: 'function', config: 'relu', ...}`;
    // a custom function has a module of its own and a registered name.
    const module = typeof value.module === 'string' ? value.module : '';
    if (value.class_name === 'function' && typeof value.config === 'string' && (module === '' || module === 'keras' || module.startsWith('keras.'))) {
      name = value.config;
    } else {
      const what = typeof value.registered_name === 'string' ? value.registered_name : typeof value.config === 'string' ? value.config : String(value.class_name);
      fail(ctx, at, `the activation ${JSON.stringify(what)} is a custom function, which a model file cannot carry into tfjs-layers`);
    }
  }
  if (typeof name !== 'string') return value;
  if (name === 'silu') return 'swish';
  if (name === 'hard_sigmoid' && ctx.keras3) {
    fail(ctx, at, "Keras 3's hard_sigmoid is relu6(x + 3) / 6, tfjs-layers' is 0.2·x + 0.5 clipped: the model would compute something else");
  }
  return name;
}

/** Initializers, regularizers, constraints: drop Keras' bookkeeping, rename what tfjs names differently. */
function normalizeObject(obj: JsonObject, at: LayerAt, ctx: Ctx): JsonObject {
  for (const key of META_KEYS) delete obj[key];
  const className = aliasClass(obj.class_name)!;
  obj.class_name = className;
  const config = isJsonObject(obj.config) ? obj.config : (obj.config = {});
  if (className === 'DTypePolicy') fail(ctx, at, 'a dtype policy where a layer argument was expected');
  if (className === 'L1' || className === 'L2') {
    const l1 = className === 'L1' ? (config.l1 ?? 0.01) : 0;
    const l2 = className === 'L2' ? (config.l2 ?? 0.01) : 0;
    return { class_name: 'L1L2', config: { l1, l2 } };
  }
  if ((className === 'VarianceScaling' || className.startsWith('Glorot') || className.startsWith('He') || className.startsWith('LeCun')) && typeof config.distribution === 'string') {
    // tfjs draws 'normal' from a truncated normal (as Keras 2 did); 'truncatedNormal' would fall to its uniform branch.
    if (config.distribution === 'truncated_normal' || config.distribution === 'untruncated_normal') config.distribution = 'normal';
  }
  for (const [key, value] of Object.entries(config)) {
    if (isJsonObject(value) && typeof value.class_name === 'string') config[key] = normalizeObject(value, { ...at, path: `${at.path}.config.${key}` }, ctx);
  }
  return obj;
}

function normalizeSequential(config: JsonObject, buildConfig: unknown, at: LayerAt, ctx: Ctx): void {
  const layers = config.layers;
  if (!Array.isArray(layers)) fail(ctx, at, 'the Sequential config has no layers list');
  layers.forEach((layer, i) => {
    if (!isJsonObject(layer)) fail(ctx, { path: `${at.path}.config.layers[${i}]` }, 'the layer is not a JSON object');
    normalizeLayer(layer, `${at.path}.config.layers[${i}]`, ctx);
  });
  // A Sequential model built without an Input: its first layer learns the input shape from
  // the model's build shape (Keras 3: build_input_shape, or the build_config's input_shape).
  const first = layers[0] as JsonObject | undefined;
  const firstConfig = first?.config as JsonObject | undefined;
  if (first && firstConfig && first.class_name !== 'InputLayer' && firstConfig.batch_input_shape == null && firstConfig.input_shape == null) {
    const shape = config.build_input_shape ?? (isJsonObject(buildConfig) ? buildConfig.input_shape : undefined);
    if (Array.isArray(shape)) firstConfig.batch_input_shape = shape;
  }
}

interface TensorRef {
  layer: string;
  node: number;
  tensor: number;
}

function normalizeFunctional(config: JsonObject, at: LayerAt, ctx: Ctx): void {
  const layers = config.layers;
  if (!Array.isArray(layers)) fail(ctx, at, 'the model config has no layers list');
  const classes = new Map<string, string>();
  layers.forEach((layer, i) => {
    const path = `${at.path}.config.layers[${i}]`;
    if (!isJsonObject(layer)) fail(ctx, { path }, 'the layer is not a JSON object');
    const name = layerNameOf(layer);
    if (name === undefined) fail(ctx, { path, className: typeof layer.class_name === 'string' ? layer.class_name : undefined }, 'the layer has no name');
    if (classes.has(name)) fail(ctx, { path, layer: name }, `two layers of the model "${String(config.name)}" are named "${name}"`);
    classes.set(name, aliasClass(layer.class_name) ?? '');
    if (typeof layer.name !== 'string') layer.name = name;
  });
  const isModel = (name: string) => MODEL_CLASSES.has(classes.get(name) ?? '');
  // Keras 3 nodes ({args, kwargs}) count a nested model's calls from 0; normalized, they are
  // lists. So a second normalization of the same topology shifts nothing again.
  const keras3Nodes = layers.some((layer: JsonObject) => Array.isArray(layer.inbound_nodes) && layer.inbound_nodes.some(isJsonObject));
  layers.forEach((layer: JsonObject, i) => {
    const path = `${at.path}.config.layers[${i}]`;
    normalizeLayer(layer, path, ctx);
    const layerAt = { path, layer: layer.name as string, className: layer.class_name as string };
    const nodes = layer.inbound_nodes ?? [];
    if (!Array.isArray(nodes)) fail(ctx, layerAt, 'inbound_nodes is not a list');
    layer.inbound_nodes = nodes.map((node, n) => normalizeNode(node, isModel, { ...layerAt, path: `${path}.inbound_nodes[${n}]` }, ctx));
  });
  for (const key of ['input_layers', 'output_layers'] as const) {
    const refs = flattenRefs(config[key], { ...at, path: `${at.path}.config.${key}` }, ctx);
    // Keras 3 offsets a nested Functional's node in these lists, not a nested Sequential's.
    config[key] = refs.map((r) => [r.layer, r.node + (keras3Nodes && classes.get(r.layer) === 'Sequential' ? 1 : 0), r.tensor]);
  }
  checkConnections(config, classes, at, ctx);
}

/** One inbound node, as `[[layer, node, tensor, kwargs], ...]`. */
function normalizeNode(node: unknown, isModel: (name: string) => boolean, at: LayerAt, ctx: Ctx): unknown[] {
  if (Array.isArray(node)) {
    // Keras 2. A flattened single entry `[layer, node, tensor, kwargs]` (old converters) is wrapped.
    const entries = node.length > 0 && typeof node[0] === 'string' ? [node] : node;
    return entries.map((entry: unknown, i) => {
      const ref = asRef(entry, { ...at, path: `${at.path}[${i}]` }, ctx);
      const kwargs = Array.isArray(entry) && isJsonObject(entry[3]) ? entry[3] : {};
      return [ref.layer, ref.node, ref.tensor, kwargs];
    });
  }
  if (!isJsonObject(node)) fail(ctx, at, 'an inbound node is neither a list nor {args, kwargs}');
  // Keras 3: the call's arguments, with its tensors in place.
  const tensors: TensorRef[] = [];
  collectTensors(node.args ?? [], tensors, { ...at, path: `${at.path}.args` }, ctx);
  const kwargs: JsonObject = {};
  const rawKwargs = node.kwargs ?? {};
  if (!isJsonObject(rawKwargs)) fail(ctx, at, 'the inbound node kwargs is not an object');
  for (const [key, value] of Object.entries(rawKwargs)) {
    if (value === null || value === undefined) continue;
    if (containsTensor(value)) fail(ctx, { ...at, path: `${at.path}.kwargs.${key}` }, `the layer is called with a tensor as \`${key}\`, which tfjs-layers cannot restore from a model file`);
    kwargs[key] = value;
  }
  if (tensors.length === 0) fail(ctx, at, 'an inbound node has no input tensor');
  return tensors.map((t) => [t.layer, t.node + (isModel(t.layer) ? 1 : 0), t.tensor, kwargs]);
}

function isKerasTensor(v: unknown): v is JsonObject {
  return isJsonObject(v) && v.class_name === '__keras_tensor__';
}

function containsTensor(v: unknown): boolean {
  if (isKerasTensor(v)) return true;
  if (Array.isArray(v)) return v.some(containsTensor);
  return isJsonObject(v) && Object.values(v).some(containsTensor);
}

function collectTensors(value: unknown, out: TensorRef[], at: LayerAt, ctx: Ctx): void {
  if (isKerasTensor(value)) {
    const config = value.config;
    out.push(asRef(isJsonObject(config) ? config.keras_history : undefined, { ...at, path: `${at.path}.config.keras_history` }, ctx));
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => collectTensors(v, out, { ...at, path: `${at.path}[${i}]` }, ctx));
  } else if (isJsonObject(value) && value.class_name === '__tuple__' && isJsonObject(value.config)) {
    collectTensors(value.config.value, out, at, ctx);
  } else if (containsTensor(value)) {
    fail(ctx, at, 'the layer is called with a dict of tensors, which tfjs-layers cannot restore from a model file');
  } else if (value !== null) {
    fail(ctx, at, `the layer is called with a positional argument that is not a tensor (${JSON.stringify(value)}), which tfjs-layers cannot restore from a model file`);
  }
}

function asRef(value: unknown, at: LayerAt, ctx: Ctx): TensorRef {
  if (!Array.isArray(value) || typeof value[0] !== 'string' || !Number.isInteger(value[1]) || !Number.isInteger(value[2])) {
    fail(ctx, at, `expected [layer name, node index, tensor index], got ${JSON.stringify(value)}`);
  }
  return { layer: value[0], node: value[1] as number, tensor: value[2] as number };
}

/** `input_layers` / `output_layers`: a list of refs, one ref, or (Keras 3) a dict of them (flattened in key order, as Keras does). */
function flattenRefs(value: unknown, at: LayerAt, ctx: Ctx): TensorRef[] {
  if (Array.isArray(value) && typeof value[0] === 'string') return [asRef(value, at, ctx)];
  if (Array.isArray(value)) return value.flatMap((v, i) => flattenRefs(v, { ...at, path: `${at.path}[${i}]` }, ctx));
  if (isJsonObject(value)) {
    return Object.keys(value)
      .sort()
      .flatMap((k) => flattenRefs(value[k], { ...at, path: `${at.path}.${k}` }, ctx));
  }
  return fail(ctx, at, `expected a list of [layer name, node index, tensor index], got ${JSON.stringify(value)}`);
}

/**
 * Every inbound node and model input/output must name a layer of this model and a node that
 * will exist; and the layers must be callable in some order (no cycle). tfjs-layers' loader
 * would otherwise loop forever on a node it can never process.
 */
function checkConnections(config: JsonObject, classes: Map<string, string>, at: LayerAt, ctx: Ctx): void {
  const layers = config.layers as JsonObject[];
  // Nodes each layer has before any call: an InputLayer its own, a nested model its built-in one.
  const made = new Map<string, number>();
  for (const [name, cls] of classes) made.set(name, cls === 'InputLayer' || MODEL_CLASSES.has(cls) ? 1 : 0);
  const pending = layers.map((layer, i) => ({
    layer,
    i,
    nodes: (layer.inbound_nodes as unknown[][][]).map((node, n) => ({ node, n })),
  }));
  for (const p of pending) {
    for (const { node, n } of p.nodes) {
      for (const [e, entry] of node.entries()) {
        const target = entry[0] as string;
        if (!classes.has(target)) {
          fail(ctx, { path: `${at.path}.config.layers[${p.i}].inbound_nodes[${n}][${e}]`, layer: p.layer.name as string, className: p.layer.class_name as string }, `the layer's input comes from a layer "${target}" that this model does not have`);
        }
      }
    }
  }
  let progress = true;
  while (progress) {
    progress = false;
    for (const p of pending) {
      while (p.nodes.length > 0 && p.nodes[0]!.node.every((entry) => (made.get(entry[0] as string) ?? 0) > (entry[1] as number))) {
        p.nodes.shift();
        made.set(p.layer.name as string, (made.get(p.layer.name as string) ?? 0) + 1);
        progress = true;
      }
    }
  }
  const stuck = pending.find((p) => p.nodes.length > 0);
  if (stuck) {
    const { node, n } = stuck.nodes[0]!;
    const missing = node.find((entry) => (made.get(entry[0] as string) ?? 0) <= (entry[1] as number))!;
    fail(
      ctx,
      { path: `${at.path}.config.layers[${stuck.i}].inbound_nodes[${n}]`, layer: stuck.layer.name as string, className: stuck.layer.class_name as string },
      `the layer's input is node ${String(missing[1])} of layer "${String(missing[0])}", which never exists (a wrong node index, or a cycle)`,
    );
  }
  for (const key of ['input_layers', 'output_layers']) {
    (config[key] as unknown[][]).forEach((ref, i) => {
      const name = ref[0] as string;
      if (!classes.has(name)) fail(ctx, { path: `${at.path}.config.${key}[${i}]` }, `names a layer "${name}" that this model does not have`);
      if ((made.get(name) ?? 0) <= (ref[1] as number)) fail(ctx, { path: `${at.path}.config.${key}[${i}]`, layer: name, className: classes.get(name) }, `names node ${String(ref[1])} of the layer, which never exists`);
    });
  }
}

function normalizeWrapper(config: JsonObject, className: string, at: LayerAt, ctx: Ctx): void {
  const inner = config.layer;
  if (!isJsonObject(inner)) fail(ctx, at, `the ${className} wrapper has no layer`);
  normalizeLayer(inner, `${at.path}.config.layer`, ctx);
  if (className !== 'Bidirectional') return;
  // tfjs derives both directions from `layer` and names them forward_<name> / backward_<name>.
  // Keras 3 writes the forward layer itself (already named forward_<name>) and the backward one.
  const innerConfig = inner.config as JsonObject;
  if (ctx.keras3 && typeof innerConfig.name === 'string' && innerConfig.name.startsWith('forward_')) innerConfig.name = innerConfig.name.slice('forward_'.length);
  const backward = config.backward_layer;
  if (isJsonObject(backward)) {
    normalizeLayer(backward, `${at.path}.config.backward_layer`, ctx);
    const b = backward.config as JsonObject;
    const differs = ['units', 'filters', 'activation', 'recurrent_activation', 'use_bias', 'return_sequences', 'return_state'].filter((k) => JSON.stringify(b[k]) !== JSON.stringify(innerConfig[k]));
    if (backward.class_name !== inner.class_name || differs.length > 0) {
      fail(ctx, at, `a backward layer unlike its forward layer (${backward.class_name !== inner.class_name ? `class ${String(backward.class_name)}` : differs.join(', ')}), which tfjs-layers 4.22 does not support`);
    }
  }
  delete config.backward_layer;
}
