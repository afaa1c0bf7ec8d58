/**
 * What is in results/: every run's config and metric rows, read once, for the comparison
 * notebooks and the report. Reading never trains and never fails because one run is damaged:
 * a run that cannot be read is listed with the reason.
 */
import * as fs from 'fs';
import * as path from 'path';
import { PATHS } from '../config';
import {
  configDifferences,
  type EpochRow,
  LAB_RECIPE,
  listRuns,
  readEpochRows,
  type TrainConfig,
} from '../train/index';
import { runOutcomes, type RunOutcome } from './summary';

export interface RunResult {
  name: string;
  dir: string;
  /** config.json as saved (not re-validated: an older run still shows). */
  config: Partial<TrainConfig>;
  /** Epoch rows of the run's current history (lib/train/metrics). */
  epochs: EpochRow[];
  /** Final/best test accuracy; null before the first finished epoch. */
  outcome: RunOutcome | null;
  /** How the run differs from the lab's recipe, e.g. ['freeze=all', 'augment=true']. */
  changes: string[];
  /** Trained on a subset (limitTrain / limitTest): quick-mode numbers, not results. */
  subset: boolean;
  hasBest: boolean;
  hasLast: boolean;
  /** Why the run could not be read, when it could not. */
  problem?: string;
}

export interface LabResults {
  resultsDir: string;
  runs: RunResult[];
  /** Every readable run's epoch rows together. */
  epochRows: EpochRow[];
}

/** Fields that say how a run is reported, not what it trains: never a "change" from the recipe. */
const BOOKKEEPING: readonly (keyof TrainConfig)[] = [
  'variant',
  'seed',
  'logEvery',
  'evalBatchSize',
  'limitTrain',
  'limitTest',
];

/** The fields in which a config (as saved: fields it lacks are not compared) differs from the lab's recipe, as `key=value`. */
export function recipeChanges(config: Partial<TrainConfig>): string[] {
  return configDifferences(config, LAB_RECIPE, { ignore: BOOKKEEPING }).map((d) => `${d.field}=${d.a}`);
}

/** Reads every run under results/runs and the saved figure names. */
export function loadLabResults(opts: { resultsDir?: string } = {}): LabResults {
  const resultsDir = opts.resultsDir ?? PATHS.results;
  const runsDir = path.join(resultsDir, 'runs');
  const runs: RunResult[] = [];
  for (const name of listRuns(runsDir)) {
    const dir = path.join(runsDir, name);
    const run: RunResult = {
      name,
      dir,
      config: {},
      epochs: [],
      outcome: null,
      changes: [],
      subset: false,
      hasBest: fs.existsSync(path.join(dir, 'best.safetensors')),
      hasLast: fs.existsSync(path.join(dir, 'last.safetensors')),
    };
    try {
      run.config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Partial<TrainConfig>;
      run.changes = recipeChanges(run.config);
      run.subset = (run.config.limitTrain ?? 0) > 0 || (run.config.limitTest ?? 0) > 0;
      run.epochs = readEpochRows({ runsDir, runs: [name] });
      run.outcome = runOutcomes(run.epochs)[0] ?? null;
    } catch (err) {
      run.problem = (err as Error).message;
    }
    runs.push(run);
  }
  return {
    resultsDir,
    runs,
    epochRows: runs.flatMap((r) => r.epochs),
  };
}

/**
 * The runs of the lab's own comparison: the recipe unchanged except variant and seed, with at
 * least one finished epoch. Full-data runs when there are any; else the subset (quick) runs,
 * flagged by `subset`.
 */
export function labRecipeRuns(results: LabResults): { runs: RunResult[]; subset: boolean } {
  // A quick (subset) run is shorter by design: its epoch count is not a change of recipe.
  const sameRecipe = (r: RunResult) => r.changes.every((c) => r.subset && c.startsWith('epochs='));
  const recipe = results.runs.filter((r) => !r.problem && r.outcome && sameRecipe(r));
  const full = recipe.filter((r) => !r.subset);
  return full.length ? { runs: full, subset: false } : { runs: recipe, subset: recipe.length > 0 };
}

/**
 * The run to look inside (response maps, predictions): the one with the best test accuracy among
 * readable runs of `variant` that kept a best checkpoint, full-data runs before subset ones.
 */
export function bestRun(
  results: LabResults,
  opts: { variant?: string; labRecipeOnly?: boolean } = {},
): RunResult | undefined {
  const recipe = new Set(labRecipeRuns(results).runs.map((r) => r.name));
  const candidates = results.runs.filter(
    (r) =>
      !r.problem &&
      r.outcome &&
      r.hasBest &&
      (!opts.variant || r.config.variant === opts.variant) &&
      (!opts.labRecipeOnly || recipe.has(r.name)),
  );
  return candidates.sort(
    (a, b) => Number(a.subset) - Number(b.subset) || b.outcome!.bestAccuracy - a.outcome!.bestAccuracy,
  )[0];
}
