// A model of the user's (a TF.js Layers model file or a module's) as a job trains it: the
// "graph path". The coordinator composes the user's model with the job (the trunk cut at
// `trunkOutput` plus YAML heads, or the model's own outputs as the tasks; `trainable`), and
// sends the composition's config to every worker, which rebuilds the same tfjs-layers model
// from it (worker/graph-runner.ts). Both derive the parameter layout from that config alone,
// so they agree on it tensor by tensor.
//
// Which parameters are shared comes from the graph: a trainable weight that only one task's
// output depends on is that task's; one that two or more reach is shared; one that no task
// reaches, or of a layer that does not train, is frozen (sent with the weights, never as a
// gradient); BatchNormalization's moving statistics are state (updated at the coordinator from
// what the workers report, docs/design.md).
import * as tf from '@tensorflow/tfjs';
import { JobSpecError, type SpecIssue } from './errors.js';
import type { DeclaredShape } from './input-shapes.js';
import type { Activation } from './job-schema.js';
import { headLayers, taskNames, type JobSpec } from './job-spec.js';
import { nearestName } from './nearest-name.js';
import { deriveSeed } from './random.js';

/** What a worker needs to rebuild the model: the composition's tfjs-layers config (export form). */
export interface GraphSpec {
  /** `model.getConfig()` of the composed model (className / camelCase form). */
  readonly config: Record<string, unknown>;
  /** Each task's output layer in `config`. */
  readonly outputs: Readonly<Record<string, string>>;
  /**
   * When the user's model leaves input sizes unknown: its inputs as it declares them (null where
   * unknown), in input order; `config` has the sizes from the data (common/input-shapes.ts).
   */
  readonly declaredInputs?: readonly DeclaredShape[];
  /** With `declaredInputs`: the exported model declares them (its weights do not depend on the sizes filled in). */
  readonly exportDeclared?: boolean;
}

export interface GraphInput {
  readonly name: string;
  /** Per example. */
  readonly shape: readonly number[];
  readonly dtype: 'float32' | 'int32';
  /** The input as the user's model declares it, when it leaves sizes unknown (`shape` has the data's). */
  readonly declared?: DeclaredShape;
}

export interface GraphOutput {
  readonly layer: string;
  /** Per example. */
  readonly shape: readonly number[];
  /** The output layer's activation when it is the one its loss takes logits for (softmax, sigmoid); the training model leaves it to the loss. */
  readonly activation: Activation;
}

/** A row of the table `mtl validate` prints: one layer's weights and who shares them. */
export interface GraphLayerRow {
  readonly layer: string;
  readonly className: string;
  readonly weights: readonly string[];
  readonly parameters: number;
  /** shared, task:<t>, frozen, state, or a mix (`shared+state`). */
  readonly group: string;
  readonly tasks: readonly string[];
}

export interface GraphLayout {
  readonly spec: GraphSpec;
  readonly inputs: readonly GraphInput[];
  readonly outputs: ReadonlyMap<string, GraphOutput>;
  /** Top-level layers with their weights, in model order. */
  readonly rows: readonly GraphLayerRow[];
  /** The tasks each top-level layer feeds, in task order. */
  readonly layerTasks: ReadonlyMap<string, readonly string[]>;
  /** Top-level layer names whose weights two or more but not all tasks reach (aggregated with every task: docs/design.md). */
  readonly partiallyShared: readonly string[];
}

/** tfjs-layers classes whose randomness in training cannot be seeded per unit: refused, with what to do instead. */
const UNSEEDED_RANDOM: Readonly<Record<string, string>> = {
  GaussianNoise: 'its noise is not reproducible across workers',
  GaussianDropout: 'its noise is not reproducible across workers',
  AlphaDropout: 'its noise is not reproducible across workers',
  SpatialDropout1D: 'its masks are not reproducible across workers: use Dropout',
};
const RNN_CLASSES = new Set(['LSTM', 'GRU', 'SimpleRNN', 'RNN']);
const CONTAINER_CLASSES = new Set(['Model', 'Functional', 'Sequential']);
/** Layers whose `activation` setting is their output's last operation. */
const LOGIT_ACTIVATIONS = new Set(['softmax', 'sigmoid']);

