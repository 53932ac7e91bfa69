// The layer vocabulary of job files (trunk, heads, experts, adapters, towers) and the schema
// primitives the job schema shares with it. docs/job-spec.md#layers documents the same layers:
// keep the two in step. common/job-schema.ts re-exports everything here.
import { z } from 'zod';

export const posInt = z.number().int().positive();
export const nonNegInt = z.number().int().nonnegative();
export const positive = z.number().positive();
export const size2 = z.union([posInt, z.tuple([posInt, posInt])]);

/** Names used as tfjs layer and output names, file names and metric labels. */
export const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]*$/;
export const name = z.string().regex(NAME_PATTERN, { error: `expected a name matching ${NAME_PATTERN.source}` });

/**
 * Activation functions, by their tfjs-layers names (each is one of tfjs' own activation
 * identifiers, so a layer's `activation` goes to tfjs unchanged). gelu is the exact (erf) form;
 * hardSigmoid is tfjs' clip(0.2·x + 0.5, 0, 1); swish is x·sigmoid(x).
 */
export const ACTIVATIONS = ['linear', 'relu', 'sigmoid', 'tanh', 'softmax', 'elu', 'softplus', 'selu', 'gelu', 'swish', 'mish', 'relu6', 'softsign', 'hardSigmoid'] as const;
export type Activation = (typeof ACTIVATIONS)[number];
const activation = z.enum(ACTIVATIONS).default('linear');

// ---- Layers. Options are named as tfjs' own layer arguments (camelCase); every default is
// stated here and in docs/job-spec.md. Only dense, conv2d, maxPooling2d, flatten and dropout
// have the workers' hand-written fast path (FAST_PATH_LAYER_TYPES); the others run on the
// general (tfjs-layers) path.

const padding = z.enum(['valid', 'same']).default('valid');
const useBias = z.boolean().default(true);
const dense = z.strictObject({
  units: posInt,
  activation,
  useBias,
});
/** The options of the convolutions with `filters` (conv2d, separableConv2d, conv2dTranspose). */
const filterConvFields = {
  filters: posInt,
  kernelSize: size2,
  strides: size2.default(1),
  padding,
  activation,
  useBias,
};
const conv2d = z.strictObject(filterConvFields);
const maxPooling2d = z.strictObject({
  poolSize: size2.default(2),
  strides: size2.optional(),
  padding,
});
const flatten = z.strictObject({});
const dropout = z.strictObject({ rate: z.number().min(0).lt(1) });

/** Integer indices in [0, inputDim) to vectors of outputDim; maskZero: index 0 is padding, masked for the layers after it. */
const embedding = z.strictObject({
  inputDim: posInt,
  outputDim: posInt,
  maskZero: z.boolean().default(false),
});
// Normalisations always have their learned scale (gamma) and offset (beta): tfjs 4.22 reads
// both while training even when `center` or `scale` is false, and fails; so no such options.
/**
 * Over the last axis, with the batch's statistics while training; the moving mean and
 * variance (momentum: the weight of the old value) are non-trainable weights, updated then.
 */
const batchNormalization = z.strictObject({
  momentum: z.number().min(0).max(1).default(0.99),
  epsilon: positive.default(0.001),
});
/** Over the last axis, per example. */
const layerNormalization = z.strictObject({
  epsilon: positive.default(0.001),
});
// No `dilationRate` on convolutions: tfjs 4.22 refuses the gradient of a dilated Conv2D (which
// conv1d runs on) and of a dilated depthwise convolution (seen in separableConv2d), so such
// layers could not train.
/**
 * Over sequences [steps, channels]. No `causal` padding: tfjs 4.22 throws "not implemented"
 * for it when the layer runs (and has no zeroPadding1d to build it from).
 */
const conv1d = z.strictObject({
  filters: posInt,
  kernelSize: posInt,
  strides: posInt.default(1),
  padding,
  activation,
  useBias,
});
/** One kernel (times depthMultiplier) per input channel, channels not mixed. */
const depthwiseConv2d = z.strictObject({
  kernelSize: size2,
  depthMultiplier: posInt.default(1),
  strides: size2.default(1),
  padding,
  activation,
  useBias,
});
/**
 * A depthwise convolution, then a 1×1 convolution to `filters` channels. No depthMultiplier:
 * tfjs 4.22 leaves it out of the saved model, which then fails to load (weight shape mismatch).
 */
