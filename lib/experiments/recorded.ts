/**
 * Recorded results: a suite's outcome committed to git under results/recorded/<suite>/, so that
 * the numbers the docs and the report quote can be checked on any machine. No checkpoints.
 *
 *   experiments.parquet  one row per experiment of the suite (RECORDED_SCHEMA, snake_case)
 *   epochs.parquet       every run's per-epoch metrics (lib/train/metrics' epoch rows)
 *   configs.json         { run name: its TrainConfig }
 *   provenance.json      { suite, batches }: one batch per `--record` that added runs — its runs,
 *                        commit, machine, TensorFlow, dates, command, wall time (Provenance)
 *   confusion.parquet    each finished run's test confusion matrix at its selected (best) checkpoint,
 *                        long form: run, arm, seed, true, predicted, count (recordConfusions)
 *
 * The test accuracy a comparison quotes is `selected_test_acc`: test accuracy at the epoch that
 * the run's own rule selected (validation accuracy in the paired suite, test in the lab's).
 *
 * Recording merges: the runs found in the runs folder replace their earlier record, every other
 * recorded run is kept with its batch of provenance, so a suite can be extended (more seeds, more
 * arms) by runs made later, elsewhere, or by many cluster jobs into one folder.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import pl, { type DataType } from 'nodejs-polars';
import { writeFileAtomic } from '../formats/index';
import { PATHS } from '../config';
import {
  describeSettings,
  EQUIVALENCE_MARGIN,
  experimentDirs,
  experimentStatus,
  PAIRED_COMPARISONS,
  SUITES,
  type ArmComparison,
  type Experiment,
  type Suite,
} from './experiments';
import {
  checkpointPath,
  type EpochRow,
  evaluate,
  listRuns,
  loadEpochMetrics,
  loadNetFromStateFile,
  readEpochRows,
} from '../train/index';
import { loadCifar10 } from '../data/index';
import { pairedComparison, type BySeed, type PairedComparison, verdictPhrase } from './stats';
import { meanStd } from './summary';

export interface RecordedRow {
  name: string;
  suite: string;
  group: string;
  /** The run's name without its seed (`dynamic` of `dynamic-s3`): what is compared across seeds. */
  arm: string;
  purpose: string;
  settings: string;
  variant: string;
  seed: number;
  /** lib/experiments' state: done, partial, not-started, diverged, … */
  status: string;
  epochs: number;
  epochs_done: number;
  /** Which split chose the epoch: 'val' (paired suite) or 'test' (the lab's rule). */
  select_by: string;
  selected_epoch: number | null;
  /** Test accuracy at the selected epoch: the number comparisons quote. */
  selected_test_acc: number | null;
  best_test_acc: number | null;
  final_test_acc: number | null;
  /** Best validation accuracy (null without a validation split). */
  best_val_acc: number | null;
  /** Median training throughput over the run's epochs. */
  train_images_per_s: number | null;
  /** Median wall-clock seconds of a training pass. */
  train_seconds_per_epoch: number | null;
}

export const RECORDED_SCHEMA: { [K in keyof RecordedRow]-?: DataType } = {
  name: pl.Utf8,
  suite: pl.Utf8,
  group: pl.Utf8,
  arm: pl.Utf8,
  purpose: pl.Utf8,
  settings: pl.Utf8,
  variant: pl.Utf8,
  seed: pl.Int64,
  status: pl.Utf8,
  epochs: pl.Int32,
  epochs_done: pl.Int32,
  select_by: pl.Utf8,
  selected_epoch: pl.Int32,
  selected_test_acc: pl.Float64,
  best_test_acc: pl.Float64,
  final_test_acc: pl.Float64,
  best_val_acc: pl.Float64,
  train_images_per_s: pl.Float64,
  train_seconds_per_epoch: pl.Float64,
};

