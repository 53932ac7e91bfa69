// Floating-point operations of training units, counted from the parameter layout as the work
// a step needs (not what a naive implementation does). Only the layers that dominate are
// counted: dense (2·n·in·out forward) and conv2d (2·n·oh·ow·kh·kw·cin·cout forward); the
// backward pass costs the forward again for the weight gradient and again for the input
// gradient, which the first weighted layer does not need (it reads the data). Tasks sharing
// a batch need the trunk's forward pass once. Activations, pooling, biases and the loss are
// left out: they are memory-bound and small. A model of the user's (the graph path) is counted
// the same way from its tfjs layers (graphTrainingFlops).
import * as tf from '@tensorflow/tfjs';
import { FROZEN_GROUP, STATE_GROUP, type ParameterLayout, type PlacedLayer } from '../common/parameter-layout.js';

/** Forward FLOPs of one layer for `n` examples; 0 for layers without multiply-adds counted here. */
export function layerForwardFlops(layer: PlacedLayer, n: number): number {
  const spec = layer.spec;
  switch (spec.type) {
    case 'dense': {
      const inDim = layer.inputShape[layer.inputShape.length - 1]!;
      // A dense layer on a rank > 1 input applies to every leading position.
      const positions = layer.inputShape.slice(0, -1).reduce((a, b) => a * b, 1);
      return 2 * n * positions * inDim * spec.config.units;
    }
    case 'conv2d': {
      const [oh, ow, cout] = layer.outputShape as [number, number, number];
      const cin = layer.inputShape[2]!;
      const k = spec.config.kernelSize;
      const [kh, kw] = typeof k === 'number' ? [k, k] : [k[0], k[1]];
      return 2 * n * oh * ow * kh * kw * cin * cout;
    }
    default:
      return 0;
  }
}

function layersOf(layout: ParameterLayout, task: string): { trunk: PlacedLayer[]; head: readonly PlacedLayer[] } {
  if (layout.experts) throw new RangeError('FLOP counting covers hard parameter sharing only (no experts)');
  const head = layout.heads.get(task);
  if (!head) throw new RangeError(`unknown task ${task}`);
  return { trunk: [...(layout.adapters.get(task) ?? []), ...layout.namedInputs.flatMap((i) => i.tower), ...layout.trunk], head };
}

/**
 * Backward FLOPs of a stack of layers (model input first): each weighted layer's weight
 * gradient costs its forward FLOPs, its input gradient as much again, except for the first
 * weighted layer, whose input (the model's data, or layers without weights) needs no gradient.
 */
function backwardFlops(layers: readonly PlacedLayer[], n: number): number {
  let first = true;
  let sum = 0;
  for (const l of layers) {
    const f = layerForwardFlops(l, n);
    if (f === 0) continue;
    sum += first ? f : 2 * f;
    first = false;
  }
  return sum;
}

const forwardFlops = (layers: readonly PlacedLayer[], n: number) => layers.reduce((sum, l) => sum + layerForwardFlops(l, n), 0);

/**
 * FLOPs one gradient step of `task` on `n` examples needs: forward, plus the backward pass
 * (weight gradients everywhere, input gradients after the first weighted layer).
 */
export function trainingFlops(layout: ParameterLayout, task: string, n: number): number {
  const { trunk, head } = layersOf(layout, task);
  const layers = [...trunk, ...head];
  return forwardFlops(layers, n) + backwardFlops(layers, n);
}

/**
 * FLOPs the gradient steps of `tasks` on one shared batch of `n` examples need: the trunk's
 * forward pass once, then per task its head's forward and backward and the trunk's backward.
 */
export function sharedBatchFlops(layout: ParameterLayout, tasks: readonly string[], n: number): number {
  if (tasks.length === 0) return 0;
  const trunk = layersOf(layout, tasks[0]!).trunk;
  let sum = forwardFlops(trunk, n);
  for (const task of tasks) {
    const { head } = layersOf(layout, task);
    sum += forwardFlops(head, n) + backwardFlops([...trunk, ...head], n);
  }
  return sum;
}

type Shape = readonly (number | null)[];
/** Per-example sizes of a node's one input or output (tfjs gives a shape, or a list of one). */
const dims = (shapes: Shape | Shape[], what: string): number[] => {
  const shape = (Array.isArray(shapes[0]) ? shapes[0] : shapes) as Shape;
  if (shape.slice(1).some((d) => d === null)) throw new RangeError(`${what}: FLOPs need known sizes, got [${shape.join(', ')}]`);
  return shape.slice(1) as number[];
};
const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)]);

/**
 * Forward FLOPs of one tfjs layer (as built in a model, its shapes known) for `n` examples:
 * Dense and Conv2D as above, a nested model as the sum of its layers, every other class 0.
 */
export function tfLayerForwardFlops(layer: tf.layers.Layer, n: number): number {
  if (layer instanceof tf.LayersModel) return layer.layers.reduce((sum, l) => sum + tfLayerForwardFlops(l, n), 0);
  const cls = layer.getClassName();
  if (cls !== 'Dense' && cls !== 'Conv2D') return 0;
  const node = layer.inboundNodes[0];
  if (!node) throw new RangeError(`layer ${layer.name} is not applied in a model`);
  const input = dims(node.inputShapes, `layer ${layer.name}`);
  const output = dims(node.outputShapes, `layer ${layer.name}`);
  const config = layer.getConfig();
  if (cls === 'Dense') {
    const positions = input.slice(0, -1).reduce((a, b) => a * b, 1);
    return 2 * n * positions * input[input.length - 1]! * Number(config.units);
  }
  const first = config.dataFormat === 'channelsFirst';
  const [oh, ow, cout] = first ? [output[1]!, output[2]!, output[0]!] : (output as [number, number, number]);
  const cin = first ? input[0]! : input[2]!;
  const [kh, kw] = pair(config.kernelSize);
  return 2 * n * oh * ow * kh * kw * cin * cout;
}

/**
 * FLOPs one gradient step of `task` on `n` examples needs on the graph path, `model` being
 * the composed model of `layout` (built from layout.graph.spec.config): the forward pass of the
 * layers that feed the task's output, each training layer's weight gradient (its forward FLOPs
 * again), and each layer's input gradient (again) where a training layer lies upstream of it.
 * For a chain this is trainingFlops' rule; frozen layers before the first training one cost
 * their forward pass only. A layer applied several times is counted once.
 */
export function graphTrainingFlops(layout: ParameterLayout, model: tf.LayersModel, task: string, n: number): number {
  const graph = layout.graph;
  if (!graph) throw new RangeError('graphTrainingFlops needs the layout of a model of the user (layout.graph)');
  const trains = new Set(graph.rows.filter((r) => r.group.split('+').some((g) => g !== FROZEN_GROUP && g !== STATE_GROUP)).map((r) => r.layer));
  const gradient = new Set<string>();
  let sum = 0;
  // model.layers is in topological order: inbound layers come first.
  for (const layer of model.layers) {
    if (!graph.layerTasks.get(layer.name)?.includes(task)) continue;
    const needsInput = layer.inboundNodes.some((node) => node.inboundLayers.some((l) => gradient.has(l.name)));
    const own = trains.has(layer.name);
    if (own || needsInput) gradient.add(layer.name);
    const f = tfLayerForwardFlops(layer, n);
    sum += f + (own ? f : 0) + (needsInput ? f : 0);
  }
  return sum;
}
