/**
 * The evidence the lab's answers rest on, read once and returned as typed rows: notebooks 04–06
 * show these rows and say in their own Markdown what they mean. Two sources, never mixed in one
 * statistic:
 *
 *  - your runs: the lab suite that `npm start` trains (LAB_EXPERIMENTS, seed 0, best epoch on
 *    TEST accuracy as the lab states it), from results/experiments.parquet and results/runs; one
 *    run per setting, so a difference between two of them is a number, never a verdict;
 *  - the recorded suites (results/recorded/): read through the results table (lib/experiments/table)
 *    and the findings (lib/experiments/findings), not here.
 *
 * Besides: the step-time measurements (lib/experiments/measurements, lib/experiments/costs) and
 * the PyTorch recipe sweep on a GPU (python/recipe_sweep_results.jsonl), which selected on TEST
 * accuracy and so only motivated the recipe (lib/experiments/recipe has its recorded numbers).
 */
import * as fs from 'fs';
import * as path from 'path';
import { PATHS } from '../config';
import {
  DIVERGED_FILE,
  FREEZE_CAUSES,
  LAB_EXPERIMENTS,
  PAIRED_FIXES,
  type ExperimentState,
  type LabRunName,
} from './experiments';
import { type ExperimentRow, EXPERIMENTS_FILE, readExperimentTable } from './experiment-table';
import { type MeasurementRow, MEASUREMENTS_FILE, readMeasurements } from './measurements';
import type { LabResults, RunResult } from './results';

/** One configuration of python/recipe_sweep.py (PyTorch, GPU; best epoch on TEST accuracy). */
export interface SweepRow {
  name: string;
  config: Record<string, unknown>;
  epochs: number;
  bestTestAccuracy: number;
  finalTestAccuracy: number;
  seconds: number;
  machine: string;
}

/** Everything the answers read besides the runs. Missing files give empty lists (and no `recorded`). */
export interface Evidence {
  /** results/experiments.parquet: one row per experiment of the lab suite (your runs). */
  experiments: ExperimentRow[];
  /** results/measurements.parquet: parameter counts and step times. */
  measurements: MeasurementRow[];
  /** python/recipe_sweep_results.jsonl (a GPU sweep selected on test: motivation, not a result). */
  sweep: SweepRow[];
}

const SWEEP_FILE = path.join(PATHS.root, 'python', 'recipe_sweep_results.jsonl');

/** Reads the recipe sweep's JSON lines ([] when the file is absent). */
export function readSweep(file: string = SWEEP_FILE): SweepRow[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((line, i) => {
      const r = JSON.parse(line) as Record<string, unknown>;
      const config = (r.config ?? {}) as Record<string, unknown>;
      if (typeof r.best_test_accuracy !== 'number') throw new Error(`${file} line ${i + 1}: no best_test_accuracy`);
      return {
        name: String(config.name ?? `line ${i + 1}`),
        config,
        epochs: Number(r.epochs_done ?? config.epochs),
        bestTestAccuracy: r.best_test_accuracy,
        finalTestAccuracy: Number(r.final_test_accuracy),
        seconds: Number(r.seconds),
        machine: String(r.machine ?? ''),
      };
    });
}

/** The sweep's settings besides name and epochs, as `key=value` strings. */
export function sweepSettings(row: SweepRow): string[] {
  return Object.entries(row.config)
    .filter(([k]) => k !== 'name' && k !== 'epochs')
    .map(([k, v]) => `${k}=${String(v)}`);
}

/** Reads experiments.parquet and measurements.parquet of `resultsDir`, and the sweep. */
export function loadEvidence(resultsDir: string = PATHS.results, opts: { sweepFile?: string } = {}): Evidence {
  const experimentsFile = path.join(resultsDir, EXPERIMENTS_FILE);
  const measurementsFile = path.join(resultsDir, MEASUREMENTS_FILE);
  const experiments = fs.existsSync(experimentsFile) ? readExperimentTable(experimentsFile) : [];
  const measurements = fs.existsSync(measurementsFile) ? readMeasurements(measurementsFile) : [];
  // Parquet Int64 columns may come back as bigint: numbers from here on.
  for (const r of experiments) {
    r.parameters = Number(r.parameters);
    r.trainableParameters = Number(r.trainableParameters);
    r.seed = Number(r.seed);
  }
  return { experiments, measurements, sweep: readSweep(opts.sweepFile) };
}

