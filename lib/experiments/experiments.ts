/**
 * Every experiment of the lab, as tables of named runs with their TrainConfig (two suites), and
 * what `npm run experiments` does with them: run them in order, one after the other, skipping
 * finished runs and resuming unfinished ones from their last checkpoint.
 *
 *   lab suite (LAB_EXPERIMENTS; what npm start trains, results/runs): one run per question, the
 *     lab's recipe with seed 0, best epoch on TEST accuracy as the lab states it —
 *     lab-dynamic-s0, lab-static-s0, frozen-requires-grad (the lab's freeze), frozen-eval (a
 *     fixed-function freeze), fix-bn-only and fix-adapter (two fixes): the names of the paired
 *     suite's arms with the same settings (one name per setting).
 *   paired suite (PAIRED_EXPERIMENTS; results/paired, recorded in results/recorded/paired): every
 *     arm of ARMS with its seeds, seed k shared by all arms (data order, augmentation, the seeded streams),
 *     trained on 45k images with the best epoch chosen on the fixed 5k validation split, test
 *     reported at that epoch; compared seed by seed as PAIRED_COMPARISONS lists (lib/experiments/stats).
 *   recipe suite (RECIPE_EXPERIMENTS; results/recipe, recorded in results/recorded/recipe): more
 *     candidates for the beyond-the-lab recipe beside the paired suite's best-dynamic, on the same
 *     validation split; the recipe is the candidate with the best validation accuracy.
 *
 * A run is finished when its saved config equals the experiment's (bookkeeping fields
 * logEvery / evalBatchSize aside) and its last checkpoint has all epochs. A run of the same name
 * with another config is never touched: the runner refuses to start and says what differs.
 */
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../formats/index';
import { resolvePrecision } from '../runtime/index';
import {
  configDifferences,
  DivergedError,
  INTERRUPT_SIGNALS,
  LAB_RECIPE,
  readCheckpointMeta,
  readRunEpochs,
  RunDir,
  train,
  trainConfig,
  TrainingInterrupted,
  validateConfig,
  type TrainConfig,
  type TrainEvent,
  type TrainOptions,
  type TrainResult,
} from '../train/index';
import { TRAIN_SETTINGS, type ConfigDifference } from '../train/index';
import { isQuick, PATHS, type Setting } from '../config';
import { runOutcomes } from './summary';

export type ExperimentGroup = 'compare' | 'protocol' | 'precision' | 'freeze' | 'init' | 'ablation' | 'recipe';
export const EXPERIMENT_GROUPS: readonly ExperimentGroup[] = [
  'compare',
  'protocol',
  'precision',
  'freeze',
  'init',
  'ablation',
  'recipe',
];

/**
 * One experiment: a named run and its config. `N` / `A` type its name and arm: the tables below
 * give ExperimentName / ArmName; a table made elsewhere (a test's) may use any string.
 */
export interface Experiment<N extends string = string, A extends string = string> {
  /** The run's name under results/runs (= config.run). */
  name: N;
  /** What is compared: the run's name without its seed in the paired suite (`dynamic` of `dynamic-s3`). */
  arm: A;
  group: ExperimentGroup;
  /** What the run measures, in one line. */
  purpose: string;
  config: TrainConfig;
  /**
   * Time of one of its epochs relative to an epoch of the lab's recipe on the same machine, from
   * the training- and inference-step times of `npm run experiments -- --measure` with steps run as
   * graphs (frozen nets skip most of the backward pass; the upsampled one's forward costs 3×).
   */
  relativeEpochCost: number;
}

/**
 * The beyond-the-lab recipe for the dynamic net, chosen with a PyTorch sweep of the same net,
 * data pipeline and optimiser on a GPU (python/recipe_sweep.py; every number in
 * python/recipe_sweep_results.jsonl; best test accuracy, seed 0 unless said):
 *
 *   lab recipe, 5 epochs                                     77.1%   (lib/train: 73.7% after 3 of 5)
 *   + ImageNet norm, augmentation, cosine, smoothing 0.1:
 *       20 epochs 83.6%, 30 epochs 84.6% (seed 1: 84.9%), 40 epochs 85.5%, 50 epochs 85.5%
 *     30 epochs with lr 1e-3 / wd 0: 84.0%; lr 3e-3: 84.6%; wd 5e-4: 84.7%; no smoothing: 84.3%
 *   + input upsampled ×2: 15 epochs 82.8%, 20 epochs 84.3%, 30 epochs 86.0%
 *
 * So: 40 epochs is the cheapest measured budget past 85% (50 adds nothing); upsampling ×2
 * reaches 86.0% in 30 epochs but costs about 4× per epoch on the CPU (≈ 120 lab-epochs instead
 * of 42), so it is not the default. That sweep chose epochs on TEST accuracy: it only motivated
 * the recipe; the recorded runs (validation-selected) are its result. On the 2-core AVX-512
 * machine 40 epochs took 14 min alone (about 22 s per epoch with evaluation). The margin over 85%
 * is ~0.5 points, about the seed-to-seed spread, so a run may land just below it. Each change
 * from the lab's recipe:
 *  - norm 'imagenet': the statistics the pretrained backbone was trained with;
 *  - augment: random crop (4-pixel padding) + horizontal flip — with it more epochs keep paying off;
 *  - schedule 'cosine' from lr 2e-3 to 0 over all steps, label smoothing 0.1, weight decay 5e-5.
 */
