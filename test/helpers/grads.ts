// Cross-entropy of a net's training-mode logits, and the gradient norm of each trainable variable.
import * as tf from '@tensorflow/tfjs-core';
import type { Net } from '../../lib/model/model';

export function oneHotLoss(net: Net, x: tf.Tensor4D, labels: tf.Tensor1D): tf.Scalar {
  const logits = net.forward(x, true);
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(labels, 10), tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

export function gradNorms(net: Net, x: tf.Tensor4D, labels: tf.Tensor1D): Map<string, number> {
  const vars = net.trainable();
  const { value, grads } = tf.variableGrads(() => oneHotLoss(net, x, labels), [...vars.values()]);
  const out = new Map([...vars].map(([name, v]) => [name, tf.tidy(() => tf.norm(grads[v.name]).dataSync()[0])]));
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}
