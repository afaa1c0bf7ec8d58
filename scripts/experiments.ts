/**
 * npm run experiments: every experiment of lib/experiments, in order, one after the other —
 * finished runs skipped, unfinished ones resumed from their last checkpoint — then the
 * experiment table (results/experiments.parquet) and, when missing, the step-time and
 * parameter measurements (results/measurements.parquet). Progress as `npm run train`'s.
 * Exit codes: 0 done (diverged runs are results, not failures), 1 a run failed or a run of the
 * same name has another config, 2 bad command line, 130 / 143 stopped by SIGINT / SIGTERM (the
 * run in progress keeps its saved epochs and resumes on the next run; no later experiment started).
 * `--index N` runs one experiment, for a batch system's array task (scripts/slurm/).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { describeBackend, initBackend } from '../lib/runtime';
import { commandLinePath, numberSetting, parseChoice } from '../lib/config';
import {
  measure,
  MEASUREMENTS_FILE,
  readRecorded,
  recordConfusions,
  README,
  recordSuite,
  RESULTS_DOC,
  withReadmeBlocks,
  withResultsBlocks,
  writeExperimentTable,
  writeMeasurements,
} from '../lib/experiments';
import {
  estimateMinutes,
  experimentAt,
  experimentDirs,
  experimentStatuses,
  describeSettings,
  quickExperiment,
  runExperiments,
  selectExperiments,
  SUITES,
  type Experiment,
  type ExperimentOutcome,
  type ExperimentStatus,
  type Suite,
} from '../lib/experiments';
import { writeFileAtomic } from '../lib/formats';
import { loadCifar10 } from '../lib/data';
import { mapFacts, writeMapFacts } from '../lib/report';
import {
  checkpointPath,
  formatDuration,
  formatPercent,
  formatResult,
  loadNetFromStateFile,
  terminalProgress,
  TRAIN_SETTINGS,
  validateConfig,
  type ProgressCallback,
  type TerminalMode,
} from '../lib/train';

/** The run whose response maps the recorded suite keeps for the short report. */
const MAPS_RUN = 'lab-dynamic-s0';

const USAGE = `usage: npm run experiments -- [options]

Runs every experiment (results/runs/<name>) in order: finished runs are skipped, unfinished ones
resume from their last checkpoint; then writes results/experiments.parquet, and
results/measurements.parquet when it is missing.

  --list              where each experiment stands (done / partial / not started …), best test
                      accuracy, time per epoch, estimated time left; trains nothing
  --list --recorded   the suite's committed recorded results instead (results/recorded/<suite>/):
                      status, epochs, the validation-selected epoch and its accuracies per run
  --suite lab|paired|recipe  lab (default): the lab suite, one run per question (what npm start
                      trains); paired: every arm × its paired seeds (ten for the main comparison), on the validation
                      split, in results/paired/ (the recorded results come from it); recipe: the
                      recipe candidates beside best-dynamic, in results/recipe/
  --only A,B          only these experiments (names as in --list)
  --count             how many experiments there are (of --only's, with it), one number
  --index N           only the N-th experiment, 0-based in the order --list prints (of --only's, with
                      it): N = 0 … count−1, as a Slurm array task's SLURM_ARRAY_TASK_ID
                      (scripts/slurm/). Writes no experiment table: --table or --record does, once
                      every run is done. Exit 1 when that run is being trained by another process
  --quick             tiny slices (256 train / 128 test images, 1 epoch) into results/quick/
                      (never mixed with results/runs)
  --epochs N          with --quick: N epochs per run instead of 1
  --measure           parameter counts and time per training / inference step of each net
                      → results/measurements.parquet (a minute; trains nothing)
  --table             only rebuild results/experiments.parquet from the runs
  --record            write the suite's recorded results (results/recorded/<suite>/: table,
                      per-epoch metrics, configs, provenance) from its runs, and for the paired
                      suite the generated blocks of docs/results.md; trains nothing
  --commit SHA        with --record: the commit whose code trained the runs (default: this checkout's)
  --note TEXT         with --record: how the runs were made (lanes, pauses), kept in provenance.json
  --record-dir DIR    with --record: the recorded tables go to DIR instead of results/recorded/<suite>,
                      and docs/results.md is left alone (needed with --quick: quick runs are not results)
  --retry-diverged    train runs that diverged before again (skipped otherwise)
  --progress bar|lines|none   as npm run train (default: bar on a terminal, lines otherwise)
  --results-dir DIR   instead of results/ (runs in DIR/runs)

SIGINT (Ctrl-C) or SIGTERM stops the run in progress at its next step: its saved epochs stay and it
resumes on the next run; no further experiment starts. Exit codes: 0 done (diverged runs are
results), 1 a run failed, 2 bad command line, 130 stopped by SIGINT, 143 by SIGTERM.`;

