// The evidence behind the lab's answers, as typed rows (lib/experiments evidence, comparisons,
// costs, recipe): synthetic recorded suites, run folders and tables, real Parquet round trips.
// Checks that every number and verdict is computed from the rows — a flipped sign flips the
// verdict — that your runs and the recorded suite stay apart, and that gaps name their command.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import pl from 'nodejs-polars';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ablationRunRows,
  experimentsCommand,
  labControl,
  labRunRows,
  loadEvidence,
  readSweep,
  runGaps,
  runRows,
  sweepSettings,
} from '../lib/experiments/evidence';
import {
  armSummaries,
  bySeed,
  compare,
  fromRecorded,
  loadResults,
  resultsFrame,
  unfinished,
} from '../lib/experiments/table';
import { freezeFacts } from '../lib/experiments/findings';
import { signFlipPValue } from '../lib/experiments/stats';
import { dynamicCosts } from '../lib/experiments/costs';
import {
  chooseOnValidation,
  RECIPE_TARGET,
  recipeCandidates,
  recipeRows,
  type RecipeEpoch,
} from '../lib/experiments/recipe';
import {
  EQUIVALENCE_MARGIN,
  FREEZE_CAUSES,
  LAB_EXPERIMENTS,
  PAIRED_COMPARISONS,
  PAIRED_FIXES,
  type ArmComparison,
} from '../lib/experiments/experiments';
import {
  experimentFrame,
  experimentRows,
  EXPERIMENTS_FILE,
  type ExperimentRow,
} from '../lib/experiments/experiment-table';
import { parameterRows, writeMeasurements, type MeasurementRow } from '../lib/experiments/measurements';
import { RECORDED_SCHEMA, readRecordedEpochs, type Provenance, type RecordedRow } from '../lib/experiments/recorded';

/** The smallest two-sided sign-flip p that n pairs can reach (2 / 2^n). */
const smallestP = (n: number) => signFlipPValue(new Array<number>(n).fill(1));
import { loadLabResults } from '../lib/experiments/results';
import { appendEpoch, type EpochRow } from '../lib/train/metrics';
import { trainConfig, type TrainConfig } from '../lib/train/train-config';
import { htmlTable } from '../lib/report/html-table';
import { COMPARISON_COLUMNS, differenceCell, points, recipeColumns, verdictLabel } from '../lib/report/tables';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-evidence-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const plus = (xs: readonly number[], ds: readonly number[]) => xs.map((x, i) => x + ds[i]);

/** Recorded rows: arm → selected test accuracy per seed (null: not finished); `status` overrides by run name. */
function recordedRows(arms: Record<string, (number | null)[]>, status: Record<string, string> = {}): RecordedRow[] {
  return Object.entries(arms).flatMap(([arm, accs]) =>
    accs.map((acc, seed) => {
      const recipe = arm.startsWith('best-');
      const name = recipe ? arm : `${arm}-s${seed}`;
      return {
        name,
        suite: 'paired',
        group: recipe ? 'recipe' : 'test',
        arm,
        purpose: 'test',
        settings: recipe ? 'norm=imagenet, epochs=3' : arm,
        variant: 'dynamic',
        seed,
        status: status[name] ?? (acc === null ? 'not-started' : 'done'),
        epochs: recipe ? 3 : 5,
        epochs_done: acc === null ? 0 : recipe ? 3 : 5,
        select_by: 'val',
        selected_epoch: acc === null ? null : 2,
        selected_test_acc: acc,
        best_test_acc: acc,
        final_test_acc: acc,
        best_val_acc: acc === null ? null : acc + 0.01,
        train_images_per_s: 200,
        train_seconds_per_epoch: acc === null ? null : 225,
      };
    }),
  );
}