/** One `--record` that added runs: where and when they trained. */
export interface RecordBatch {
  /** The runs this batch recorded (their rows, epochs and configs). */
  runs: string[];
  /** The commit whose code trained the runs. */
  commit: string;
  machine: { cpu: string; cores: number; flags: string[]; memoryGiB: number };
  /** The backend string the runs recorded (TensorFlow version included). */
  backend: string;
  /** When the record was written, and the span of the runs' epochs. */
  recordedAt: string;
  firstEpochAt: string | null;
  lastEpochAt: string | null;
  /** Sum of the runs' training and evaluation wall-clock seconds (one run at a time). */
  runSeconds: number;
  command: string;
  note: string;
}

export interface Provenance {
  suite: string;
  /** Oldest first; every recorded run is in exactly one batch. */
  batches: RecordBatch[];
}

/** The batch that recorded `run` (undefined for a run never recorded). */
export function batchOf(provenance: Provenance, run: string): RecordBatch | undefined {
  return provenance.batches.find((b) => b.runs.includes(run));
}

/** What a run's epochs say, by its selection rule. Pure. */
export function summarizeRun(
  rows: readonly (Pick<EpochRow, 'epoch' | 'accuracy' | 'imagesPerSecond' | 'wallSeconds'> & { split: string })[],
  selectBy: 'val' | 'test',
) {
  const of = (split: string) => rows.filter((r) => r.split === split).sort((a, b) => a.epoch - b.epoch);
  const test = of('test');
  const val = of('val');
  const train = of('train');
  const argmax = (xs: typeof test) =>
    xs.reduce<(typeof test)[number] | undefined>(
      (best, r) => (best === undefined || r.accuracy > best.accuracy ? r : best),
      undefined,
    );
  const chooser = argmax(selectBy === 'val' ? val : test);
  // The median, not the mean: an epoch that shared the machine or was paused should not set the rate.
  const median = (xs: number[]) => {
    if (xs.length === 0) return null;
    const sorted = [...xs].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  };
  return {
    selected_epoch: chooser?.epoch ?? null,
    selected_test_acc: chooser ? (test.find((r) => r.epoch === chooser.epoch)?.accuracy ?? null) : null,
    best_test_acc: argmax(test)?.accuracy ?? null,
    final_test_acc: test.length ? test[test.length - 1].accuracy : null,
    best_val_acc: argmax(val)?.accuracy ?? null,
    train_images_per_s: median(train.map((r) => r.imagesPerSecond)),
    train_seconds_per_epoch: median(train.map((r) => r.wallSeconds)),
  };
}

/** The suite's rows from its runs under `runsDir` (reads, never writes). */
function recordedRows(
  suite: Suite,
  runsDir: string,
  experiments: readonly Experiment[] = SUITES[suite],
): RecordedRow[] {
  const present = new Set(listRuns(runsDir));
  return experiments.map((e) => {
    const status = experimentStatus(e, runsDir);
    const rows = present.has(e.name) ? readEpochRows({ runsDir, runs: [e.name] }) : [];
    return {
      name: e.name,
      suite,
      group: e.group,
      arm: e.arm,
      purpose: e.purpose,
      settings: describeSettings(e.config),
      variant: e.config.variant,
      seed: e.config.seed,
      status: status.state,
      epochs: e.config.epochs,
      epochs_done: status.epochsDone,
      select_by: e.config.selectBy,
      ...summarizeRun(rows, e.config.selectBy),
    };
  });
}

function frame<T>(schema: { [K in keyof T]-?: DataType }, rows: readonly T[]): pl.DataFrame {
  return pl.DataFrame(
    (Object.keys(schema) as (keyof T & string)[]).map((k) =>
      pl.Series(k, rows.map((r) => r[k]) as unknown[], schema[k]),
    ),
  );
}

function machine(): RecordBatch['machine'] {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const flags = (/^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '').split(' ');
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    // The flags that change TensorFlow's CPU kernels (and so the speed figures).
    flags: flags.filter((f) => /^(avx2|fma|avx512f|avx512_bf16|avx512_vnni|amx_\w+)$/.test(f)).sort(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  };
}

