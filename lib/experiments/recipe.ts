/**
 * Beyond the lab: each recorded recipe (the rows of group 'recipe' of the paired and recipe suites) against the
 * target of ≥ 87 % test accuracy in ≤ 20 minutes on 2 cores. The epoch is the one the run
 * selected on its validation split; test accuracy is quoted at that epoch; the wall time is the
 * sum of the run's recorded epoch times (training pass and evaluations), so it is the machine's
 * time as recorded, with whatever else ran beside it then (provenance.json's note says what).
 */
import * as fs from 'fs';
import * as path from 'path';
import { PATHS } from '../config';
import type { Suite } from './experiments';
import { batchOf, readRecorded, readRecordedEpochs, type Provenance, type RecordedRow } from './recorded';
import { EQUIVALENCE_MARGIN } from './experiments';
import { pairedComparison, verdictPhrase } from './stats';

export const RECIPE_TARGET = { testAccuracy: 0.87, seconds: 20 * 60, cores: 2 } as const;
export type RecipeTarget = { testAccuracy: number; seconds: number; cores: number };

/** The per-epoch fields a recipe's times and accuracies come from (lib/train's epoch rows fit). */
export interface RecipeEpoch {
  run: string;
  epoch: number;
  split: string;
  accuracy: number;
  wallSeconds: number;
  session?: number;
}

export interface RecipeRow {
  name: string;
  /** The candidate (a recipe's runs differ in their seed only). */
  arm: string;
  settings: string;
  seed: number;
  status: string;
  epochs: number;
  epochsDone: number;
  /** Which split chose the epoch ('val' for the recorded recipes). */
  selectBy: string;
  selectedEpoch: number | null;
  /** Validation accuracy at the selected epoch. */
  valAccuracy: number | null;
  /** Test accuracy at the selected epoch: the recipe's number. */
  testAccuracy: number | null;
  finalTestAccuracy: number | null;
  /** Sum of the training passes' wall-clock seconds. */
  trainSeconds: number | null;
  /** Sum of every recorded pass (training and evaluations) over the run's epochs. */
  wallSeconds: number | null;
  /** Cores of the machine that recorded it. */
  cores: number;
  meetsAccuracy: boolean;
  meetsTime: boolean;
  meetsCores: boolean;
  /** All three at once. */
  meetsTarget: boolean;
  /** The recipe chosen on validation among the rows shown together (chooseOnValidation). */
  chosen: boolean;
}

/**
 * One row per recipe of `rows` (group 'recipe'), from its recorded epochs. A run resumed in
 * several sessions counts each (epoch, split) once: its last session's pass.
 */
export function recipeRows(
  rows: readonly RecordedRow[],
  epochs: readonly RecipeEpoch[],
  provenance: Provenance,
  target: RecipeTarget = RECIPE_TARGET,
): RecipeRow[] {
  return rows
    .filter((r) => r.group === 'recipe')
    .map((r) => {
      const latest = new Map<string, RecipeEpoch>();
      for (const e of epochs) {
        if (e.run !== r.name || e.epoch > r.epochs_done) continue;
        const key = `${e.epoch} ${e.split}`;
        const seen = latest.get(key);
        if (!seen || (e.session ?? 0) >= (seen.session ?? 0)) latest.set(key, e);
      }
      const mine = [...latest.values()];
      const sum = (list: readonly RecipeEpoch[]) => (list.length ? list.reduce((s, e) => s + e.wallSeconds, 0) : null);
      const val =
        r.selected_epoch === null ? undefined : mine.find((e) => e.split === 'val' && e.epoch === r.selected_epoch);
      const testAccuracy = r.status === 'done' ? r.selected_test_acc : null;
      const wallSeconds = sum(mine);
      const cores = batchOf(provenance, r.name)?.machine.cores ?? NaN;
      const meetsAccuracy = testAccuracy !== null && testAccuracy >= target.testAccuracy;
      const meetsTime = wallSeconds !== null && r.status === 'done' && wallSeconds <= target.seconds;
      const meetsCores = cores <= target.cores;
      return {
        name: r.name,
        arm: r.arm,
        settings: r.settings,
        seed: Number(r.seed),
        status: r.status,
        epochs: r.epochs,
        epochsDone: r.epochs_done,
        selectBy: r.select_by,
        selectedEpoch: r.selected_epoch,
        valAccuracy: val ? val.accuracy : r.best_val_acc,
        testAccuracy,
        finalTestAccuracy: r.final_test_acc,
        trainSeconds: sum(mine.filter((e) => e.split === 'train')),
        wallSeconds,
        cores,
        meetsAccuracy,
        meetsTime,
        meetsCores,
        meetsTarget: meetsAccuracy && meetsTime && meetsCores,
        chosen: false,
      };
    });
}

