/**
 * One place for the lab's facts: paths, class names, normalisations, the lab's recipe and the
 * quick mode that tests and CI use. Every notebook, CLI and test reads them from here.
 */
import * as fs from 'fs';
import * as path from 'path';

/** The project root: the folder of the package.json named `dcf-lab`, found from this file. */
function findProjectRoot(): string {
  // realpath: notebooks reach lib/ through the symlink notebooks/lib.
  let dir = fs.realpathSync(__dirname);
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'dcf-lab') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`lib/config: no package.json named dcf-lab above ${__dirname}`);
    dir = up;
  }
}

export const PROJECT_ROOT = findProjectRoot();

/**
 * Where results go. Quick mode (DCF_QUICK=1: tests, CI, `npm start -- --quick`) writes under
 * results/quick/ so that its tiny runs never mix with the real ones in results/runs.
 */
const RESULTS = path.join(PROJECT_ROOT, 'results', ...(isQuick() ? ['quick'] : []));

/** Every path the project reads or writes. data/ (but data/pretrained/) and results/ (but results/recorded/) are ignored by git. */
export const PATHS = {
  root: PROJECT_ROOT,
  data: path.join(PROJECT_ROOT, 'data'),
  /** The official binary layout: data_batch_1.bin … data_batch_5.bin, test_batch.bin. */
  cifarDir: path.join(PROJECT_ROOT, 'data', 'cifar-10-batches-bin'),
  results: RESULTS,
  runs: path.join(RESULTS, 'runs'),
  /** `npm run experiments -- --quick` and quick mode: tiny runs and their tables, apart from results/runs. */
  quick: path.join(PROJECT_ROOT, 'results', 'quick'),
  /** The paired multi-seed suite's runs and table (npm run experiments -- --suite paired). */
  paired: path.join(RESULTS, 'paired'),
  /** Recorded results committed to git: suite tables, per-epoch metrics, configs, provenance. */
  recorded: path.join(PROJECT_ROOT, 'results', 'recorded'),
  figures: path.join(RESULTS, 'figures'),
  report: path.join(RESULTS, 'report'),
  cache: process.env.DCF_CACHE_DIR ?? path.join(PROJECT_ROOT, '.cache'),
  /** The pretrained backbone the lab starts from (PRETRAINED_FILES.torchvision). */
  pretrained: path.join(PROJECT_ROOT, 'data', 'pretrained', 'resnet18-imagenet1k-v1-stem-layer1.safetensors'),
} as const;

/**
 * The pretrained ResNet-18 stem + layer1 files carried in the repo (data/pretrained/README.md):
 *  - torchvision: torchvision's names with unfolded BatchNorm, its IMAGENET1K_V1 statistics (the default);
 *  - folded: each BatchNorm folded into its conv (an ONNX-style export; its statistics are not
 *    exactly torchvision's), kept for the folded-vs-unfolded control and older runs.
 * A TrainConfig's `weights` names one of these or gives a file (.safetensors or torchvision's .pth).
 */
export const PRETRAINED_FILES = {
  torchvision: PATHS.pretrained,
  folded: path.join(PROJECT_ROOT, 'data', 'pretrained', 'resnet18-imagenet1k-v1-bnfolded-stem-layer1.safetensors'),
} as const;
export type PretrainedName = keyof typeof PRETRAINED_FILES;

/** The file a `weights` setting means: a name of PRETRAINED_FILES, else a path (relative to the project root). */
export function pretrainedFile(weights: string): string {
  if (weights in PRETRAINED_FILES) return PRETRAINED_FILES[weights as PretrainedName];
  return path.resolve(PROJECT_ROOT, weights);
}

/** CIFAR-10's classes in label order (label byte 0 … 9), as in batches.meta.txt. */
export const CLASS_NAMES = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
] as const;
export type ClassName = (typeof CLASS_NAMES)[number];
export const NUM_CLASSES = CLASS_NAMES.length;

/** Input images are 32×32 RGB; the backbone cut after layer1 gives [8, 8, 64] features. */
export const IMAGE_SIZE = 32;
export const CHANNELS = 3;
export const FEATURE_SIZE = 8;
export const FEATURE_CHANNELS = 64;
/** Dimension of each class's learned embedding (dynamic head). */
export const EMBED_DIM = 128;

/** Per-channel normalisation applied to pixels scaled to [0, 1]. */
export type NormName = 'half' | 'imagenet';
export interface Normalization {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}
export const NORMALIZATIONS: Record<NormName, Normalization> = {
  /** The lab template's transforms.Normalize((0.5,)*3, (0.5,)*3). */
  half: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  /** The statistics the pretrained ResNet-18 was trained with. */
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
};

export type Variant = 'dynamic' | 'static';
export const VARIANTS: readonly Variant[] = ['dynamic', 'static'];

/**
 * Which backbone parameters stay fixed, and how its BatchNorm behaves in training:
 *  - `none`: everything trains (the lab's recipe);
 *  - `requires-grad`: the lab's literal freeze, PyTorch's `requires_grad = False` on every backbone
 *    parameter. BatchNorm stays in training mode: batch statistics, running statistics updated;
 *  - `all`: every backbone parameter fixed AND BatchNorm in evaluation mode on the pretrained
 *    (ImageNet) running statistics: the backbone is a fixed function;
 *  - `keep-bn`: the convolutions fixed, BatchNorm's γ/β trained (and its statistics updated);
 *  - `stem`: partial unfreezing, only the stem (conv1, bn1) fixed, layer1 trains.
 */
export type Freeze = 'none' | 'requires-grad' | 'all' | 'keep-bn' | 'stem';

/** Throws a clear error when `value` is not one of `allowed`. */
export function parseChoice<T extends string>(what: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new Error(`${what} must be one of ${allowed.join(', ')}; got '${value}'`);
}

/** True when DCF_QUICK=1: small real slices and one short epoch, for tests and CI. */
export function isQuick(): boolean {
  return process.env.DCF_QUICK === '1';
}
