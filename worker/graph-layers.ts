// The layers the graph path substitutes into a user's model for training (common/model-graph.ts
// trainingConfig): a Dropout whose masks are seeded per unit, and a BatchNormalization that runs
// in inference mode because its layer is frozen. Registered with tfjs' serialization on import.
import * as tf from '@tensorflow/tfjs';

/** The seed of a dropout layer's mask in the current unit: by layer name and whether two or more tasks share the layer. */
export type DropoutSeeds = (layer: { name: string }, shared: boolean) => number;

let current: DropoutSeeds | undefined;

/** Runs `fn` with `seeds` giving the dropout masks of training forward passes. */
export function withDropoutSeeds<T>(seeds: DropoutSeeds | undefined, fn: () => T): T {
  const before = current;
  current = seeds;
  try {
    return fn();
  } finally {
    current = before;
  }
}

interface SeededDropoutArgs {
  rate: number;
  mtlShared?: boolean;
  name?: string;
  trainable?: boolean;
}

/** Dropout with the mask u ≥ rate, u uniform from the unit's seed for this layer (scaled by 1/(1−rate)). */
export class SeededDropout extends tf.layers.Layer {
  static readonly className = 'MtlSeededDropout';
  private readonly rate: number;
  private readonly shared: boolean;

  constructor(args: SeededDropoutArgs) {
    super(args);
    this.rate = args.rate;
    this.shared = args.mtlShared ?? false;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    if (kwargs.training !== true || this.rate === 0) return x;
    if (!current) throw new Error(`dropout layer ${this.name}: a training forward pass without dropout seeds`);
    const u = tf.randomUniform(x.shape, 0, 1, 'float32', current({ name: this.name }, this.shared));
    return tf.mul(x, tf.div(tf.cast(tf.greaterEqual(u, this.rate), 'float32'), 1 - this.rate));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, mtlShared: this.shared };
  }
}

type LayerClass = new (args: Record<string, unknown>) => tf.layers.Layer;
const BatchNormalization = (Object.getPrototypeOf(tf.layers.batchNormalization({})) as { constructor: LayerClass }).constructor;

/** A frozen BatchNormalization: normalises with its moving statistics in training too, and never updates them. */
export class FrozenBatchNormalization extends BatchNormalization {
  static readonly className = 'MtlFrozenBatchNormalization';

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[] {
    return super.call(inputs, { ...kwargs, training: false });
  }
}

tf.serialization.registerClass(SeededDropout);
tf.serialization.registerClass(FrozenBatchNormalization as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);
