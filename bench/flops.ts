// Floating-point operations of training units, counted from the parameter layout as the work
// a step needs (not what a naive implementation does). Only the layers that dominate are
// counted: dense (2·n·in·out forward) and conv2d (2·n·oh·ow·kh·kw·cin·cout forward); the
// backward pass costs the forward again for the weight gradient and again for the input
// gradient, which the first weighted layer does not need (it reads the data). Tasks sharing
// a batch need the trunk's forward pass once. Activations, pooling, biases and the loss are
// left out: they are memory-bound and small.
import type { ParameterLayout, PlacedLayer } from '../common/parameter-layout.js';

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