const BEST_EPOCHS = 40;
const BEST: Partial<TrainConfig> = {
  variant: 'dynamic',
  norm: 'imagenet',
  augment: true,
  schedule: 'cosine',
  labelSmoothing: 0.1,
  lr: 2e-3,
  weightDecay: 5e-5,
  epochs: BEST_EPOCHS,
  precision: 'fp32', // recorded in fp32: its runs, saved before precision existed, stay this experiment
};

function experiment<N extends string, A extends string = N>(
  name: N,
  group: ExperimentGroup,
  purpose: string,
  overrides: Partial<TrainConfig>,
  relativeEpochCost = 1,
  arm?: A,
): Experiment<N, A> {
  return {
    name,
    arm: arm ?? (name as unknown as A),
    group,
    purpose,
    config: trainConfig({ ...overrides, run: name }),
    relativeEpochCost,
  };
}

/**
 * The lab suite: what `npm start` trains on the user's machine (and `npm run experiments` by
 * default): the lab's recipe, seed 0, best checkpoint on TEST accuracy as the lab states it.
 * One run per question, so the notebooks answer every question from the user's own runs; the
 * multi-seed statistics come from the paired suite below.
 */
const LAB_TABLE = [
  experiment(
    'lab-dynamic-s0',
    'compare',
    "the lab's recipe, dynamic head (notebook 03's run)",
    { variant: 'dynamic', seed: 0 },
    1,
    'lab-dynamic',
  ),
  experiment(
    'lab-static-s0',
    'compare',
    "the lab's recipe, static head (ten learned filters)",
    { variant: 'static', seed: 0 },
    1,
    'lab-static',
  ),
  // The freeze runs carry the names of the paired suite's arms that change the same setting.
  experiment(
    'frozen-requires-grad',
    'freeze',
    "the lab's freeze: requires_grad = False on the backbone, BatchNorm still in training mode",
    { freeze: 'requires-grad' },
    0.45,
  ),
  experiment(
    'frozen-eval',
    'freeze',
    'backbone a fixed function: parameters frozen and BatchNorm in evaluation mode on the ImageNet statistics',
    { freeze: 'all' },
    0.35,
  ),
  experiment(
    'fix-bn-only',
    'freeze',
    'fix: convolutions frozen, BatchNorm trainable (affine parameters and CIFAR-10 statistics)',
    { freeze: 'keep-bn' },
    0.65,
  ),
  experiment(
    'fix-adapter',
    'freeze',
    'fix: backbone frozen (evaluation mode), a trainable residual 3×3 conv + BN + ReLU adapter after it',
    { freeze: 'all', adapter: true },
    0.5,
  ),
] as const;

/** The lab suite's run names, typed from its table: notebooks and answers name runs through this. */
export type LabRunName = (typeof LAB_TABLE)[number]['name'];
export const LAB_EXPERIMENTS: readonly Experiment<LabRunName>[] = Object.freeze(LAB_TABLE);

/**
 * The config a notebook trains for lab-suite run `name`: the suite's, or its quick slice in quick
 * mode (DCF_QUICK=1, whose runs go to results/quick/runs).
 */
export function labRunConfig(name: LabRunName): TrainConfig {
  const e = findExperiment(name, LAB_EXPERIMENTS);
  return isQuick() ? quickExperiment(e).config : e.config;
}

/**
 * Seeds of the paired suite: run k of each arm shares seed k (data order, augmentation, the seeded
 * initialisation streams). Every arm has the first five; the lab's main comparison (dynamic, static,
 * static-l2) has ten, so that "equivalent within the margin" can be shown (five pairs cannot go
 * below p = 0.0625 and gave ±1.2-point intervals).
 */
export const PAIRED_SEEDS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] as const;
/** The seeds of arms that are not the main comparison. */
export const BASE_SEEDS = [0, 1, 2, 3, 4] as const;
/**
 * The equivalence margin, declared before the ten-seed runs (commit of this line): a difference in
 * test accuracy between two arms inside ±EQUIVALENCE_MARGIN points, shown by a 90 % interval
 * (two one-sided tests at 5 %), is called equivalent.
 */
export const EQUIVALENCE_MARGIN = 0.01;
/** Seeds of each recipe candidate: chosen on mean validation accuracy over them. */
const RECIPE_SEEDS = [0, 1, 2] as const;
/** Images of the fixed, class-balanced validation split (lib/data/batches splitValidation). */
export const VALIDATION_IMAGES = 5000;

/** One arm of the paired suite: the settings that differ from the recipe, and its relative cost. */
interface Arm<A extends string = string> {
  arm: A;
  group: ExperimentGroup;
  purpose: string;
  overrides: Partial<TrainConfig>;
  cost: number;
  /** Its seeds (default BASE_SEEDS). */
  seeds?: readonly number[];
}

