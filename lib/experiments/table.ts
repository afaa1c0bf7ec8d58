/**
 * The results table: one tidy frame, one row per run and metric, that the report and the notebooks
 * query with short polars expressions. Two sources, never mixed in one statistic:
 *
 *   source 'recorded'  the committed suites (results/recorded/<suite>/experiments.parquet)
 *   source 'yours'     this machine's lab suite (results/experiments.parquet, `npm start`)
 *
 * Columns: source, suite, protocol ('lab': all 50k training images, best epoch on test, as the lab
 * says; 'validation': 45k images, best epoch on the 5k validation split), group, arm, run, seed,
 * status, metric, value. Metrics (fractions, images/s, seconds):
 *
 *   test_acc        test accuracy at the epoch the run's own rule selected (what comparisons quote)
 *   val_acc         best validation accuracy (validation protocol only)
 *   best_test_acc   best test accuracy over the epochs; final_test_acc at the last epoch
 *   images_per_s    median training throughput; epoch_seconds median seconds of a training pass
 *
 * Only finished runs carry metrics; a run that is not done has one row with metric 'status'.
 */
import * as fs from 'fs';
import * as path from 'path';
import pl, { type DataType } from 'nodejs-polars';
import { PATHS } from '../config';
import { EQUIVALENCE_MARGIN, LAB_EXPERIMENTS, PAIRED_COMPARISONS, type ArmComparison, type Suite } from './experiments';
import { EXPERIMENTS_FILE, readExperimentTable } from './experiment-table';
import { readRecorded, type RecordedRow } from './recorded';
import { pairedComparison, type BySeed, type PairedComparison } from './stats';

export type Source = 'recorded' | 'yours';
export type Protocol = 'lab' | 'validation';
const METRICS = ['test_acc', 'val_acc', 'best_test_acc', 'final_test_acc', 'images_per_s', 'epoch_seconds'] as const;
export type Metric = (typeof METRICS)[number];

export interface ResultRow {
  source: Source;
  suite: string;
  protocol: Protocol;
  group: string;
  arm: string;
  run: string;
  seed: number;
  status: string;
  metric: Metric | 'status';
  value: number | null;
}

/** A run before it becomes rows: its identity and its metrics (null when not measured). */
interface RunRecord extends Omit<ResultRow, 'metric' | 'value'> {
  metrics: Record<Metric, number | null>;
}

function rowsOf(runs: readonly RunRecord[]): ResultRow[] {
  return runs.flatMap(({ metrics, ...id }): ResultRow[] => {
    const measured = METRICS.filter((m) => id.status === 'done' && metrics[m] !== null);
    return measured.length
      ? measured.map((metric) => ({ ...id, metric, value: metrics[metric] }))
      : [{ ...id, metric: 'status', value: null }];
  });
}

/** Recorded rows (lib/experiments/recorded) as result rows. */
export function fromRecorded(rows: readonly RecordedRow[]): ResultRow[] {
  return rowsOf(rows.map(recordedRun));
}

function recordedRun(r: RecordedRow): RunRecord {
  return {
    source: 'recorded',
    suite: r.suite,
    protocol: r.select_by === 'test' ? 'lab' : 'validation',
    group: r.group,
    arm: r.arm,
    run: r.name,
    seed: Number(r.seed),
    status: r.status,
    metrics: {
      test_acc: r.selected_test_acc,
      val_acc: r.best_val_acc,
      best_test_acc: r.best_test_acc,
      final_test_acc: r.final_test_acc,
      images_per_s: r.train_images_per_s,
      epoch_seconds: r.train_seconds_per_epoch,
    },
  };
}

/** The results table of the recorded suites under `recordedDir` (suites absent from the checkout are left out). */
function recordedResults(
  recordedDir: string = PATHS.recorded,
  suites: readonly Suite[] = ['paired', 'recipe'],
): ResultRow[] {
  return suites.flatMap((suite) => {
    const dir = path.join(recordedDir, suite);
    return fs.existsSync(path.join(dir, 'experiments.parquet')) ? fromRecorded(readRecorded(suite, dir).rows) : [];
  });
}

/**
 * The results table of your runs: the lab suite's experiments.parquet under `resultsDir` ([] when
 * there is none). The lab suite keeps the best test epoch, so test_acc is its best test accuracy.
 */
export function yourResults(resultsDir: string = PATHS.results): ResultRow[] {
  const file = path.join(resultsDir, EXPERIMENTS_FILE);
  if (!fs.existsSync(file)) return [];
  return rowsOf(
    readExperimentTable(file).map((r) => ({
      source: 'yours',
      suite: 'lab',
      protocol: 'lab',
      group: r.group,
      arm: LAB_EXPERIMENTS.find((e) => e.name === r.name)?.arm ?? r.name,
      run: r.name,
      seed: Number(r.seed),
      status: r.status,
      metrics: {
        test_acc: r.bestTestAccuracy,
        val_acc: null,
        best_test_acc: r.bestTestAccuracy,
        final_test_acc: r.finalTestAccuracy,
        images_per_s: null,
        epoch_seconds: r.secondsPerEpoch,
      },
    })),
  );
}

