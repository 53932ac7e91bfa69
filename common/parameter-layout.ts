// The parameter layout: every tensor of the model, its shape, its group and its place in the
// flat Float32Array that holds all parameters (and, with the same offsets, all gradients).
//
// Order: the tensors of group `shared` (trunk, shared experts and gates) first, then each
// task's (group `task:<name>`: its own experts and gate where only it uses them, then its
// head) in task order. Each group is therefore one contiguous range, so the shared gradient
// of a unit and a head's parameters are plain subarrays, never copies.
//
// Ownership of mixture-of-experts tensors (docs/design.md): a tensor is task t's when only task t's
// output depends on it, shared otherwise. With L levels (0-based l): shared experts and the
// shared gates (l < L−1) are shared; task t's experts at level l are shared while a shared gate
// mixes them (l < L−1), else t's; task t's gate at level l feeds t's experts at level l+1,
// which a shared gate mixes when l+1 < L−1: shared for l < L−2, else t's.
// test/unit/experts.test.ts checks this against tfjs gradients.
//
// Shapes are inferred here, without tfjs, so the coordinator knows the layout before any
// compute backend loads; test/unit/parameter-layout.test.ts checks them against tfjs-layers.
import { JobSpecError, type SpecIssue } from './errors.js';
import { generalPathOnly, layerSpec, type LayerSpec } from './job-schema.js';
import { adapterLayers, expertLayers, headLayers, taskNames, trunkLayers, type JobSpec } from './job-spec.js';
import type { GraphLayout } from './model-graph.js';
import { Rng } from './random.js';

export interface TensorSpec {
  /** tfjs weight name, e.g. `trunk_0_conv2d/kernel` or `left/bias`. */
  readonly name: string;
  readonly shape: readonly number[];
  /** `shared`, `task:<name>`, `frozen` or `state` (models of the user's: common/model-graph.ts). */
  readonly group: string;
  readonly offset: number;
  readonly size: number;
  /** `model`: the initial value comes from the user's model (file or seeded initializers). */
  readonly init: 'glorotUniform' | 'zeros' | 'model';
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

/** One level of a mixture of experts: each expert is a stack of layers; gates are one dense softmax layer. */
export interface ExpertLevel {
  readonly shared: readonly (readonly PlacedLayer[])[];
  readonly perTask: ReadonlyMap<string, readonly (readonly PlacedLayer[])[]>;
  /** Task t's gate mixes [shared experts..., t's experts...]. */
  readonly gates: ReadonlyMap<string, PlacedLayer>;
  /** Levels before the last (ple): mixes [shared..., every task's experts in task order...] into the next level's shared input. */
  readonly sharedGate?: PlacedLayer;
}

export interface ExpertsLayout {
  readonly type: 'mmoe' | 'cgc' | 'ple';
  readonly levels: readonly ExpertLevel[];
  /** Shape of one expert's output (= of every mixture). */
  readonly outputShape: readonly number[];
}

/** Shared parameters reached by one set of tasks: a contiguous range inside `ParameterLayout.shared`. */
export interface SharedGroup {
  /** In task order; every task for the first group. */
  readonly tasks: readonly string[];
  /** Absolute, like GroupRange's. */
  readonly offset: number;
  readonly size: number;
}

export interface ParameterLayout {
  /** The model's input shape for tasks without an adapter (their data's); with named inputs, all of them side by side. */
  readonly inputShape: readonly number[];
  /** Each task's input shape: its data's (its adapter reads it) or the trunk's. */
  readonly taskInputShapes: ReadonlyMap<string, readonly number[]>;
  /** Named inputs (shared towers over consecutive slices of the input), merged by concatenation into the trunk's input. */
  readonly namedInputs: ReadonlyArray<{ readonly name: string; readonly size: number; readonly tower: readonly PlacedLayer[] }>;
  /** Per-task input adapters (task-owned), for tasks whose data has its own feature space. */
  readonly adapters: ReadonlyMap<string, readonly PlacedLayer[]>;
  readonly tensors: readonly TensorSpec[];
  readonly totalSize: number;
  readonly trunk: readonly PlacedLayer[];
  /** Mixture-of-experts layers between trunk and heads (mmoe, cgc, ple); absent for hard parameter sharing. */
  readonly experts?: ExpertsLayout;
  readonly heads: ReadonlyMap<string, readonly PlacedLayer[]>;
  readonly shared: GroupRange;
  /**
   * Models of the user's whose layers some but not all tasks reach: `shared` cut by task set,
   * every task's first (possibly empty), then each smaller set in canonical order. Only the
   * tasks of a group take part in aggregating it. Absent: all of `shared` is every task's.
   */
  readonly sharedGroups?: readonly SharedGroup[];
  readonly headGroups: ReadonlyMap<string, GroupRange>;
  /** Parameters no task trains (frozen layers): sent with the weights, never as gradients. After every task's group. */
  readonly frozen: GroupRange;
  /** Non-trainable state that training updates (BatchNormalization's moving statistics): last; reported with each training unit. */
  readonly state: GroupRange;
  readonly tasks: readonly string[];
  /** Shape of the shared representation the heads read. */
  readonly featureShape: readonly number[];
  /** A model of the user's (layersModel / module): its graph; trunk, heads and the rest of the YAML fields are then empty. */
  readonly graph?: GraphLayout;
}

export const SHARED_GROUP = 'shared';
export const FROZEN_GROUP = 'frozen';
export const STATE_GROUP = 'state';
/** Name of the model's input layer in the exported model. */
export const INPUT_LAYER_NAME = 'input';
export function taskGroup(task: string): string {
  return `task:${task}`;
}

/** A size given as one number or as [height, width] (kernel sizes, strides, pool sizes), as [height, width]. */
export function pair(v: number | readonly [number, number]): [number, number] {
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
    default:
      return fail(generalPathOnly(spec.type));
  }
}

