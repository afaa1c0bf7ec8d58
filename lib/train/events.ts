/**
 * What the training loop reports, and when: the events a progress display draws (the CLI a
 * progress bar, notebooks one updating display; lib/train progress), and the clock that turns
 * the steps so far into throughput and time left.
 */
import type { TrainConfig } from './train-config';
import type { CheckpointKind } from './checkpoint';
import type { Split } from './metrics';
import type { EvalResult, PassStats } from './evaluate';

export interface EpochSummary {
  epoch: number;
  epochs: number;
  /** Optimizer steps taken when the epoch ended. */
  step: number;
  /** Learning rate of the epoch's last step. */
  lr: number;
  train: PassStats;
  test: EvalResult;
  val?: EvalResult;
  /** Accuracy that decides the best checkpoint (test, or val with selectBy 'val'). */
  selection: number;
  improved: boolean;
  bestAccuracy: number;
  bestEpoch: number;
  seconds: number;
}

/** What the loop reports; the CLI draws a progress bar from it, notebooks one updating display. */
export type TrainEvent =
  | {
      type: 'start';
      run: string;
      dir: string;
      config: TrainConfig;
      /** Finished epochs of the checkpoint it starts from (0: from scratch). */
      startEpoch: number;
      resumedFrom: CheckpointKind | null;
      session: number;
      batchesPerEpoch: number;
      trainImages: number;
      testImages: number;
      valImages: number;
      backend: string;
      /** What the session repaired before starting (an interrupted --fresh, a damaged metrics block). */
      notes?: string[];
    }
  | {
      type: 'step';
      epoch: number;
      epochs: number;
      /** 1-based batch within the epoch. */
      batch: number;
      batches: number;
      step: number;
      /** Running means over the epoch, as of the latest read-back (every logEvery steps). */
      loss: number;
      accuracy: number;
      lr: number;
      imagesPerSecond: number;
      /** Seconds left in this epoch's training pass, and in the whole run (evaluations included). */
      epochEtaSeconds: number;
      etaSeconds: number;
    }
  | { type: 'eval'; epoch: number; split: Split; images: number; total: number }
  | { type: 'epoch'; summary: EpochSummary }
  | { type: 'checkpoint'; kind: CheckpointKind; file: string; epoch: number }
  | { type: 'interrupted'; message: string; epoch: number; step: number };

export type ProgressCallback = (event: TrainEvent) => void;

/**
 * Throughput and time left of a run, from the current epoch's pace: the steps' wall time so far
 * and the previous epoch's evaluation (before the first, a guess from the training pace).
 */
export class ProgressClock {
  private epochStart = performance.now();
  private evalStart = 0;
  private evalSeconds?: number;

  constructor(
    private readonly config: Pick<TrainConfig, 'epochs'>,
    private readonly batchesPerEpoch: number,
    /** Images evaluated after each epoch (test + validation). */
    private readonly evalImages: number,
  ) {}

  startEpoch(): void {
    this.epochStart = performance.now();
  }

  /** Seconds since the epoch started. */
  epochSeconds(): number {
    return (performance.now() - this.epochStart) / 1000;
  }

  startEvaluation(): void {
    this.evalStart = performance.now();
  }

  endEvaluation(): void {
    this.evalSeconds = (performance.now() - this.evalStart) / 1000;
  }

  /** The 'step' event after `batch` (1-based) batches and `images` images of `epoch`. */
  step(s: {
    epoch: number;
    batch: number;
    step: number;
    images: number;
    loss: number;
    accuracy: number;
    lr: number;
  }): TrainEvent {
    const elapsed = this.epochSeconds();
    const perBatch = elapsed / s.batch;
    const epochEta = perBatch * (this.batchesPerEpoch - s.batch);
    // Evaluation runs at about 3× the training throughput (forward only, larger batches).
    const evalEta = this.evalSeconds ?? this.evalImages / (s.images / elapsed) / 3;
    return {
      type: 'step',
      epoch: s.epoch,
      epochs: this.config.epochs,
      batch: s.batch,
      batches: this.batchesPerEpoch,
      step: s.step,
      loss: s.loss,
      accuracy: s.accuracy,
      lr: s.lr,
      imagesPerSecond: s.images / elapsed,
      epochEtaSeconds: epochEta,
      etaSeconds: epochEta + evalEta + (this.config.epochs - s.epoch) * (perBatch * this.batchesPerEpoch + evalEta),
    };
  }
}