const DYNAMIC = [0.8, 0.81, 0.79, 0.82, 0.8];
const STATIC = plus(DYNAMIC, [-0.02, -0.03, -0.01, -0.03, -0.01]); // dynamic ahead by 2, 3, 1, 3, 1 points
const FROZEN_RG = plus(DYNAMIC, [-0.2, -0.21, -0.19, -0.2, -0.2]);
const FROZEN_EVAL = plus(DYNAMIC, [-0.25, -0.26, -0.24, -0.25, -0.25]);
const ARMS = {
  dynamic: DYNAMIC,
  static: STATIC,
  'static-l2': plus(STATIC, [0.01, -0.01, 0.02, -0.02, 0.005]), // mixed signs
  'frozen-requires-grad': FROZEN_RG,
  'frozen-eval': FROZEN_EVAL,
  'frozen-eval-imagenet': plus(FROZEN_EVAL, [0.01, -0.01, 0.005, -0.005, 0]),
  'fix-bn-only': plus(FROZEN_RG, [0.05, 0.06, 0.04, 0.05, 0.05]),
  'fix-stem-frozen': plus(FROZEN_RG, [0.15, 0.16, 0.14, 0.15, 0.15]), // wins back 75 % of the 20 points
  'fix-adapter': plus(FROZEN_EVAL, [0.02, 0.03, 0.02, 0.02, 0.03]),
  'ablate-no-norm': [...plus(DYNAMIC.slice(0, 4), [-0.03, -0.04, -0.02, -0.03]), null], // seed 4 diverged
};
const DYN_VS_STATIC: ArmComparison = { group: 'compare', a: 'static', b: 'dynamic', isolates: 'both factors' };