/** Output shape of a chain of layers (throws JobSpecError at the failing layer's path). */
function chainShape(layers: readonly LayerSpec[], input: readonly number[], where: (i: number, l: LayerSpec) => string): readonly number[] {
  return layers.reduce<readonly number[]>((shape, l, i) => layerShapes(l, shape, where(i, l)).output, input);
}

const same = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * The layout for the tasks' data shapes. Tasks without an adapter read the trunk's input
 * directly, so their data must have its shape (`model.input` if given); a task with an adapter
 * reads its own data, and its adapter must end in the trunk's input shape.
 */
export function layoutForData(job: JobSpec, dataShapes: ReadonlyMap<string, readonly number[]>, describe: (task: string) => string = (t) => `task ${t}'s data`): ParameterLayout {
  const tasks = taskNames(job);
  const issues: SpecIssue[] = [];
  const shape = (t: string): readonly number[] => dataShapes.get(t) ?? [];
  for (const t of tasks) {
    const declared = job.tasks[t]!.input;
    if (declared && !same(declared, shape(t))) issues.push({ path: `tasks.${t}.input`, message: `expected [${shape(t).join(', ')}] (the shape of ${describe(t)}), got [${declared.join(', ')}]` });
  }
  const plain = tasks.filter((t) => !job.model.adapters[t]);
  const adapted = tasks.filter((t) => job.model.adapters[t]);
  const groups = new Map<string, string[]>();
  for (const t of plain) groups.set(shape(t).join(','), [...(groups.get(shape(t).join(',')) ?? []), t]);
  if (groups.size > 1) {
    issues.push({
      path: 'tasks',
      message: `the tasks' datasets have different input shapes (${plain.map((t) => `${t}: [${shape(t).join(', ')}]`).join('; ')}); one trunk needs one input: give the tasks with another feature space an input adapter (model.adapters.<task>)`,
    });
  }
  let trunkInput: readonly number[] | undefined = job.model.input ?? (plain.length > 0 ? shape(plain[0]!) : undefined);
  if (job.model.input && plain.length > 0 && groups.size === 1 && !same(job.model.input, shape(plain[0]!))) {
    issues.push({ path: 'model.input', message: `expected [${shape(plain[0]!).join(', ')}] (the shape of ${describe(plain[0]!)}), got [${job.model.input.join(', ')}]` });
  }
  if (issues.length > 0) throw new JobSpecError('job', issues);
  trunkInput ??= chainShape(adapterLayers(job, adapted[0]!), shape(adapted[0]!), (i, l) => `model.adapters.${adapted[0]!}[${i}].${l.type}`);
  return buildLayout(job, trunkInput, new Map(adapted.map((t) => [t, shape(t)])));
}