/** The commit of the checkout at `dir` (with `-dirty` when it has uncommitted changes to tracked files). */
function gitCommit(dir: string = PATHS.root): string {
  try {
    const head = execFileSync('git', ['-C', dir, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', dir, 'status', '--porcelain', '--untracked-files=no'], {
      encoding: 'utf8',
    }).trim();
    return dirty ? `${head}-dirty` : head;
  } catch {
    return 'unknown';
  }
}

/**
 * Records the suite's runs found under `runsDir` (default: the suite's results folder) into
 * results/recorded/<suite>/, merged with what is recorded there: those runs' rows, epochs and
 * configs replace their earlier record and form a new provenance batch; every other recorded run
 * is kept as it was. Every file is written atomically; the folder holds nothing else.
 */
export function recordSuite(
  suite: Suite,
  opts: {
    runsDir?: string;
    outDir?: string;
    commit?: string;
    command: string;
    note?: string;
    experiments?: readonly Experiment[];
  },
): { dir: string; rows: RecordedRow[]; provenance: Provenance; recorded: string[] } {
  const runsDir = opts.runsDir ?? experimentDirs({ suite }).runsDir;
  const dir = opts.outDir ?? path.join(PATHS.recorded, suite);
  const experiments = opts.experiments ?? SUITES[suite];
  const before = fs.existsSync(path.join(dir, 'experiments.parquet')) ? readRecorded(suite, dir) : undefined;
  const fresh = recordedRows(suite, runsDir, experiments).filter((r) => r.epochs_done > 0);
  const names = fresh.map((r) => r.name);
  const kept = (before?.rows ?? []).filter((r) => !names.includes(r.name));
  // A kept run's description follows the table (its purpose may be reworded); its numbers stay as recorded.
  const describe = (r: RecordedRow): RecordedRow => {
    const e = experiments.find((x) => x.name === r.name);
    return e ? { ...r, group: e.group, arm: e.arm, purpose: e.purpose, settings: describeSettings(e.config) } : r;
  };
  // The table's order; recorded runs of experiments the table no longer lists are kept at the end, never dropped.
  const rows = [
    ...experiments.map(
      (e) =>
        fresh.find((r) => r.name === e.name) ??
        kept.map(describe).find((r) => r.name === e.name) ??
        recordedRows(suite, runsDir, [e])[0],
    ),
    ...kept.filter((r) => !experiments.some((e) => e.name === r.name)),
  ];
  const epochs = names.length ? loadEpochMetrics({ runsDir, runs: names }) : undefined;
  const epochRows = (epochs?.toRecords() ?? []) as unknown as EpochRow[]; // the frame above, not a second read
  const oldEpochs = path.join(dir, 'epochs.parquet');
  const keptEpochs = fs.existsSync(oldEpochs)
    ? pl.readParquet(oldEpochs).filter(pl.col('run').isIn(names).not())
    : undefined;
  const allEpochs = [keptEpochs, epochs].filter((f): f is pl.DataFrame => f !== undefined && f.height > 0);
  const configsFile = path.join(dir, 'configs.json');
  const configs = fs.existsSync(configsFile)
    ? (JSON.parse(fs.readFileSync(configsFile, 'utf8')) as Record<string, unknown>)
    : {};
  for (const e of experiments) if (names.includes(e.name)) configs[e.name] = e.config;
  const times = epochRows.map((r) => r.time.getTime()).sort((a, b) => a - b);
  const batch: RecordBatch = {
    runs: names,
    commit: opts.commit ?? gitCommit(),
    machine: machine(),
    backend: [...new Set(epochRows.map((r) => r.backend))].join(' | '),
    recordedAt: new Date().toISOString(),
    firstEpochAt: times.length ? new Date(times[0]).toISOString() : null,
    lastEpochAt: times.length ? new Date(times[times.length - 1]).toISOString() : null,
    runSeconds: Math.round(epochRows.reduce((s, r) => s + r.wallSeconds, 0)),
    command: opts.command,
    note: opts.note ?? '',
  };
  const earlier = (before?.provenance.batches ?? [])
    .map((b) => ({ ...b, runs: b.runs.filter((r) => !names.includes(r)) }))
    .filter((b) => b.runs.length);
  const provenance: Provenance = { suite, batches: names.length ? [...earlier, batch] : earlier };
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(
    path.join(dir, 'experiments.parquet'),
    frame(RECORDED_SCHEMA, rows).writeParquet({ compression: 'zstd' }),
  );
  if (allEpochs.length)
    writeFileAtomic(oldEpochs, pl.concat(allEpochs, { how: 'diagonal' }).writeParquet({ compression: 'zstd' }));
  writeFileAtomic(configsFile, `${JSON.stringify(configs, null, 2)}\n`);
  writeFileAtomic(path.join(dir, 'provenance.json'), `${JSON.stringify(provenance, null, 2)}\n`);
  return { dir, rows, provenance, recorded: names };
}

