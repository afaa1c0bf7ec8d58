/**
 * What a training run is asked to do: one plain, JSON-serialisable record, saved in the run's
 * config.json and in every checkpoint. Each setting is declared once, in TRAIN_SETTINGS: its
 * default (the lab's recipe), what it allows, its `npm run train` flag and help, and its column in
 * the experiment table. The config's type, LAB_RECIPE, validateConfig, the command line
 * (train-cli) and the experiment table (lib/experiments) are derived from it.
 */
import { ARCHITECTURE_SETTINGS, variantProblems } from '../model/index';
import { booleanSetting as bool, choiceSetting as oneOf, numberSetting as num, settingProblems } from '../config';
import { NORMALIZATIONS, parseWeightsFlag, PRETRAINED_FILES, VARIANTS, type Freeze, type NormName } from '../config';
import type { Setting, SettingValues } from '../config';

export type Schedule = 'constant' | 'cosine';
const SCHEDULES: readonly Schedule[] = ['constant', 'cosine'];
export const FREEZES: readonly Freeze[] = ['none', 'requires-grad', 'all', 'keep-bn', 'stem'];
const NORMS = Object.keys(NORMALIZATIONS) as NormName[];
/** A whole number ≥ min (and ≤ max); a number > 0; a fraction in [0, 1). */
const whole = (min: number, max?: number) => ({ whole: true, min, max });
const positive = { min: 0, above: true };
const fraction = { min: 0, max: 1, below: true };

export const TRAIN_SETTINGS = {
  variant: oneOf(VARIANTS, 'dynamic', { flag: '--variant', column: 'Utf8', help: 'head' }),
  epochs: num(5, whole(1), { flag: '--epochs', column: 'Int32', resumable: true, help: 'epochs to train in all' }),
  batchSize: num(64, whole(2), { flag: '--batch-size', column: 'Int32', help: 'images per training step' }),
  lr: num(1e-3, positive, { flag: '--lr', column: 'Float64', resumable: true, help: "Adam's base learning rate" }),
  // Seeds are 32 bits (lib/runtime/random): 2³² would silently train seed 0.
  seed: num(0, whole(0, 2 ** 32 - 1), { flag: '--seed', column: 'Int64', help: 'init, data order, augmentation' }),
  norm: oneOf(NORMS, 'half', { flag: '--norm', column: 'Utf8', help: 'input normalisation' }),
  augment: bool(false, { flag: '--augment', column: 'Bool', help: 'random crop (4-pixel padding) + horizontal flip' }),
  freeze: oneOf(FREEZES, 'none', {
    flag: '--freeze',
    column: 'Utf8',
    help:
      "none: train all; requires-grad: the lab's literal freeze (weights fixed, BatchNorm statistics still updated); " +
      'all: the backbone fixed, BatchNorm on ImageNet statistics; keep-bn: convolutions fixed, BatchNorm trained; ' +
      'stem: only the stem (conv1, bn1) fixed, layer1 trained',
  }),
  pretrained: bool(true, { flag: '--no-pretrained', help: 'start the backbone from random weights' }),
  weights: {
    default: 'torchvision',
    allowed: `${Object.keys(PRETRAINED_FILES).join(' or ')} or a file path`,
    check: (v: unknown) => typeof v === 'string' && v.length > 0,
    parse: (text: string) => parseWeightsFlag(text),
    flag: '--weights',
    placeholder: `${Object.keys(PRETRAINED_FILES).join('|')}|FILE`,
    help:
      "pretrained backbone: torchvision's unfolded BatchNorm file, the BN-folded file (data/pretrained/), " +
      'or a .safetensors / torchvision .pth file',
  } satisfies Setting<string>,
  limitTrain: num(0, whole(0), { flag: '--limit-train', help: 'only the first N training images (0: all)' }),
  limitTest: num(0, whole(0), { flag: '--limit-test', help: 'only the first N test images (0: all)' }),
  val: num(0, whole(0), { flag: '--val', help: 'hold out N training images as a validation split (every epoch)' }),
  labelSmoothing: num(0, fraction, { flag: '--label-smoothing', column: 'Float64', help: "PyTorch's label_smoothing" }),
  schedule: oneOf(SCHEDULES, 'constant', { flag: '--schedule', column: 'Utf8', help: 'constant lr, or cosine to 0' }),
  weightDecay: num(0, { min: 0 }, { flag: '--weight-decay', column: 'Float64', help: "Adam's L2 penalty" }),
  selectBy: oneOf(['test', 'val'] as const, 'test', { flag: '--select-by', help: 'split that picks the best epoch' }),
  logEvery: num(10, whole(1), { flag: '--log-every', resumable: true, help: 'read the loss back every N steps' }),
  evalBatchSize: num(500, whole(1), { flag: '--eval-batch-size', resumable: true, help: 'evaluation batch size' }),
  precision: oneOf(['fp32', 'bf16', 'auto'] as const, 'auto', {
    // Resumable: fp32 master weights either way, so a run's state means the same in both precisions.
    flag: '--precision',
    column: 'Utf8',
    missing: 'fp32',
    resumable: true, // configs saved before precision existed were fp32
    help:
      'fp32, bf16 mixed precision (fp32 master weights, bf16 convolutions and matrix products), ' +
      'or auto: bf16 where this CPU was measured faster',
  }),
  ...ARCHITECTURE_SETTINGS,
};

