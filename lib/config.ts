/**
 * One place for the lab's facts: paths, class names, normalisations, the lab's recipe, and the
 * environment (readEnv: every variable the lab reads, quick mode among them). Every notebook, CLI
 * and test reads them from here. Importing it reads no environment variable and sets none.
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

// ---- the environment ---------------------------------------------------------------------------

/**
 * Every environment variable the lab reads, parsed in one place (readEnv). Nothing else in lib/
 * reads process.env; entry points that take a flag for one of these (e.g. `--quick`) call
 * setEnv, which also writes the variable back so that child processes (notebook kernels) see it.
 */
export interface Env {
  /** DCF_QUICK=1: quick mode (tests, CI, `npm start -- --quick`): small slices, results under results/quick. */
  quick: boolean;
  /** DCF_CACHE_DIR: where downloads are kept (default .cache in the project). */
  cacheDir: string;
  /** DCF_BACKEND: auto (default) | gpu | native | cpu (lib/runtime/backend). */
  backend: string;
  /** DCF_GRAPH=0: run every step eagerly instead of as one TensorFlow graph (lib/runtime/graph). */
  graph: boolean;
  /** DCF_FUSED=0: start with the fused TensorFlow kernels off (lib/runtime/kernels). */
  fused: boolean;
  /** DCF_PROGRESS_LINES=1: training progress as plain lines, not an updating display (lib/train/progress). */
  progressLines: boolean;
  /** DCF_CHROMIUM: the Chromium executable for figures and the PDF (default /usr/bin/chromium). */
  chromium: string;
  /** INIT_CWD: the folder `npm run` was started in (relative paths on a command line); else the cwd. */
  initCwd: string;
  /**
   * TF_ENABLE_ONEDNN_OPTS (default on): oneDNN kernels for convolutions and BatchNorm. TensorFlow
   * turns them on by itself only on CPUs with AVX-512; on the 2-core AVX2 machines here they made
   * a training step ~20% cheaper (npm run bench). Handed to TensorFlow when it loads (initBackend).
   */
  oneDnn: boolean;
  /** TF_CPP_MIN_LOG_LEVEL (default 2): keeps TensorFlow's C++ start-up banner out of output (errors still show). */
  tfLogLevel: string;
}

/** Each field's variable and how it is written back (setEnv). */
const ENV_VARS: { [K in keyof Env]: { name: string; format: (v: Env[K]) => string } } = {
  quick: { name: 'DCF_QUICK', format: (v) => (v ? '1' : '0') },
  cacheDir: { name: 'DCF_CACHE_DIR', format: (v) => v },
  backend: { name: 'DCF_BACKEND', format: (v) => v },
  graph: { name: 'DCF_GRAPH', format: (v) => (v ? '1' : '0') },
  fused: { name: 'DCF_FUSED', format: (v) => (v ? '1' : '0') },
  progressLines: { name: 'DCF_PROGRESS_LINES', format: (v) => (v ? '1' : '0') },
  chromium: { name: 'DCF_CHROMIUM', format: (v) => v },
  initCwd: { name: 'INIT_CWD', format: (v) => v },
  oneDnn: { name: 'TF_ENABLE_ONEDNN_OPTS', format: (v) => (v ? '1' : '0') },
  tfLogLevel: { name: 'TF_CPP_MIN_LOG_LEVEL', format: (v) => v },
};

/** The record of `vars` (process.env by default), defaults filled in. */
export function parseEnv(vars: NodeJS.ProcessEnv = process.env): Env {
  return {
    quick: vars.DCF_QUICK === '1',
    cacheDir: vars.DCF_CACHE_DIR || path.join(PROJECT_ROOT, '.cache'),
    backend: vars.DCF_BACKEND || 'auto',
    graph: vars.DCF_GRAPH !== '0',
    fused: vars.DCF_FUSED !== '0',
    progressLines: vars.DCF_PROGRESS_LINES === '1',
    chromium: vars.DCF_CHROMIUM || '/usr/bin/chromium',
    initCwd: vars.INIT_CWD || process.cwd(),
    oneDnn: vars.TF_ENABLE_ONEDNN_OPTS !== '0',
    tfLogLevel: vars.TF_CPP_MIN_LOG_LEVEL ?? '2',
  };
}

let env: Env | undefined;

/** The environment, read at the first call (never at import) and kept for the process. */
export function readEnv(): Readonly<Env> {
  return (env ??= parseEnv());
}

/**
 * Changes settings for this process from an entry point's flags (`npm start -- --quick`:
 * setEnv({ quick: true })), before anything uses them. Also sets the variables in process.env so
 * that child processes (notebook kernels, workers) inherit them. Returns the new record.
 */
export function setEnv(changes: Partial<Env>): Readonly<Env> {
  const next = { ...readEnv(), ...changes };
  for (const key of Object.keys(changes) as (keyof Env)[]) {
    const v = ENV_VARS[key] as { name: string; format: (v: unknown) => string };
    process.env[v.name] = v.format(next[key]);
  }
  env = next;
  return env;
}

