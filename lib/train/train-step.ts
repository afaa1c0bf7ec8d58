/**
 * One optimisation step: forward in training mode, the loss, gradients, Adam update; as one
 * TensorFlow graph on the native backend. It returns the step's statistics on the device, so
 * that the loop reads them back only every few steps (lib/train step-window).
 */
import * as tf from '@tensorflow/tfjs-core';
import { GraphFunction, graphsEnabled, type Precision } from '../runtime/index';
import type { Net } from '../model/index';
import { NUM_CLASSES } from '../config';
import type { Adam } from './adam';
import { crossEntropy } from './loss';

/** Per-step statistics kept on the device: [loss · batch, correct, correct per class × 10]. */
export const STATS = 2 + NUM_CLASSES;

/**
 * One optimisation step: forward in training mode, cross-entropy, gradients, Adam update.
 * On the native backend it runs as one TensorFlow graph per batch size (lib/runtime/graph): the same
 * ops, without JavaScript between them; results equal the eager step's up to float rounding.
 * `graph: false` (or DCF_GRAPH=0 in the environment) keeps every step eager. `precision: 'bf16'`:
 * the graph runs in mixed precision (lib/runtime/precision: fp32 weights and Adam state).
 */
export class TrainStep {
  private readonly params: tf.Variable[];
  /** TF.js variable name → PyTorch name (variableGrads keys its gradients by the former). */
  private readonly torchName: Map<string, string>;
  private readonly graph?: GraphFunction;

  constructor(
    private readonly net: Net,
    private readonly adam: Adam,
    private readonly labelSmoothing = 0,
    opts: { graph?: boolean; precision?: Precision } = {},
  ) {
    this.params = [...net.trainable().values()];
    this.torchName = new Map([...net.trainable()].map(([name, v]) => [v.name, name]));
    if (opts.graph ?? graphsEnabled()) {
      this.graph = new GraphFunction(
        ([x, y, stepSize, bias2Sqrt]) => [
          this.tensors(x as tf.Tensor4D, y as tf.Tensor1D, stepSize as tf.Scalar, bias2Sqrt as tf.Scalar),
        ],
        [...net.variables(), ...adam.variables()],
        { precision: opts.precision },
      );
    } else if (opts.precision === 'bf16') {
      throw new Error(
        'bf16 runs only inside TensorFlow graphs (lib/runtime/precision): unset DCF_GRAPH=0, or train in fp32',
      );
    }
  }

  /** One step on the batch x [batch, 32, 32, 3], y [batch]. Returns its statistics [12] (see STATS; the caller disposes them). */
  run(x: tf.Tensor4D, y: tf.Tensor1D, lr: number): tf.Tensor1D {
    const f = this.adam.advance(lr); // counts the step (JavaScript state stays outside the graph)
    if (!this.graph) return this.tensors(x, y, f.stepSize, f.bias2Sqrt);
    const factors = [tf.scalar(f.stepSize), tf.scalar(f.bias2Sqrt)];
    try {
      return this.graph.call([x, y, ...factors])[0] as tf.Tensor1D;
    } finally {
      tf.dispose(factors);
    }
  }

  /** Frees the graph's TensorFlow sessions (not the net or the optimizer). */
  dispose(): void {
    this.graph?.dispose();
  }

  /** The step's tensor work: what the graph holds. */
  private tensors(
    x: tf.Tensor4D,
    y: tf.Tensor1D,
    stepSize: number | tf.Scalar,
    bias2Sqrt: number | tf.Scalar,
  ): tf.Tensor1D {
    let stats: tf.Tensor1D | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const logits = this.net.forward(x, true);
      const loss = crossEntropy(logits, y, this.labelSmoothing);
      stats = tf.keep(
        tf.tidy(() => {
          const hit = tf.cast(tf.equal(tf.argMax(logits, 1), y), 'float32'); // [batch]
          const perClass = tf.sum(tf.mul(tf.cast(tf.oneHot(y, NUM_CLASSES), 'float32'), tf.expandDims(hit, 1)), 0); // [10]
          return tf.concat([
            tf.reshape(tf.mul(loss, y.shape[0]), [1]),
            tf.reshape(tf.sum(hit), [1]),
            perClass,
          ]) as tf.Tensor1D;
        }),
      );
      return loss;
    }, this.params);
    const named: Record<string, tf.Tensor> = {};
    for (const [id, g] of Object.entries(grads)) named[this.torchName.get(id)!] = g;
    this.adam.apply(named, { stepSize, bias2Sqrt });
    tf.dispose([value, ...Object.values(grads)]);
    return stats!;
  }
}