export interface TrainConfig extends SettingValues<typeof TRAIN_SETTINGS> {
  /** The run's name: its folder under results/runs. Letters, digits, '.', '_', '-'. */
  run: string;
}

/** A setting of a training config (its name is `run`, which is not a setting). */
export type ConfigField = keyof typeof TRAIN_SETTINGS;
/** Every setting, in the table's order (the architecture's last). */
export const CONFIG_FIELDS = Object.keys(TRAIN_SETTINGS) as ConfigField[];
const SETTINGS = TRAIN_SETTINGS as Record<ConfigField, Setting<unknown>>;

/** The lab's recipe: 5 epochs, batch 64, Adam 1e-3, mean/std 0.5, no augmentation, pretrained backbone. */
const DEFAULTS = CONFIG_FIELDS.map((k) => [k, SETTINGS[k].default]);
export const LAB_RECIPE = Object.fromEntries(DEFAULTS) as Omit<TrainConfig, 'run'>;

/** Fields a resumed run may change (they do not change what the saved state means). */
export const RESUMABLE_FIELDS = CONFIG_FIELDS.filter((k) => SETTINGS[k].resumable);

const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Throws unless `name` can name a run folder. */
export function checkRunName(name: string): string {
  if (typeof name !== 'string' || !RUN_NAME.test(name)) {
    throw new Error(
      `run name must be 1–100 letters, digits, '.', '_' or '-', starting with a letter or digit; got '${name}'`,
    );
  }
  return name;
}

/** The recipe with `overrides`, checked. */
export function trainConfig(overrides: Partial<TrainConfig> & { run: string }): TrainConfig {
  return validateConfig({ ...LAB_RECIPE, ...overrides });
}

/** Checks every field (type and range) and returns a clean copy; errors name the field and what it allows. */
export function validateConfig(value: unknown, source = 'training config'): TrainConfig {
  if (value === null || typeof value !== 'object') throw new Error(`${source} must be an object`);
  const c: Record<string, unknown> = { ...value };
  if (c.weights === undefined) {
    // Runs saved before `weights` existed started from the folded file, then the only one.
    const fix = 'retrain it, or add "weights": "folded" to its config.json';
    throw new Error(`invalid settings in ${source}: weights is missing (saved before the setting existed); ${fix}`);
  }
  for (const k of CONFIG_FIELDS) if (c[k] === undefined) c[k] = SETTINGS[k].missing;
  const problems: string[] = [];
  try {
    checkRunName(c.run as string);
  } catch (err) {
    problems.push((err as Error).message);
  }
  problems.push(...settingProblems(SETTINGS, c));
  if (c.selectBy === 'val' && c.val === 0) problems.push('selectBy val needs a validation split (val > 0)');
  problems.push(...variantProblems(c as unknown as TrainConfig, c.variant as string));
  const unknown = Object.keys(c).filter((k) => !(k in SETTINGS) && k !== 'run');
  if (unknown.length) problems.push(`unknown field(s) ${unknown.join(', ')}`);
  if (problems.length) throw new Error(`invalid settings in ${source}:\n  ${problems.join('\n  ')}`);
  return Object.fromEntries(['run', ...CONFIG_FIELDS].map((k) => [k, c[k]])) as unknown as TrainConfig;
}

/** One setting in which two configs differ. */
export type ConfigDifference<K extends ConfigField = ConfigField> = { field: K; a: TrainConfig[K]; b: TrainConfig[K] };

/**
 * THE comparison of two training configs: every setting (the architecture's included) in which
 * `a` differs from `b` (default: the lab's recipe), in the recipe's order, but those in `ignore`.
 * A setting either leaves out (a saved config.json read as it is) is not compared. Callers only
 * format the result: a resume's conflicts, an experiment's mismatch, a run's changes from the recipe.
 */
export function configDifferences(
  a: Partial<TrainConfig>,
  b: Partial<TrainConfig> = LAB_RECIPE,
  opts: { ignore?: readonly (keyof TrainConfig)[] } = {},
): ConfigDifference[] {
  const ignore = new Set<keyof TrainConfig>(opts.ignore ?? []);
  return CONFIG_FIELDS.filter((k) => !ignore.has(k) && a[k] !== undefined && b[k] !== undefined && a[k] !== b[k]).map(
    (field) => ({ field, a: a[field], b: b[field] }) as ConfigDifference,
  );
}

/** The settings in which `wanted` differs from a run's `saved` config and that a resume cannot change, one line each. */
export function configConflicts(saved: TrainConfig, wanted: TrainConfig): string[] {
  return configDifferences(saved, wanted, { ignore: RESUMABLE_FIELDS }).map(
    (d) => `${d.field}: the run has ${JSON.stringify(d.a)}, asked for ${JSON.stringify(d.b)}`,
  );
}
