/**
 * What a training run is asked to do: one plain, JSON-serialisable record, saved in the run's
 * config.json and in every checkpoint. The defaults are the lab's recipe.
 */
import { ARCHITECTURE_KEYS, architectureOf, architectureProblems, LAB_ARCHITECTURE } from '../model/index';
import { NORMALIZATIONS, PRETRAINED_FILES, VARIANTS, type Freeze, type NormName, type Variant } from '../config';

export type Schedule = 'constant' | 'cosine';
export const SCHEDULES: readonly Schedule[] = ['constant', 'cosine'];
export const FREEZES: readonly Freeze[] = ['none', 'requires-grad', 'all', 'keep-bn', 'stem'];
export type SelectBy = 'test' | 'val';

export interface TrainConfig {
  /** The run's name: its folder under results/runs. Letters, digits, '.', '_', '-'. */
  run: string;
  variant: Variant;
  /** Train until this many epochs are finished (counting epochs of earlier sessions). */
  epochs: number;
  batchSize: number;
  /** Adam's base learning rate (betas 0.9/0.999, eps 1e-8). */
  lr: number;
  /** Seeds the head's initialisation, the data order, augmentation and the validation split. */
  seed: number;
  norm: NormName;
  /** Random crop (4-pixel padding) and horizontal flip of training images. */
  augment: boolean;
  freeze: Freeze;
  /** Start the backbone from ImageNet weights (else torchvision-style random initialisation). */
  pretrained: boolean;
  /**
   * Which pretrained file: 'torchvision' (unfolded BatchNorm, the default), 'folded', or a path
   * to a .safetensors / torchvision .pth file (lib/config PRETRAINED_FILES, pretrainedFile).
   */
  weights: string;
  /** Use only the first N training / test images (0: all). For quick runs and tests. */
  limitTrain: number;
  limitTest: number;
  /** Hold out N training images as a validation split, evaluated every epoch (0: none). */
  val: number;
  /** Cross-entropy label smoothing (PyTorch's label_smoothing), 0 … <1. */
  labelSmoothing: number;
  /** Learning rate per step: constant, or cosine from lr to 0 over all epochs' steps. */
  schedule: Schedule;
  /** Adam's L2 penalty (torch.optim.Adam weight_decay). */
  weightDecay: number;
  /** Which split's accuracy decides the best checkpoint: the lab uses test; val is cleaner. */
  selectBy: SelectBy;
  /** Read the loss and accuracy back every k steps (a step row, a NaN check). */
  logEvery: number;
  evalBatchSize: number;
  // Architecture (lib/model/architecture; the lab's net by default). Configs saved before these
  // fields existed describe the lab's net and read back with these defaults.
  /** L2-normalise each generated filter (dynamic head). */
  filterNorm: boolean;
  /** L2-normalise the static head's learned filters (the control that isolates the generator). */
  staticNorm: boolean;
  /** Divide the response maps by √64. */
  responseScale: boolean;
  /** Bilinear upsampling factor of the input before the backbone (1: none). */
  upsample: number;
  /** A trainable residual conv 3×3 + BN + ReLU after the backbone (state adapter.*). */
  adapter: boolean;
}

/** The lab's recipe: 5 epochs, batch 64, Adam 1e-3, mean/std 0.5, no augmentation, pretrained backbone. */
export const LAB_RECIPE: Omit<TrainConfig, 'run'> = {
  variant: 'dynamic',
  epochs: 5,
  batchSize: 64,
  lr: 1e-3,
  seed: 0,
  norm: 'half',
  augment: false,
  freeze: 'none',
  pretrained: true,
  weights: 'torchvision',
  limitTrain: 0,
  limitTest: 0,
  val: 0,
  labelSmoothing: 0,
  schedule: 'constant',
  weightDecay: 0,
  selectBy: 'test',
  logEvery: 10,
  evalBatchSize: 500,
  ...LAB_ARCHITECTURE,
};

/** Fields a resumed run may change (they do not change what the saved state means). */
export const RESUMABLE_FIELDS: readonly (keyof TrainConfig)[] = ['epochs', 'lr', 'logEvery', 'evalBatchSize'];

const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Throws unless `name` can name a run folder. */
export function checkRunName(name: string): string {
  if (typeof name !== 'string' || !RUN_NAME.test(name)) {
    throw new Error(`run name must be 1–100 letters, digits, '.', '_' or '-', starting with a letter or digit; got '${name}'`);
  }
  return name;
}

/** The recipe with `overrides`, checked. */
export function trainConfig(overrides: Partial<TrainConfig> & { run: string }): TrainConfig {
  return validateConfig({ ...LAB_RECIPE, ...overrides });
}