// ---- your runs --------------------------------------------------------------------------------

/** The command that trains (or finishes) these lab-suite experiments. */
export function experimentsCommand(names: readonly string[]): string {
  return `npm run experiments -- --only ${names.join(',')}`;
}

/** True when the experiment has a finished epoch (its accuracies are set). */
export function hasAccuracy(r: ExperimentRow | undefined): boolean {
  return (
    !!r &&
    r.bestTestAccuracy !== null &&
    r.bestTestAccuracy !== undefined &&
    r.finalTestAccuracy !== null &&
    r.finalTestAccuracy !== undefined
  );
}

/** One of your runs as a table row: its accuracies (null before an epoch) and its difference from `base`. */
export interface LabRunRow {
  name: string;
  purpose: string;
  settings: string;
  status: ExperimentState;
  epochsDone: number;
  epochs: number;
  bestTestAccuracy: number | null;
  bestEpoch: number | null;
  finalTestAccuracy: number | null;
  /** The run its difference is taken against (null: none, or itself). */
  base: string | null;
  /** bestTestAccuracy − base's, in accuracy (fraction); null without both. One pair: a number, not a verdict. */
  vsBase: number | null;
  trainableParameters: number;
  parameters: number;
  /** Wall-clock seconds of a training pass (the run's mean), whatever else the machine did then. */
  secondsPerEpoch: number | null;
  /** Trained on a slice (quick mode): shows the pipeline works, not the lab's numbers. */
  subset: boolean;
}

/**
 * Your runs `names` (in that order; experiments missing from the table are left out), with their
 * difference from `base` (a name, or a function of the row's name: the run each is compared with).
 */
export function labRunRows(
  experiments: readonly ExperimentRow[],
  names: readonly string[],
  base?: string | ((name: string) => string | undefined),
): LabRunRow[] {
  const byName = new Map(experiments.map((r) => [r.name, r]));
  const baseOf = typeof base === 'function' ? base : () => base;
  return names.flatMap((name) => {
    const r = byName.get(name);
    if (!r) return [];
    const b = baseOf(name);
    const baseRow = b && b !== name ? byName.get(b) : undefined;
    const done = hasAccuracy(r);
    return [
      {
        name,
        purpose: r.purpose,
        settings: r.settings,
        status: r.status,
        epochsDone: r.epochsDone,
        epochs: r.epochs,
        bestTestAccuracy: done ? r.bestTestAccuracy : null,
        bestEpoch: done ? r.bestEpoch : null,
        finalTestAccuracy: done ? r.finalTestAccuracy : null,
        base: baseRow ? baseRow.name : null,
        vsBase: done && baseRow && hasAccuracy(baseRow) ? r.bestTestAccuracy! - baseRow.bestTestAccuracy! : null,
        trainableParameters: r.trainableParameters,
        parameters: r.parameters,
        secondsPerEpoch: r.secondsPerEpoch,
        subset: r.subset,
      },
    ];
  });
}

/**
 * The lab-suite run that `name` differs from in one setting, as the paired suite's freeze causes
 * and fixes pair their arms (FREEZE_CAUSES, PAIRED_FIXES): a fix against its frozen control, the
 * fixed-function freeze against the lab's freeze, and the lab's freeze against training everything
 * (lab-dynamic-s0). undefined for the heads and for a control the lab suite does not train.
 */
export function labControl(name: string): LabRunName | undefined {
  const e = LAB_EXPERIMENTS.find((x) => x.name === name);
  if (e?.group !== 'freeze') return undefined;
  const control = [...FREEZE_CAUSES, ...PAIRED_FIXES].find((c) => c.arm === e.arm)?.control ?? 'dynamic';
  return control === 'dynamic' ? 'lab-dynamic-s0' : LAB_EXPERIMENTS.find((x) => x.arm === control)?.name;
}