const ARMS = [
  {
    arm: 'dynamic',
    group: 'compare',
    purpose: "the lab's net (generator + L2-normalised filters)",
    overrides: { variant: 'dynamic' },
    cost: 1,
    seeds: PAIRED_SEEDS,
  },
  {
    arm: 'static',
    group: 'compare',
    purpose: "the lab's static head: no generator AND no normalisation (two factors)",
    overrides: { variant: 'static' },
    cost: 1,
    seeds: PAIRED_SEEDS,
  },
  {
    arm: 'static-l2',
    group: 'compare',
    purpose: 'static head with L2-normalised filters: differs from dynamic in the generator alone',
    overrides: { variant: 'static', staticNorm: true },
    cost: 1,
    seeds: PAIRED_SEEDS,
  },
  {
    arm: 'lab-dynamic',
    group: 'protocol',
    purpose: "the lab's protocol: dynamic net trained on all 50k images, best epoch on test",
    overrides: { variant: 'dynamic', val: 0, selectBy: 'test' },
    cost: 1.1,
  },
  {
    arm: 'lab-static',
    group: 'protocol',
    purpose: "the lab's protocol: static net trained on all 50k images, best epoch on test",
    overrides: { variant: 'static', val: 0, selectBy: 'test' },
    cost: 1.1,
  },
  // Seeds 5–7: their fp32 runs were trained on the same machine and code as these (only the precision differs).
  {
    arm: 'dynamic-bf16',
    group: 'precision',
    purpose: 'the lab net in bf16 mixed precision (lib/runtime/precision) against fp32',
    overrides: { variant: 'dynamic', precision: 'bf16' },
    cost: 1.4,
    seeds: [5, 6, 7],
  },
  {
    arm: 'frozen-requires-grad',
    group: 'freeze',
    purpose: "the lab's freeze (requires_grad = False): BatchNorm in training mode",
    overrides: { freeze: 'requires-grad' },
    cost: 0.45,
  },
  {
    arm: 'frozen-eval',
    group: 'freeze',
    purpose: 'backbone a fixed function: BatchNorm in evaluation mode on ImageNet statistics',
    overrides: { freeze: 'all' },
    cost: 0.35,
  },
  {
    arm: 'frozen-eval-imagenet',
    group: 'freeze',
    purpose: 'the input-statistics cause: the fixed backbone fed ImageNet-normalised inputs',
    overrides: { freeze: 'all', norm: 'imagenet' },
    cost: 0.35,
  },
  {
    arm: 'fix-bn-only',
    group: 'freeze',
    purpose: 'fix: convolutions frozen, BatchNorm γ/β trained',
    overrides: { freeze: 'keep-bn' },
    cost: 0.65,
  },
  {
    arm: 'fix-stem-frozen',
    group: 'freeze',
    purpose: 'fix: partial unfreezing, stem frozen, layer1 trained',
    overrides: { freeze: 'stem' },
    cost: 0.9,
  },
  {
    arm: 'fix-adapter',
    group: 'freeze',
    purpose: 'fix: backbone a fixed function, a trainable residual 3×3 conv + BN + ReLU adapter after it',
    overrides: { freeze: 'all', adapter: true },
    cost: 0.5,
  },
  {
    arm: 'frozen-eval-up2',
    group: 'freeze',
    purpose: 'the scale cause: the fixed backbone sees the input upsampled ×2 (objects nearer ImageNet sizes)',
    overrides: { freeze: 'all', upsample: 2 },
    cost: 1.2,
  },
  {
    arm: 'dynamic-folded',
    group: 'init',
    purpose: 'the lab net started from the BN-folded file instead of the unfolded torchvision one',
    overrides: { weights: 'folded' },
    cost: 1,
  },
  {
    arm: 'ablate-no-norm',
    group: 'ablation',
    purpose: 'dynamic head without the L2 normalisation of the generated filters',
    overrides: { filterNorm: false },
    cost: 1,
  },
  {
    arm: 'ablate-no-scale',
    group: 'ablation',
    purpose: 'response maps not divided by √64',
    overrides: { responseScale: false },
    cost: 1,
  },
] as const satisfies readonly Arm[];

/** The paired suite's arms (what is compared, seed by seed). */
export type ArmName = (typeof ARMS)[number]['arm'];
export type PairedSeed = (typeof PAIRED_SEEDS)[number];
/** The beyond-the-lab run of the paired suite's table (its own arm). */
const BEST_DYNAMIC = 'best-dynamic';
/** The recipe suite's candidate: best-dynamic plus a trainable residual 3×3 conv + BN + ReLU after the backbone. */
const BEST_ADAPTER = 'best-adapter';
/** A run of the paired suite: arm k's run with seed s is `${arm}-s${s}`, and best-dynamic. */
export type PairedRunName = `${ArmName}-s${PairedSeed}` | typeof BEST_DYNAMIC;
/** A run of the recipe suite: seed 0 of each candidate has the candidate's name, seed s > 0 `${name}-s${s}`. */
export type RecipeRunName =
  typeof BEST_ADAPTER | `${typeof BEST_DYNAMIC | typeof BEST_ADAPTER}-s${Exclude<(typeof RECIPE_SEEDS)[number], 0>}`;
/** Every run name of the experiment tables (both suites). */
export type ExperimentName = LabRunName | PairedRunName | RecipeRunName;

