// Floating-point operations of one training unit (forward + backward of one task on one
// batch), counted from the parameter layout. Only the layers that dominate are counted:
// dense (2·n·in·out multiply-adds forward) and conv2d (2·n·oh·ow·kh·kw·cin·cout forward);
// the backward pass costs twice the forward (input gradient + weight gradient), so ×3 in all.
// Activations, pooling, biases and the loss are left out: they are memory-bound and small.
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

/** FLOPs of one gradient step of `task` on `n` examples: 3 × the forward FLOPs of its adapter, trunk and head. */
export function trainingFlops(layout: ParameterLayout, task: string, n: number): number {
  if (layout.experts) throw new RangeError('FLOP counting covers hard parameter sharing only (no experts)');
  const head = layout.heads.get(task);
  if (!head) throw new RangeError(`unknown task ${task}`);
  const layers = [...(layout.adapters.get(task) ?? []), ...layout.namedInputs.flatMap((i) => i.tower), ...layout.trunk, ...head];
  return 3 * layers.reduce((sum, l) => sum + layerForwardFlops(l, n), 0);
}