/** What is missing among the runs a question needs, and the command that completes it. */
export interface RunGaps {
  /** No finished epoch (not started, training its first epoch, mismatched or unreadable; `detail` says why). */
  missing: { name: string; status: ExperimentState | 'not in the table'; detail: string }[];
  /** Some epochs, not all (running or interrupted): their numbers so far are shown. */
  unfinished: { name: string; status: ExperimentState; epochsDone: number; epochs: number }[];
  /** `npm run experiments -- --only …` over both lists; null when nothing is missing. */
  command: string | null;
}

export function runGaps(experiments: readonly ExperimentRow[], names: readonly string[]): RunGaps {
  const byName = new Map(experiments.map((r) => [r.name, r]));
  const gaps: RunGaps = { missing: [], unfinished: [], command: null };
  for (const name of names) {
    const r = byName.get(name);
    if (!r) gaps.missing.push({ name, status: 'not in the table', detail: '' });
    else if (r.status !== 'diverged' && !hasAccuracy(r))
      gaps.missing.push({ name, status: r.status, detail: r.detail });
    else if (r.status !== 'done' && r.status !== 'diverged')
      gaps.unfinished.push({ name, status: r.status, epochsDone: r.epochsDone, epochs: r.epochs });
  }
  const todo = [...gaps.missing, ...gaps.unfinished].map((g) => g.name);
  gaps.command = todo.length ? experimentsCommand(todo) : null;
  return gaps;
}

/** Every run in results/runs as a row: how it differs from the recipe, epochs, accuracies, checkpoints. */
export interface RunRow {
  name: string;
  variant: string | null;
  seed: number | null;
  /** How the config differs from the lab's recipe (`key=value`); [] for the recipe itself. */
  changes: string[];
  subset: boolean;
  epochsDone: number;
  epochs: number | null;
  finalTestAccuracy: number | null;
  bestTestAccuracy: number | null;
  bestEpoch: number | null;
  secondsPerEpoch: number | null;
  checkpoints: ('best' | 'last')[];
  /** Why the run could not be read, when it could not. */
  problem: string | null;
}

export function runRows(runs: readonly RunResult[]): RunRow[] {
  return runs.map((r) => ({
    name: r.name,
    variant: r.config.variant ?? null,
    seed: r.config.seed ?? null,
    changes: r.changes,
    subset: r.subset,
    epochsDone: r.outcome?.epochs ?? 0,
    epochs: r.config.epochs ?? null,
    finalTestAccuracy: r.outcome?.finalAccuracy ?? null,
    bestTestAccuracy: r.outcome?.bestAccuracy ?? null,
    bestEpoch: r.outcome?.bestEpoch ?? null,
    secondsPerEpoch: r.outcome?.secondsPerEpoch ?? null,
    checkpoints: [...(r.hasBest ? ['best' as const] : []), ...(r.hasLast ? ['last' as const] : [])],
    problem: r.problem ?? null,
  }));
}

/** One of your runs without the L2 normalisation or the /√64 (trained by hand: not in the lab suite). */
export interface AblationRunRow {
  name: string;
  changes: string[];
  seed: number | null;
  bestTestAccuracy: number | null;
  bestEpoch: number | null;
  /** The run stopped on a NaN/Inf loss (its diverged.json says why). */
  diverged: boolean;
  /** bestTestAccuracy − `base`'s (default lab-dynamic-s0); null without both. */
  vsBase: number | null;
}

export function ablationRunRows(results: LabResults, base: LabRunName = 'lab-dynamic-s0'): AblationRunRow[] {
  const baseRun = results.runs.find((r) => r.name === base && r.outcome);
  return results.runs
    .filter((r) => !r.problem && (r.config.filterNorm === false || r.config.responseScale === false))
    .map((r) => ({ r, diverged: fs.existsSync(path.join(r.dir, DIVERGED_FILE)) }))
    .filter(({ r, diverged }) => r.outcome || diverged)
    .map(({ r, diverged }) => ({
      name: r.name,
      changes: r.changes,
      seed: r.config.seed ?? null,
      bestTestAccuracy: r.outcome?.bestAccuracy ?? null,
      bestEpoch: r.outcome?.bestEpoch ?? null,
      diverged,
      vsBase: r.outcome && baseRun?.outcome ? r.outcome.bestAccuracy - baseRun.outcome.bestAccuracy : null,
    }));
}
