/**
 * Numbers the comparison, the figures and the report agree on: mean ± std over seeds, each run's
 * final and best epoch, and the confusion matrix. Pure functions over metric rows.
 *
 * The row types name only the fields read here, so lib/train/metrics' richer rows fit them as they are.
 */

export type Split = 'train' | 'val' | 'test';

/** One evaluation of one run at the end of one epoch (a subset of lib/train/metrics' epoch row). */
export interface EpochPoint {
  run: string;
  variant: string;
  seed: number;
  epoch: number;
  split: Split | string;
  loss: number;
  accuracy: number;
  /** [10] per-class accuracy, when logged. */
  perClassAccuracy?: ArrayLike<number> | null;
  wallSeconds?: number | null;
  imagesPerSecond?: number | null;
}

/** One optimisation step of one run (a subset of lib/train/metrics' step row). */
export interface StepPoint {
  run: string;
  step: number;
  loss: number;
  accuracy: number;
}

export interface MeanStd {
  mean: number;
  /** Sample standard deviation (n − 1); 0 for a single value. */
  std: number;
  n: number;
}

/** Mean and sample standard deviation; NaN mean for no values. */
export function meanStd(values: readonly number[]): MeanStd {
  const n = values.length;
  if (n === 0) return { mean: NaN, std: NaN, n: 0 };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, std: 0, n };
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return { mean, std: Math.sqrt(variance), n };
}

/** Groups items by a key, keeping first-seen order of the keys. */
export function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = groups.get(k);
    if (list) list.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** What one run reached on one split: at its last epoch and at its best-accuracy epoch. */
export interface RunOutcome {
  run: string;
  variant: string;
  seed: number;
  epochs: number;
  finalAccuracy: number;
  finalLoss: number;
  bestAccuracy: number;
  bestEpoch: number;
  /** Mean wall-clock seconds per epoch (from the train rows' wallSeconds), when logged. */
  secondsPerEpoch: number | null;
}

/**
 * Final and best accuracy of every run on `split` (default 'test'), in first-seen run order.
 * Time per epoch comes from the train split's rows (they carry the epoch's training time).
 */
export function runOutcomes(rows: readonly EpochPoint[], split: Split = 'test'): RunOutcome[] {
  const out: RunOutcome[] = [];
  for (const [run, runRows] of groupBy(rows, (r) => r.run)) {
    const evals = runRows.filter((r) => r.split === split).sort((a, b) => a.epoch - b.epoch);
    if (evals.length === 0) continue;
    const last = evals[evals.length - 1];
    let best = evals[0];
    for (const r of evals) if (r.accuracy > best.accuracy) best = r;
    const times = runRows
      .filter((r) => r.split === 'train' && typeof r.wallSeconds === 'number' && Number.isFinite(r.wallSeconds))
      .map((r) => r.wallSeconds as number);
    out.push({
      run,
      variant: last.variant,
      seed: last.seed,
      epochs: last.epoch,
      finalAccuracy: last.accuracy,
      finalLoss: last.loss,
      bestAccuracy: best.accuracy,
      bestEpoch: best.epoch,
      secondsPerEpoch: times.length ? meanStd(times).mean : null,
    });
  }
  return out;
}

/** counts[true][predicted] for labels and predictions in [0, numClasses). */
export function confusionMatrix(
  labels: ArrayLike<number>,
  predictions: ArrayLike<number>,
  numClasses: number,
): number[][] {
  if (labels.length !== predictions.length) {
    throw new Error(`confusionMatrix: ${labels.length} labels but ${predictions.length} predictions`);
  }
  const counts = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < labels.length; i++) {
    const t = labels[i];
    const p = predictions[i];
    if (!(t >= 0 && t < numClasses && p >= 0 && p < numClasses) || !Number.isInteger(t) || !Number.isInteger(p)) {
      throw new Error(`confusionMatrix: item ${i} has label ${t} / prediction ${p}, outside 0…${numClasses - 1}`);
    }
    counts[t][p]++;
  }
  return counts;
}