/** Rows → the tidy frame. */
export function resultsFrame(rows: readonly ResultRow[]): pl.DataFrame {
  const col = <K extends keyof ResultRow>(k: K, dtype: DataType) =>
    pl.Series(k, rows.map((r) => r[k]) as unknown[], dtype);
  return pl.DataFrame([
    col('source', pl.Utf8),
    col('suite', pl.Utf8),
    col('protocol', pl.Utf8),
    col('group', pl.Utf8),
    col('arm', pl.Utf8),
    col('run', pl.Utf8),
    col('seed', pl.Int64),
    col('status', pl.Utf8),
    col('metric', pl.Utf8),
    col('value', pl.Float64),
  ]);
}

/** The recorded suites and your runs as one frame. */
export function loadResults(opts: { recordedDir?: string; resultsDir?: string; yours?: boolean } = {}): pl.DataFrame {
  return resultsFrame([
    ...recordedResults(opts.recordedDir),
    ...(opts.yours === false ? [] : yourResults(opts.resultsDir)),
  ]);
}

/** One arm's values of `metric` by seed, from one source (finished runs only). */
export function bySeed(t: pl.DataFrame, arm: string, metric: Metric = 'test_acc', source: Source = 'recorded'): BySeed {
  const rows = t
    .filter(
      pl
        .col('source')
        .eq(pl.lit(source))
        .and(pl.col('arm').eq(pl.lit(arm)))
        .and(pl.col('metric').eq(pl.lit(metric))),
    )
    .select('seed', 'value')
    .toRecords() as { seed: number; value: number }[];
  return new Map(rows.map((r) => [Number(r.seed), r.value]));
}

/** Mean, sample sd and count of `metric` over the seeds of each arm (one source), in `arms` order. */
export interface ArmSummary {
  arm: string;
  mean: number;
  sd: number;
  n: number;
}

export function armSummaries(
  t: pl.DataFrame,
  arms: readonly string[],
  metric: Metric = 'test_acc',
  source: Source = 'recorded',
): ArmSummary[] {
  const stats = t
    .filter(
      pl
        .col('source')
        .eq(pl.lit(source))
        .and(pl.col('metric').eq(pl.lit(metric)))
        .and(pl.col('arm').isIn([...arms])),
    )
    .groupBy('arm')
    .agg(pl.col('value').mean().alias('mean'), pl.col('value').std().alias('sd'), pl.col('value').count().alias('n'))
    .toRecords() as { arm: string; mean: number; sd: number | null; n: number }[];
  return arms.map((arm) => {
    const s = stats.find((x) => x.arm === arm);
    return s ? { arm, mean: s.mean, sd: s.sd ?? 0, n: Number(s.n) } : { arm, mean: NaN, sd: NaN, n: 0 };
  });
}

/** A comparison of two arms with both arms' summaries: b − a seed by seed. */
export interface ComparisonRow extends Omit<ArmComparison, 'margin'>, PairedComparison {
  meanA: number;
  nA: number;
  meanB: number;
  nB: number;
}

/** Each comparison over one source's finished runs, with the declared equivalence margin. */
export function compare(
  t: pl.DataFrame,
  comparisons: readonly ArmComparison[] = PAIRED_COMPARISONS,
  source: Source = 'recorded',
): ComparisonRow[] {
  return comparisons.map((c) => {
    const [a, b] = [bySeed(t, c.a, 'test_acc', source), bySeed(t, c.b, 'test_acc', source)];
    const [sa, sb] = armSummaries(t, [c.a, c.b], 'test_acc', source);
    return {
      ...c,
      ...pairedComparison(a, b, { margin: c.margin ?? EQUIVALENCE_MARGIN }),
      meanA: sa.mean,
      nA: sa.n,
      meanB: sb.mean,
      nB: sb.n,
    };
  });
}

/** Runs of `arms` without a result (not finished, diverged, …), by arm and status. */
export function unfinished(
  t: pl.DataFrame,
  arms: readonly string[],
  source: Source = 'recorded',
): { arm: string; status: string; seeds: number[] }[] {
  const rows = t
    .filter(
      pl
        .col('source')
        .eq(pl.lit(source))
        .and(pl.col('metric').eq(pl.lit('status')))
        .and(pl.col('arm').isIn([...arms])),
    )
    .toRecords() as unknown as ResultRow[];
  const groups = new Map<string, { arm: string; status: string; seeds: number[] }>();
  for (const r of rows) {
    const key = `${r.arm} ${r.status}`;
    if (!groups.has(key)) groups.set(key, { arm: r.arm, status: r.status, seeds: [] });
    groups.get(key)!.seeds.push(Number(r.seed));
  }
  return [...groups.values()];
}
