// The parameter layout of a model of the user's (common/model-graph.ts), and the check of the
// tasks' data against the model's inputs: what prepare-run and the workers compute alike.
import * as tf from '@tensorflow/tfjs';
import { JobSpecError, type SpecIssue } from './errors.js';
import { configWithInputShapes } from './input-shapes.js';
import { taskNames, type JobSpec } from './job-spec.js';
import { describeGraph, graphTensors, modelFromGraphConfig, type GraphLayout, type GraphSpec } from './model-graph.js';
import { FROZEN_GROUP, SHARED_GROUP, STATE_GROUP, taskGroup, type GroupRange, type ParameterLayout, type SharedGroup, type TensorSpec } from './parameter-layout.js';

const same = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);
const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
const compareIndexLists = (a: readonly number[], b: readonly number[]): number => {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
};

/**
 * The data shape every task must have for `graph`'s inputs: one input reads the example as it
 * is; several read consecutive slices of a flat example, in input order.
 */
export function graphDataShape(graph: GraphLayout): readonly number[] {
  const [first, ...rest] = graph.inputs;
  if (!first) throw new JobSpecError('job', [{ path: 'model', message: 'the model has no inputs' }]);
  return rest.length === 0 ? first.shape : [graph.inputs.reduce((n, i) => n + size(i.shape), 0)];
}

function checkData(job: JobSpec, graph: GraphLayout, dataShapes: ReadonlyMap<string, readonly number[]>, describe: (task: string) => string): void {
  const expected = graphDataShape(graph);
  const inputs = graph.inputs.map((i) => `${i.name} [${i.shape.join(', ')}]${i.dtype === 'int32' ? ' int32' : ''}`).join(', ');
  const issues: SpecIssue[] = [];
  for (const task of taskNames(job)) {
    const shape = dataShapes.get(task) ?? [];
    if (same(shape, expected)) continue;
    const how =
      graph.inputs.length > 1
        ? `the model's inputs (${inputs}) read consecutive slices of a flat example of ${expected[0]} values`
        : `the model's input is ${inputs}`;
    const hint = graph.inputs.length === 1 && size(shape) === size(expected) ? ' (same size: add a Reshape layer to the model, or reshape the data)' : '';
    issues.push({ path: `tasks.${task}.data`, message: `${describe(task)} has examples of shape [${shape.join(', ')}], but ${how}${hint}` });
  }
  if (issues.length > 0) throw new JobSpecError('job', issues);
}

/**
 * The layout of a composed model (`model` built from `spec.config`): shared tensors first, then
 * each task's, then frozen, then state; within a group in model order.
 */