/** A recipe candidate over its seeds: means of its runs' numbers at their selected epochs. */
export interface RecipeCandidate {
  arm: string;
  seeds: number[];
  /** All its runs finished (only such a candidate can be chosen). */
  done: boolean;
  valAccuracy: number;
  testAccuracy: number;
  /** Sample sd of the test accuracy over seeds (0 for one seed). */
  testSd: number;
  /** Its fastest run's wall time: the least disturbed by other work on the machine (as the bench's best ratio). */
  wallSeconds: number;
  /** Its slowest run's. */
  slowestWallSeconds: number;
  meetsTarget: boolean;
  chosen: boolean;
}

/**
 * The candidates of `rows` (recipeRows of one or more recorded suites, grouped by arm), and the one
 * chosen on validation: the finished candidate with the highest MEAN validation accuracy over its
 * seeds; its mean test accuracy is the recipe's number, read once. Ties keep the first candidate.
 */
export function recipeCandidates(rows: readonly RecipeRow[], target: RecipeTarget = RECIPE_TARGET): RecipeCandidate[] {
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  const arms = [...new Set(rows.map((r) => r.arm))];
  const candidates = arms.map((arm) => {
    const runs = rows.filter((r) => r.arm === arm);
    const done = runs.every((r) => r.status === 'done' && r.valAccuracy !== null && r.testAccuracy !== null);
    const test = runs.map((r) => r.testAccuracy ?? NaN);
    const testAccuracy = mean(test);
    const testSd =
      test.length > 1 ? Math.sqrt(test.reduce((a, x) => a + (x - testAccuracy) ** 2, 0) / (test.length - 1)) : 0;
    const walls = runs.map((r) => r.wallSeconds ?? NaN); // Math.min/max give NaN when one is unknown
    const wallSeconds = Math.min(...walls);
    const meetsTarget =
      done && testAccuracy >= target.testAccuracy && wallSeconds <= target.seconds && runs.every((r) => r.meetsCores);
    return {
      arm,
      seeds: runs.map((r) => r.seed),
      done,
      valAccuracy: mean(runs.map((r) => r.valAccuracy ?? NaN)),
      testAccuracy,
      testSd,
      wallSeconds,
      slowestWallSeconds: Math.max(...walls),
      meetsTarget,
      chosen: false,
    };
  });
  let best: RecipeCandidate | undefined;
  for (const c of candidates) if (c.done && (best === undefined || c.valAccuracy > best.valAccuracy)) best = c;
  return candidates.map((c) => ({ ...c, chosen: c === best }));
}

/** `rows` with `chosen` set on every run of the candidate recipeCandidates chooses (none when no candidate is finished). */
export function chooseOnValidation(rows: readonly RecipeRow[]): RecipeRow[] {
  const chosen = recipeCandidates(rows).find((c) => c.chosen)?.arm;
  return rows.map((r) => ({ ...r, chosen: r.arm === chosen }));
}

/** The recorded suites that hold recipe candidates: best-dynamic in paired, the later candidates in recipe. */
const RECIPE_SUITES: readonly Suite[] = ['paired', 'recipe'];