/** Checks every field (type and range) and returns a clean copy; errors name the field. */
export function validateConfig(value: unknown, source = 'training config'): TrainConfig {
  if (value === null || typeof value !== 'object') throw new Error(`${source} must be an object`);
  // Missing architecture fields: a config saved before they existed, i.e. the lab's net.
  const c = { ...(value as Record<string, unknown>) };
  for (const k of ARCHITECTURE_KEYS) if (c[k] === undefined) c[k] = LAB_ARCHITECTURE[k];
  // A config saved before `weights` existed started from the folded file, then the only one.
  if (c.weights === undefined) c.weights = 'folded';
  const problems: string[] = [];
  const int = (k: string, min: number) => {
    if (!(Number.isInteger(c[k]) && (c[k] as number) >= min)) problems.push(`${k} must be a whole number ≥ ${min}; got ${JSON.stringify(c[k])}`);
  };
  const num = (k: string, ok: (v: number) => boolean, what: string) => {
    if (!(typeof c[k] === 'number' && Number.isFinite(c[k]) && ok(c[k] as number))) problems.push(`${k} must be ${what}; got ${JSON.stringify(c[k])}`);
  };
  const choice = (k: string, allowed: readonly string[]) => {
    if (!allowed.includes(c[k] as string)) problems.push(`${k} must be one of ${allowed.join(', ')}; got ${JSON.stringify(c[k])}`);
  };
  const bool = (k: string) => {
    if (typeof c[k] !== 'boolean') problems.push(`${k} must be true or false; got ${JSON.stringify(c[k])}`);
  };
  try {
    checkRunName(c.run as string);
  } catch (err) {
    problems.push((err as Error).message);
  }
  choice('variant', VARIANTS);
  int('epochs', 1);
  int('batchSize', 2);
  num('lr', (v) => v > 0, 'a number > 0');
  int('seed', 0);
  choice('norm', Object.keys(NORMALIZATIONS));
  bool('augment');
  choice('freeze', FREEZES);
  bool('pretrained');
  if (!(typeof c.weights === 'string' && c.weights.length > 0)) problems.push(`weights must be ${Object.keys(PRETRAINED_FILES).join(' or ')} or a file path; got ${JSON.stringify(c.weights)}`);
  int('limitTrain', 0);
  int('limitTest', 0);
  int('val', 0);
  num('labelSmoothing', (v) => v >= 0 && v < 1, 'in [0, 1)');
  choice('schedule', SCHEDULES);
  num('weightDecay', (v) => v >= 0, 'a number ≥ 0');
  choice('selectBy', ['test', 'val']);
  int('logEvery', 1);
  int('evalBatchSize', 1);
  if (c.selectBy === 'val' && c.val === 0) problems.push('selectBy val needs a validation split (val > 0)');
  problems.push(...architectureProblems(architectureOf(c), c.variant as string));
  const unknown = Object.keys(c).filter((k) => !(k in LAB_RECIPE) && k !== 'run');
  if (unknown.length) problems.push(`unknown field(s) ${unknown.join(', ')}`);
  if (problems.length) throw new Error(`invalid settings in ${source}:\n  ${problems.join('\n  ')}`);
  const clean = { run: c.run } as Record<string, unknown>;
  for (const k of Object.keys(LAB_RECIPE)) clean[k] = c[k];
  return clean as unknown as TrainConfig;
}

/** A setting of a training config (its name is `run`, which is not a setting). */
export type ConfigField = keyof typeof LAB_RECIPE;
/** Every setting, in the recipe's order (the architecture's last). */
export const CONFIG_FIELDS = Object.keys(LAB_RECIPE) as ConfigField[];

/** One setting in which two configs differ. */
export interface ConfigDifference<K extends ConfigField = ConfigField> {
  field: K;
  a: TrainConfig[K];
  b: TrainConfig[K];
}

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
  return configDifferences(saved, wanted, { ignore: RESUMABLE_FIELDS }).map((d) => `${d.field}: the run has ${JSON.stringify(d.a)}, asked for ${JSON.stringify(d.b)}`);
}

/** The learning rate of 0-based global step `step` of `totalSteps`. */
export function learningRate(config: Pick<TrainConfig, 'lr' | 'schedule'>, step: number, totalSteps: number): number {
  if (config.schedule === 'constant') return config.lr;
  const t = Math.min(step, totalSteps) / Math.max(totalSteps, 1);
  return (config.lr * (1 + Math.cos(Math.PI * t))) / 2;
}