/**
 * Computes the layout of a job's model; `adapterInputs` gives the data shape of each task with
 * an input adapter. Throws JobSpecError (with the layer's path) on shape errors.
 */
export function buildLayout(job: JobSpec, inputShape: readonly number[], adapterInputs: ReadonlyMap<string, readonly number[]> = new Map()): ParameterLayout {
  // Pass 1: every tensor with its group, in creation order; pass 2 orders them by group.
  const pending: Array<Omit<TensorSpec, 'offset'>> = [];
  const issues: SpecIssue[] = [];
  const tasks = taskNames(job);

  const place = (layers: LayerSpec[], input: readonly number[], group: string, names: (i: number, l: LayerSpec) => string, where: (i: number, l: LayerSpec) => string) => {
    const placed: PlacedLayer[] = [];
    let shape = input;
    layers.forEach((spec, i) => {
      const name = names(i, spec);
      const { output, weights } = layerShapes(spec, shape, where(i, spec));
      const indices: number[] = [];
      for (const w of weights) {
        indices.push(pending.length);
        pending.push({ name: `${name}/${w.suffix}`, shape: w.shape, group, size: w.shape.reduce((a, b) => a * b, 1), init: w.init, fanIn: w.fanIn, fanOut: w.fanOut });
      }
      placed.push({ name, spec, inputShape: shape, outputShape: output, tensors: indices });
      shape = output;
    });
    return { placed, output: shape };
  };

  const adapters = new Map<string, PlacedLayer[]>();
  for (const task of tasks) {
    const layers = adapterLayers(job, task);
    if (layers.length === 0) continue;
    const input = adapterInputs.get(task);
    if (!input) throw new JobSpecError('job', [{ path: `model.adapters.${task}`, message: 'no input shape known for this adapter' }]);
    const a = place(layers, input, taskGroup(task), (i, l) => `adapter_${task}_${i}_${l.type}`, (i, l) => `model.adapters.${task}[${i}].${l.type}`);
    if (!same(a.output, inputShape)) {
      issues.push({ path: `model.adapters.${task}`, message: `the adapter outputs [${a.output.join(', ')}] but the trunk reads [${inputShape.join(', ')}]` });
    }
    adapters.set(task, a.placed);
  }
  // Named inputs: each tower reads its slice of the (flat) input; their outputs, concatenated, are the trunk's input.
  const namedInputs: Array<{ name: string; size: number; tower: PlacedLayer[] }> = [];
  let trunkInput = inputShape;
  if (job.model.inputs) {
    const entries = Object.entries(job.model.inputs);
    const total = entries.reduce((n, [, v]) => n + v.features, 0);
    if (inputShape.length !== 1 || inputShape[0] !== total) {
      throw new JobSpecError('job', [{ path: 'model.inputs', message: `the named inputs take ${total} features per example (${entries.map(([k, v]) => `${k}: ${v.features}`).join(', ')}), the data has [${inputShape.join(', ')}]` }]);
    }
    let width = 0;
    for (const [name, spec] of entries) {
      const tower = place(spec.layers.map(layerSpec), [spec.features], SHARED_GROUP, (i, l) => `${name}_${i}_${l.type}`, (i, l) => `model.inputs.${name}.layers[${i}].${l.type}`);
      if (tower.output.length !== 1) throw new JobSpecError('job', [{ path: `model.inputs.${name}.layers`, message: `a tower must end in a vector per example, got [${tower.output.join(', ')}]` }]);
      namedInputs.push({ name, size: spec.features, tower: tower.placed });
      width += tower.output[0]!;
    }
    trunkInput = [width];
  }
  const trunk = place(trunkLayers(job), trunkInput, SHARED_GROUP, (i, l) => `trunk_${i}_${l.type}`, (i, l) => `model.trunk[${i}].${l.type}`);
  const mixture = job.model.experts ? placeExperts(job, trunk.output, tasks, place) : undefined;
  const featureShape = mixture?.outputShape ?? trunk.output;
  const heads = new Map<string, PlacedLayer[]>();
  for (const task of tasks) {
    const layers = headLayers(job, task);
    const head = place(
      layers,
      featureShape,
      taskGroup(task),
      (i, l) => (i === layers.length - 1 ? task : `${task}_${i}_${l.type}`),
      (i, l) => `model.heads.${task}[${i}].${l.type}`,
    );
    heads.set(task, head.placed);
  }

  // Pass 2: shared tensors first, then each task's, each in creation order.
  const rank = (group: string): number => (group === SHARED_GROUP ? 0 : 1 + tasks.findIndex((t) => taskGroup(t) === group));
  const order = pending.map((_, i) => i).sort((a, b) => rank(pending[a]!.group) - rank(pending[b]!.group) || a - b);
  const newIndex = new Array<number>(pending.length);
  order.forEach((old, i) => (newIndex[old] = i));
  let offset = 0;
  const tensors: TensorSpec[] = order.map((old) => {
    const t = { ...pending[old]!, offset };
    offset += t.size;
    return t;
  });
  const remap = (layer: PlacedLayer): PlacedLayer => ({ ...layer, tensors: layer.tensors.map((i) => newIndex[i]!) });
  const range = (group: string): GroupRange => {
    const idx = tensors.flatMap((t, i) => (t.group === group ? [i] : []));
    const first = tensors[idx[0] ?? -1];
    return { group, offset: first?.offset ?? (group === SHARED_GROUP ? 0 : offset), size: idx.reduce((n, i) => n + tensors[i]!.size, 0), tensors: idx };
  };
  const shared = range(SHARED_GROUP);
  const headGroups = new Map(tasks.map((t) => [t, range(taskGroup(t))]));
  const empty = (group: string): GroupRange => ({ group, offset, size: 0, tensors: [] });
  const remapped = {
    trunk: trunk.placed.map(remap),
    heads: new Map([...heads].map(([t, ls]) => [t, ls.map(remap)])),
    adapters: new Map([...adapters].map(([t, ls]) => [t, ls.map(remap)])),
    namedInputs: namedInputs.map((n) => ({ ...n, tower: n.tower.map(remap) })),
    experts: mixture && {
      ...mixture,
      levels: mixture.levels.map((lv) => ({
        shared: lv.shared.map((e) => e.map(remap)),
        perTask: new Map([...lv.perTask].map(([t, es]) => [t, es.map((e) => e.map(remap))])),
        gates: new Map([...lv.gates].map(([t, g]) => [t, remap(g)])),
        ...(lv.sharedGate ? { sharedGate: remap(lv.sharedGate) } : {}),
      })),
    },
  };

  // tfjs needs every layer name (and the input's) to be unique in the model; a task's name
  // becomes its output layer's name, so some task names can collide with generated names.
  const seen = new Set<string>([INPUT_LAYER_NAME, ...[...adapters.keys()].map(taskInputName), ...namedInputs.map((n) => n.name), ...(namedInputs.length > 1 ? ['inputs_concat'] : [])]);
  const exportOnly = (remapped.experts?.levels ?? []).flatMap((lv, l) => [
    ...lv.shared.map((_, i) => `x${l}_s${i}_row`),
    ...tasks.flatMap((t) => [...(lv.perTask.get(t) ?? []).map((_, i) => `x${l}_${t}_${i}_row`), `mix${l}_${t}`, `mix${l}_${t}_experts`]),
    ...(lv.sharedGate ? [`mix${l}_shared`, `mix${l}_shared_experts`] : []),
  ]);
  for (const name of [...allLayers({ trunk: remapped.trunk, heads: remapped.heads, tasks, experts: remapped.experts, adapters: remapped.adapters, namedInputs: remapped.namedInputs }).map((l) => l.name), ...exportOnly]) {
    if (seen.has(name)) issues.push({ path: 'tasks', message: `layer name "${name}" is used twice in the model: rename the task` });
    seen.add(name);
  }
  if (issues.length > 0) throw new JobSpecError('job', issues);
  return {
    inputShape,
    taskInputShapes: new Map(tasks.map((t) => [t, adapterInputs.get(t) && adapters.has(t) ? adapterInputs.get(t)! : inputShape])),
    adapters: remapped.adapters,
    namedInputs: remapped.namedInputs,
    tensors,
    totalSize: offset,
    trunk: remapped.trunk,
    ...(remapped.experts ? { experts: remapped.experts } : {}),
    heads: remapped.heads,
    shared,
    headGroups,
    frozen: empty(FROZEN_GROUP),
    state: empty(STATE_GROUP),
    tasks,
    featureShape,
  };
}