/** True when DCF_QUICK=1 (or setEnv({ quick: true })): small real slices and one short epoch, for tests and CI. */
export function isQuick(): boolean {
  return readEnv().quick;
}

// ---- paths -----------------------------------------------------------------------------------

/**
 * Where results go. Quick mode writes under results/quick/ so that its tiny runs never mix with
 * the real ones in results/runs. Read at each use: setEnv({ quick }) moves it.
 */
function resultsDir(): string {
  return path.join(PROJECT_ROOT, 'results', ...(isQuick() ? ['quick'] : []));
}

/**
 * Every path the project reads or writes. data/ (but data/pretrained/) and results/ (but
 * results/recorded/) are ignored by git. The results paths follow quick mode at each read.
 */
export const PATHS = {
  root: PROJECT_ROOT,
  data: path.join(PROJECT_ROOT, 'data'),
  /** The official binary layout: data_batch_1.bin … data_batch_5.bin, test_batch.bin. */
  cifarDir: path.join(PROJECT_ROOT, 'data', 'cifar-10-batches-bin'),
  /** results/, or results/quick in quick mode. */
  get results(): string {
    return resultsDir();
  },
  get runs(): string {
    return path.join(resultsDir(), 'runs');
  },
  /** `npm run experiments -- --quick` and quick mode: tiny runs and their tables, apart from results/runs. */
  quick: path.join(PROJECT_ROOT, 'results', 'quick'),
  /** The paired multi-seed suite's runs and table (npm run experiments -- --suite paired). */
  get paired(): string {
    return path.join(resultsDir(), 'paired');
  },
  /** The recipe candidates' runs (npm run experiments -- --suite recipe). */
  get recipe(): string {
    return path.join(resultsDir(), 'recipe');
  },
  /** Recorded results committed to git: suite tables, per-epoch metrics, configs, provenance. */
  recorded: path.join(PROJECT_ROOT, 'results', 'recorded'),
  get figures(): string {
    return path.join(resultsDir(), 'figures');
  },
  get report(): string {
    return path.join(resultsDir(), 'report');
  },
  /** The short lab report from this machine's runs (`npm start`, `npm run report`): what is handed in. */
  get labReport(): string {
    return path.join(resultsDir(), 'report', 'lab-report.pdf');
  },
  /** The short lab report from the recorded suite (`npm run report -- --recorded`), committed to git. */
  recordedLabReport: path.join(PROJECT_ROOT, 'report', 'lab-report.pdf'),
  /** Downloads (DCF_CACHE_DIR, default .cache). */
  get cache(): string {
    return readEnv().cacheDir;
  },
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
type PretrainedName = keyof typeof PRETRAINED_FILES;

/** The file a `weights` setting means: a name of PRETRAINED_FILES, else a path (relative to the project root). */
export function pretrainedFile(weights: string): string {
  if (weights in PRETRAINED_FILES) return PRETRAINED_FILES[weights as PretrainedName];
  return path.resolve(PROJECT_ROOT, weights);
}

/**
 * A --weights value as TrainConfig.weights: a name of PRETRAINED_FILES as it is; a file path
 * resolved from the directory npm was started in (INIT_CWD), stored relative to the project
 * root when inside it (pretrainedFile resolves it back). The file must exist and be
 * a .safetensors or .pth; its contents are checked when training starts (lib/model/weights).
 */
export function parseWeightsFlag(text: string, cwd = readEnv().initCwd): string {
  if (text in PRETRAINED_FILES) return text;
  const file = path.resolve(cwd, text);
  if (!/\.(safetensors|pth|pt)$/.test(file)) {
    const names = Object.keys(PRETRAINED_FILES).join(', ');
    throw new Error(`--weights must be ${names} or a .safetensors / .pth file; got '${text}'`);
  }
  if (!fs.existsSync(file)) throw new Error(`--weights ${text}: no such file (${file})`);
  const rel = path.relative(PROJECT_ROOT, file);
  return rel.startsWith('..') || path.isAbsolute(rel) ? file : rel;
}

/** CIFAR-10's classes in label order (label byte 0 … 9), as in batches.meta.txt. */
export const CLASS_NAMES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
] as const;
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

// ---- settings ------------------------------------------------------------------------------------

/**
 * One setting of a training config, declared once: lib/train/train-config's TRAIN_SETTINGS, with
 * the architecture's from lib/model/architecture. The config's type and defaults, its validation,
 * `npm run train`'s flags and usage text, and the experiment table's columns are derived from these.
 */