class UsageError extends Error {}

/** --index: a run of the suite's table, counted from 0. */
const INDEX = numberSetting(0, { whole: true, min: 0 }, {});

function parse(argv: string[]) {
  let v;
  try {
    ({ values: v } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        list: { type: 'boolean' },
        recorded: { type: 'boolean' },
        only: { type: 'string' },
        suite: { type: 'string' },
        count: { type: 'boolean' },
        index: { type: 'string' },
        quick: { type: 'boolean' },
        epochs: { type: 'string' },
        measure: { type: 'boolean' },
        table: { type: 'boolean' },
        record: { type: 'boolean' },
        commit: { type: 'string' },
        note: { type: 'string' },
        'record-dir': { type: 'string' },
        'retry-diverged': { type: 'boolean' },
        progress: { type: 'string' },
        'results-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const only = v.only
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (v.recorded && !v.list) throw new UsageError('--recorded goes with --list');
  if (v.epochs !== undefined && !v.quick) throw new UsageError('--epochs goes with --quick (the suites set their own)');
  if (v['record-dir'] !== undefined && !v.record) throw new UsageError('--record-dir goes with --record');
  if (v.record && v.quick && v['record-dir'] === undefined) {
    throw new UsageError('--record --quick needs --record-dir DIR: quick runs are not results for results/recorded/');
  }
  const given = v; // a const for the closure below (v is assigned inside the try)
  const alone = (['count', 'record', 'table', 'measure', 'recorded'] as const).filter((k) => given[k]);
  if (v.index !== undefined && alone.length) {
    throw new UsageError(`--index selects a run to train; it does not go with --${alone[0]}`);
  }
  try {
    const suite = parseChoice<Suite>('--suite', v.suite ?? 'lab', Object.keys(SUITES) as Suite[]);
    if (only) selectExperiments(only, SUITES[suite]);
    return {
      suite,
      help: v.help ?? false,
      list: v.list ?? false,
      recorded: v.recorded ?? false,
      only,
      count: v.count ?? false,
      index: v.index === undefined ? undefined : INDEX.parse(v.index, '--index'),
      quick: v.quick ?? false,
      epochs: v.epochs === undefined ? undefined : TRAIN_SETTINGS.epochs.parse(v.epochs, '--epochs'),
      measure: v.measure ?? false,
      table: v.table ?? false,
      record: v.record ?? false,
      commit: v.commit,
      note: v.note,
      recordDir: v['record-dir'] ? commandLinePath(v['record-dir']) : undefined,
      retryDiverged: v['retry-diverged'] ?? false,
      progress:
        v.progress === undefined
          ? undefined
          : parseChoice<TerminalMode>('--progress', v.progress, ['bar', 'lines', 'none']),
      resultsDir: v['results-dir'] ? commandLinePath(v['results-dir']) : undefined,
    };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function stateText(s: ExperimentStatus): string {
  switch (s.state) {
    case 'partial':
      return `partial (epoch ${s.epochsDone} of ${s.epochs})`;
    case 'running':
      return `running (epoch ${s.epochsDone} of ${s.epochs} done)`;
    case 'diverged':
      return `diverged (after ${s.epochsDone} of ${s.epochs})`;
    case 'not-started':
      return 'not started';
    default:
      return s.state;
  }
}

/**
 * Training throughput of the lab's recipe here: from finished lab-recipe epochs, else a guess of
 * 1,000 images/s (measured: ~2,300 on the 2-core AVX-512 machine, about half that on AVX2 only).
 */
function labThroughput(
  statuses: readonly ExperimentStatus[],
  list: readonly Experiment[],
): { imagesPerSecond: number; measured: boolean } {
  const times = statuses
    .filter((s) => s.group === 'compare' && s.secondsPerEpoch !== null)
    .map((s) => s.secondsPerEpoch!);
  if (times.length === 0) return { imagesPerSecond: 1000, measured: false };
  const e = list.find((x) => x.group === 'compare')!;
  const images = e.config.limitTrain || 50_000;
  return { imagesPerSecond: images / (times.reduce((a, b) => a + b, 0) / times.length), measured: true };
}

/** A plain-text table: columns padded to their widest cell, the last one left ragged. */
function printColumns(head: string[], rows: string[][]): void {
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) =>
    cells.map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
}

/** The suite's recorded results (committed), one line per run: what `--list --recorded` prints. */
function printRecorded(suite: Suite): void {
  const { rows, provenance } = readRecorded(suite);
  const pct = (x: number | null) => (x === null ? '-' : formatPercent(x));
  const table = rows.map((r) => [
    r.name,
    r.group,
    r.arm,
    r.status,
    `${r.epochs_done}/${r.epochs}`,
    r.selected_epoch === null ? '-' : `${r.selected_epoch} (on ${r.select_by})`,
    pct(r.best_val_acc),
    pct(r.selected_test_acc),
    r.purpose,
  ]);
  console.log(`recorded ${suite} suite (results/recorded/${suite}/), in ${provenance.batches.length} batch(es):`);
  for (const b of provenance.batches)
    console.log(
      `  ${b.runs.length} runs at commit ${b.commit.slice(0, 12)}, ${b.lastEpochAt?.slice(0, 10) ?? '-'}, ${b.machine.cores} cores of ${b.machine.cpu}`,
    );
  printColumns(
    ['experiment', 'group', 'arm', 'status', 'epochs', 'selected epoch', 'val acc', 'test acc there', 'purpose'],
    table,
  );
  const done = rows.filter((r) => r.status === 'done').length;
  console.log(`\n${done} of ${rows.length} recorded runs done`);
}

function printList(list: readonly Experiment[], runsDir: string): void {
  const statuses = experimentStatuses(runsDir, list);
  const { imagesPerSecond, measured } = labThroughput(statuses, list);
  const rows = list.map((e, i) => {
    const s = statuses[i];
    const left = s.state === 'done' ? 0 : estimateMinutes(e, imagesPerSecond, s.epochsDone);
    return [
      e.name,
      e.group,
      stateText(s),
      s.bestAccuracy === null ? '-' : `${formatPercent(s.bestAccuracy)} @${s.bestEpoch}`,
      s.finalAccuracy === null ? '-' : formatPercent(s.finalAccuracy),
      s.secondsPerEpoch === null ? '-' : formatDuration(s.secondsPerEpoch),
      s.state === 'done' ? '-' : `~${formatDuration(left * 60)}`,
      describeSettings(e.config),
    ];
  });
  console.log(`runs in ${runsDir}`);
  printColumns(['experiment', 'group', 'status', 'best test', 'final', 'epoch time', 'time left', 'settings'], rows);
  const total = list.reduce(
    (sum, e, i) =>
      sum + (statuses[i].state === 'done' ? 0 : estimateMinutes(e, imagesPerSecond, statuses[i].epochsDone)),
    0,
  );
  console.log(
    `\nestimated time left: ${formatDuration(total * 60)} at ${imagesPerSecond.toFixed(0)} training images/s for the lab's recipe ` +
      `(${measured ? 'measured on the finished lab-recipe epochs' : 'a guess: no lab-recipe epoch finished yet'}; other nets scaled by their measured relative epoch cost)`,
  );
  for (const s of statuses.filter((x) => x.detail.length && x.state !== 'running'))
    console.log(`${s.name}: ${s.detail.join('; ')}`);
}

/** What a stop by signal left, in one line: the run it stopped (or that had not begun) and what did not start. */
function describeStop(o: ExperimentOutcome, later: number): string {
  const notStarted = later ? ` ${later} later experiment(s) not started.` : '';
  const rest = `${notStarted} Run the same command again to go on (finished runs are skipped).`;
  if (!o.error) return `stopped by ${o.signal} before ${o.name} began.${rest}`;
  const done = o.status.epochsDone;
  const kept = done > 0 ? `keeps epochs 1–${done} of ${o.status.epochs} and resumes from there` : 'saved no epoch yet';
  return `stopped by ${o.signal}: ${o.name} ${kept}.${rest}`;
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`error: ${err.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const { resultsDir, runsDir } = experimentDirs({ quick: args.quick, resultsDir: args.resultsDir, suite: args.suite });
  // The suite as this command trains it: quick slices (and --epochs) applied here, once.
  const quickSlice = (e: Experiment): Experiment => {
    const q = quickExperiment(e);
    return args.epochs === undefined ? q : { ...q, config: validateConfig({ ...q.config, epochs: args.epochs }) };
  };
  const suiteTable = SUITES[args.suite].map((e) => (args.quick ? quickSlice(e) : e));
  const selected = selectExperiments(args.only, suiteTable);
  if (args.count) {
    console.log(selected.length);
    return 0;
  }
  let table = selected;
  if (args.index !== undefined) {
    try {
      table = [experimentAt(selected, args.index, `the ${args.suite} suite${args.only ? "'s --only list" : ''}`)];
    } catch (err) {
      const count = `npm run experiments -- --suite ${args.suite} --count`;
      process.stderr.write(`error: --${(err as Error).message} (${count})\n`);
      return 2;
    }
  }
  if (args.list && args.recorded) {
    printRecorded(args.suite);
    return 0;
  }
  if (args.list) {
    printList(table, runsDir);
    return 0;
  }
  if (args.record) {
    initBackend(); // the confusion matrices evaluate each run's best checkpoint
    const { dir, rows, recorded } = recordSuite(args.suite, {
      runsDir,
      outDir: args.recordDir,
      experiments: suiteTable,
      commit: args.commit,
      note: args.note,
      command: `npm run experiments -- ${process.argv.slice(2).join(' ')}`,
    });
    const confusions = await recordConfusions(args.suite, {
      runsDir,
      outDir: args.recordDir,
      experiments: suiteTable,
      runs: recorded,
      onRun: (name) => process.stderr.write(`  confusion matrix of ${name}\n`),
    });
    // The short report's response maps come from the lab protocol's seed-0 dynamic run, recorded with it.
    if (recorded.includes(MAPS_RUN)) {
      const { net, norm } = loadNetFromStateFile(checkpointPath(path.join(runsDir, MAPS_RUN), 'best'));
      try {
        writeMapFacts(dir, mapFacts(net, norm, loadCifar10('test'), 'recorded', MAPS_RUN));
        console.log(`response maps of ${MAPS_RUN} → ${path.relative(process.cwd(), dir)}/maps.parquet`);
      } finally {
        net.dispose();
      }
    }
    const done = rows.filter((r) => r.status === 'done').length;
    console.log(
      `${confusions.length / 100} confusion matrices; recorded ${recorded.length} run(s) now, ${done} of ${rows.length} experiments done in all, ` +
        `in ${path.relative(process.cwd(), dir)}/`,
    );
    if (!args.recordDir) {
      // docs/results.md quotes the recorded suites; its blocks are regenerated here and checked by test/recorded.test.ts.
      writeFileAtomic(RESULTS_DOC, withResultsBlocks(fs.readFileSync(RESULTS_DOC, 'utf8')));
      writeFileAtomic(README, withReadmeBlocks(fs.readFileSync(README, 'utf8')));
      console.log(`updated the generated blocks of ${path.relative(process.cwd(), RESULTS_DOC)} and README.md`);
    }
    return 0;
  }
  if (args.table) {
    const { file, rows } = writeExperimentTable({ resultsDir, experiments: suiteTable });
    console.log(`wrote ${path.relative(process.cwd(), file)} (${rows.length} experiments)`);
    return 0;
  }
  const backend = initBackend();
  process.stderr.write(`backend: ${describeBackend(backend)}\n`);
  const writeMeasurementFile = async () => {
    process.stderr.write('measuring parameter counts and time per step of each net (no training)…\n');
    const rows = await measure(
      table.map((e) => e.config),
      {
        steps: args.quick ? 3 : 12,
        rounds: args.quick ? 1 : 3,
        warmup: args.quick ? 1 : 2,
        onProgress: (m) => process.stderr.write(`  ${m}\n`),
      },
    );
    const file = writeMeasurements(resultsDir, rows);
    for (const r of rows.filter((x) => x.unit === 'ms')) {
      console.log(
        `  ${r.measure.padEnd(36)} ${r.variant.padEnd(8)} ${r.setting.padEnd(28)} batch ${String(r.batch).padStart(3)}  ${r.value.toFixed(2).padStart(9)} ms ± ${r.spread.toFixed(2)}`,
      );
    }
    const others = rows[rows.length - 1]?.othersShare;
    console.log(
      `wrote ${path.relative(process.cwd(), file)} (${rows.length} rows; ` +
        (typeof others === 'number'
          ? `other processes took ${(others * 100).toFixed(0)}% of the CPUs during the timing)`
          : `load average ${rows[rows.length - 1]?.load1.toFixed(2)})`),
    );
  };
  if (args.measure) {
    await writeMeasurementFile();
    return 0;
  }

  let progress: ProgressCallback = () => {};
  const started = Date.now();
  const outcomes = await runExperiments({
    experiments: table,
    runsDir,
    retryDiverged: args.retryDiverged,
    onEvent: (e) => {
      switch (e.type) {
        case 'plan':
          process.stderr.write(
            `${e.statuses.length} experiment(s), runs in ${e.runsDir}: ${e.statuses.filter((s) => s.state === 'done').length} done, ` +
              `${e.statuses.filter((s) => s.state === 'partial').length} partial, ${e.statuses.filter((s) => s.state === 'not-started').length} not started\n`,
          );
          break;
        case 'skip':
          process.stderr.write(
            `[${e.index}/${e.total}] ${e.experiment.name}: ${stateText(e.status)} — skipped` +
              `${e.status.state === 'diverged' ? ' (--retry-diverged to train it again)' : e.status.state === 'running' ? ` (${e.status.detail.join('; ')})` : ''}\n`,
          );
          break;
        case 'begin':
          process.stderr.write(
            `\n[${e.index}/${e.total}] ${e.experiment.name} (${e.experiment.group}): ${e.experiment.purpose}\n` +
              `  settings: ${describeSettings(e.experiment.config)}; ${stateText(e.status)}${e.status.epochsDone > 0 ? ', resuming from its last checkpoint' : ''}\n`,
          );
          progress = terminalProgress(process.stderr, { mode: args.progress });
          break;
        case 'train':
          progress(e.event);
          break;
        case 'end':
          if (e.outcome.train) process.stderr.write(`${formatResult(e.outcome.train)}\n`);
          // An interruption's line came with the run's progress; the summary says what it left.
          if (e.outcome.error && e.outcome.result !== 'interrupted') {
            process.stderr.write(`${e.experiment.name} ${e.outcome.result.toUpperCase()}: ${e.outcome.error}\n`);
          }
          break;
      }
    },
  });
  const interrupted = outcomes.find((o) => o.result === 'interrupted');
  if (interrupted) {
    console.log(`\n${describeStop(interrupted, table.length - outcomes.length)}`);
    return 128 + os.constants.signals[interrupted.signal ?? 'SIGINT'];
  }
  if (args.index !== undefined) {
    // One run of many (an array task): the tables are written once, when all are done (--table, --record).
    const [o] = outcomes;
    console.log(`\n${o.name}: ${o.result}, ${stateText(o.status)} (${formatDuration((Date.now() - started) / 1000)})`);
    if (o.status.state === 'running') console.log(`not trained: ${o.status.detail.join('; ')}`);
    if (o.error) console.log(`${o.result.toUpperCase()}: ${o.error}`);
    return o.result === 'failed' || o.status.state === 'running' ? 1 : 0;
  }
  const { file, rows } = writeExperimentTable({ resultsDir, experiments: suiteTable });
  if (args.suite === 'lab' && !fs.existsSync(path.join(resultsDir, MEASUREMENTS_FILE))) await writeMeasurementFile();

  console.log(
    `\n${outcomes.length} experiment(s) in ${formatDuration((Date.now() - started) / 1000)}; experiment table: ${path.relative(process.cwd(), file)}`,
  );
  for (const r of rows.filter((x) => !args.only || args.only.includes(x.name))) {
    const acc =
      r.bestTestAccuracy === null
        ? '-'
        : `best ${formatPercent(r.bestTestAccuracy)}, final ${formatPercent(r.finalTestAccuracy ?? NaN)}`;
    console.log(
      `  ${r.name.padEnd(24)} ${r.status.padEnd(12)} ${`${r.epochsDone}/${r.epochs} epochs`.padEnd(13)} ${acc}`,
    );
  }
  const running = outcomes.filter((o) => o.status.state === 'running');
  if (running.length)
    console.log(
      `still running in another process: ${running.map((o) => o.name).join(', ')} — rerun when it has finished`,
    );
  const failed = outcomes.filter((o) => o.result === 'failed');
  if (failed.length) console.log(`FAILED: ${failed.map((o) => `${o.name} (${o.error})`).join('; ')}`);
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`\nerror: ${err.message}\n`);
    process.exit(1);
  },
);
