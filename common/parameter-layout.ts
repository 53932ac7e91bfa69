// The parameter layout: every tensor of the model, its shape, its group and its place in the
// flat Float32Array that holds all parameters (and, with the same offsets, all gradients).
//
// Order: the trunk's tensors (group `shared`) first, then each task's head (group
// `task:<name>`) in task order. Each group is therefore one contiguous range, so the shared
// gradient of a unit and a head's parameters are plain subarrays, never copies.
//
// Shapes are inferred here, without tfjs, so the coordinator knows the layout before any
// compute backend loads; test/unit/model-export.test.ts checks them against tfjs-layers.
import { JobSpecError, type SpecIssue } from './errors.js';
import type { LayerSpec } from './job-schema.js';
import { headLayers, taskNames, trunkLayers, type JobSpec } from './job-spec.js';
import { Rng } from './random.js';

export interface TensorSpec {
  /** tfjs weight name, e.g. `trunk_0_conv2d/kernel` or `left/bias`. */
  readonly name: string;
  readonly shape: readonly number[];
  /** `shared` or `task:<name>`. */
  readonly group: string;
  readonly offset: number;
  readonly size: number;
  readonly init: 'glorotUniform' | 'zeros';
  readonly fanIn: number;
  readonly fanOut: number;
}

export interface GroupRange {
  readonly group: string;
  readonly offset: number;
  readonly size: number;
  /** Indices into `tensors`. */
  readonly tensors: readonly number[];
}

/** A layer of the model as built: its tfjs name, spec and the shapes around it. */
export interface PlacedLayer {
  readonly name: string;
  readonly spec: LayerSpec;
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  /** Indices into `tensors` of this layer's weights (kernel, then bias). */
  readonly tensors: readonly number[];
}

export interface ParameterLayout {
  readonly inputShape: readonly number[];
  readonly tensors: readonly TensorSpec[];
  readonly totalSize: number;
  readonly trunk: readonly PlacedLayer[];
  readonly heads: ReadonlyMap<string, readonly PlacedLayer[]>;
  readonly shared: GroupRange;
  readonly headGroups: ReadonlyMap<string, GroupRange>;
  readonly tasks: readonly string[];
  /** Shape of the shared representation the heads read. */
  readonly featureShape: readonly number[];
}

export const SHARED_GROUP = 'shared';
/** Name of the model's input layer in the exported model. */
export const INPUT_LAYER_NAME = 'input';
export function taskGroup(task: string): string {
  return `task:${task}`;
}