/**
 * The paired suite behind the recorded results (results/recorded/): every arm with each of
 * PAIRED_SEEDS, trained on 45k images, the best epoch chosen on the fixed 5k validation split
 * and test reported at that epoch. Phase by phase (the comparison, then freezing and
 * initialisation, then the ablations), seed-major inside each, so a suite stopped early still
 * has whole pairs: all arms of seed 0, then of seed 1, …
 */
export const PAIRED_EXPERIMENTS: readonly Experiment<PairedRunName, ArmName | typeof BEST_DYNAMIC>[] = Object.freeze([
  ...(['compare', 'protocol', 'precision', 'freeze', 'ablation'] as const).flatMap((phase) => {
    const arms: readonly Arm<ArmName>[] = ARMS.filter((a: Arm) =>
      phase === 'freeze' ? a.group === 'freeze' || a.group === 'init' : a.group === phase,
    );
    return PAIRED_SEEDS.flatMap((seed) =>
      arms.filter((a) => (a.seeds ?? BASE_SEEDS).includes(seed)).map((a) => pairedExperiment(a, seed)),
    );
  }),
  experiment(
    BEST_DYNAMIC,
    'recipe',
    `beyond the lab: ImageNet normalisation, augmentation, cosine schedule, label smoothing, ${BEST_EPOCHS} epochs`,
    { ...BEST, val: VALIDATION_IMAGES, selectBy: 'val' },
    1.05,
  ),
]);

function pairedExperiment(a: Arm<ArmName>, seed: PairedSeed): Experiment<PairedRunName, ArmName> {
  // Recorded in fp32: its runs, saved before precision existed, stay this experiment.
  const base: Partial<TrainConfig> = { val: VALIDATION_IMAGES, selectBy: 'val', precision: 'fp32' };
  return experiment(`${a.arm}-s${seed}` as const, a.group, a.purpose, { ...base, ...a.overrides, seed }, a.cost, a.arm);
}

/** A paired comparison of two arms of the paired suite: `b` against `a`, seed by seed (b − a). */
export interface ArmComparison<A extends string = string> {
  a: A;
  b: A;
  /** The question it answers (the group of its arms). */
  group: ExperimentGroup;
  /** What the difference isolates, in a few words. */
  isolates: string;
  /** The equivalence margin (accuracy, a fraction; default EQUIVALENCE_MARGIN). */
  margin?: number;
}

/**
 * What each freeze arm tests: a possible cause of the frozen backbone's loss, as the arm that
 * removes it and the control it differs from in that alone. The freeze answer says which causes
 * the data supports from these comparisons' verdicts.
 */
export const FREEZE_CAUSES: readonly { cause: string; arm: ArmName; control: ArmName; how: string }[] = [
  {
    cause: 'BatchNorm statistics',
    arm: 'frozen-eval',
    control: 'frozen-requires-grad',
    how: "BatchNorm in evaluation mode on ImageNet's statistics instead of CIFAR-10 batch statistics",
  },
  {
    cause: 'input statistics',
    arm: 'frozen-eval-imagenet',
    control: 'frozen-eval',
    how: 'inputs normalised with the ImageNet mean and std the backbone was trained on',
  },
  {
    cause: 'object scale',
    arm: 'frozen-eval-up2',
    control: 'frozen-eval',
    how: 'input upsampled ×2, so objects are nearer the size the backbone learned',
  },
  {
    cause: 'features not adapted to CIFAR-10',
    arm: 'fix-stem-frozen',
    control: 'frozen-requires-grad',
    how: "layer1's filters trained, the stem frozen",
  },
];

/** The fixes of a frozen backbone, each with its control: the frozen arm it differs from in the fix alone. */
export const PAIRED_FIXES: readonly { arm: ArmName; control: ArmName; how: string }[] = [
  { arm: 'fix-bn-only', control: 'frozen-requires-grad', how: "BatchNorm's affine parameters trained" },
  { arm: 'fix-stem-frozen', control: 'frozen-requires-grad', how: "layer1's filters trained, the stem frozen" },
  {
    arm: 'fix-adapter',
    control: 'frozen-eval',
    how: 'a trainable residual 3×3 conv + BN + ReLU after the fixed backbone',
  },
];

