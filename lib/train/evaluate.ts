/**
 * Evaluation-mode inference, the one path: training's evaluation of the test and validation
 * splits, `npm run predict`, the notebooks' predictions (lib/report visualize) and the recorded
 * confusion matrices all run their batches through inferBatches here, with BatchNorm on running
 * statistics and the forward as one TensorFlow graph per batch shape (EvalForward).
 */
import * as tf from '@tensorflow/tfjs-core';
import { GraphFunction, graphsEnabled, type Precision } from '../runtime/index';
import type { Net } from '../model/index';
import { batches, type Batch, type Cifar10Split } from '../data/index';
import { NUM_CLASSES, type NormName } from '../config';
import { crossEntropy } from './loss';

/** Loss and accuracy of one pass over a split. */
export interface PassStats {
  loss: number;
  accuracy: number;
  /** [10] fraction correct per class (NaN for a class without images). */
  perClassAccuracy: number[];
  images: number;
  seconds: number;
  imagesPerSecond: number;
}

/** An evaluation pass (BatchNorm on running statistics), with its confusion matrix. */
export interface EvalResult extends PassStats {
  /** [10][10] counts: confusion[true class][predicted class]. */
  confusion: number[][];
}

/**
 * Evaluation-mode logits [batch, 10] of `net` (BatchNorm on running statistics), run as a
 * TensorFlow graph per batch shape (lib/runtime graph) on the native backend unless `graph: false`
 * or DCF_GRAPH=0; in mixed precision with `precision: 'bf16'` (lib/runtime/precision). Keep one for many
 * batches: the first two calls per shape also record the forward.
 */
export class EvalForward {
  private readonly graphs?: { plain: GraphFunction; cached: GraphFunction };

  constructor(
    private readonly net: Net,
    opts: { graph?: boolean; precision?: Precision } = {},
  ) {
    if (opts.graph ?? graphsEnabled()) {
      const o = { precision: opts.precision };
      this.graphs = {
        plain: new GraphFunction(([x]) => [net.forward(x as tf.Tensor4D, false)], net.variables(), o),
        cached: new GraphFunction(
          ([x, filters]) => [net.forward(x as tf.Tensor4D, false, { filters: filters as tf.Tensor2D })],
          net.variables(),
          o,
        ),
      };
    } else if (opts.precision === 'bf16') {
      throw new Error(
        'bf16 runs only inside TensorFlow graphs (lib/runtime/precision): unset DCF_GRAPH=0, or evaluate in fp32',
      );
    }
  }

  /**
   * Logits of x [batch, 32, 32, 3] (the caller disposes them). `filters`: the head's filters
   * [10, 64] from net.headFilters(), made once for many batches instead of at every one.
   */
  run(x: tf.Tensor4D, opts: { filters?: tf.Tensor2D } = {}): tf.Tensor2D {
    if (!this.graphs) return this.net.forward(x, false, opts);
    const out = opts.filters ? this.graphs.cached.call([x, opts.filters]) : this.graphs.plain.call([x]);
    return out[0] as tf.Tensor2D;
  }

  /** Frees the graphs' TensorFlow sessions (not the net). */
  dispose(): void {
    this.graphs?.plain.dispose();
    this.graphs?.cached.dispose();
  }
}

export interface InferOptions {
  norm: NormName;
  /** Images per forward (default 500). */
  batchSize?: number;
  /** Only the images at these indices, in this order (default: the whole split). */
  indices?: ArrayLike<number>;
  /** A forward kept across calls (default: one made, and freed, for this call). */
  forward?: EvalForward;
  /** The precision of the forward made for this call (default fp32; a given `forward` has its own). */
  precision?: Precision;
}

/**
 * The one inference loop: yields each batch of `split` (x [batch, 32, 32, 3], y [batch], indices)
 * with its evaluation-mode logits [batch, 10]. Its tensors are freed when the next batch is asked
 * for, or when the caller stops. Synchronous, so that synchronous callers use it too.
 */
function* inferBatches(net: Net, split: Cifar10Split, opts: InferOptions): Generator<Batch & { logits: tf.Tensor2D }> {
  const forward = opts.forward ?? new EvalForward(net, { precision: opts.precision });
  try {
    for (const batch of batches(split, { batchSize: opts.batchSize ?? 500, norm: opts.norm, indices: opts.indices })) {
      const logits = tf.tidy(() => forward.run(batch.x)); // an eager forward's intermediates freed
      try {
        yield { ...batch, logits };
      } finally {
        tf.dispose([batch.x, batch.y, logits]);
      }
    }
  } finally {
    if (!opts.forward) forward.dispose();
  }
}

