// The YAML twin of a job whose trunk is a user's layers model: the same architecture (the
// model's layers up to the cut, and the job's heads) written in the five fast-path layers, so
// that the compute bench can time a user's model on the graph path next to the very same
// network on the hand-written fast path. Only chains of Conv2D, MaxPooling2D, Flatten, Dense and
// Dropout have a twin; anything else is refused naming the layer.
import type * as tf from '@tensorflow/tfjs';
import { validateJob, type JobSpec } from '../common/job-spec.js';

type Raw = Record<string, Record<string, unknown>>;

const size = (v: unknown): number | [number, number] => {
  if (!Array.isArray(v)) return Number(v);
  const [h, w] = [Number(v[0]), Number(v[1] ?? v[0])];
  return h === w ? h : [h, w];
};

/** One tfjs layer as a YAML layer, or undefined for the input layer. */
function yamlLayer(layer: tf.layers.Layer): Raw | undefined {
  const c = layer.getConfig();
  const cls = layer.getClassName();
  const refuse = (why: string): never => {
    throw new RangeError(`layer "${layer.name}" (${cls}) has no fast-path twin: ${why}`);
  };
  switch (cls) {
    case 'InputLayer':
      return undefined;
    case 'Conv2D':
      if (c.dataFormat === 'channelsFirst') refuse('channelsFirst');
      if (size(c.dilationRate) !== 1) refuse('dilated');
      return { conv2d: { filters: c.filters, kernelSize: size(c.kernelSize), strides: size(c.strides), padding: c.padding, activation: c.activation, useBias: c.useBias } };
    case 'MaxPooling2D':
      if (c.dataFormat === 'channelsFirst') refuse('channelsFirst');
      return { maxPooling2d: { poolSize: size(c.poolSize), strides: size(c.strides), padding: c.padding } };
    case 'Flatten':
      return { flatten: {} };
    case 'Dense':
      return { dense: { units: c.units, activation: c.activation, useBias: c.useBias } };
    case 'Dropout':
      return { dropout: { rate: c.rate } };
    default:
      return refuse('not one of the fast path layers');
  }
}

/**
 * `job` (a layersModel job with YAML heads) with `base`'s layers up to `trunkOutput` as a YAML
 * trunk: the same network on the fast path, every training option as the job has it.
 */
export function yamlTwin(job: JobSpec, base: tf.LayersModel): JobSpec {
  const cut = job.model.trunkOutput ?? base.outputNames[0];
  if (!job.model.heads) throw new RangeError('the job has no YAML heads');
  const trunk: Raw[] = [];
  let previous: tf.layers.Layer | undefined;
  for (const layer of base.layers) {
    const inbound = layer.inboundNodes.flatMap((n) => n.inboundLayers);
    if (previous && (inbound.length !== 1 || inbound[0] !== previous)) throw new RangeError(`layer "${layer.name}" does not read "${previous.name}" alone: not a chain`);
    const yaml = yamlLayer(layer);
    if (yaml) trunk.push(yaml);
    previous = layer;
    if (layer.name === cut) break;
  }
  if (previous?.name !== cut) throw new RangeError(`the model has no layer "${String(cut)}"`);
  const input = base.inputs[0]!.shape.slice(1) as number[];
  const { layersModel: _file, trunkOutput: _cut, trainable: _trainable, module: _module, ...model } = job.model;
  return validateJob({ ...job, name: `${job.name}-yaml`, model: { ...model, input, trunk } }, `${job.name} (YAML twin)`);
}