export function layoutForGraph(
  job: JobSpec,
  model: tf.LayersModel,
  spec: GraphSpec,
  dataShapes: ReadonlyMap<string, readonly number[]>,
  describe: (task: string) => string = (t) => `task ${t}'s data`,
): ParameterLayout {
  const tasks = taskNames(job);
  const walked = graphTensors(model, spec, tasks);
  const graph = describeGraph(model, spec, tasks, walked);
  checkData(job, graph, dataShapes, describe);
  const found = walked.tensors;
  const rank = (group: string): number => {
    if (group === SHARED_GROUP) return 0;
    if (group === FROZEN_GROUP) return tasks.length + 1;
    if (group === STATE_GROUP) return tasks.length + 2;
    return 1 + tasks.findIndex((t) => taskGroup(t) === group);
  };
  // Shared tensors by task set: every task's first, then each smaller set in canonical order.
  const setOf = (t: (typeof found)[number]): readonly string[] => graph.layerTasks.get(t.layer) ?? tasks;
  const key = (set: readonly string[]): string => set.map((t) => tasks.indexOf(t)).join(',');
  const partialSets = [...new Map(found.filter((t) => t.group === SHARED_GROUP && setOf(t).length < tasks.length).map((t) => [key(setOf(t)), setOf(t)])).values()].sort(
    (a, b) => compareIndexLists(a.map((t) => tasks.indexOf(t)), b.map((t) => tasks.indexOf(t))),
  );
  const subRank = (t: (typeof found)[number]): number => (t.group !== SHARED_GROUP || setOf(t).length === tasks.length ? 0 : 1 + partialSets.findIndex((s) => key(s) === key(setOf(t))));
  const order = found
    .map((_, i) => i)
    .sort((a, b) => rank(found[a]!.group) - rank(found[b]!.group) || subRank(found[a]!) - subRank(found[b]!) || a - b);
  let offset = 0;
  const tensors: TensorSpec[] = order.map((i) => {
    const t = found[i]!;
    const spec: TensorSpec = { name: t.name, shape: t.shape, group: t.group, offset, size: size(t.shape), init: 'model', fanIn: 0, fanOut: 0 };
    offset += spec.size;
    return spec;
  });
  const range = (group: string): GroupRange => {
    const idx = tensors.flatMap((t, i) => (t.group === group ? [i] : []));
    const first = tensors[idx[0] ?? -1];
    // An empty group sits where it would start.
    const at = first?.offset ?? tensors.filter((t) => rank(t.group) < rank(group)).reduce((n, t) => n + t.size, 0);
    return { group, offset: at, size: idx.reduce((n, i) => n + tensors[i]!.size, 0), tensors: idx };
  };
  const shared = range(SHARED_GROUP);
  // Positions in layout order: the groups' ranges follow from their tensors' sizes.
  const sharedTensors = order.map((i) => found[i]!).filter((t) => t.group === SHARED_GROUP);
  let at = shared.offset;
  const sharedGroups: SharedGroup[] = [tasks, ...partialSets].map((set) => {
    const size = sharedTensors.filter((t) => key(setOf(t)) === key(set)).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    const group = { tasks: set, offset: at, size };
    at += size;
    return group;
  });
  const dataShape = graphDataShape(graph);
  return {
    inputShape: dataShape,
    taskInputShapes: new Map(tasks.map((t) => [t, dataShape])),
    namedInputs: [],
    adapters: new Map(),
    tensors,
    totalSize: offset,
    trunk: [],
    heads: new Map(tasks.map((t) => [t, []])),
    shared,
    ...(partialSets.length > 0 ? { sharedGroups } : {}),
    headGroups: new Map(tasks.map((t) => [t, range(taskGroup(t))])),
    frozen: range(FROZEN_GROUP),
    state: range(STATE_GROUP),
    tasks,
    featureShape: [],
    graph,
  };
}

/** The layout tensors' current values in `model` (layout order), e.g. the initial parameters. */
export function graphParameters(layout: ParameterLayout, model: tf.LayersModel, spec: GraphSpec): Float32Array {
  const { tensors } = graphTensors(model, spec, layout.tasks);
  const byName = new Map(tensors.map((t) => [t.name, t.variable]));
  const params = new Float32Array(layout.totalSize);
  for (const t of layout.tensors) {
    const v = byName.get(t.name);
    if (!v) throw new RangeError(`the model has no weight ${t.name}`);
    params.set(v.read().dataSync(), t.offset);
  }
  return params;
}

/**
 * The composed model (export form) with `params` as its weights: what a run of a user's model
 * leaves in model/. Its inputs declare the user's model's own shapes where those left sizes
 * unknown and the weights do not depend on them (`spec.exportDeclared`), else the data's.
 */
export function graphModelWithParameters(layout: ParameterLayout, params: Float32Array): tf.LayersModel {
  const graph = layout.graph;
  if (!graph) throw new Error('not the layout of a model of the user');
  const { config, declaredInputs, exportDeclared } = graph.spec;
  const model = modelFromGraphConfig(declaredInputs && exportDeclared ? configWithInputShapes(config, declaredInputs) : config);
  const { tensors } = graphTensors(model, graph.spec, layout.tasks);
  const byName = new Map(tensors.map((t) => [t.name, t.variable]));
  tf.tidy(() => {
    for (const t of layout.tensors) byName.get(t.name)!.write(tf.tensor(params.slice(t.offset, t.offset + t.size), [...t.shape]));
  });
  return model;
}
