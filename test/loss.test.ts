// The lab's one loss (lib/train/loss): the fused kernel's cross-entropy, and PyTorch's
// label_smoothing built on it, against the one-hot formula it replaces.
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { crossEntropy } from '../lib/train/loss';

/** PyTorch's F.cross_entropy(logits, labels, label_smoothing=ε), from its definition. */
function reference(logits: tf.Tensor2D, labels: tf.Tensor1D, eps: number): tf.Scalar {
  return tf.tidy(() => {
    const k = logits.shape[1];
    const target = tf.add(tf.mul(tf.cast(tf.oneHot(labels, k), 'float32'), 1 - eps), eps / k);
    return tf.neg(tf.mean(tf.sum(tf.mul(target, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  });
}

describe('crossEntropy', () => {
  const logits = tf.tensor2d([
    [2, -1, 0.5, 0, 3, -2, 1, 0, 0.2, -0.3],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 9],
  ]);
  const labels = tf.tensor1d([4, 1], 'int32');

  for (const eps of [0, 0.1, 0.5]) {
    it(`equals PyTorch's definition with label smoothing ${eps}, value and gradient`, () => {
      const grad = (f: (l: tf.Tensor2D) => tf.Scalar) => tf.valueAndGrad((l: tf.Tensor) => f(l as tf.Tensor2D))(logits);
      const ours = grad((l) => crossEntropy(l, labels, eps));
      const ref = grad((l) => reference(l, labels, eps));
      expect(ours.value.dataSync()[0]).toBeCloseTo(ref.value.dataSync()[0], 5);
      const [a, b] = [ours.grad.dataSync(), ref.grad.dataSync()];
      for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i], 5);
      tf.dispose([ours.value, ours.grad, ref.value, ref.grad]);
    });
  }

  it('refuses a smoothing outside [0, 1)', () => {
    expect(() => crossEntropy(logits, labels, 1)).toThrow(/labelSmoothing must be in \[0, 1\)/);
  });
});