/**
 * Every recorded recipe candidate, suite by suite (a suite not in this checkout is left out): its
 * recipeRows, the epochs they come from and the suite's provenance. chooseOnValidation over all
 * suites' rows picks the recipe.
 */
export function readRecordedRecipes(suites: readonly Suite[] = RECIPE_SUITES, recordedDir: string = PATHS.recorded) {
  return suites.flatMap((suite) => {
    const dir = path.join(recordedDir, suite);
    if (!fs.existsSync(path.join(dir, 'experiments.parquet'))) return [];
    const { rows, provenance } = readRecorded(suite, dir);
    const names = rows.filter((r) => r.group === 'recipe').map((r) => r.name);
    if (!names.length) return [];
    const epochs = readRecordedEpochs(suite, dir, names);
    return [{ suite, provenance, names, epochs, recipes: recipeRows(rows, epochs, provenance) }];
  });
}

/**
 * The recipe paragraph of docs/results.md, from the recorded candidates: each candidate's mean
 * validation and test accuracy over its seeds and its fastest run's wall time (runs trained beside
 * other work take longer; the fastest says what the recipe needs), the choice on validation and
 * how far apart the candidates' validation accuracies are, paired by seed (a computed verdict, not
 * a hand-written "within noise"), and which parts of the target are met.
 */
export function recipeMarkdown(rows: readonly RecipeRow[], target: RecipeTarget = RECIPE_TARGET): string {
  const candidates = recipeCandidates(rows, target);
  const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
  const minutes = (s: number) => `${(s / 60).toFixed(1)} min`;
  const line = (c: RecipeCandidate) =>
    `\`${c.arm}\` (${c.seeds.length} seed${c.seeds.length === 1 ? '' : 's'}${c.done ? '' : ', not all finished'}): validation ${pct(c.valAccuracy)}, ` +
    `test ${pct(c.testAccuracy)}${c.seeds.length > 1 ? ` ± ${(100 * c.testSd).toFixed(2)}` : ''}, ${
      c.seeds.length > 1
        ? `its fastest run ${minutes(c.wallSeconds)} of recorded wall time (the slowest ${minutes(c.slowestWallSeconds)})`
        : `${minutes(c.wallSeconds)} of recorded wall time`
    }`;
  const chosen = candidates.find((c) => c.chosen);
  const parts = [
    `The target is ≥ ${100 * target.testAccuracy} % test accuracy in ≤ ${target.seconds / 60} minutes on ${target.cores} cores, the recipe chosen on validation. Recorded candidates, means over their seeds: ${candidates.map(line).join('; ')}.`,
  ];
  if (chosen) {
    const others = candidates.filter((c) => c !== chosen && c.done);
    const bySeed = (arm: string) =>
      new Map(rows.filter((r) => r.arm === arm && r.valAccuracy !== null).map((r) => [r.seed, r.valAccuracy!]));
    const gaps = others.map((o) => {
      const c = pairedComparison(bySeed(o.arm), bySeed(chosen.arm), { margin: EQUIVALENCE_MARGIN });
      const signed = `${c.mean < 0 ? '−' : '+'}${Math.abs(100 * c.mean).toFixed(2)}`;
      return `${signed} points of validation accuracy over \`${o.arm}\`, paired by seed (${c.n} pair${c.n === 1 ? '' : 's'}): ${verdictPhrase(c)}`;
    });
    const met = [
      chosen.testAccuracy >= target.testAccuracy ? 'reaches' : 'does not reach',
      chosen.wallSeconds <= target.seconds ? 'fits' : 'does not fit',
    ];
    parts.push(
      `Chosen on mean validation accuracy: **\`${chosen.arm}\`**${gaps.length ? ` (${gaps.join('; ')})` : ''}, **${pct(chosen.testAccuracy)} test**. ` +
        `It ${met[0]} ${100 * target.testAccuracy} % and ${met[1]} in ${target.seconds / 60} minutes (its fastest run).`,
    );
  } else {
    parts.push('No candidate has all its seeds finished yet: none is chosen.');
  }
  return parts.join(' ');
}
