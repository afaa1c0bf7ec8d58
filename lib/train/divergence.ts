/**
 * Divergence: training stops when the loss or a parameter becomes NaN or infinite, keeping every
 * saved file, and says where it happened and what is kept. Checked at each read-back of the
 * training statistics (lib/train metrics-recorder) and on each evaluation.
 */
import type { EvalResult } from './evaluate';

/** Training stopped because the loss or a parameter became NaN or infinite. */
export class DivergedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DivergedError';
  }
}

/** What a diverged run keeps, in one sentence (from the run store, lib/train run). */
export type KeptDescription = () => string;

/**
 * Throws when the training window's loss sum is not finite or Adam's moments are not (`finite`
 * false). The loss alone can miss a divergence: in a graph the fused convolution + ReLU turns NaN
 * activations into zeros, so NaN weights may leave it finite; a NaN or infinite gradient at any
 * step so far leaves Adam's first moment non-finite for good.
 */
export function checkTrainingFinite(
  lossSum: number,
  finite: boolean,
  where: { epoch: number; firstStep: number; lastStep: number; lr: number },
  kept: KeptDescription,
): void {
  if (Number.isFinite(lossSum) && finite) return;
  const what = Number.isFinite(lossSum) ? 'gradients became NaN or infinite' : `loss became ${lossSum}`;
  throw new DivergedError(
    `training diverged: the ${what} in epoch ${where.epoch} between steps ${where.firstStep} and ${where.lastStep} ` +
      `(lr ${where.lr}). Nothing of this epoch was saved; ${kept()} Lower --lr (or check the data) and rerun.`,
  );
}

/** Throws when an evaluation's loss after `epoch` is NaN or infinite. */
export function checkEvaluationFinite(
  results: { test: EvalResult; val?: EvalResult },
  where: { epoch: number; lr: number },
  kept: KeptDescription,
): void {
  for (const [name, r] of [
    ['test', results.test],
    ['val', results.val],
  ] as const) {
    if (r && !Number.isFinite(r.loss)) {
      throw new DivergedError(
        `training diverged: the ${name} loss is ${r.loss} after epoch ${where.epoch} (lr ${where.lr}). Nothing of this epoch was saved; ` +
          `${kept()} Lower --lr and rerun.`,
      );
    }
  }
}
