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

/** Mean loss over the batch. `y` holds class indices (as floats) or regression targets. */
export function taskLoss(loss: LossName, out: HeadOutput, y: tf.Tensor1D): tf.Scalar {
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
      const yy = tf.reshape(y, [-1, 1]);
      if (out.activation === 'sigmoid' || out.activation === 'linear') {
        // log(1 + e^z) − y·z, written so that it never overflows.
        const z = out.pre;
        return tf.mean<tf.Scalar>(tf.add(tf.sub(tf.relu(z), tf.mul(z, yy)), tf.softplus(tf.neg(tf.abs(z)))));
      }
      const p = tf.clipByValue(headActivated(out), EPSILON, 1 - EPSILON);
      return tf.neg(tf.mean(tf.add(tf.mul(yy, tf.log(p)), tf.mul(tf.sub(1, yy), tf.log(tf.sub(1, p)))))) as tf.Scalar;
    }
    case 'meanSquaredError':
      return tf.mean(tf.square(tf.sub(headActivated(out), tf.reshape(y, [-1, 1]))));
    case 'meanAbsoluteError':
      return tf.mean(tf.abs(tf.sub(headActivated(out), tf.reshape(y, [-1, 1]))));
  }
}

/** Sum over the batch of a metric's per-example value (the caller divides by the count). */
export function metricSum(metric: MetricName, loss: LossName, out: HeadOutput, y: tf.Tensor1D): tf.Scalar {
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