type Config = Record<string, unknown>;
const isConfig = (v: unknown): v is Config => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(issues: SpecIssue[]): never {
  throw new JobSpecError('job', issues);
}

/** Builds a (functional) tfjs-layers model from a composed config. */
export function modelFromGraphConfig(config: Record<string, unknown>): tf.LayersModel {
  return tf.LayersModel.fromConfig(tf.LayersModel, structuredClone(config) as tf.serialization.ConfigDict) as tf.LayersModel;
}

/** A YAML head layer as a tfjs layer (injected: the YAML vocabulary lives with the model files). */
export type HeadLayerFactory = (spec: ReturnType<typeof headLayers>[number], name: string) => tf.layers.Layer;

/**
 * The user's model composed with the job: `trainable` applied to its layers, then either YAML
 * heads on the trunk (cut at `trunkOutput`, else the model's single output) or the model's
 * outputs the tasks name. `where` prefixes paths in errors (`model`).
 */
export function composeUserModel(base: tf.LayersModel, job: JobSpec, headLayer: HeadLayerFactory): { model: tf.LayersModel; spec: GraphSpec } {
  const tasks = taskNames(job);
  const names = base.layers.map((l) => l.name);
  const suggest = (name: string) => {
    const near = nearestName(name, names);
    return near !== undefined ? `; did you mean "${near}"?` : '';
  };
  const trainable = job.model.trainable ?? true;
  if (Array.isArray(trainable)) {
    const issues = trainable.flatMap((n, i) => (names.includes(n) ? [] : [{ path: `model.trainable[${i}]`, message: `the model has no layer "${n}"${suggest(n)}` }]));
    if (issues.length > 0) fail(issues);
    for (const layer of base.layers) layer.trainable = trainable.includes(layer.name);
  } else if (!trainable) {
    for (const layer of base.layers) layer.trainable = false;
  }

  const outputs: Record<string, string> = {};
  let outTensors: tf.SymbolicTensor[];
  if (job.model.heads) {
    let feature: tf.SymbolicTensor;
    if (job.model.trunkOutput !== undefined) {
      const cut = job.model.trunkOutput;
      if (!names.includes(cut)) fail([{ path: 'model.trunkOutput', message: `the model has no layer "${cut}"${suggest(cut)}` }]);
      const layer = base.getLayer(cut);
      if (layer.inboundNodes.length !== 1) fail([{ path: 'model.trunkOutput', message: `layer "${cut}" is applied ${layer.inboundNodes.length} times: its output is not one tensor` }]);
      const out = layer.output;
      if (Array.isArray(out)) fail([{ path: 'model.trunkOutput', message: `layer "${cut}" has ${out.length} outputs: cut at a layer with one` }]);
      feature = out;
    } else {
      if (base.outputs.length !== 1) {
        fail([{ path: 'model.trunkOutput', message: `the model has ${base.outputs.length} outputs (${base.outputNames.join(', ')}): name the layer the heads read` }]);
      }
      feature = base.outputs[0]!;
    }
    const taken = new Set(names);
    outTensors = tasks.map((task) => {
      const layers = headLayers(job, task);
      let h = feature;
      layers.forEach((spec, i) => {
        const name = i === layers.length - 1 ? task : `${task}_${i}_${spec.type}`;
        if (taken.has(name)) fail([{ path: `model.heads.${task}[${i}]`, message: `the model already has a layer named "${name}": rename the task` }]);
        taken.add(name);
        try {
          h = headLayer(spec, name).apply(h) as tf.SymbolicTensor;
        } catch (err) {
          fail([{ path: `model.heads.${task}[${i}].${spec.type}`, message: `cannot apply to the trunk's output [${feature.shape.slice(1).join(', ')}]: ${(err as Error).message}` }]);
        }
      });
      outputs[task] = task;
      return h;
    });
  } else {
    const issues: SpecIssue[] = [];
    outTensors = [];
    for (const task of tasks) {
      const name = job.tasks[task]!.output!;
      const index = base.outputNames.indexOf(name);
      if (index < 0) {
        const near = nearestName(name, base.outputNames);
        issues.push({ path: `tasks.${task}.output`, message: `the model has no output "${name}"${near !== undefined ? `; did you mean "${near}"?` : ''} (outputs: ${base.outputNames.join(', ')})` });
        continue;
      }
      if (Object.values(outputs).includes(name)) issues.push({ path: `tasks.${task}.output`, message: `output "${name}" is already another task's` });
      outputs[task] = name;
      outTensors.push(base.outputs[index]!);
    }
    if (issues.length > 0) fail(issues);
  }
  const model = tf.model({ inputs: base.inputs, outputs: outTensors, name: `${job.name}_model` });
  return { model, spec: { config: model.getConfig(), outputs } };
}

