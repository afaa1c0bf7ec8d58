/**
 * What one training pass measures, kept on the device between read-backs: every step adds its
 * statistics [12] (lib/train train-step STATS) to a window; every `logEvery` steps (and at the
 * epoch's last batch) the window is read back once: a step row, the running means, a NaN check.
 * At the end of the epoch it gives the pass's statistics and the epoch's metrics rows.
 */
import * as tf from '@tensorflow/tfjs-core';
import { NUM_CLASSES } from '../config';
import type { Cifar10Split } from '../data/index';
import type { Adam } from './adam';
import { checkTrainingFinite, type KeptDescription } from './divergence';
import type { EvalResult, PassStats } from './evaluate';
import type { EpochRow, RowOrigin, Split, StepRow } from './metrics';
import { STATS } from './train-step';

export class MetricsRecorder {
  private readonly trainCounts: number[];
  /** [STATS] sums since the last read-back, on the device. */
  private window?: tf.Tensor1D;
  private windowStart = 0;
  private windowImages = 0;
  private windowSteps = 0;
  private totals = new Float64Array(STATS);
  private epoch = 0;
  private started = 0;
  /** Batches and images of this epoch so far. */
  batch = 0;
  images = 0;
  /** Running means over the epoch, as of the latest read-back. */
  loss = NaN;
  accuracy = NaN;
  stepRows: StepRow[] = [];

  constructor(
    private readonly origin: Omit<RowOrigin, 'epoch'>,
    private readonly config: { logEvery: number },
    train: Cifar10Split,
    private readonly batchesPerEpoch: number,
  ) {
    this.trainCounts = new Array<number>(NUM_CLASSES).fill(0);
    for (let i = 0; i < train.count; i++) this.trainCounts[train.labels[i]]++;
  }

  startEpoch(epoch: number): void {
    this.epoch = epoch;
    this.batch = this.images = 0;
    this.loss = this.accuracy = NaN;
    this.stepRows = [];
    this.totals = new Float64Array(STATS);
    this.started = this.windowStart = performance.now();
    this.windowImages = this.windowSteps = 0;
    this.window?.dispose();
    this.window = tf.zeros([STATS]);
  }

  /** Adds one step's statistics (disposing them). True when a read-back is due. */
  add(stats: tf.Tensor1D, images: number): boolean {
    const next = tf.add(this.window!, stats) as tf.Tensor1D;
    tf.dispose([this.window!, stats]);
    this.window = next;
    this.batch++;
    this.images += images;
    this.windowImages += images;
    this.windowSteps++;
    return this.windowSteps === this.config.logEvery || this.batch === this.batchesPerEpoch;
  }

  /** Reads the window back (one wait on the device): NaN check, a step row, the running means. */
  async readBack(adam: Adam, lr: number, kept: KeptDescription): Promise<void> {
    const finiteCheck = adam.allFinite();
    const [w, finite] = await Promise.all([this.window!.data(), finiteCheck.data()]);
    tf.dispose([this.window!, finiteCheck]);
    this.window = tf.zeros([STATS]);
    checkTrainingFinite(
      w[0],
      !!finite[0],
      { epoch: this.epoch, firstStep: adam.stepCount - this.windowSteps + 1, lastStep: adam.stepCount, lr },
      kept,
    );
    for (let i = 0; i < STATS; i++) this.totals[i] += w[i];
    const seconds = (performance.now() - this.windowStart) / 1000;
    this.stepRows.push({
      ...this.origin,
      epoch: this.epoch,
      step: adam.stepCount,
      batch: this.batch,
      images: this.windowImages,
      loss: w[0] / this.windowImages,
      accuracy: w[1] / this.windowImages,
      lr,
      imagesPerSecond: this.windowImages / seconds,
      time: new Date(),
    });
    this.loss = this.totals[0] / this.images;
    this.accuracy = this.totals[1] / this.images;
    this.windowStart = performance.now();
    this.windowImages = this.windowSteps = 0;
  }

  /** The epoch's training pass: running means over its batches (augmented, BatchNorm in training mode). */
  pass(): PassStats {
    const seconds = (performance.now() - this.started) / 1000;
    return {
      loss: this.totals[0] / this.images,
      accuracy: this.totals[1] / this.images,
      perClassAccuracy: this.trainCounts.map((c, k) => this.totals[2 + k] / c),
      images: this.images,
      seconds,
      imagesPerSecond: this.images / seconds,
    };
  }

  /** The epoch's metrics rows: train, test and (when evaluated) val. */
  epochRows(s: { step: number; lr: number; train: PassStats; test: EvalResult; val?: EvalResult }): EpochRow[] {
    const row = (split: Split, r: PassStats): EpochRow => ({
      ...this.origin,
      epoch: this.epoch,
      split,
      step: s.step,
      images: r.images,
      loss: r.loss,
      accuracy: r.accuracy,
      perClassAccuracy: r.perClassAccuracy,
      lr: s.lr,
      imagesPerSecond: r.imagesPerSecond,
      wallSeconds: r.seconds,
      time: new Date(),
    });
    return [row('train', s.train), row('test', s.test), ...(s.val ? [row('val', s.val)] : [])];
  }

  /** Frees the window (the loop ends, or stopped). */
  dispose(): void {
    this.window?.dispose();
    this.window = undefined;
  }
}