describe('paired comparisons of the recorded suite', () => {
  const rows = recordedRows(ARMS, { 'ablate-no-norm-s4': 'diverged' });
  const t = resultsFrame(fromRecorded(rows));

  it("computes the intervals, p and verdict from the rows, with both arms' means", () => {
    const [c] = compare(t, [DYN_VS_STATIC]);
    // Differences 2, 3, 1, 3, 1 points: mean 2, sd 1, t(0.975, 4) = 2.776 → ±1.24; all five positive → p = 2/32.
    expect(c.n).toBe(5);
    expect(c.mean).toBeCloseTo(0.02, 10);
    expect(c.low).toBeCloseTo(0.02 - 0.0124, 4);
    expect(c.high).toBeCloseTo(0.02 + 0.0124, 4);
    // t(0.95, 4) = 2.132 → the 90 % interval ±0.95 points.
    expect(c.low90).toBeCloseTo(0.02 - 0.00953, 4);
    expect(c.permutationP).toBeCloseTo(0.0625, 10);
    expect([c.wins, c.losses]).toEqual([5, 0]);
    expect(c.verdict).toBe('better');
    expect(c.margin).toBe(EQUIVALENCE_MARGIN);
    expect(c.meanB).toBeCloseTo(0.804, 10);
    expect(c.meanA).toBeCloseTo(0.784, 10);
    expect([c.nA, c.nB]).toEqual([5, 5]);
    expect(c.isolates).toBe('both factors');
  });

  it('flips the verdict when the sign flips, and says inconclusive when the seeds disagree, too few with one pair', () => {
    const [flipped] = compare(t, [{ ...DYN_VS_STATIC, a: 'dynamic', b: 'static' }]);
    expect(flipped.mean).toBeCloseTo(-0.02, 10);
    expect(flipped.verdict).toBe('worse');
    // The same runs with the sign of one arm's advantage reversed (static ahead on every seed).
    const reversed = resultsFrame(
      fromRecorded(recordedRows({ dynamic: DYNAMIC, static: plus(DYNAMIC, [0.02, 0.03, 0.01, 0.03, 0.01]) })),
    );
    expect(compare(reversed, [DYN_VS_STATIC])[0].verdict).toBe('worse');
    const [mixed] = compare(t, [{ group: 'compare', a: 'static', b: 'static-l2', isolates: 'L2' }]);
    expect([mixed.wins, mixed.losses]).toEqual([3, 2]);
    expect(mixed.verdict).toBe('inconclusive');
    // Tiny differences around zero: the 90 % interval inside ±1 point, so equivalent.
    const close = resultsFrame(
      fromRecorded(recordedRows({ dynamic: DYNAMIC, static: plus(DYNAMIC, [0.001, -0.001, 0.002, -0.002, 0]) })),
    );
    expect(compare(close, [DYN_VS_STATIC])[0].verdict).toBe('equivalent');
    const one = resultsFrame(fromRecorded(recordedRows({ dynamic: [0.8], static: [0.7, null] })));
    const [single] = compare(one, [DYN_VS_STATIC]);
    expect(single.n).toBe(1);
    expect(single.verdict).toBe('too few pairs');
    expect(compare(one, [{ ...DYN_VS_STATIC, a: 'static-l2' }])[0].n).toBe(0);
  });

  it('leaves unfinished and diverged runs out of the statistics, and names them', () => {
    const [ablation] = compare(t, [{ group: 'ablation', a: 'dynamic', b: 'ablate-no-norm', isolates: 'no norm' }]);
    expect(ablation.n).toBe(4);
    expect(ablation.verdict).toBe('worse');
    expect(unfinished(t, ['dynamic', 'ablate-no-norm'])).toEqual([
      { arm: 'ablate-no-norm', status: 'diverged', seeds: [4] },
    ]);
    expect(armSummaries(t, ['ablate-no-norm', 'nothing']).map((a) => a.n)).toEqual([4, 0]);
    expect([...bySeed(t, 'ablate-no-norm').keys()]).toEqual([0, 1, 2, 3]);
  });

  it('tests each freeze cause against its control and ranks the fixes; the best is compared with training everything', () => {
    const f = freezeFacts(t);
    expect(f.freeze.verdict).toBe('worse');
    expect(f.causes.map((c) => [c.cause, c.test.b, c.test.a])).toEqual(
      FREEZE_CAUSES.map((c) => [c.cause, c.arm, c.control]),
    );
    const byCause = new Map(f.causes.map((c) => [c.cause, c.test]));
    expect(byCause.get('features not adapted to CIFAR-10')!.mean).toBeCloseTo(0.15, 10);
    expect(byCause.get('features not adapted to CIFAR-10')!.verdict).toBe('better');
    expect(byCause.get('input statistics')!.verdict).toBe('equivalent'); // within ±1 point on every seed
    expect(byCause.get('object scale')!.n).toBe(0); // not in these rows
    expect(f.fixes.map((x) => x.arm)).toEqual(['fix-stem-frozen', 'fix-bn-only', 'fix-adapter']);
    expect(f.fixes[0].vsDynamic.mean).toBeCloseTo(-0.05, 10);
    expect(f.fixes[0].vsDynamic.verdict).toBe('worse');
    // If the fix beat training everything on every seed, the same code says so.
    const better = resultsFrame(
      fromRecorded(recordedRows({ ...ARMS, 'fix-stem-frozen': plus(DYNAMIC, [0.01, 0.02, 0.01, 0.02, 0.01]) })),
    );
    expect(freezeFacts(better).fixes[0].vsDynamic.verdict).toBe('better');
    expect(PAIRED_FIXES.length).toBe(3);
  });

  it('groups the comparisons; each compares arms of the paired suite', () => {
    expect(PAIRED_COMPARISONS.filter((c) => c.group === 'compare').map((c) => `${c.b}-${c.a}`)).toEqual([
      'dynamic-static',
      'dynamic-static-l2',
      'static-l2-static',
    ]);
    expect(smallestP(5)).toBe(0.0625);
    expect(smallestP(10)).toBeCloseTo(2 / 1024, 12);
  });

  it('shows the computed verdict in its table', () => {
    const cmp = compare(t, [DYN_VS_STATIC, { group: 'compare', a: 'static', b: 'static-l2', isolates: 'L2' }]);
    const html = htmlTable(cmp, { columns: COMPARISON_COLUMNS });
    expect(html).toContain('<strong>better</strong>');
    expect(html).toContain('<strong>inconclusive at n = 5</strong>');
    expect(html).toContain('+2.00 (+0.76 to +3.24)');
    expect(verdictLabel({ verdict: 'too few pairs', n: 1, margin: 0.01 })).toBe('too few pairs');
    expect(verdictLabel({ verdict: 'equivalent', n: 10, margin: 0.01 })).toBe('equivalent within ±1 point');
    expect(differenceCell({ n: 1, mean: -0.004, low: NaN, high: NaN })).toBe('−0.40');
    expect(points(null)).toBe('–');
  });
});

