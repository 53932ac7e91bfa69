// Each job-file layer (LayerSpec) as the tfjs-layers layer it stands for: the general compute
// path builds its model from these, and for the fast-path types they are exactly the layers
// the exported model has (model-files.ts). Options go to tfjs as given, defaults included, so a
// layer's getConfig() never depends on a tfjs default the job schema does not state.
//
// Deterministic: the same spec and name give the same layer configuration, and no
// initializer gets a seed here: weights are the caller's to set (from the job's seed), as
// buildLayersModel does with the layout's parameters.
import * as tf from '@tensorflow/tfjs';
import { pair } from './parameter-layout.js';
import type { LayerSpec, RecurrentLayerSpec } from './job-schema.js';

/** A recurrent layer; `name` is its tfjs name. */
function recurrentLayer(spec: RecurrentLayerSpec, name: string): tf.RNN {
  switch (spec.type) {
    case 'lstm':
      return tf.layers.lstm({
        name,
        units: spec.config.units,
        activation: spec.config.activation,
        recurrentActivation: spec.config.recurrentActivation,
        useBias: spec.config.useBias,
        returnSequences: spec.config.returnSequences,
      });
    case 'gru':
      return tf.layers.gru({
        name,
        units: spec.config.units,
        activation: spec.config.activation,
        recurrentActivation: spec.config.recurrentActivation,
        useBias: spec.config.useBias,
        returnSequences: spec.config.returnSequences,
      });
    case 'simpleRnn':
      return tf.layers.simpleRNN({
        name,
        units: spec.config.units,
        activation: spec.config.activation,
        useBias: spec.config.useBias,
        returnSequences: spec.config.returnSequences,
      });
  }
}

/**
 * The tfjs-layers layer for one job-file layer, named `name` (its weights are `<name>/kernel`,
 * ...; a bidirectional layer's are `<name>/forward_<name>_<type>/kernel` and `backward_`).
 */
export function tfLayerFor(spec: LayerSpec, name: string): tf.layers.Layer {
  switch (spec.type) {
    // The fast-path five (the exporter of YAML models builds them here too).
    case 'dense':
      return tf.layers.dense({ name, units: spec.config.units, activation: spec.config.activation, useBias: spec.config.useBias });
    case 'conv2d':
      return tf.layers.conv2d({ name, ...spec.config });
    case 'maxPooling2d':
      return tf.layers.maxPooling2d({ name, poolSize: spec.config.poolSize, strides: spec.config.strides, padding: spec.config.padding });
    case 'flatten':
      return tf.layers.flatten({ name });
    case 'dropout':
      return tf.layers.dropout({ name, rate: spec.config.rate });

    case 'embedding':
      return tf.layers.embedding({ name, inputDim: spec.config.inputDim, outputDim: spec.config.outputDim, maskZero: spec.config.maskZero });
    case 'batchNormalization':
      return tf.layers.batchNormalization({ name, momentum: spec.config.momentum, epsilon: spec.config.epsilon });
    case 'layerNormalization':
      return tf.layers.layerNormalization({ name, epsilon: spec.config.epsilon });
    case 'conv1d':
      return tf.layers.conv1d({ name, ...spec.config });
    case 'depthwiseConv2d':
      return tf.layers.depthwiseConv2d({ name, ...spec.config });
    case 'separableConv2d':
      return tf.layers.separableConv2d({ name, ...spec.config });
    case 'conv2dTranspose':
      return tf.layers.conv2dTranspose({ name, ...spec.config });
    case 'zeroPadding2d':
      return tf.layers.zeroPadding2d({ name, padding: spec.config.padding });
    case 'averagePooling2d':
      return tf.layers.averagePooling2d({ name, poolSize: spec.config.poolSize, strides: spec.config.strides, padding: spec.config.padding });
    case 'maxPooling1d':
      return tf.layers.maxPooling1d({ name, poolSize: spec.config.poolSize, strides: spec.config.strides, padding: spec.config.padding });
    case 'averagePooling1d':
      return tf.layers.averagePooling1d({ name, poolSize: spec.config.poolSize, strides: spec.config.strides, padding: spec.config.padding });
    case 'globalAveragePooling1d':
      return tf.layers.globalAveragePooling1d({ name });
    case 'globalAveragePooling2d':
      return tf.layers.globalAveragePooling2d({ name });
    case 'globalMaxPooling1d':
      return tf.layers.globalMaxPooling1d({ name });
    case 'globalMaxPooling2d':
      return tf.layers.globalMaxPooling2d({ name });
    case 'upSampling2d':
      // tfjs takes [rows, columns] only: a single number leaves the output shape unknown.
      return tf.layers.upSampling2d({ name, size: pair(spec.config.size), interpolation: spec.config.interpolation });
    case 'lstm':
    case 'gru':
    case 'simpleRnn':
      return recurrentLayer(spec, name);
    case 'bidirectional':
      return tf.layers.bidirectional({ name, layer: recurrentLayer(spec.config.layer, `${name}_${spec.config.layer.type}`), mergeMode: spec.config.mergeMode });
    case 'reshape':
      return tf.layers.reshape({ name, targetShape: spec.config.targetShape });
    case 'permute':
      return tf.layers.permute({ name, dims: spec.config.dims });
    case 'activation':
      return tf.layers.activation({ name, activation: spec.config.activation });
    case 'leakyRelu':
      return tf.layers.leakyReLU({ name, alpha: spec.config.alpha });
    case 'relu':
      return tf.layers.reLU({ name, maxValue: spec.config.maxValue });
    case 'softmax':
      // tfjs' layer default is axis 1, which fails on inputs of rank 3 or more.
      return tf.layers.softmax({ name, axis: -1 });
  }
}