/** Calls `fn` on every layer config of a model config, nested models and wrapped layers included, with the effective `trainable`. */
function walkLayers(config: Config, fn: (layer: Config, path: string, trainable: boolean) => void, path = '', trainable = true): void {
  const layers = Array.isArray(config.layers) ? (config.layers as unknown[]) : [];
  for (const entry of layers) {
    if (!isConfig(entry)) continue;
    const inner = isConfig(entry.config) ? entry.config : {};
    const name = typeof inner.name === 'string' ? inner.name : typeof entry.name === 'string' ? entry.name : '?';
    const here = trainable && inner.trainable !== false;
    fn(entry, `${path}${name}`, here);
    if (CONTAINER_CLASSES.has(String(entry.className))) walkLayers(inner, fn, `${path}${name}/`, here);
    if (isConfig(inner.layer)) {
      const wrapped = inner.layer;
      const wrappedInner = isConfig(wrapped.config) ? wrapped.config : {};
      fn(wrapped, `${path}${name}/${typeof wrappedInner.name === 'string' ? wrappedInner.name : '?'}`, here && wrappedInner.trainable !== false);
    }
  }
}

/** Seeds every random initializer of the config from (seed, layer path, argument), so initial weights are a function of the job's seed. */
export function seedInitializers(config: Record<string, unknown>, seed: number): Record<string, unknown> {
  const out = structuredClone(config);
  const SEEDED = new Set(['VarianceScaling', 'GlorotUniform', 'GlorotNormal', 'HeNormal', 'HeUniform', 'LeCunNormal', 'LeCunUniform', 'RandomUniform', 'RandomNormal', 'TruncatedNormal', 'Orthogonal']);
  walkLayers(out, (layer, path) => {
    const visit = (cfg: Config, where: string) => {
      for (const [key, value] of Object.entries(cfg)) {
        if (key.endsWith('Initializer') && isConfig(value) && SEEDED.has(String(value.className)) && isConfig(value.config)) {
          value.config.seed = deriveSeed(seed, 'init', where, key);
        }
        // Bidirectional / RNN cells keep their layer's config one level down.
        if ((key === 'cell' || key === 'layer') && isConfig(value) && isConfig(value.config)) visit(value.config, `${where}/${key}`);
      }
    };
    if (isConfig(layer.config)) visit(layer.config, path);
  });
  return out;
}

/**
 * Why the model cannot train reproducibly, per layer: randomness that cannot be seeded per
 * unit (noise layers, RNN dropout). Returned as issues at `where`.
 */
function randomnessIssues(config: Config, where: string): SpecIssue[] {
  const issues: SpecIssue[] = [];
  walkLayers(config, (layer, path) => {
    const cls = String(layer.className);
    const cfg = isConfig(layer.config) ? layer.config : {};
    if (UNSEEDED_RANDOM[cls]) issues.push({ path: where, message: `layer "${path}" (${cls}): ${UNSEEDED_RANDOM[cls]}` });
    if (RNN_CLASSES.has(cls) && ((Number(cfg.dropout) || 0) > 0 || (Number(cfg.recurrentDropout) || 0) > 0)) {
      issues.push({ path: where, message: `layer "${path}" (${cls}): dropout/recurrentDropout inside the RNN is not reproducible across workers: set them to 0 and add a Dropout layer after it` });
    }
  });
  return issues;
}