type Place = (layers: LayerSpec[], input: readonly number[], group: string, names: (i: number, l: LayerSpec) => string, where: (i: number, l: LayerSpec) => string) => { placed: PlacedLayer[]; output: readonly number[] };

function placeExperts(job: JobSpec, input: readonly number[], tasks: readonly string[], place: Place): ExpertsLayout {
  const spec = job.model.experts!;
  const layers = expertLayers(job);
  const fail = (message: string): never => {
    throw new JobSpecError('job', [{ path: 'model.experts', message }]);
  };
  if (input.length !== 1) fail(`experts need a vector per example: end the trunk with flatten (its output is [${input.join(', ')}])`);
  const L = spec.levels;
  const perTask = spec.type === 'mmoe' ? 0 : spec.perTask;
  const where = (i: number, l: LayerSpec) => `model.experts.layers[${i}].${l.type}`;
  const gate = (name: string, inDim: readonly number[], units: number, group: string): PlacedLayer =>
    place([{ type: 'dense', config: { units, activation: 'softmax', useBias: true } }], inDim, group, () => name, () => 'model.experts').placed[0]!;
  const levels: ExpertLevel[] = [];
  let sharedIn = input;
  let taskIn = input;
  let outputShape: readonly number[] = input;
  for (let l = 0; l < L; l++) {
    const last = l === L - 1;
    const shared = Array.from({ length: spec.shared }, (_, e) => place(layers, sharedIn, SHARED_GROUP, (i, s) => `x${l}_s${e}_${i}_${s.type}`, where));
    const own = new Map(
      tasks.map((t) => [t, Array.from({ length: perTask }, (_, e) => place(layers, taskIn, l < L - 1 ? SHARED_GROUP : taskGroup(t), (i, s) => `x${l}_${t}_${e}_${i}_${s.type}`, where))]),
    );
    const out = shared[0]?.output ?? [...own.values()][0]![0]!.output;
    if (out.length !== 1) fail(`each expert must output a vector per example, got [${out.join(', ')}]`);
    const gates = new Map(tasks.map((t) => [t, gate(`gate${l}_${t}`, taskIn, spec.shared + perTask, l < L - 2 ? SHARED_GROUP : taskGroup(t))]));
    const sharedGate = last ? undefined : gate(`gate${l}_shared`, sharedIn, spec.shared + tasks.length * perTask, SHARED_GROUP);
    levels.push({
      shared: shared.map((e) => e.placed),
      perTask: new Map([...own].map(([t, es]) => [t, es.map((e) => e.placed)])),
      gates,
      ...(sharedGate ? { sharedGate } : {}),
    });
    sharedIn = out;
    taskIn = out;
    outputShape = out;
  }
  return { type: spec.type, levels, outputShape };
}

