/**
 * The experiment table: results/experiments.parquet, one row per experiment of lib/experiments
 * (run or not), built from the experiment table and results/runs alone — it trains nothing and
 * can be rebuilt at any time (`npm run experiments` writes it at the end, `npm run report` too).
 *
 * Columns (EXPERIMENT_SCHEMA; camelCase like the metrics):
 *   name, group, purpose, settings (how it differs from the lab's recipe), then every setting
 *   declared with a column in lib/train's TRAIN_SETTINGS (variant, epochs (planned), seed, …, in
 *   its order), epochsDone, status (lib/experiments' state), bestTestAccuracy, bestEpoch,
 *   finalTestAccuracy, secondsPerEpoch (training pass, mean), parameters, trainableParameters
 *   (model parameters, BatchNorm statistics not counted), subset (trained on a slice: quick mode),
 *   detail (why a run is diverged / mismatched), run (the run's folder relative to the results folder).
 * Accuracies, bestEpoch and secondsPerEpoch are null before a run's first finished epoch.
 */
import * as path from 'path';
import pl, { type DataType } from 'nodejs-polars';
import { writeFileAtomic } from '../formats/index';
import {
  EXPERIMENTS,
  describeSettings,
  experimentDirs,
  experimentStatus,
  quickExperiment,
  type Experiment,
  type ExperimentGroup,
  type ExperimentState,
} from './experiments';
import { architectureOf, describeState } from '../model/index';
import { CONFIG_FIELDS, TRAIN_SETTINGS, type ConfigField, type TrainConfig } from '../train/index';
import type { Setting } from '../config';

export const EXPERIMENTS_FILE = 'experiments.parquet';

/** The settings with a column in the table: those declared with one. */
type Recorded<K extends ConfigField> = (typeof TRAIN_SETTINGS)[K] extends { column: string } ? K : never;
type RecordedSetting = { [K in ConfigField]: Recorded<K> }[ConfigField];
const column = (k: ConfigField) => (TRAIN_SETTINGS[k] as Setting<unknown>).column;
const RECORDED_SETTINGS = CONFIG_FIELDS.filter(column) as RecordedSetting[];

export interface ExperimentRow extends Pick<TrainConfig, RecordedSetting> {
  name: string;
  group: ExperimentGroup;
  purpose: string;
  settings: string;
  epochsDone: number;
  status: ExperimentState;
  bestTestAccuracy: number | null;
  bestEpoch: number | null;
  finalTestAccuracy: number | null;
  secondsPerEpoch: number | null;
  parameters: number;
  trainableParameters: number;
  subset: boolean;
  detail: string;
  run: string;
}

const DTYPES = { Utf8: pl.Utf8, Bool: pl.Bool, Int32: pl.Int32, Int64: pl.Int64, Float64: pl.Float64 };

const EXPERIMENT_SCHEMA = {
  name: pl.Utf8,
  group: pl.Utf8,
  purpose: pl.Utf8,
  settings: pl.Utf8,
  ...Object.fromEntries(RECORDED_SETTINGS.map((k) => [k, DTYPES[column(k)!]])),
  epochsDone: pl.Int32,
  status: pl.Utf8,
  bestTestAccuracy: pl.Float64,
  bestEpoch: pl.Int32,
  finalTestAccuracy: pl.Float64,
  secondsPerEpoch: pl.Float64,
  parameters: pl.Int64,
  trainableParameters: pl.Int64,
  subset: pl.Bool,
  detail: pl.Utf8,
  run: pl.Utf8,
} as unknown as { [K in keyof ExperimentRow]-?: DataType }; // via unknown: tslab's TypeScript 5.0 rejects the direct cast

/** Model parameters (BatchNorm running statistics excluded) of an experiment's net: all, and trained. */
function parameterCounts(e: Pick<Experiment, 'config'>): { parameters: number; trainableParameters: number } {
  const info = describeState(e.config.variant, architectureOf(e.config), e.config.freeze).filter(
    (p) => p.kind === 'parameter',
  );
  return {
    parameters: info.reduce((s, p) => s + p.size, 0),
    trainableParameters: info.filter((p) => p.trainable).reduce((s, p) => s + p.size, 0),
  };
}

/** One row per experiment, from the table and the runs under `<resultsDir>/runs`. */
export function experimentRows(
  opts: { resultsDir?: string; quick?: boolean; experiments?: readonly Experiment[] } = {},
): ExperimentRow[] {
  const { resultsDir, runsDir } = experimentDirs(opts);
  const list = (opts.experiments ?? EXPERIMENTS).map((e) => (opts.quick ? quickExperiment(e) : e));
  return list.map((e) => {
    const s = experimentStatus(e, runsDir);
    const c = e.config;
    return {
      name: e.name,
      group: e.group,
      purpose: e.purpose,
      settings: describeSettings(c),
      ...(Object.fromEntries(RECORDED_SETTINGS.map((k) => [k, c[k]])) as Pick<TrainConfig, RecordedSetting>),
      epochsDone: s.epochsDone,
      status: s.state,
      bestTestAccuracy: s.bestAccuracy,
      bestEpoch: s.bestEpoch,
      finalTestAccuracy: s.finalAccuracy,
      secondsPerEpoch: s.secondsPerEpoch,
      ...parameterCounts(e),
      subset: c.limitTrain > 0 || c.limitTest > 0,
      detail: s.detail.join('; '),
      run: path.relative(resultsDir, path.join(runsDir, e.name)),
    };
  });
}

/** Rows → DataFrame with EXPERIMENT_SCHEMA's columns and types. */
export function experimentFrame(rows: readonly ExperimentRow[]): pl.DataFrame {
  return pl.DataFrame(
    (Object.keys(EXPERIMENT_SCHEMA) as (keyof ExperimentRow)[]).map((k) =>
      pl.Series(k, rows.map((r) => r[k]) as unknown[], EXPERIMENT_SCHEMA[k]),
    ),
  );
}

/**
 * Rebuilds `<resultsDir>/experiments.parquet` (default results/, or results/quick with quick)
 * atomically and returns its rows. For the report: call it, then read the file or use the rows.
 */
export function writeExperimentTable(
  opts: { resultsDir?: string; quick?: boolean; experiments?: readonly Experiment[] } = {},
): { file: string; rows: ExperimentRow[] } {
  const rows = experimentRows(opts);
  const file = path.join(experimentDirs(opts).resultsDir, EXPERIMENTS_FILE);
  writeFileAtomic(file, experimentFrame(rows).writeParquet({ compression: 'zstd' }));
  return { file, rows };
}

/** Reads an experiments.parquet back as rows (nulls as null). */
export function readExperimentTable(file: string): ExperimentRow[] {
  const df = pl.readParquet(file);
  const missing = Object.keys(EXPERIMENT_SCHEMA).filter((c) => !df.columns.includes(c));
  if (missing.length)
    throw new Error(`${file} lacks column(s) ${missing.join(', ')}: rebuild it with npm run experiments -- --table`);
  return df.toRecords() as unknown as ExperimentRow[];
}