/** The tasks each top-level layer of `model` feeds (walking inbound nodes back from each task's output). */
function taskReach(model: tf.LayersModel, outputs: Readonly<Record<string, string>>, tasks: readonly string[]): Map<string, Set<string>> {
  const reach = new Map<string, Set<string>>(model.layers.map((l) => [l.name, new Set<string>()]));
  for (const task of tasks) {
    const out = model.getLayer(outputs[task]!);
    const stack: tf.layers.Layer[] = [out];
    const seen = new Set<tf.layers.Layer>();
    while (stack.length > 0) {
      const layer = stack.pop()!;
      if (seen.has(layer)) continue;
      seen.add(layer);
      reach.get(layer.name)?.add(task);
      for (const node of layer.inboundNodes) for (const input of node.inboundLayers) stack.push(input);
    }
  }
  return reach;
}

/** Moving statistics of the BatchNormalization layers that train (effective trainable), by variable identity. */
function stateVariables(layer: tf.layers.Layer, trainable: boolean, out: Set<tf.LayerVariable>): void {
  const here = trainable && layer.trainable;
  const inner = layer as unknown as { layers?: tf.layers.Layer[]; layer?: tf.layers.Layer; forwardLayer?: tf.layers.Layer; backwardLayer?: tf.layers.Layer; movingMean?: tf.LayerVariable; movingVariance?: tf.LayerVariable };
  if (layer.getClassName() === 'BatchNormalization' && here) {
    if (inner.movingMean) out.add(inner.movingMean);
    if (inner.movingVariance) out.add(inner.movingVariance);
  }
  for (const child of [...(inner.layers ?? []), ...[inner.layer, inner.forwardLayer, inner.backwardLayer].filter((l): l is tf.layers.Layer => l !== undefined)]) {
    stateVariables(child, here, out);
  }
}

export interface GraphTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly group: string;
  readonly layer: string;
  readonly variable: tf.LayerVariable;
}

/**
 * Every weight of `model` with its group: shared / task:<t> / frozen / state (see the file
 * comment), in model order. The layout orders them by group.
 */
export function graphTensors(model: tf.LayersModel, spec: GraphSpec, tasks: readonly string[]): { tensors: GraphTensor[]; reach: Map<string, Set<string>> } {
  const reach = taskReach(model, spec.outputs, tasks);
  const trainable = new Set(model.trainableWeights);
  const state = new Set<tf.LayerVariable>();
  for (const layer of model.layers) stateVariables(layer, true, state);
  const tensors: GraphTensor[] = [];
  const used = new Map<string, number>();
  for (const layer of model.layers) {
    const tasksOf = [...(reach.get(layer.name) ?? [])].sort((a, b) => tasks.indexOf(a) - tasks.indexOf(b));
    const nested = layer instanceof tf.LayersModel;
    for (const v of layer.weights) {
      let name = nested ? `${layer.name}/${v.originalName}` : v.originalName;
      const n = used.get(name) ?? 0;
      used.set(name, n + 1);
      if (n > 0) name = `${name}#${n}`;
      let group: string;
      if (tasksOf.length === 0) group = 'frozen';
      else if (state.has(v)) group = 'state';
      else if (!trainable.has(v)) group = 'frozen';
      else group = tasksOf.length === 1 ? `task:${tasksOf[0]!}` : 'shared';
      tensors.push({ name, shape: [...v.shape] as number[], group, layer: layer.name, variable: v });
    }
  }
  return { tensors, reach };
}

function perExample(shape: readonly (number | null)[], what: string, where: string): number[] {
  const rest = shape.slice(1);
  if (rest.some((d) => d === null)) fail([{ path: where, message: `${what} has an unknown dimension ([${rest.map((d) => d ?? '?').join(', ')}]): give the model a fixed input shape` }]);
  return rest as number[];
}