/** Every comparison the answers, the report and docs/results.md quote from the paired suite: the one list of them. */
export const PAIRED_COMPARISONS: readonly ArmComparison<ArmName>[] = [
  {
    group: 'compare',
    a: 'static',
    b: 'dynamic',
    isolates: "the lab's comparison: generator and L2 normalisation together",
  },
  { group: 'compare', a: 'static-l2', b: 'dynamic', isolates: 'the generator alone' },
  { group: 'compare', a: 'static', b: 'static-l2', isolates: 'the L2 normalisation alone' },
  {
    group: 'protocol',
    a: 'lab-static',
    b: 'lab-dynamic',
    isolates: "the lab's comparison under the lab's protocol (50k images, best epoch on test)",
  },
  {
    group: 'protocol',
    a: 'dynamic',
    b: 'lab-dynamic',
    isolates: "the protocol, dynamic net: the lab's (50k, test-selected) against 45k, validation-selected",
  },
  {
    group: 'protocol',
    a: 'static',
    b: 'lab-static',
    isolates: "the protocol, static net: the lab's (50k, test-selected) against 45k, validation-selected",
  },
  {
    group: 'precision',
    a: 'dynamic',
    b: 'dynamic-bf16',
    isolates: 'bf16 mixed precision against fp32: the same net, seed and data',
  },
  {
    group: 'freeze',
    a: 'dynamic',
    b: 'frozen-requires-grad',
    isolates: "the lab's freeze against training everything",
  },
  {
    group: 'freeze',
    a: 'dynamic',
    b: 'frozen-eval',
    isolates: 'the fixed-function freeze against training everything',
  },
  ...FREEZE_CAUSES.map((c) => ({
    group: 'freeze' as const,
    a: c.control,
    b: c.arm,
    isolates: `the ${c.cause} cause: ${c.how}`,
  })),
  ...PAIRED_FIXES.filter((f) => !FREEZE_CAUSES.some((c) => c.arm === f.arm && c.control === f.control)).map((f) => ({
    group: 'freeze' as const,
    a: f.control,
    b: f.arm,
    isolates: `the fix alone: ${f.how}`,
  })),
  ...PAIRED_FIXES.map((f) => ({
    group: 'freeze' as const,
    a: 'dynamic' as const,
    b: f.arm,
    isolates: 'the fix against training everything',
  })),
  {
    group: 'init',
    a: 'dynamic',
    b: 'dynamic-folded',
    isolates: 'initialisation: the BN-folded pretrained file instead of the unfolded torchvision one',
  },
  {
    group: 'ablation',
    a: 'dynamic',
    b: 'ablate-no-norm',
    isolates: 'without the L2 normalisation of the generated filters',
  },
  { group: 'ablation', a: 'dynamic', b: 'ablate-no-scale', isolates: 'response maps not divided by √64' },
];

/**
 * The recipe suite: candidates beside best-dynamic (recorded with the paired suite), each on the
 * same validation split and chosen among on validation accuracy (lib/experiments/recipe).
 * best-adapter adds capacity after layer1 for about 1.3× best-dynamic's time per epoch (recorded alone:
 * 18.8 against 14.1 min for 40 epochs).
 */
const RECIPE_EXPERIMENTS: readonly Experiment<RecipeRunName, typeof BEST_DYNAMIC | typeof BEST_ADAPTER>[] =
  Object.freeze([
    experiment(
      BEST_ADAPTER,
      'recipe',
      `best-dynamic plus a residual 3×3 conv + BN + ReLU adapter after the backbone, ${BEST_EPOCHS} epochs`,
      { ...BEST, adapter: true, val: VALIDATION_IMAGES, selectBy: 'val' },
      1.4,
    ),
    // More seeds of both candidates (seed 0 of best-dynamic is the paired suite's best-dynamic).
    ...RECIPE_SEEDS.filter((s): s is Exclude<(typeof RECIPE_SEEDS)[number], 0> => s > 0).flatMap((seed) => [
      experiment(
        `${BEST_DYNAMIC}-s${seed}` as const,
        'recipe',
        `best-dynamic, seed ${seed}`,
        { ...BEST, seed, val: VALIDATION_IMAGES, selectBy: 'val' },
        1.05,
        BEST_DYNAMIC,
      ),
      experiment(
        `${BEST_ADAPTER}-s${seed}` as const,
        'recipe',
        `best-adapter, seed ${seed}`,
        { ...BEST, adapter: true, seed, val: VALIDATION_IMAGES, selectBy: 'val' },
        1.4,
        BEST_ADAPTER,
      ),
    ]),
  ]);

/** The suites: the lab's (npm start), the paired one and the recipe candidates (both recorded). */
export type Suite = 'lab' | 'paired' | 'recipe';
export const SUITES: Record<Suite, readonly Experiment<ExperimentName>[]> = {
  lab: LAB_EXPERIMENTS,
  paired: PAIRED_EXPERIMENTS,
  recipe: RECIPE_EXPERIMENTS,
};

/** The lab suite (what `npm run experiments` runs unless --suite says otherwise). */
export const EXPERIMENTS: readonly Experiment<LabRunName>[] = LAB_EXPERIMENTS;

/** The experiment called `name` in `list` (typed by the list: a lab suite name by default); an unknown name is an error listing the known ones. */
export function findExperiment<E extends Experiment = Experiment<LabRunName>>(
  name: E['name'],
  list: readonly E[] = EXPERIMENTS as unknown as readonly E[],
): E {
  const e = list.find((x) => x.name === name);
  if (!e) throw new Error(`no experiment named '${name}'; experiments: ${list.map((x) => x.name).join(', ')}`);
  return e;
}

/**
 * The experiments named in `names` (in table order), or all of them. Names as typed on a command
 * line: each is checked against the table (an unknown one is an error listing the known ones).
 */
export function selectExperiments<E extends Experiment = Experiment<LabRunName>>(
  names: readonly string[] | undefined,
  list: readonly E[] = EXPERIMENTS as unknown as readonly E[],
): E[] {
  if (!names || names.length === 0) return [...list];
  const wanted = new Set(names.map((n) => findExperiment<Experiment>(n, list).name));
  return list.filter((e) => wanted.has(e.name));
}

// ---- quick mode -------------------------------------------------------------------------------

/** What --quick changes: tiny real slices and one epoch, into PATHS.quick (never results/runs). */
const QUICK_SLICE = { epochs: 1, limitTrain: 256, limitTest: 128 } as const;