/** A recorded suite read back: its rows and provenance (a clear error when it is missing or incomplete). */
export function readRecorded(
  suite: Suite,
  dir: string = path.join(PATHS.recorded, suite),
): { rows: RecordedRow[]; provenance: Provenance } {
  const table = path.join(dir, 'experiments.parquet');
  if (!fs.existsSync(table))
    throw new Error(
      `no recorded results for the ${suite} suite: ${table} is missing (git checkout -- results/recorded restores it)`,
    );
  const df = pl.readParquet(table);
  const missing = Object.keys(RECORDED_SCHEMA).filter((c) => !df.columns.includes(c));
  if (missing.length) throw new Error(`${table} lacks column(s) ${missing.join(', ')}`);
  const provenance = JSON.parse(fs.readFileSync(path.join(dir, 'provenance.json'), 'utf8')) as Provenance;
  if (!Array.isArray(provenance.batches))
    throw new Error(
      `${dir}/provenance.json has no batches: it predates merged records; git checkout -- results/recorded restores the current form`,
    );
  const rows = (df.toRecords() as unknown as RecordedRow[]).map((r) => ({ ...r, seed: Number(r.seed) }));
  return { rows, provenance };
}

/**
 * A recorded suite's per-epoch metrics (epochs.parquet; [] without the file), numbers as numbers,
 * optionally only the runs in `runs`.
 */
export function readRecordedEpochs(
  suite: Suite,
  dir: string = path.join(PATHS.recorded, suite),
  runs?: readonly string[],
): EpochRow[] {
  const file = path.join(dir, 'epochs.parquet');
  if (!fs.existsSync(file)) return [];
  const rows = pl.readParquet(file).toRecords() as unknown as EpochRow[];
  return rows
    .filter((r) => !runs || runs.includes(r.run))
    .map((r) => ({
      ...r,
      seed: Number(r.seed),
      epoch: Number(r.epoch),
      step: Number(r.step),
      images: Number(r.images),
    }));
}

/** Finished runs' selected test accuracy per seed, for each arm (for lib/experiments/stats' pairedComparison). */
export function armsBySeed(
  rows: readonly RecordedRow[],
  metric: 'selected_test_acc' | 'best_val_acc' = 'selected_test_acc',
): Map<string, BySeed> {
  const arms = new Map<string, Map<number, number>>();
  for (const r of rows) {
    const v = r[metric];
    if (r.status !== 'done' || v === null) continue;
    if (!arms.has(r.arm)) arms.set(r.arm, new Map());
    arms.get(r.arm)!.set(Number(r.seed), v);
  }
  return arms;
}