/** Name of the exported model's input of a task with an adapter. */
export function taskInputName(task: string): string {
  return `input_${task}`;
}

/** Every layer of the model: adapters, trunk, experts and gates (level by level), heads. */
export function allLayers(layout: Pick<ParameterLayout, 'trunk' | 'heads' | 'tasks' | 'experts' | 'adapters' | 'namedInputs'>): PlacedLayer[] {
  const experts = (layout.experts?.levels ?? []).flatMap((lv) => [
    ...lv.shared.flat(),
    ...[...lv.perTask.values()].flat(2),
    ...lv.gates.values(),
    ...(lv.sharedGate ? [lv.sharedGate] : []),
  ]);
  return [...layout.namedInputs.flatMap((n) => n.tower), ...layout.tasks.flatMap((t) => layout.adapters.get(t) ?? []), ...layout.trunk, ...experts, ...layout.tasks.flatMap((t) => layout.heads.get(t)!)];
}

/** The output shape of a task's head (per example). */
export function headOutputShape(layout: ParameterLayout, task: string): readonly number[] {
  const output = layout.graph?.outputs.get(task);
  if (output) return output.shape;
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
    if (t.init === 'model') throw new RangeError(`tensor ${t.name} takes its initial value from the model`);
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

/**
 * Number of floats in a task unit's payload: the gradient (shared + head), then the state
 * (BatchNormalization statistics) the unit's forward pass left, when the model has any.
 */
export function unitGradientSize(layout: ParameterLayout, task: string): number {
  const head = layout.headGroups.get(task);
  if (!head) throw new RangeError(`no head for task ${task}`);
  return layout.shared.size + head.size + layout.state.size;
}