/** Inputs, outputs (with the activation split off for the loss) and the table of a composed model. */
export function describeGraph(model: tf.LayersModel, spec: GraphSpec, tasks: readonly string[], found: ReturnType<typeof graphTensors> = graphTensors(model, spec, tasks)): GraphLayout {
  const where = 'model';
  const inputs = model.inputs.map((t, i) => {
    const name = model.inputNames[i] ?? `input_${i}`;
    const declared = spec.declaredInputs?.[i];
    return {
      name,
      shape: perExample(t.shape, `input "${name}"`, where),
      dtype: t.dtype === 'int32' ? ('int32' as const) : ('float32' as const),
      ...(declared ? { declared } : {}),
    };
  });
  const outputs = new Map<string, GraphOutput>();
  for (const task of tasks) {
    const layer = model.getLayer(spec.outputs[task]!);
    const shape = perExample(layer.outputShape as (number | null)[], `output "${layer.name}"`, `tasks.${task}`);
    outputs.set(task, { layer: layer.name, shape, activation: logitActivation(layer) ?? 'linear' });
  }
  const { tensors, reach } = found;
  const order = (set: ReadonlySet<string> | undefined) => [...(set ?? [])].sort((a, b) => tasks.indexOf(a) - tasks.indexOf(b));
  const layerTasks = new Map(model.layers.map((l) => [l.name, order(reach.get(l.name))]));
  const rows: GraphLayerRow[] = [];
  for (const layer of model.layers) {
    const own = tensors.filter((t) => t.layer === layer.name);
    if (own.length === 0) continue;
    const groups = [...new Set(own.map((t) => t.group))];
    rows.push({
      layer: layer.name,
      className: layer.getClassName(),
      weights: own.map((t) => t.name),
      parameters: own.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0),
      group: groups.join('+'),
      tasks: layerTasks.get(layer.name)!,
    });
  }
  const partiallyShared = rows.filter((r) => r.group.includes('shared') && r.tasks.length < tasks.length).map((r) => r.layer);
  return { spec, inputs, outputs, rows, layerTasks, partiallyShared };
}

/** softmax / sigmoid when a layer ends in one of them (the loss then takes the logits). */
function logitActivation(layer: tf.layers.Layer): Activation | undefined {
  if (layer.getClassName() === 'Softmax') return 'softmax';
  const a = layer.getConfig().activation;
  return typeof a === 'string' && LOGIT_ACTIVATIONS.has(a) ? (a as Activation) : undefined;
}

/**
 * The config the workers train: the export config with, for reproducibility and the loss,
 * Dropout → MtlSeededDropout (masks seeded per unit; `mtlShared` when two or more tasks reach
 * it), BatchNormalization of frozen layers → MtlFrozenBatchNormalization (inference mode, as
 * Keras runs a frozen BatchNormalization), and each task output's softmax/sigmoid left to the
 * loss. Refuses randomness it cannot seed.
 */
export function trainingConfig(graph: GraphLayout): Record<string, unknown> {
  const config = structuredClone(graph.spec.config);
  const issues = randomnessIssues(config, 'model');
  if (issues.length > 0) fail(issues);
  const sharedLayers = new Set([...graph.layerTasks].filter(([, t]) => t.length > 1).map(([l]) => l));
  const outputLayers = new Set([...graph.outputs.values()].filter((o) => o.activation !== 'linear').map((o) => o.layer));
  walkLayers(config, (layer, path, trainable) => {
    const cfg = isConfig(layer.config) ? layer.config : {};
    const top = path.split('/')[0]!;
    if (layer.className === 'Dropout') {
      layer.className = 'MtlSeededDropout';
      // Tasks sharing a batch share the masks of the layers they share (as the YAML path's trunk).
      cfg.mtlShared = sharedLayers.has(top);
    }
    if (layer.className === 'BatchNormalization' && !trainable) layer.className = 'MtlFrozenBatchNormalization';
    if (!path.includes('/') && outputLayers.has(path)) {
      if (layer.className === 'Softmax') {
        layer.className = 'Activation';
        layer.config = { name: cfg.name, trainable: cfg.trainable, activation: 'linear' };
      } else cfg.activation = 'linear';
    }
  });
  return config;
}