/** Each comparison over the recorded rows (b − a per seed, selected test accuracy). */
function compareArms(
  rows: readonly RecordedRow[],
  comparisons: readonly ArmComparison[] = PAIRED_COMPARISONS,
): (ArmComparison & PairedComparison)[] {
  const arms = armsBySeed(rows);
  const none: BySeed = new Map();
  return comparisons.map((c) => ({
    ...c,
    ...pairedComparison(arms.get(c.a) ?? none, arms.get(c.b) ?? none, { margin: c.margin ?? EQUIVALENCE_MARGIN }),
  }));
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const pts = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(100 * x).toFixed(2)}`;

/**
 * The recorded-results block of docs/results.md (lib/experiments/results-doc): the batches, each
 * arm's mean test accuracy at its selected epoch, and every paired comparison with its intervals
 * and verdict.
 */
export function recordedMarkdown(rows: readonly RecordedRow[], provenance: Provenance): string {
  const arms = [...new Set(rows.map((r) => r.arm))];
  const armLines = arms.map((arm) => {
    const all = rows.filter((r) => r.arm === arm);
    const done = all.filter((r) => r.status === 'done' && r.selected_test_acc !== null);
    const acc = done.map((r) => r.selected_test_acc!);
    const { mean, std: sd } = meanStd(acc);
    const ips = done.map((r) => r.train_images_per_s ?? NaN).filter(Number.isFinite);
    const purpose = all[0].purpose.replace(/\|/g, '/');
    return `| \`${arm}\` | ${purpose} | ${done.length}/${all.length} | ${acc.length ? pct(mean) : '–'}${acc.length > 1 ? ` ± ${(100 * sd).toFixed(2)}` : ''} | ${ips.length ? Math.round(ips.reduce((a, b) => a + b, 0) / ips.length) : '–'} |`;
  });
  const cmpLines = compareArms(rows).map(
    (c) =>
      `| \`${c.b}\` − \`${c.a}\` | ${c.isolates} | ${c.n} | ${c.n ? pts(c.mean) : '–'} | ${c.n > 1 ? `[${pts(c.low)}, ${pts(c.high)}]` : '–'} | ${c.n > 1 ? `[${pts(c.low90)}, ${pts(c.high90)}]` : '–'} | ${c.n ? c.permutationP.toFixed(3) : '–'} | ${c.wins}/${c.losses} | ${verdictPhrase(c)} |`,
  );
  const batchLines = provenance.batches.map((b, i) => {
    const m = b.machine;
    const flags = m.flags.filter((f) => f.startsWith('avx') || f.startsWith('amx')).join(', ') || 'no AVX flags';
    return (
      `${i + 1}. ${b.runs.length} runs, epochs from ${b.firstEpochAt?.slice(0, 10) ?? '–'} to ${b.lastEpochAt?.slice(0, 10) ?? '–'}, commit \`${b.commit.slice(0, 12)}\`, ` +
      `${m.cores} cores of ${m.cpu} (${flags}), ${b.backend}: ${(b.runSeconds / 3600).toFixed(1)} h of training and evaluation summed over its runs` +
      `${b.note ? ` (${b.note})` : ''}.`
    );
  });
  const total = provenance.batches.reduce((s, b) => s + b.runSeconds, 0);
  return [
    `Recorded in ${provenance.batches.length} batch${provenance.batches.length === 1 ? '' : 'es'}, ${(total / 3600).toFixed(1)} h of training and evaluation in all:`,
    '',
    ...batchLines,
    '',
    '| arm | what it is | runs done | test accuracy at the selected epoch (mean ± sd over seeds) | training images/s |',
    '|---|---|---|---|---|',
    ...armLines,
    '',
    `Each run's epoch is selected on the validation split, or on test for the lab's protocol (\`lab-*\` arms). Paired by seed (b − a, points of test accuracy at the selected epoch; 95 % t interval; 90 % interval for the equivalence test against the ±${(100 * EQUIVALENCE_MARGIN).toFixed(0)}-point margin declared before the ten-seed runs; two-sided sign-flip permutation p; seeds won/lost):`,
    '',
    '| comparison | isolates | pairs | mean | 95 % interval | 90 % interval | p | won/lost | verdict |',
    '|---|---|---|---|---|---|---|---|---|',
    ...cmpLines,
  ].join('\n');
}