const separableConv2d = z.strictObject(filterConvFields);
/** The transpose (gradient) of conv2d: upsamples by `strides`, e.g. in dense-prediction heads. */
const conv2dTranspose = z.strictObject(filterConvFields);
type Padding2d = number | [number, number] | [[number, number], [number, number]];
const isCount = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0;
const isCountPair = (v: unknown): boolean => Array.isArray(v) && v.length === 2 && v.every(isCount);
/** Zeros around the image: n (all sides), [rows, columns] (each side), or [[top, bottom], [left, right]]. */
const zeroPadding2d = z.strictObject({
  // One message for the three forms (a union would list each form's own complaint).
  padding: z
    .custom<Padding2d>((v) => isCount(v) || isCountPair(v) || (Array.isArray(v) && v.length === 2 && v.every(isCountPair)), {
      error: (issue) => `expected n, [rows, columns] or [[top, bottom], [left, right]] (integers >= 0), got ${JSON.stringify(issue.input)}`,
    })
    .default(1),
});
const averagePooling2d = z.strictObject({
  poolSize: size2.default(2),
  /** Default: poolSize. */
  strides: size2.optional(),
  padding,
});
const pooling1d = z.strictObject({
  poolSize: posInt.default(2),
  /** Default: poolSize. */
  strides: posInt.optional(),
  padding,
});
const maxPooling1d = pooling1d;
const averagePooling1d = pooling1d;
/** Over all steps (1d: [steps, channels] → [channels]) or all positions (2d: [h, w, channels] → [channels]). */
const globalAveragePooling1d = z.strictObject({});
const globalAveragePooling2d = z.strictObject({});
const globalMaxPooling1d = z.strictObject({});
const globalMaxPooling2d = z.strictObject({});
/** Repeats rows and columns `size` times (n or [rows, columns]). */
const upSampling2d = z.strictObject({
  size: size2.default(2),
  interpolation: z.enum(['nearest', 'bilinear']).default('nearest'),
});
// Recurrent layers read [steps, features]. No `dropout`/`recurrentDropout`: tfjs draws those
// masks from an unseeded random generator, which would break the bitwise reproducibility of
// runs; a `dropout` layer before the recurrent one (seeded like every dropout) is the substitute.
// recurrentActivation defaults to sigmoid (as in Keras/TensorFlow 2), not tfjs' hardSigmoid.
const lstm = z.strictObject({
  units: posInt,
  activation: z.enum(ACTIVATIONS).default('tanh'),
  recurrentActivation: z.enum(ACTIVATIONS).default('sigmoid'),
  useBias,
  /** true: the output at every step ([steps, units]), for another recurrent layer; false: the last step's ([units]). */
  returnSequences: z.boolean().default(false),
});
const gru = lstm;
const simpleRnn = z.strictObject({
  units: posInt,
  activation: z.enum(ACTIVATIONS).default('tanh'),
  useBias,
  returnSequences: z.boolean().default(false),
});

/** A strict mapping with exactly one of `schemas`' keys (how a layer names its type). */
function exactlyOneOf<S extends Record<string, z.ZodType>>(schemas: S, what: string) {
  const shape = Object.fromEntries(Object.entries(schemas).map(([k, s]) => [k, s.optional()])) as { [K in keyof S]: z.ZodOptional<S[K]> };
  const names = Object.keys(schemas);
  return z.strictObject(shape).check((ctx) => {
    const kinds = Object.keys(ctx.value).filter((k) => (ctx.value as Record<string, unknown>)[k] !== undefined);
    // An unknown key has its own issue, which says more than "got none".
    const unknownKey = ctx.issues.some((i) => i.code === 'unrecognized_keys' && (i.path ?? []).length === 0);
    if (kinds.length !== 1 && !(kinds.length === 0 && unknownKey)) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        message: `expected exactly one ${what} (${names.join(', ')}), got ${kinds.length === 0 ? 'none' : kinds.join(' and ')}`,
      });
    }
  });
}

/** The forward layer and its copy reading the sequence backwards, their outputs merged. */
const bidirectional = z.strictObject({
  layer: exactlyOneOf({ lstm, gru, simpleRnn }, 'recurrent layer'),
  mergeMode: z.enum(['concat', 'sum', 'mul', 'ave']).default('concat'),
});
const reshape = z.strictObject({
  /**
   * The shape after the batch axis, every size given: tfjs 4.22 leaves a -1 ("infer") unknown
   * in the output shape, which the layers after it (flatten, ...) cannot build on.
   */
  targetShape: z.array(posInt).min(1),
});
const permute = z.strictObject({
  /** A permutation of 1..rank (the axes after the batch axis, 1-based as in tfjs): [2, 1] swaps two axes. */
  dims: z
    .array(posInt)
    .min(1)
    .check((ctx) => {
      const sorted = [...ctx.value].sort((a, b) => a - b);
      if (!sorted.every((v, i) => v === i + 1)) ctx.issues.push({ code: 'custom', input: ctx.value, message: `expected a permutation of 1..${ctx.value.length}, got [${ctx.value.join(', ')}]` });
    }),
});
const activationLayer = z.strictObject({ activation: z.enum(ACTIVATIONS) });
const leakyRelu = z.strictObject({ alpha: z.number().nonnegative().default(0.3) });
/** maxValue: clip at this value (relu6 is maxValue 6); default none. */
const relu = z.strictObject({ maxValue: positive.optional() });
/**
 * Over the last axis. No `axis` option: tfjs 4.22 computes softmax over the last axis only
 * (any other fails when the layer runs); the layer is built with axis -1, not tfjs' default 1.
 */
