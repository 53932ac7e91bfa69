// Model files for the layers-model-file tests, written into temporary directories: the
// model.json of tf.LayersModel.save (through a save handler) split into shards, quantized
// manifests written by hand, and Keras 3 topologies written from Keras 3's serialization
// format (module / registered_name on every object, DTypePolicy dtypes, batch_shape,
// {args, kwargs} inbound nodes with __keras_tensor__ arguments).
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  quantization?: { dtype: 'uint8' | 'uint16'; scale: number; min: number } | { dtype: 'float16' };
}

/** Writes model.json and one file per shard into `dir`; returns model.json's path. */
export function writeModelFiles(dir: string, json: Record<string, unknown>, shards: Record<string, Uint8Array> = {}): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(shards)) writeFileSync(path.join(dir, name), bytes);
  const file = path.join(dir, 'model.json');
  writeFileSync(file, JSON.stringify(json));
  return file;
}

/** Splits `bytes` into shards of `shardBytes` (the last one shorter), named as the converter names them. */
export function shardBytes(bytes: Uint8Array, shardBytes: number): Record<string, Uint8Array> {
  const n = Math.max(1, Math.ceil(bytes.length / shardBytes));
  const out: Record<string, Uint8Array> = {};
  for (let i = 0; i < n; i++) out[`group1-shard${i + 1}of${n}.bin`] = bytes.slice(i * shardBytes, (i + 1) * shardBytes);
  return out;
}

/** Saves a tfjs model as tf.LayersModel.save does, its weights in shards of `shardSize` bytes (not aligned to weights). */
export async function saveTfjsModel(model: tf.LayersModel, dir: string, shardSize = 1000): Promise<string> {
  let files: { json: Record<string, unknown>; shards: Record<string, Uint8Array> } | undefined;
  await model.save(
    tf.io.withSaveHandler((artifacts) => {
      const data = artifacts.weightData;
      const weights = new Uint8Array(data === undefined ? new ArrayBuffer(0) : Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data);
      const shards = shardBytes(weights, shardSize);
      files = {
        shards,
        json: {
          format: 'layers-model',
          generatedBy: artifacts.generatedBy,
          convertedBy: null,
          modelTopology: artifacts.modelTopology,
          weightsManifest: [{ paths: Object.keys(shards), weights: artifacts.weightSpecs ?? [] }],
        },
      };
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' as const } });
    }),
  );
  return writeModelFiles(dir, files!.json, files!.shards);
}

/** float32 / int32 values as little-endian bytes. */
export function bytesOf(values: Float32Array | Int32Array | Uint16Array | Uint8Array): Uint8Array {
  return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

// --- Keras 3 serialization, written out -----------------------------------------------------

type Json = Record<string, unknown>;

export const POLICY: Json = { module: 'keras', class_name: 'DTypePolicy', config: { name: 'float32' }, registered_name: null };

export function k3Object(module: string, className: string, config: Json = {}): Json {
  return { module, class_name: className, config, registered_name: null };
}

/** A Keras 3 symbolic tensor argument: the output `tensor` of call `node` of `layer`. */
export function k3Tensor(layer: string, shape: Array<number | null>, node = 0, tensor = 0): Json {
  return { class_name: '__keras_tensor__', config: { shape, dtype: 'float32', keras_history: [layer, node, tensor] } };
}

/** A layer entry of a Keras 3 Functional config (module, registered_name, build_config, name, inbound_nodes). */
export function k3Layer(className: string, config: Json, inbound?: Json[], module = 'keras.layers'): Json {
  const layer: Json = { module, class_name: className, config: { trainable: true, dtype: POLICY, ...config }, registered_name: null };
  if (inbound !== undefined) {
    layer.name = config.name;
    layer.inbound_nodes = inbound;
  }
  return layer;
}

export function k3Input(name: string, batchShape: Array<number | null>): Json {
  return {
    module: 'keras.layers',
    class_name: 'InputLayer',
    config: { batch_shape: batchShape, dtype: 'float32', sparse: false, ragged: false, name, optional: false },
    registered_name: null,
    name,
    inbound_nodes: [],
  };
}

export function k3Dense(name: string, units: number, activation: string, extra: Json = {}): Json {
  return {
    name,
    units,
    activation,
    use_bias: true,
    kernel_initializer: k3Object('keras.initializers', 'GlorotUniform', { seed: null }),
    bias_initializer: k3Object('keras.initializers', 'Zeros'),
    kernel_regularizer: null,
    bias_regularizer: null,
    kernel_constraint: null,
    bias_constraint: null,
    lora_rank: null,
    ...extra,
  };
}

export function k3Lstm(name: string, units: number, goBackwards: boolean): Json {
  return k3Layer('LSTM', {
    name,
    return_sequences: false,
    return_state: false,
    go_backwards: goBackwards,
    stateful: false,
    unroll: false,
    zero_output_for_mask: false,
    units,
    activation: 'tanh',
    recurrent_activation: 'sigmoid',
    use_bias: true,
    kernel_initializer: k3Object('keras.initializers', 'GlorotUniform', { seed: null }),
    recurrent_initializer: k3Object('keras.initializers', 'Orthogonal', { seed: null, gain: 1.0 }),
    bias_initializer: k3Object('keras.initializers', 'Zeros'),
    unit_forget_bias: true,
    kernel_regularizer: null,
    recurrent_regularizer: null,
    bias_regularizer: null,
    activity_regularizer: null,
    kernel_constraint: null,
    recurrent_constraint: null,
    bias_constraint: null,
    dropout: 0.0,
    recurrent_dropout: 0.0,
    seed: null,
  });
}

/** A node `{args, kwargs}` calling a layer on `args`. */
export function k3Node(args: unknown[], kwargs: Json = {}): Json {
  return { args, kwargs };
}

/** The model.json the tensorflowjs converter writes around a Keras 3 model config. */
export function k3ModelJson(modelConfig: Json, weights: ManifestEntry[], paths: string[]): Json {
  return {
    format: 'layers-model',
    generatedBy: 'keras v3.4.1',
    convertedBy: 'TensorFlow.js Converter v4.22.0',
    modelTopology: { keras_version: '3.4.1', backend: 'tensorflow', model_config: modelConfig, training_config: { loss: 'mse' } },
    weightsManifest: [{ paths, weights }],
  };
}