export interface Setting<T> {
  default: T;
  /** What it allows, in words after "must be": 'a whole number ≥ 1', 'one of dynamic, static'. */
  allowed: string;
  check(v: unknown): boolean;
  /** A command line's text as a value; throws naming `flag` when the text is not allowed. None for booleans. */
  parse?(text: string, flag: string): T;
  /** Its flag ('--batch-size'); a boolean's ('--augment', '--no-pretrained') sets the opposite of its default. */
  flag?: string;
  /** What the flag takes, for the usage text: 'N', 'dynamic|static' (none for booleans). */
  placeholder?: string;
  /** What it does: its documentation, and its line in `npm run train -- --help`. */
  help?: string;
  /** Its column in the experiment table: the name of a polars type. None: not recorded there. */
  column?: 'Utf8' | 'Bool' | 'Int32' | 'Int64' | 'Float64';
  /** What a saved config without it means (one saved before the setting existed). None: it must be there. */
  missing?: T;
  /** A resumed run may change it: it does not change what the saved state means (epochs, lr). */
  resumable?: boolean;
  /** A value in words, as a change from the recipe ('no filter norm'); default `name=value`. */
  describe?(v: T): string;
}

/** A setting read from a command line's text. */
type ParsedSetting<T> = Setting<T> & { parse(text: string, flag: string): T };

/** The parts of a setting that its constructor does not derive. */
type SettingInfo<T> = Partial<Omit<Setting<T>, 'default' | 'allowed' | 'check' | 'parse'>>;

/** The values of a table of settings: { epochs: number, variant: Variant, … }. */
export type SettingValues<S extends Record<string, Setting<unknown>>> = { -readonly [K in keyof S]: S[K]['default'] };

/** A true / false setting. */
export function booleanSetting<I extends SettingInfo<boolean>>(value: boolean, info: I): Setting<boolean> & I {
  return { default: value, allowed: 'true or false', check: (v) => typeof v === 'boolean', ...info };
}

/** A number setting: whole or not, in a range (`above` / `below`: the bound itself not allowed). */
export function numberSetting<I extends SettingInfo<number>>(
  value: number,
  r: { whole?: boolean; min?: number; max?: number; above?: boolean; below?: boolean },
  info: I,
): ParsedSetting<number> & I {
  const kind = r.whole ? 'whole number' : 'number';
  const allowed =
    r.min !== undefined && r.max !== undefined
      ? `a ${kind} in ${r.above ? '(' : '['}${r.min}, ${r.max}${r.below ? ')' : ']'}`
      : r.min !== undefined
        ? `a ${kind} ${r.above ? '>' : '≥'} ${r.min}`
        : `a ${kind}`;
  const inRange = (v: number) =>
    (r.min === undefined || (r.above ? v > r.min : v >= r.min)) &&
    (r.max === undefined || (r.below ? v < r.max : v <= r.max));
  const isNumber = (v: unknown): v is number =>
    typeof v === 'number' && Number.isFinite(v) && (!r.whole || Number.isInteger(v));
  return {
    default: value,
    allowed,
    check: (v) => isNumber(v) && inRange(v),
    // '--epochs needs a whole number; got 'x'', or out of range '--epochs must be a whole number ≥ 1; got '-1''.
    parse: (text, flag) => {
      const v = Number(text);
      if (text.trim() === '' || !isNumber(v)) throw new Error(`${flag} needs a ${kind}; got '${text}'`);
      if (!inRange(v)) throw new Error(`${flag} must be ${allowed}; got '${text}'`);
      return v;
    },
    placeholder: r.whole ? 'N' : 'X',
    ...info,
  };
}

/** A setting that is one of `choices`. */
export function choiceSetting<T extends string, I extends SettingInfo<T>>(
  choices: readonly T[],
  value: T,
  info: I,
): ParsedSetting<T> & I {
  return {
    default: value,
    allowed: `one of ${choices.join(', ')}`,
    check: (v) => choices.includes(v as T),
    parse: (text, flag) => parseChoice(flag, text, choices),
    placeholder: choices.join('|'),
    ...info,
  };
}

/** Every problem with the settings of `record` (each naming the setting and what it allows). */
export function settingProblems(settings: Record<string, Setting<unknown>>, record: Record<string, unknown>): string[] {
  return Object.entries(settings)
    .filter(([k, s]) => !s.check(record[k]))
    .map(([k, s]) => `${k} must be ${s.allowed}; got ${JSON.stringify(record[k])}`);
}

/** A path typed on a command line: relative to the folder `npm run` was started from (INIT_CWD), not the project. */
export function commandLinePath(text: string): string {
  return path.resolve(readEnv().initCwd, text);
}

/**
 * Joins `--flag -1` into `--flag=-1` for the string options in `stringFlags`, so that util.parseArgs
 * hands a negative (or dash-led) value to the range check instead of calling it 'ambiguous'.
 */
export function joinDashValues(argv: string[], stringFlags: Iterable<string>): string[] {
  const takesValue = new Set(Array.from(stringFlags, (f) => `--${f}`));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if (takesValue.has(argv[i]) && next !== undefined && /^-\d|^-\.\d|^-Infinity$/.test(next)) {
      out.push(`${argv[i]}=${next}`);
      i++;
    } else out.push(argv[i]);
  }
  return out;
}