/**
 * Evaluates `net` on a whole split (BatchNorm on running statistics): loss, accuracy, per-class
 * accuracy, confusion matrix. Reads from the device once, at the end. `onBatch` may throw to stop
 * the pass (train() does on an interrupt).
 */
export async function evaluate(
  net: Net,
  split: Cifar10Split,
  opts: Omit<InferOptions, 'indices'> & { onBatch?: (images: number, total: number) => void },
): Promise<EvalResult> {
  const t0 = performance.now();
  let lossSum = tf.scalar(0);
  let confusion = tf.zeros([NUM_CLASSES, NUM_CLASSES], 'int32') as tf.Tensor2D;
  let done = 0;
  try {
    for (const { logits, y, indices } of inferBatches(net, split, opts)) {
      const [nextLoss, nextConfusion] = tf.tidy(() => [
        tf.add(lossSum, tf.mul(crossEntropy(logits, y), indices.length)),
        tf.add(confusion, tf.math.confusionMatrix(y, tf.argMax(logits, 1) as tf.Tensor1D, NUM_CLASSES)),
      ]);
      tf.dispose([lossSum, confusion]);
      lossSum = nextLoss as tf.Scalar;
      confusion = nextConfusion as tf.Tensor2D;
      done += indices.length;
      opts.onBatch?.(done, split.count);
      await yieldToEventLoop();
    }
    const [loss, flat] = await Promise.all([lossSum.data(), confusion.data()]);
    const matrix = Array.from({ length: NUM_CLASSES }, (_, t) =>
      Array.from(flat.slice(t * NUM_CLASSES, (t + 1) * NUM_CLASSES)),
    );
    const correct = matrix.reduce((s, row, t) => s + row[t], 0);
    const seconds = (performance.now() - t0) / 1000;
    return {
      loss: loss[0] / Math.max(split.count, 1),
      accuracy: correct / Math.max(split.count, 1),
      perClassAccuracy: matrix.map((row, t) => row[t] / row.reduce((a, b) => a + b, 0)),
      images: split.count,
      seconds,
      imagesPerSecond: split.count / seconds,
      confusion: matrix,
    };
  } finally {
    tf.dispose([lossSum, confusion]); // also when onBatch threw
  }
}

/**
 * A run's evaluation after an epoch: the test split, then the validation split when there is one.
 * `onBatch` may throw to stop (train() does on an interrupt).
 */
export async function evaluateRun(
  net: Net,
  splits: { test: Cifar10Split; val?: Cifar10Split },
  opts: Omit<InferOptions, 'indices'>,
  onBatch: (split: 'test' | 'val', images: number, total: number) => void,
): Promise<{ test: EvalResult; val?: EvalResult }> {
  const test = await evaluate(net, splits.test, {
    ...opts,
    onBatch: (images, total) => onBatch('test', images, total),
  });
  const val = splits.val
    ? await evaluate(net, splits.val, { ...opts, onBatch: (images, total) => onBatch('val', images, total) })
    : undefined;
  return { test, val };
}

/**
 * Evaluation-mode logits of the images of `split` (or those at `indices`), [n × 10] row-major,
 * read back batch by batch. `onBatch` reports the images done.
 */
export async function predictLogits(
  net: Net,
  split: Cifar10Split,
  opts: InferOptions & { onBatch?: (images: number, total: number) => void },
): Promise<Float32Array> {
  const total = opts.indices?.length ?? split.count;
  const out = new Float32Array(total * NUM_CLASSES);
  let done = 0;
  for (const { logits, indices } of inferBatches(net, split, opts)) {
    out.set(await logits.data(), done * NUM_CLASSES);
    done += indices.length;
    opts.onBatch?.(done, total);
  }
  return out;
}

/** Predicted classes (argmax of the evaluation-mode logits) of the images of `split` (or those at `indices`), synchronously. */
export function predictClasses(net: Net, split: Cifar10Split, opts: InferOptions): Int32Array {
  const out = new Int32Array(opts.indices?.length ?? split.count);
  let done = 0;
  for (const { logits, indices } of inferBatches(net, split, opts)) {
    out.set(
      tf.tidy(() => tf.argMax(logits, 1).dataSync()),
      done,
    );
    done += indices.length;
  }
  return out;
}

/** Lets timers and I/O run (notebook display updates, signals) between steps. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