const softmax = z.strictObject({});

/** Every layer type a job file may use, in the order the docs list them. */
export const LAYER_TYPES = [
  'dense',
  'conv2d',
  'maxPooling2d',
  'flatten',
  'dropout',
  'embedding',
  'batchNormalization',
  'layerNormalization',
  'conv1d',
  'depthwiseConv2d',
  'separableConv2d',
  'conv2dTranspose',
  'zeroPadding2d',
  'averagePooling2d',
  'maxPooling1d',
  'averagePooling1d',
  'globalAveragePooling1d',
  'globalAveragePooling2d',
  'globalMaxPooling1d',
  'globalMaxPooling2d',
  'upSampling2d',
  'lstm',
  'gru',
  'simpleRnn',
  'bidirectional',
  'reshape',
  'permute',
  'activation',
  'leakyRelu',
  'relu',
  'softmax',
] as const;
export type LayerType = (typeof LAYER_TYPES)[number];

const LAYER_SCHEMAS = {
  dense,
  conv2d,
  maxPooling2d,
  flatten,
  dropout,
  embedding,
  batchNormalization,
  layerNormalization,
  conv1d,
  depthwiseConv2d,
  separableConv2d,
  conv2dTranspose,
  zeroPadding2d,
  averagePooling2d,
  maxPooling1d,
  averagePooling1d,
  globalAveragePooling1d,
  globalAveragePooling2d,
  globalMaxPooling1d,
  globalMaxPooling2d,
  upSampling2d,
  lstm,
  gru,
  simpleRnn,
  bidirectional,
  reshape,
  permute,
  activation: activationLayer,
  leakyRelu,
  relu,
  softmax,
} satisfies Record<LayerType, z.ZodType>;

/** The layer types with the workers' hand-written fast path (parameter-layout.ts, model-runner.ts, trunk-tape.ts). */
export const FAST_PATH_LAYER_TYPES = ['dense', 'conv2d', 'maxPooling2d', 'flatten', 'dropout'] as const satisfies readonly LayerType[];
export type FastPathLayerType = (typeof FAST_PATH_LAYER_TYPES)[number];

export const layer = exactlyOneOf(LAYER_SCHEMAS, 'layer type');

type RawConfig<K extends LayerType> = z.output<(typeof LAYER_SCHEMAS)[K]>;
export type DenseConfig = RawConfig<'dense'>;
export type Conv2dConfig = RawConfig<'conv2d'>;
export type MaxPooling2dConfig = RawConfig<'maxPooling2d'>;
export type DropoutConfig = RawConfig<'dropout'>;
export type LstmConfig = RawConfig<'lstm'>;
export type GruConfig = RawConfig<'gru'>;
export type SimpleRnnConfig = RawConfig<'simpleRnn'>;
/** The recurrent layer inside a bidirectional one, normalised like any layer. */
export type RecurrentLayerSpec = { type: 'lstm'; config: LstmConfig } | { type: 'gru'; config: GruConfig } | { type: 'simpleRnn'; config: SimpleRnnConfig };
export interface BidirectionalConfig {
  layer: RecurrentLayerSpec;
  mergeMode: RawConfig<'bidirectional'>['mergeMode'];
}
/** A layer type's options with defaults applied (bidirectional's inner layer normalised too). */
export type LayerConfig<K extends LayerType> = K extends 'bidirectional' ? BidirectionalConfig : RawConfig<K>;
/** One layer, normalised to a tagged union. */
export type LayerSpec = { [K in LayerType]: { type: K; config: LayerConfig<K> } }[LayerType];
export type FastPathLayerSpec = Extract<LayerSpec, { type: FastPathLayerType }>;

/** Whether the workers' hand-written fast path computes this layer (else only the general path does). */
export function isFastPathLayer(spec: LayerSpec): spec is FastPathLayerSpec {
  return (FAST_PATH_LAYER_TYPES as readonly string[]).includes(spec.type);
}

/** What the fast-path code says about a layer type it does not compute. */
export function generalPathOnly(type: LayerType): string {
  return `${type} runs on the general path only`;
}

export function layerSpec(raw: z.output<typeof layer>): LayerSpec {
  const type = LAYER_TYPES.find((t) => raw[t] !== undefined);
  if (type === undefined) throw new Error('a layer without a type (the job schema refuses these)');
  if (type === 'bidirectional') {
    const { layer: inner, mergeMode } = raw.bidirectional!;
    const recurrent: RecurrentLayerSpec = inner.lstm ? { type: 'lstm', config: inner.lstm } : inner.gru ? { type: 'gru', config: inner.gru } : { type: 'simpleRnn', config: inner.simpleRnn! };
    return { type, config: { layer: recurrent, mergeMode } };
  }
  return { type, config: raw[type] } as LayerSpec;
}

