// Task losses and metrics. Where the head ends in the activation its loss expects (softmax
// for sparse cross-entropy, sigmoid for binary), the loss is computed from the
// pre-activation logits: same value, but stable for confident predictions.
import * as tf from '@tensorflow/tfjs';
import type { Activation, LossName, MetricName } from '../common/job-schema.js';
import { applyActivation } from './layer-ops.js';

/** A head's output: the pre-activation of its last layer and that layer's activation. */
export interface HeadOutput {
  pre: tf.Tensor2D;
  activation: Activation;
}

const EPSILON = 1e-7;

export function headActivated(out: HeadOutput): tf.Tensor2D {
  switch (out.activation) {
    case 'linear':
      return out.pre;
    case 'softmax':
      return tf.softmax(out.pre);
    case 'sigmoid':
      return tf.sigmoid(out.pre);
    case 'relu':
      return tf.relu(out.pre);
    case 'tanh':
      return tf.tanh(out.pre);
    case 'elu':
      return tf.elu(out.pre);
    case 'softplus':
      return tf.softplus(out.pre);
    default:
      return applyActivation(out.pre, out.activation) as tf.Tensor2D;
  }
}

/**
 * The targets of a batch as a tensor: [n] for one value per example, [n, width] for a target of
 * several columns (TargetInfo.width).
 */
export function targetTensor(targets: Float32Array, width = 1): tf.Tensor1D | tf.Tensor2D {
  return width === 1 ? tf.tensor1d(targets) : tf.tensor2d(targets, [targets.length / width, width]);
}

/**
 * Mean loss over the batch. `y` holds class indices (as floats) or regression targets, [n]; or
 * [n, k] for a target of k columns (regression or multi-label): the mean over the k components too.
 */
export function taskLoss(loss: LossName, out: HeadOutput, y: tf.Tensor1D | tf.Tensor2D): tf.Scalar {
  switch (loss) {
    case 'sparseCategoricalCrossentropy': {
      const classes = out.pre.shape[1];
      const onehot = tf.oneHot(tf.cast(y, 'int32'), classes);
      if (out.activation === 'softmax' || out.activation === 'linear') {
        return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(out.pre)), 1))) as tf.Scalar;
      }
      const p = tf.sum(tf.mul(onehot, headActivated(out)), 1);
      return tf.neg(tf.mean(tf.log(tf.clipByValue(p, EPSILON, 1)))) as tf.Scalar;
    }
    case 'binaryCrossentropy': {
      const yy = tf.reshape(y, [out.pre.shape[0], -1]);
      if (out.activation === 'sigmoid' || out.activation === 'linear') {
        // log(1 + e^z) − y·z, written so that it never overflows.
        const z = out.pre;
        return tf.mean<tf.Scalar>(tf.add(tf.sub(tf.relu(z), tf.mul(z, yy)), tf.softplus(tf.neg(tf.abs(z)))));
      }
      const p = tf.clipByValue(headActivated(out), EPSILON, 1 - EPSILON);
      return tf.neg(tf.mean(tf.add(tf.mul(yy, tf.log(p)), tf.mul(tf.sub(1, yy), tf.log(tf.sub(1, p)))))) as tf.Scalar;
    }
    case 'meanSquaredError':
      return tf.mean(tf.square(tf.sub(headActivated(out), tf.reshape(y, [out.pre.shape[0], -1]))));
    case 'meanAbsoluteError':
      return tf.mean(tf.abs(tf.sub(headActivated(out), tf.reshape(y, [out.pre.shape[0], -1]))));
  }
}

/**
 * Sum over the batch of a metric's per-example value (the caller divides by the count). For a
 * target of k columns ([n, k]) an example's value is the mean over its k components: the mean
 * squared or absolute error, or the fraction of its labels predicted right.
 */
export function metricSum(metric: MetricName, loss: LossName, out: HeadOutput, y: tf.Tensor1D | tf.Tensor2D): tf.Scalar {
  return y.rank === 2 ? vectorMetricSum(metric, loss, out, y as tf.Tensor2D) : scalarMetricSum(metric, loss, out, y as tf.Tensor1D);
}

function vectorMetricSum(metric: MetricName, loss: LossName, out: HeadOutput, y: tf.Tensor2D): tf.Scalar {
  const k = y.shape[1];
  const predicted = headActivated(out);
  switch (metric) {
    case 'accuracy': {
      if (loss !== 'binaryCrossentropy') throw new RangeError(`accuracy of a target of ${k} columns needs binaryCrossentropy (multi-label), not ${loss}`);
      const labels = tf.cast(tf.greater(predicted, 0.5), 'float32');
      return tf.div(tf.sum(tf.cast(tf.equal(labels, y), 'float32')), k);
    }
    case 'mse':
      return tf.div(tf.sum(tf.square(tf.sub(predicted, y))), k);
    case 'mae':
      return tf.div(tf.sum(tf.abs(tf.sub(predicted, y))), k);
  }
}

function scalarMetricSum(metric: MetricName, loss: LossName, out: HeadOutput, y: tf.Tensor1D): tf.Scalar {
  switch (metric) {
    case 'accuracy': {
      if (loss === 'binaryCrossentropy') {
        const predicted = tf.cast(tf.greater(tf.reshape(headActivated(out), [-1]), 0.5), 'float32');
        return tf.sum(tf.cast(tf.equal(predicted, y), 'float32'));
      }
      // argmax is the same before and after a softmax.
      const logits = out.activation === 'softmax' ? out.pre : headActivated(out);
      return tf.sum(tf.cast(tf.equal(tf.cast(tf.argMax(logits, 1), 'float32'), y), 'float32'));
    }
    case 'mse':
      return tf.sum(tf.square(tf.sub(tf.reshape(headActivated(out), [-1]), y)));
    case 'mae':
      return tf.sum(tf.abs(tf.sub(tf.reshape(headActivated(out), [-1]), y)));
  }
}