/** The same experiment on a tiny slice: it exercises the same code and settings in seconds. */
export function quickExperiment<E extends Experiment>(e: E): E {
  // A validation split, if any, shrinks with the slice (50 of 256: 5 per class).
  return { ...e, config: validateConfig({ ...e.config, ...QUICK_SLICE, val: e.config.val > 0 ? 50 : 0 }) };
}

/**
 * Where runs and tables go: results/ (results/runs) for the lab suite, results/paired for the
 * paired suite, or results/quick (results/quick/runs) in quick mode.
 */
export function experimentDirs(opts: { quick?: boolean; resultsDir?: string; suite?: Suite } = {}): {
  resultsDir: string;
  runsDir: string;
} {
  const resultsDir =
    opts.resultsDir ??
    (opts.quick
      ? PATHS.quick
      : opts.suite === 'paired'
        ? PATHS.paired
        : opts.suite === 'recipe'
          ? PATHS.recipe
          : PATHS.results);
  return { resultsDir, runsDir: path.join(resultsDir, 'runs') };
}

// ---- status -----------------------------------------------------------------------------------

/** Fields that say how a run reports, not what it trains: they may differ from the table. */
const BOOKKEEPING: readonly (keyof TrainConfig)[] = ['logEvery', 'evalBatchSize'];

/** How a run's saved config differs from the experiment's, one line per field (none when equal). */
export function experimentConflicts(saved: TrainConfig, wanted: TrainConfig): string[] {
  // 'auto' against the precision it resolves to on this machine computes the same: not a conflict.
  const samePrecision = resolvePrecision(saved.precision).precision === resolvePrecision(wanted.precision).precision;
  return configDifferences(saved, wanted, { ignore: samePrecision ? [...BOOKKEEPING, 'precision'] : BOOKKEEPING }).map(
    (d) => `${d.field}: the run has ${JSON.stringify(d.a)}, the experiment wants ${JSON.stringify(d.b)}`,
  );
}

export type ExperimentState =
  /** All epochs finished with the experiment's config. */
  | 'done'
  /** Some epochs finished; the rest resume from the last checkpoint. */
  | 'partial'
  | 'not-started'
  /** Another live process holds the run's lock (e.g. the same run started by hand). */
  | 'running'
  /** Training stopped on a NaN/Inf loss (a result for the ablations); skipped unless retried. */
  | 'diverged'
  /** A run of that name exists with another config: refused. */
  | 'mismatch'
  /** The run's files cannot be read. */
  | 'unreadable';

export interface ExperimentStatus {
  name: string;
  group: ExperimentGroup;
  state: ExperimentState;
  /** Epochs finished (the last checkpoint's), and the experiment's epochs. */
  epochsDone: number;
  epochs: number;
  /** Test accuracy: best epoch's, the last finished epoch's; null before the first epoch. */
  bestAccuracy: number | null;
  bestEpoch: number | null;
  finalAccuracy: number | null;
  /** Mean seconds of a training epoch (the train pass), null before the first epoch. */
  secondsPerEpoch: number | null;
  /** mismatch: what differs; diverged / unreadable / running: why. */
  detail: string[];
}

/** The file in which the runner records a diverged run (so that reruns do not repeat it). */
export const DIVERGED_FILE = 'diverged.json';

interface DivergedRecord {
  message: string;
  /** Epochs finished before the divergence. */
  epochsDone: number;
  config: TrainConfig;
  time: string;
}

function readDiverged(runDir: string): DivergedRecord | undefined {
  const file = path.join(runDir, DIVERGED_FILE);
  if (!fs.existsSync(file)) return undefined;
  return JSON.parse(fs.readFileSync(file, 'utf8')) as DivergedRecord;
}

/** Where experiment `e` stands under `runsDir` (reads files, never writes). */
export function experimentStatus(e: Experiment, runsDir: string): ExperimentStatus {
  const store = new RunDir(runsDir, e.name);
  const status: ExperimentStatus = {
    name: e.name,
    group: e.group,
    state: 'not-started',
    epochsDone: 0,
    epochs: e.config.epochs,
    bestAccuracy: null,
    bestEpoch: null,
    finalAccuracy: null,
    secondsPerEpoch: null,
    detail: [],
  };
  try {
    let saved = store.readConfig();
    const last = store.checkpoint('last');
    const best = store.checkpoint('best');
    const newest = fs.existsSync(last) ? last : fs.existsSync(best) ? best : undefined;
    if (newest) {
      const meta = readCheckpointMeta(newest);
      status.epochsDone = meta.epoch;
      saved ??= validateConfig(meta.config, `the config saved in ${newest}`);
    }
    if (saved) {
      const conflicts = experimentConflicts(saved, e.config);
      if (conflicts.length) return { ...status, state: 'mismatch', detail: conflicts };
      const outcome = runOutcomes(readRunEpochs(store.dir))[0];
      if (outcome) {
        Object.assign(status, {
          bestAccuracy: outcome.bestAccuracy,
          bestEpoch: outcome.bestEpoch,
          finalAccuracy: outcome.finalAccuracy,
          secondsPerEpoch: outcome.secondsPerEpoch,
        });
      }
    }
    const holder = store.lockedBy();
    if (holder !== undefined) return { ...status, state: 'running', detail: [`${holder} is training it`] };
    if (status.epochsDone >= e.config.epochs) return { ...status, state: 'done' };
    const diverged = readDiverged(store.dir);
    if (diverged && experimentConflicts(validateConfig(diverged.config), e.config).length === 0) {
      return { ...status, state: 'diverged', detail: [diverged.message] };
    }
    return { ...status, state: status.epochsDone > 0 ? 'partial' : 'not-started' };
  } catch (err) {
    return { ...status, state: 'unreadable', detail: [(err as Error).message] };
  }
}