describe('recipes against the target', () => {
  const batch = (cores: number): Provenance => ({
    suite: 'paired',
    batches: [
      {
        runs: ['best-a', 'best-b', 'dynamic-s0'],
        commit: 'c',
        machine: { cpu: 'x', cores, flags: [], memoryGiB: 8 },
        backend: 'tf',
        recordedAt: '',
        firstEpochAt: null,
        lastEpochAt: null,
        runSeconds: 0,
        command: '',
        note: '',
      },
    ],
  });
  const machine = batch(2);
  /** Three epochs of `run`: train 300 s, val 20 s, test 40 s each; epoch 2 first ran in session 1 and again in session 2. */
  const epochs = (run: string, val: number[], test: number[]): RecipeEpoch[] => [
    ...[1, 2, 3].flatMap((epoch) => [
      { run, epoch, split: 'train', accuracy: 0.9, wallSeconds: 300, session: epoch === 1 ? 1 : 2 },
      { run, epoch, split: 'val', accuracy: val[epoch - 1], wallSeconds: 20, session: epoch === 1 ? 1 : 2 },
      { run, epoch, split: 'test', accuracy: test[epoch - 1], wallSeconds: 40, session: epoch === 1 ? 1 : 2 },
    ]),
    { run, epoch: 2, split: 'train', accuracy: 0.1, wallSeconds: 9999, session: 1 }, // superseded
  ];

  it('quotes validation and test at the selected epoch, sums the epoch times, and computes each part of the target', () => {
    const rows = recordedRows({ 'best-a': [0.88], 'best-b': [0.86], dynamic: [0.8] });
    const all = [
      ...epochs('best-a', [0.85, 0.89, 0.88], [0.86, 0.88, 0.875]),
      ...epochs('best-b', [0.85, 0.87, 0.86], [0.85, 0.86, 0.86]),
      ...epochs('dynamic-s0', [0.8, 0.8, 0.8], [0.8, 0.8, 0.8]),
    ];
    const [a, b] = recipeRows(rows, all, machine);
    expect(recipeRows(rows, all, machine).map((r) => r.name)).toEqual(['best-a', 'best-b']);
    expect(a).toMatchObject({
      selectedEpoch: 2,
      valAccuracy: 0.89,
      testAccuracy: 0.88,
      trainSeconds: 900,
      wallSeconds: 1080,
      cores: 2,
    });
    expect(a).toMatchObject({ meetsAccuracy: true, meetsTime: true, meetsCores: true, meetsTarget: true });
    expect(b).toMatchObject({ testAccuracy: 0.86, meetsAccuracy: false, meetsTime: true, meetsTarget: false });
    // The same run, slower than 20 minutes: the time fails, and so the target.
    const slow = recipeRows(
      rows,
      all.map((e) => ({ ...e, wallSeconds: e.wallSeconds * 2 })),
      machine,
    )[0];
    expect(slow).toMatchObject({ wallSeconds: 2160, meetsAccuracy: true, meetsTime: false, meetsTarget: false });
    // More cores than the target allows.
    expect(recipeRows(rows, all, batch(16))[0]).toMatchObject({ meetsCores: false, meetsTarget: false });
    const html = htmlTable([a, b], { columns: recipeColumns(RECIPE_TARGET) });
    expect(html).toContain('≥ 87% test');
    expect(html).toContain('18.0 min (15.0 min)');
  });

  it('chooses the recipe on validation accuracy, not on test, and only among finished runs', () => {
    // best-a: higher test (0.88) but lower validation (0.87); best-b: higher validation (0.89), lower test.
    const rows = recordedRows({ 'best-a': [0.88], 'best-b': [0.86] });
    const all = [
      ...epochs('best-a', [0.85, 0.87, 0.86], [0.86, 0.88, 0.875]),
      ...epochs('best-b', [0.85, 0.89, 0.86], [0.85, 0.86, 0.86]),
    ];
    const chosen = chooseOnValidation(recipeRows(rows, all, machine));
    expect(chosen.map((r) => [r.name, r.chosen])).toEqual([
      ['best-a', false],
      ['best-b', true],
    ]);
    // The same tables with validation the other way round: the choice follows it.
    const swapped = [
      ...epochs('best-a', [0.85, 0.9, 0.86], [0.86, 0.88, 0.875]),
      ...epochs('best-b', [0.85, 0.89, 0.86], [0.85, 0.86, 0.86]),
    ];
    expect(chooseOnValidation(recipeRows(rows, swapped, machine)).find((r) => r.chosen)?.name).toBe('best-a');
    // An unfinished run is never chosen, however high its validation accuracy.
    const partial = recordedRows({ 'best-a': [0.88], 'best-b': [0.86] }, { 'best-b': 'partial' });
    expect(chooseOnValidation(recipeRows(partial, all, machine)).find((r) => r.chosen)?.name).toBe('best-a');
    expect(chooseOnValidation([]).length).toBe(0);
    expect(htmlTable(chosen, { columns: recipeColumns(RECIPE_TARGET) })).toContain('chosen on val');
  });

  it('chooses a candidate on its MEAN validation accuracy over seeds, and only when all its seeds finished', () => {
    // A's best seed has the highest validation accuracy (0.90), but B's mean is higher (0.88 against 0.873).
    const valA = [0.9, 0.86, 0.86];
    const valB = [0.88, 0.88, 0.88];
    const rowsOf = (arm: string, vals: number[]) =>
      vals.map((v, seed) => ({
        ...recordedRows({ [arm]: [0.85] })[0],
        name: `${arm}-s${seed}`,
        seed,
        selected_test_acc: arm === 'best-a' ? 0.86 + seed / 100 : 0.85,
      }));
    const rows = [...rowsOf('best-a', valA), ...rowsOf('best-b', valB)];
    const all = [
      ...valA.map((v, k) => epochs(`best-a-s${k}`, [0.8, v, 0.8], [0.85, 0.86 + k / 100, 0.85])),
      ...valB.map((v, k) => epochs(`best-b-s${k}`, [0.8, v, 0.8], [0.85, 0.85, 0.85])),
    ].flat();
    const candidates = recipeCandidates(recipeRows(rows, all, machine));
    expect(candidates.map((c) => [c.arm, c.seeds, c.chosen])).toEqual([
      ['best-a', [0, 1, 2], false],
      ['best-b', [0, 1, 2], true],
    ]);
    expect(candidates[0].valAccuracy).toBeCloseTo(0.8733, 4);
    expect(candidates[0].testAccuracy).toBeCloseTo(0.87, 10);
    expect(candidates[0].testSd).toBeCloseTo(0.01, 10);
    expect(
      chooseOnValidation(recipeRows(rows, all, machine))
        .filter((r) => r.chosen)
        .map((r) => r.name),
    ).toEqual(['best-b-s0', 'best-b-s1', 'best-b-s2']);
    // One seed of B unfinished: B cannot be chosen, A is.
    const partial = rows.map((r) => (r.name === 'best-b-s2' ? { ...r, status: 'partial' } : r));
    expect(recipeCandidates(recipeRows(partial, all, machine)).find((c) => c.chosen)?.arm).toBe('best-a');
  });

  it('meets nothing before the run has finished', () => {
    const rows = recordedRows({ 'best-a': [0.88] }, { 'best-a': 'partial' });
    const [r] = recipeRows(rows, epochs('best-a', [0.85, 0.89, 0.88], [0.86, 0.88, 0.875]), machine);
    expect(r).toMatchObject({ testAccuracy: null, meetsAccuracy: false, meetsTime: false, meetsTarget: false });
    expect(recipeRows(recordedRows({ 'best-a': [null] }), [], machine)[0]).toMatchObject({
      wallSeconds: null,
      trainSeconds: null,
      valAccuracy: null,
    });
  });

  it('reads recorded epochs back from Parquet, numbers as numbers', () => {
    const dir = path.join(root, 'recorded-epochs');
    fs.mkdirSync(dir, { recursive: true });
    expect(readRecordedEpochs('paired', dir)).toEqual([]);
    const df = pl.DataFrame([
      pl.Series('run', ['best-a', 'other']),
      pl.Series('seed', [0, 1], pl.Int64),
      pl.Series('epoch', [1, 1], pl.Int32),
      pl.Series('step', [10, 10], pl.Int64),
      pl.Series('images', [100, 100], pl.Int64),
      pl.Series('split', ['test', 'test']),
      pl.Series('accuracy', [0.5, 0.6]),
      pl.Series('wallSeconds', [3, 4]),
    ]);
    fs.writeFileSync(path.join(dir, 'epochs.parquet'), df.writeParquet());
    const read = readRecordedEpochs('paired', dir, ['best-a']);
    expect(read.length).toBe(1);
    expect(typeof read[0].seed).toBe('number');
    expect(read[0].accuracy).toBe(0.5);
  });
});