export interface ConfusionRow {
  run: string;
  arm: string;
  seed: number;
  true: number;
  predicted: number;
  count: number;
}

const CONFUSION_SCHEMA: { [K in keyof ConfusionRow]-?: DataType } = {
  run: pl.Utf8,
  arm: pl.Utf8,
  seed: pl.Int64,
  true: pl.Int32,
  predicted: pl.Int32,
  count: pl.Int32,
};

/**
 * Evaluates the best checkpoint (the epoch its rule selected) of each finished run in `runs`
 * (default: every finished run of the suite under `runsDir`) on the whole test set, and merges the
 * confusion matrices into `<outDir>/confusion.parquet` (long form, 100 rows a run): the matrices
 * of other runs already recorded there are kept.
 */
export async function recordConfusions(
  suite: Suite,
  opts: {
    runsDir?: string;
    outDir?: string;
    experiments?: readonly Experiment[];
    runs?: readonly string[];
    onRun?: (name: string) => void;
  } = {},
): Promise<ConfusionRow[]> {
  const runsDir = opts.runsDir ?? experimentDirs({ suite }).runsDir;
  const dir = opts.outDir ?? path.join(PATHS.recorded, suite);
  const experiments = (opts.experiments ?? SUITES[suite]).filter((e) => !opts.runs || opts.runs.includes(e.name));
  const file = path.join(dir, 'confusion.parquet');
  const fresh: ConfusionRow[] = [];
  const test = loadCifar10('test');
  for (const e of experiments) {
    if (experimentStatus(e, runsDir).state !== 'done') continue;
    opts.onRun?.(e.name);
    const { net, norm } = loadNetFromStateFile(checkpointPath(path.join(runsDir, e.name), 'best'));
    try {
      const limited =
        e.config.limitTest > 0
          ? {
              ...test,
              count: Math.min(e.config.limitTest, test.count),
              labels: test.labels.subarray(0, e.config.limitTest),
              images: test.images.subarray(0, e.config.limitTest * 3072),
            }
          : test;
      const { confusion } = await evaluate(net, limited, { norm });
      confusion.forEach((row, t) =>
        row.forEach((count, p) =>
          fresh.push({ run: e.name, arm: e.arm, seed: e.config.seed, true: t, predicted: p, count }),
        ),
      );
    } finally {
      net.dispose();
    }
  }
  const redone = new Set(fresh.map((r) => r.run));
  const kept = fs.existsSync(file)
    ? (pl.readParquet(file).toRecords() as unknown as ConfusionRow[]).filter((r) => !redone.has(r.run))
    : [];
  const rows = [...kept.map((r) => ({ ...r, seed: Number(r.seed) })), ...fresh];
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(file, frame(CONFUSION_SCHEMA, rows).writeParquet({ compression: 'zstd' }));
  return rows;
}

/** The recorded confusion matrices [10][10] of every run of `arm`, summed over its seeds ([] without the file). */
export function recordedConfusion(
  suite: Suite,
  arm: string,
  dir: string = path.join(PATHS.recorded, suite),
): number[][] | undefined {
  const file = path.join(dir, 'confusion.parquet');
  if (!fs.existsSync(file)) return undefined;
  const rows = (pl.readParquet(file).toRecords() as unknown as ConfusionRow[]).filter((r) => r.arm === arm);
  if (rows.length === 0) return undefined;
  const k = Math.max(...rows.map((r) => r.true)) + 1;
  const m = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (const r of rows) m[r.true][r.predicted] += r.count;
  return m;
}