/** Every experiment's status, in table order. */
export function experimentStatuses(runsDir: string, list: readonly Experiment[] = EXPERIMENTS): ExperimentStatus[] {
  return list.map((e) => experimentStatus(e, runsDir));
}

// ---- the runner -------------------------------------------------------------------------------

export type ExperimentEvent =
  /** The plan: every selected experiment's status before anything runs. */
  | { type: 'plan'; statuses: ExperimentStatus[]; runsDir: string }
  /** Experiment `index` (1-based of `total`) starts training or resuming. */
  | { type: 'begin'; experiment: Experiment; index: number; total: number; status: ExperimentStatus }
  /** Experiment skipped: done, running elsewhere, or diverged before. */
  | { type: 'skip'; experiment: Experiment; index: number; total: number; status: ExperimentStatus }
  /** lib/train's progress of the current experiment. */
  | { type: 'train'; experiment: Experiment; event: TrainEvent }
  | { type: 'end'; experiment: Experiment; outcome: ExperimentOutcome };

export interface ExperimentOutcome {
  name: string;
  /**
   * trained: ran its remaining epochs; skipped: nothing to do; diverged / failed: stopped with
   * `error`; interrupted: SIGINT or SIGTERM (`signal`) stopped it at a step (`error`: the line
   * saying where and what is saved), or came before it began (no `error`): it keeps what it saved
   * and resumes on the next run. It is the last outcome: the experiments after it did not start.
   */
  result: 'trained' | 'skipped' | 'diverged' | 'failed' | 'interrupted';
  status: ExperimentStatus;
  error?: string;
  signal?: NodeJS.Signals;
  train?: TrainResult;
}

export interface RunExperimentsOptions {
  /** Tiny slices, one epoch, into PATHS.quick/runs (see QUICK_SLICE). */
  quick?: boolean;
  /** Only these experiments (names from the table). */
  only?: readonly string[];
  /** Folder of runs (default: results/runs, or results/quick/runs with quick). */
  runsDir?: string;
  /** Train diverged runs again (they are skipped otherwise). */
  retryDiverged?: boolean;
  onEvent?: (event: ExperimentEvent) => void;
  /** Passed to lib/train (tests: already loaded data). */
  data?: TrainOptions['data'];
  /** The table (tests use their own tiny one). */
  experiments?: readonly Experiment[];
}

/**
 * SIGINT / SIGTERM while the runner runs: the first one is kept, and no experiment starts after
 * it. The run in progress stops at its next step through lib/train's own listener
 * (TrainingInterrupted). Listening starts after a macrotask, as lib/train's does (tslab's
 * breakOnSigint window, lib/train/interrupt).
 */
class StopRequest {
  signal?: NodeJS.Signals;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.signal ??= signal;
  };

  static async listen(): Promise<StopRequest> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    const stop = new StopRequest();
    for (const s of INTERRUPT_SIGNALS) process.on(s, stop.onSignal);
    return stop;
  }

  dispose(): void {
    for (const s of INTERRUPT_SIGNALS) process.off(s, this.onSignal);
  }
}

/**
 * Runs the selected experiments one after the other. Refuses to start — training nothing — when
 * a run exists with another config or cannot be read, naming every problem. A run that diverges
 * is recorded (diverged.json in its folder) and the others go on; any other failure also lets
 * the others go on and is reported in the outcomes. SIGINT or SIGTERM stops the run in progress
 * at its next step, saved epochs kept (outcome 'interrupted', not 'failed'), and starts no other.
 */
export async function runExperiments(opts: RunExperimentsOptions = {}): Promise<ExperimentOutcome[]> {
  const table = (opts.experiments ?? EXPERIMENTS).map((e) => (opts.quick ? quickExperiment(e) : e));
  const selected = selectExperiments(opts.only, table);
  const runsDir = opts.runsDir ?? experimentDirs({ quick: opts.quick }).runsDir;
  const emit = opts.onEvent ?? (() => {});
  const statuses = selected.map((e) => experimentStatus(e, runsDir));
  emit({ type: 'plan', statuses, runsDir });
  const blocking = statuses.filter((s) => s.state === 'mismatch' || s.state === 'unreadable');
  if (blocking.length) {
    throw new Error(
      `refusing to run: ${blocking.length} existing run(s) under ${runsDir} do not match the experiment table (nothing was trained or changed):\n` +
        blocking.map((s) => `  ${s.name} (${s.state}):\n    ${s.detail.join('\n    ')}`).join('\n') +
        '\nMove or delete those run folders (or rename the experiment in lib/experiments/experiments.ts) and rerun.',
    );
  }
  const stop = await StopRequest.listen();
  try {
    return await runInOrder(selected, runsDir, stop, opts, emit);
  } finally {
    stop.dispose();
  }
}