function pair(v: number | readonly [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

function outputExtent(size: number, kernel: number, stride: number, padding: 'valid' | 'same'): number {
  return padding === 'same' ? Math.ceil(size / stride) : Math.floor((size - kernel) / stride) + 1;
}

interface LayerShapeResult {
  output: number[];
  weights: Array<{ suffix: string; shape: number[]; init: TensorSpec['init']; fanIn: number; fanOut: number }>;
}

function layerShapes(spec: LayerSpec, input: readonly number[], where: string): LayerShapeResult {
  const fail = (message: string): never => {
    throw new JobSpecError('job', [{ path: where, message }]);
  };
  switch (spec.type) {
    case 'dense': {
      const inDim = input[input.length - 1] ?? fail('dense needs an input with at least one dimension');
      const units = spec.config.units;
      const weights: LayerShapeResult['weights'] = [{ suffix: 'kernel', shape: [inDim, units], init: 'glorotUniform', fanIn: inDim, fanOut: units }];
      if (spec.config.useBias) weights.push({ suffix: 'bias', shape: [units], init: 'zeros', fanIn: 0, fanOut: 0 });
      return { output: [...input.slice(0, -1), units], weights };
    }
    case 'conv2d': {
      if (input.length !== 3) fail(`conv2d expects an input of rank 3 (height, width, channels), got [${input.join(', ')}]`);
      const [h, w, c] = input as [number, number, number];
      const [kh, kw] = pair(spec.config.kernelSize);
      const [sh, sw] = pair(spec.config.strides);
      const oh = outputExtent(h, kh, sh, spec.config.padding);
      const ow = outputExtent(w, kw, sw, spec.config.padding);
      if (oh < 1 || ow < 1) fail(`kernel ${kh}x${kw} does not fit the ${h}x${w} input`);
      const f = spec.config.filters;
      const weights: LayerShapeResult['weights'] = [
        { suffix: 'kernel', shape: [kh, kw, c, f], init: 'glorotUniform', fanIn: kh * kw * c, fanOut: kh * kw * f },
      ];
      if (spec.config.useBias) weights.push({ suffix: 'bias', shape: [f], init: 'zeros', fanIn: 0, fanOut: 0 });
      return { output: [oh, ow, f], weights };
    }
    case 'maxPooling2d': {
      if (input.length !== 3) fail(`maxPooling2d expects an input of rank 3 (height, width, channels), got [${input.join(', ')}]`);
      const [h, w, c] = input as [number, number, number];
      const [ph, pw] = pair(spec.config.poolSize);
      const [sh, sw] = pair(spec.config.strides ?? spec.config.poolSize);
      const oh = outputExtent(h, ph, sh, spec.config.padding);
      const ow = outputExtent(w, pw, sw, spec.config.padding);
      if (oh < 1 || ow < 1) fail(`pool ${ph}x${pw} does not fit the ${h}x${w} input`);
      return { output: [oh, ow, c], weights: [] };
    }
    case 'flatten':
      if (input.length < 2) fail(`flatten needs an input of rank 2 or more, but [${input.join(', ')}] is already flat: remove this layer`);
      return { output: [input.reduce((a, b) => a * b, 1)], weights: [] };
    case 'dropout':
      return { output: [...input], weights: [] };
  }
}

/** Computes the layout of a job's model. Throws JobSpecError (with the layer's path) on shape errors. */
export function buildLayout(job: JobSpec, inputShape: readonly number[]): ParameterLayout {
  const tensors: TensorSpec[] = [];
  const issues: SpecIssue[] = [];
  let offset = 0;

  const place = (layers: LayerSpec[], input: readonly number[], group: string, names: (i: number, l: LayerSpec) => string, where: (i: number, l: LayerSpec) => string) => {
    const placed: PlacedLayer[] = [];
    let shape = input;
    layers.forEach((spec, i) => {
      const name = names(i, spec);
      const { output, weights } = layerShapes(spec, shape, where(i, spec));
      const indices: number[] = [];
      for (const w of weights) {
        const size = w.shape.reduce((a, b) => a * b, 1);
        indices.push(tensors.length);
        tensors.push({ name: `${name}/${w.suffix}`, shape: w.shape, group, offset, size, init: w.init, fanIn: w.fanIn, fanOut: w.fanOut });
        offset += size;
      }
      placed.push({ name, spec, inputShape: shape, outputShape: output, tensors: indices });
      shape = output;
    });
    return { placed, output: shape };
  };

  const trunk = place(trunkLayers(job), inputShape, SHARED_GROUP, (i, l) => `trunk_${i}_${l.type}`, (i, l) => `model.trunk[${i}].${l.type}`);
  const shared: GroupRange = { group: SHARED_GROUP, offset: 0, size: offset, tensors: tensors.map((_, i) => i) };
  const heads = new Map<string, PlacedLayer[]>();
  const headGroups = new Map<string, GroupRange>();
  const tasks = taskNames(job);
  for (const task of tasks) {
    const start = offset;
    const first = tensors.length;
    const layers = headLayers(job, task);
    const head = place(
      layers,
      trunk.output,
      taskGroup(task),
      (i, l) => (i === layers.length - 1 ? task : `${task}_${i}_${l.type}`),
      (i, l) => `model.heads.${task}[${i}].${l.type}`,
    );
    heads.set(task, head.placed);
    headGroups.set(task, { group: taskGroup(task), offset: start, size: offset - start, tensors: tensors.slice(first).map((_, i) => first + i) });
  }

  // tfjs needs every layer name (and the input's) to be unique in the model; a task's name
  // becomes its output layer's name, so some task names can collide with generated names.
  const seen = new Set<string>([INPUT_LAYER_NAME]);
  for (const layer of [...trunk.placed, ...[...heads.values()].flat()]) {
    if (seen.has(layer.name)) issues.push({ path: 'tasks', message: `layer name "${layer.name}" is used twice in the model: rename the task` });
    seen.add(layer.name);
  }
  if (issues.length > 0) throw new JobSpecError('job', issues);
  return { inputShape, tensors, totalSize: offset, trunk: trunk.placed, heads, shared, headGroups, tasks, featureShape: trunk.output };
}

/** The output shape of a task's head (per example). */
export function headOutputShape(layout: ParameterLayout, task: string): readonly number[] {
  const head = layout.heads.get(task);
  const last = head?.[head.length - 1];
  if (!last) throw new RangeError(`no head for task ${task}`);
  return last.outputShape;
}

/**
 * Initial parameters: Glorot-uniform kernels (tfjs' default), zero biases, each tensor from
 * its own seeded stream, so adding a task never changes the trunk's initial weights.
 */
export function initialParameters(layout: ParameterLayout, seed: number): Float32Array {
  const params = new Float32Array(layout.totalSize);
  for (const t of layout.tensors) {
    if (t.init === 'zeros') continue;
    const rng = Rng.fromKey(seed, 'init', t.name);
    const limit = Math.sqrt(6 / (t.fanIn + t.fanOut));
    const view = params.subarray(t.offset, t.offset + t.size);
    for (let i = 0; i < view.length; i++) view[i] = rng.uniform(-limit, limit);
  }
  return params;
}

/** The tensors (indices) a unit of `task` computes gradients for: the trunk's, then the head's. */
export function unitTensorIndices(layout: ParameterLayout, task: string): number[] {
  const head = layout.headGroups.get(task);
  if (!head) throw new RangeError(`no head for task ${task}`);
  return [...layout.shared.tensors, ...head.tensors];
}

/** Number of floats in a task unit's gradient payload (shared + head). */
export function unitGradientSize(layout: ParameterLayout, task: string): number {
  const head = layout.headGroups.get(task);
  if (!head) throw new RangeError(`no head for task ${task}`);
  return layout.shared.size + head.size;
}