describe('what dynamic filters cost', () => {
  function times(othersShare: number | null): MeasurementRow[] {
    const base = { backend: 'test', cpus: 2, load1: 0.5, othersShare, time: new Date(0) };
    const t = (measure: MeasurementRow['measure'], variant: string, value: number, batch = 64): MeasurementRow => ({
      ...base,
      measure,
      setting: 'lab',
      variant,
      part: '',
      batch,
      value,
      unit: 'ms',
      spread: 1,
      n: 12,
    });
    return [
      ...parameterRows(base),
      t('train-step', 'dynamic', 120),
      t('train-step', 'static', 100),
      t('inference-step', 'dynamic', 31),
      t('inference-step', 'static', 30),
      t('inference-step-precomputed-filters', 'dynamic', 30.5),
      t('filter-generation', 'dynamic', 0.5, 10),
    ];
  }

  it('counts parameters per part and derives the ratios from the step times', () => {
    const c = dynamicCosts(times(0.6));
    expect(c.head).toEqual({ dynamic: 54977, static: 4865, ratio: 54977 / 4865, generator: expect.any(Number) });
    expect(c.parameters[c.parameters.length - 1].part).toBe('total');
    expect(c.trainStepRatio).toBeCloseTo(1.2, 10);
    expect(c.generationShareOfTrainStep).toBeCloseTo(0.5 / 120, 10);
    expect(c.cachedInferenceRatio).toBeCloseTo(30.5 / 30, 10);
    expect(c.perImageGenerationMs).toBe(32);
    expect(c.batch).toBe(64);
    expect(c.timing).toEqual({ cpus: 2, othersShare: 0.6, load1: 0.5 });
    expect(c.missing).toEqual([]);
  });

  it('says what is not measured yet', () => {
    const c = dynamicCosts(times(null).filter((m) => !(m.measure === 'train-step' && m.variant === 'static')));
    expect(c.missing).toEqual(['train-step']);
    expect(c.trainStepRatio).toBeNull();
    expect(c.timing.othersShare).toBeNull();
    const none = dynamicCosts([]);
    expect(none.parameters).toEqual([]);
    expect(none.head.ratio).toBeNull();
    expect(none.missing).toEqual([
      'train-step',
      'inference-step',
      'inference-step-precomputed-filters',
      'filter-generation',
    ]);
  });
});