async function runInOrder(
  selected: readonly Experiment[],
  runsDir: string,
  stop: StopRequest,
  opts: RunExperimentsOptions,
  emit: (event: ExperimentEvent) => void,
): Promise<ExperimentOutcome[]> {
  const outcomes: ExperimentOutcome[] = [];
  for (const [i, e] of selected.entries()) {
    const index = i + 1;
    const status = experimentStatus(e, runsDir); // again: an earlier experiment may have taken long
    if (stop.signal) {
      const outcome: ExperimentOutcome = { name: e.name, result: 'interrupted', status, signal: stop.signal };
      outcomes.push(outcome);
      emit({ type: 'end', experiment: e, outcome });
      break;
    }
    const skip =
      status.state === 'done' || status.state === 'running' || (status.state === 'diverged' && !opts.retryDiverged);
    if (skip) {
      emit({ type: 'skip', experiment: e, index, total: selected.length, status });
      const outcome: ExperimentOutcome = { name: e.name, result: 'skipped', status };
      outcomes.push(outcome);
      emit({ type: 'end', experiment: e, outcome });
      continue;
    }
    emit({ type: 'begin', experiment: e, index, total: selected.length, status });
    const hasLast = fs.existsSync(new RunDir(runsDir, e.name).checkpoint('last'));
    let outcome: ExperimentOutcome;
    try {
      const result = await train(e.config, {
        runsDir,
        // Unfinished runs continue where they stopped: the planned epochs run back to back. A
        // process killed between the first epoch's two checkpoints left `best` alone: from there.
        resume: status.epochsDone > 0 ? (hasLast ? 'last' : 'best') : undefined,
        data: opts.data,
        onProgress: (event) => {
          // A signal that came before train() listened (from its first macrotask on) is sent
          // again: the run stops at its first step.
          if (event.type === 'start' && stop.signal) process.kill(process.pid, stop.signal);
          emit({ type: 'train', experiment: e, event });
        },
      });
      fs.rmSync(path.join(runsDir, e.name, DIVERGED_FILE), { force: true });
      outcome = { name: e.name, result: 'trained', status: experimentStatus(e, runsDir), train: result };
    } catch (err) {
      const message = (err as Error).message;
      if (err instanceof TrainingInterrupted) {
        const status = experimentStatus(e, runsDir);
        outcome = { name: e.name, result: 'interrupted', status, error: message, signal: stop.signal };
      } else if (err instanceof DivergedError) {
        const done = experimentStatus(e, runsDir).epochsDone;
        const record: DivergedRecord = { message, epochsDone: done, config: e.config, time: new Date().toISOString() };
        writeFileAtomic(path.join(runsDir, e.name, DIVERGED_FILE), `${JSON.stringify(record, null, 2)}\n`);
        outcome = { name: e.name, result: 'diverged', status: experimentStatus(e, runsDir), error: message };
      } else {
        outcome = { name: e.name, result: 'failed', status: experimentStatus(e, runsDir), error: message };
      }
    }
    outcomes.push(outcome);
    emit({ type: 'end', experiment: e, outcome });
    if (outcome.result === 'interrupted') break;
  }
  return outcomes;
}

/**
 * The experiment at 0-based `index` of `list`: the order `--list` prints, and a Slurm array
 * task's SLURM_ARRAY_TASK_ID. Out of range is an error naming the range.
 */
export function experimentAt<E extends Experiment>(list: readonly E[], index: number, what = 'the list'): E {
  if (Number.isInteger(index) && index >= 0 && index < list.length) return list[index];
  const range = list.length ? `indices 0–${list.length - 1}` : 'no index is valid';
  throw new Error(`index ${index} is out of range: ${what} has ${list.length} experiment(s), ${range}`);
}

// ---- descriptions -----------------------------------------------------------------------------

/** How an experiment's config differs from the lab's recipe, e.g. "freeze=all, upsample ×2". */
export function describeSettings(config: TrainConfig): string {
  // A setting's own words where it has them ('no filter norm'), else `field=value`.
  const describe = (d: ConfigDifference) =>
    (TRAIN_SETTINGS[d.field] as Setting<unknown>).describe?.(d.a) ?? `${d.field}=${d.a}`;
  return (
    configDifferences(config, LAB_RECIPE, { ignore: ['seed', 'variant', 'logEvery', 'evalBatchSize'] })
      .map(describe)
      .join(', ') || 'lab recipe'
  );
}

/**
 * Estimated minutes for the experiment's remaining epochs, from the lab recipe's training
 * throughput on this machine (images/s) and the experiment's relative epoch cost.
 */
export function estimateMinutes(e: Experiment, labImagesPerSecond: number, epochsDone = 0): number {
  const trainImages = (e.config.limitTrain || 50_000) - e.config.val;
  const testImages = e.config.limitTest || 10_000;
  // Evaluation runs at about 3× the training throughput (forward only, larger batches).
  const labEpochSeconds = trainImages / labImagesPerSecond + (testImages + e.config.val) / (3 * labImagesPerSecond);
  return (Math.max(e.config.epochs - epochsDone, 0) * labEpochSeconds * e.relativeEpochCost) / 60;
}
