/**
 * The lab's loss, the one every part of lib/ calls: mean cross-entropy of logits [batch, 10]
 * against integer labels [batch], with PyTorch's label_smoothing. Built on TensorFlow's fused
 * SparseSoftmaxCrossEntropyWithLogits kernel (lib/runtime), which computes the loss and its
 * gradient in one op on the native backend and falls back to TF.js ops elsewhere.
 */
import * as tf from '@tensorflow/tfjs-core';
import { sparseSoftmaxCrossEntropy } from '../runtime/index';

/** Mean cross-entropy of logits [batch, k] against labels [batch] (int32), smoothed by `labelSmoothing` ∈ [0, 1). */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, labelSmoothing = 0): tf.Scalar {
  if (!(labelSmoothing >= 0 && labelSmoothing < 1))
    throw new Error(`crossEntropy: labelSmoothing must be in [0, 1); got ${labelSmoothing}`);
  if (labelSmoothing === 0) return sparseSoftmaxCrossEntropy(logits, labels);
  // PyTorch's target (1 − ε)·one-hot + ε/k splits the loss in two: (1 − ε) × the plain loss (the
  // fused kernel) + ε × the mean over classes of −log p (the uniform target's share).
  return tf.tidy(() => {
    const plain = sparseSoftmaxCrossEntropy(logits, labels);
    const uniform = tf.neg(tf.mean(tf.logSoftmax(logits))); // mean over [batch, k]
    return tf.add(tf.mul(plain, 1 - labelSmoothing), tf.mul(uniform, labelSmoothing)) as tf.Scalar;
  });
}