describe('your runs', () => {
  /** A run folder with its config and `acc.length` epochs of test accuracy acc[e] (a lab-suite name, or a config). */
  function makeRun(resultsDir: string, nameOrConfig: string | TrainConfig, acc: number[]): void {
    const config =
      typeof nameOrConfig === 'string' ? LAB_EXPERIMENTS.find((x) => x.name === nameOrConfig)!.config : nameOrConfig;
    const name = config.run;
    const dir = path.join(resultsDir, 'runs', name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    acc.forEach((a, i) => {
      const base = {
        run: name,
        session: 1,
        resumedFrom: 0,
        variant: config.variant,
        seed: config.seed,
        backend: 'test',
        epoch: i + 1,
        step: 10 * (i + 1),
        lr: 1e-3,
        time: new Date(0),
      };
      const row = (split: 'train' | 'test', accuracy: number): EpochRow => ({
        ...base,
        split,
        images: 100,
        loss: 2 - accuracy,
        accuracy,
        perClassAccuracy: new Array(10).fill(accuracy),
        imagesPerSecond: 100,
        wallSeconds: split === 'train' ? 100 : 5,
      });
      appendEpoch(dir, [row('train', a + 0.05), row('test', a)], []);
    });
  }

  /** The lab suite's table for the runs above (no checkpoints here: a run with metrics counts as done), with overrides per name. */
  function writeTable(resultsDir: string, overrides: Record<string, Partial<ExperimentRow>> = {}): void {
    const rows = experimentRows({ resultsDir }).map((r) => {
      const done =
        fs.existsSync(path.join(resultsDir, 'runs', r.name)) && r.bestTestAccuracy !== null
          ? { status: 'done' as const, epochsDone: r.epochs }
          : {};
      return { ...r, ...done, ...overrides[r.name] };
    });
    fs.writeFileSync(path.join(resultsDir, EXPERIMENTS_FILE), experimentFrame(rows).writeParquet());
  }

  it('gives each run its difference from its base as a number, and names what is missing with its command', () => {
    const dir = path.join(root, 'lab');
    makeRun(dir, 'lab-dynamic-s0', [0.7, 0.8]);
    makeRun(dir, 'frozen-requires-grad', [0.6]);
    makeRun(dir, 'frozen-eval', [0.55]);
    makeRun(dir, 'fix-bn-only', [0.65]);
    makeRun(dir, trainConfig({ run: 'my-no-scale', responseScale: false }), [0.72, 0.79]);
    writeTable(dir, { 'fix-bn-only': { status: 'partial', epochsDone: 1 } });
    writeMeasurements(dir, parameterRows({ backend: 'test', cpus: 2, load1: 0, othersShare: null, time: new Date(0) }));
    const ev = loadEvidence(dir, { sweepFile: path.join(dir, 'none.jsonl') });
    expect(ev.sweep).toEqual([]);
    expect(ev.measurements.length).toBeGreaterThan(0);
    expect(typeof ev.experiments[0].parameters).toBe('number');

    // Each of your freeze runs against its control, as the recorded suite pairs the same arms.
    const names = ['lab-dynamic-s0', 'frozen-requires-grad', 'frozen-eval', 'fix-bn-only', 'fix-adapter'];
    expect(['lab-static-s0', ...names].map(labControl)).toEqual([
      undefined,
      undefined,
      'lab-dynamic-s0',
      'frozen-requires-grad',
      'frozen-requires-grad',
      'frozen-eval',
    ]);
    const rows = labRunRows(ev.experiments, names, labControl);
    expect(
      rows.map((r) => [
        r.name,
        r.bestTestAccuracy,
        r.base,
        r.vsBase === null ? null : Math.round(1e4 * r.vsBase) / 100,
      ]),
    ).toEqual([
      ['lab-dynamic-s0', 0.8, null, null],
      ['frozen-requires-grad', 0.6, 'lab-dynamic-s0', -20],
      ['frozen-eval', 0.55, 'frozen-requires-grad', -5],
      ['fix-bn-only', 0.65, 'frozen-requires-grad', 5],
      ['fix-adapter', null, 'frozen-eval', null], // not run: its base is named, no difference without its accuracy
    ]);
    expect(labRunRows(ev.experiments, ['lab-dynamic-s0', 'lab-static-s0'], 'lab-static-s0')[0].vsBase).toBeNull(); // static not run

    const gaps = runGaps(ev.experiments, names);
    expect(gaps.missing).toEqual([{ name: 'fix-adapter', status: 'not-started', detail: '' }]);
    expect(gaps.unfinished).toEqual([{ name: 'fix-bn-only', status: 'partial', epochsDone: 1, epochs: 5 }]);
    expect(gaps.command).toBe('npm run experiments -- --only fix-adapter,fix-bn-only');
    expect(runGaps(ev.experiments, ['lab-dynamic-s0']).command).toBeNull();
    expect(runGaps([], ['x']).missing).toEqual([{ name: 'x', status: 'not in the table', detail: '' }]);
    expect(experimentsCommand(['a', 'b'])).toBe('npm run experiments -- --only a,b');

    const results = loadLabResults({ resultsDir: dir });
    const runs = runRows(results.runs);
    expect(runs.find((r) => r.name === 'my-no-scale')).toMatchObject({
      changes: ['responseScale=false'],
      epochsDone: 2,
      bestTestAccuracy: 0.79,
      bestEpoch: 2,
      checkpoints: [],
      problem: null,
    });
    expect(ablationRunRows(results)).toEqual([
      {
        name: 'my-no-scale',
        changes: ['responseScale=false'],
        seed: 0,
        bestTestAccuracy: 0.79,
        bestEpoch: 2,
        diverged: false,
        vsBase: expect.closeTo(-0.01, 10),
      },
    ]);
  });

  it('reads the recorded suite (through the results table) and the sweep when they are there', () => {
    const dir = path.join(root, 'with-recorded');
    const recordedDir = path.join(dir, 'recorded', 'paired');
    fs.mkdirSync(recordedDir, { recursive: true });
    const rows = recordedRows({ dynamic: DYNAMIC, static: STATIC });
    fs.writeFileSync(
      path.join(recordedDir, 'experiments.parquet'),
      pl
        .DataFrame(
          (Object.keys(RECORDED_SCHEMA) as (keyof RecordedRow)[]).map((k) =>
            pl.Series(k, rows.map((r) => r[k]) as unknown[], RECORDED_SCHEMA[k]),
          ),
        )
        .writeParquet(),
    );
    fs.writeFileSync(path.join(recordedDir, 'provenance.json'), JSON.stringify({ suite: 'paired', batches: [] }));
    const sweepFile = path.join(dir, 'sweep.jsonl');
    fs.writeFileSync(
      sweepFile,
      `${JSON.stringify({ config: { name: 'best40', epochs: 40, lr: 0.002 }, epochs_done: 40, best_test_accuracy: 0.8553, final_test_accuracy: 0.8538, seconds: 300 })}\n`,
    );
    const ev = loadEvidence(dir, { sweepFile });
    expect(ev.experiments).toEqual([]);
    const t = loadResults({ recordedDir: path.join(dir, 'recorded'), resultsDir: dir });
    expect(t.filter(pl.col('metric').eq(pl.lit('test_acc'))).height).toBe(10);
    expect(compare(t, [DYN_VS_STATIC])[0].verdict).toBe('better');
    expect(readSweep(sweepFile)).toEqual([
      {
        name: 'best40',
        config: { name: 'best40', epochs: 40, lr: 0.002 },
        epochs: 40,
        bestTestAccuracy: 0.8553,
        finalTestAccuracy: 0.8538,
        seconds: 300,
        machine: '',
      },
    ]);
    expect(sweepSettings(ev.sweep[0])).toEqual(['lr=0.002']);
  });
});
