/**
 * The `npm run train` command line: flags → TrainConfig and options for lib/train. Pure apart
 * from reading a run's saved config; scripts/train.ts runs it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { MAX_UPSAMPLE } from '../model/index';
import { CHECKPOINT_KINDS, readCheckpointMeta, type CheckpointKind } from './checkpoint';
import { parseChoice, PATHS, PRETRAINED_FILES, PROJECT_ROOT, readEnv, VARIANTS } from '../config';
import type { TerminalMode } from './progress';
import { RunDir } from './run-dir';
import { FREEZES, LAB_RECIPE, SCHEDULES, validateConfig, type TrainConfig } from './train-config';

export const TRAIN_USAGE = `usage: npm run train -- --run NAME [options]

  --run NAME                 the run: results/runs/NAME (required)
  --variant dynamic|static   head (default ${LAB_RECIPE.variant})
  --epochs N                 train until N epochs are finished (default ${LAB_RECIPE.epochs})
  --batch-size B             (default ${LAB_RECIPE.batchSize})
  --lr X                     Adam learning rate (default ${LAB_RECIPE.lr})
  --seed S                   init, data order, augmentation, validation split (default ${LAB_RECIPE.seed})
  --norm half|imagenet       input normalisation (default ${LAB_RECIPE.norm})
  --augment                  random crop (pad 4) + horizontal flip
  --freeze ${FREEZES.join('|')}
                             none: train all; requires-grad: the lab's literal freeze (weights fixed,
                             BatchNorm statistics still updated); all: the backbone fixed, BatchNorm on
                             ImageNet statistics; keep-bn: convolutions fixed, BatchNorm trained;
                             stem: only the stem (conv1, bn1) fixed, layer1 trained
  --limit-train N            only the first N training images (0: all)
  --limit-test N             only the first N test images (0: all)
  --resume best|last         continue an existing run from this checkpoint (default best)
  --eval-only                evaluate the checkpoint; train and write nothing
  --fresh                    start the run over (the old one is replaced after the first new epoch)
extras:
  --val N                    hold out N training images as a validation split
  --select-by test|val       split whose accuracy picks the best checkpoint (default test)
  --label-smoothing X        cross-entropy label smoothing in [0, 1)
  --schedule constant|cosine learning rate per step (cosine: lr → 0 over all epochs)
  --weight-decay X           Adam's L2 penalty (torch weight_decay)
  --weights ${Object.keys(PRETRAINED_FILES).join('|')}|FILE
                             pretrained backbone (default ${LAB_RECIPE.weights}): torchvision's unfolded
                             BatchNorm file, the BN-folded file (data/pretrained/), or a .safetensors /
                             torchvision .pth file
  --no-pretrained            start the backbone from random weights
architecture (experiments; default: the lab's net):
  --no-filter-norm           dynamic head without the L2 normalisation of the generated filters
  --no-response-scale        response maps not divided by √64
  --upsample U               bilinear upsampling of the input by U (1–${MAX_UPSAMPLE}) before the backbone
  --adapter                  trainable residual conv 3×3 + BN + ReLU after the backbone
  --log-every K              read loss/accuracy back every K steps (default ${LAB_RECIPE.logEvery})
  --eval-batch-size N        (default ${LAB_RECIPE.evalBatchSize})
  --runs-dir DIR             folder of runs (default results/runs)
  --progress bar|lines|none  terminal output (default: bar on a terminal, lines otherwise)

Running an existing NAME again continues it from its best checkpoint with its saved settings;
only --epochs, --lr, --log-every and --eval-batch-size may change on a resume.`;

/** A command-line mistake: the CLI prints it with the usage and exits 2. */
export class UsageError extends Error {}

/** What a numeric flag accepts: whole or any number, and its range (inclusive unless said). */
interface NumberRule {
  integer: boolean;
  min?: number;
  /** The minimum itself is not allowed (e.g. lr > 0). */
  minExclusive?: boolean;
  max?: number;
  maxExclusive?: boolean;
}

/** The range of a rule in words, as lib/train/train-config says it: 'a whole number ≥ 1', 'a number in [0, 1)', … */
function ruleText(r: NumberRule): string {
  const kind = r.integer ? 'whole number' : 'number';
  if (r.min !== undefined && r.max !== undefined) {
    return `a ${kind} in ${r.minExclusive ? '(' : '['}${r.min}, ${r.max}${r.maxExclusive ? ')' : ']'}`;
  }
  if (r.min !== undefined) return `a ${kind} ${r.minExclusive ? '>' : '≥'} ${r.min}`;
  return `a ${kind}`;
}

/**
 * Parses a numeric flag. Not a number: '--epochs needs a whole number; got 'x''; out of range:
 * '--epochs must be a whole number ≥ 1; got '-1''.
 */
export function parseNumberFlag(flag: string, text: string, rule: NumberRule): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || (rule.integer && !Number.isInteger(v))) {
    throw new UsageError(`--${flag} needs ${rule.integer ? 'a whole number' : 'a number'}; got '${text}'`);
  }
  const inRange =
    (rule.min === undefined || (rule.minExclusive ? v > rule.min : v >= rule.min)) &&
    (rule.max === undefined || (rule.maxExclusive ? v < rule.max : v <= rule.max));
  if (!inRange) throw new UsageError(`--${flag} must be ${ruleText(rule)}; got '${text}'`);
  return v;
}

const WHOLE_POSITIVE: NumberRule = { integer: true, min: 1 };
const WHOLE_NON_NEGATIVE: NumberRule = { integer: true, min: 0 };
const NON_NEGATIVE: NumberRule = { integer: false, min: 0 };

/** The numeric flags of `npm run train` and what each accepts (lib/train/train-config's ranges). */
const NUMERIC_FLAGS: Record<string, NumberRule> = {
  epochs: WHOLE_POSITIVE,
  'batch-size': { integer: true, min: 2 },
  lr: { integer: false, min: 0, minExclusive: true },
  seed: WHOLE_NON_NEGATIVE,
  'limit-train': WHOLE_NON_NEGATIVE,
  'limit-test': WHOLE_NON_NEGATIVE,
  val: WHOLE_NON_NEGATIVE,
  'label-smoothing': { integer: false, min: 0, max: 1, maxExclusive: true },
  'weight-decay': NON_NEGATIVE,
  upsample: { integer: true, min: 1, max: MAX_UPSAMPLE },
  'log-every': WHOLE_POSITIVE,
  'eval-batch-size': WHOLE_POSITIVE,
};

function number(flag: string, text: string): number {
  return parseNumberFlag(flag, text, NUMERIC_FLAGS[flag]);
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

/**
 * A --weights value as TrainConfig.weights: a name of PRETRAINED_FILES as it is; a file path
 * resolved from the directory npm was started in (INIT_CWD), stored relative to the project
 * root when inside it (lib/config pretrainedFile resolves it back). The file must exist and be
 * a .safetensors or .pth; its contents are checked when training starts (lib/model/weights).
 */
export function parseWeightsFlag(text: string, cwd = readEnv().initCwd): string {
  if (text in PRETRAINED_FILES) return text;
  const file = path.resolve(cwd, text);
  if (!/\.(safetensors|pth|pt)$/.test(file)) {
    throw new UsageError(`--weights must be ${Object.keys(PRETRAINED_FILES).join(', ')} or a .safetensors / .pth file; got '${text}'`);
  }
  if (!fs.existsSync(file)) throw new UsageError(`--weights ${text}: no such file (${file})`);
  const rel = path.relative(PROJECT_ROOT, file);
  return rel.startsWith('..') || path.isAbsolute(rel) ? file : rel;
}

function choice<T extends string>(flag: string, text: string, allowed: readonly T[]): T {
  try {
    return parseChoice(`--${flag}`, text, allowed);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Parses `npm run train` arguments; only the flags given end up in `given`. */
export function parseTrainArgs(argv: string[]) {
  let parsed;
  try {
    parsed = parseArgs({
      args: joinDashValues(argv, Object.keys(NUMERIC_FLAGS)),
      strict: true,
      allowPositionals: false,
      options: {
        run: { type: 'string' },
        variant: { type: 'string' },
        epochs: { type: 'string' },
        'batch-size': { type: 'string' },
        lr: { type: 'string' },
        seed: { type: 'string' },
        norm: { type: 'string' },
        augment: { type: 'boolean' },
        freeze: { type: 'string' },
        'limit-train': { type: 'string' },
        'limit-test': { type: 'string' },
        resume: { type: 'string' },
        'eval-only': { type: 'boolean' },
        fresh: { type: 'boolean' },
        val: { type: 'string' },
        'select-by': { type: 'string' },
        'label-smoothing': { type: 'string' },
        schedule: { type: 'string' },
        'weight-decay': { type: 'string' },
        weights: { type: 'string' },
        'no-pretrained': { type: 'boolean' },
        'no-filter-norm': { type: 'boolean' },
        'no-response-scale': { type: 'boolean' },
        upsample: { type: 'string' },
        adapter: { type: 'boolean' },
        'log-every': { type: 'string' },
        'eval-batch-size': { type: 'string' },
        'runs-dir': { type: 'string' },
        progress: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return { help: true as const };
  if (!v.run) throw new UsageError('--run NAME is required');
  // Only the flags given: a resumed run keeps its saved settings for the rest.
  const given: Partial<TrainConfig> = {};
  if (v.variant !== undefined) given.variant = choice('variant', v.variant, VARIANTS);
  if (v.epochs !== undefined) given.epochs = number('epochs', v.epochs);
  if (v['batch-size'] !== undefined) given.batchSize = number('batch-size', v['batch-size']);
  if (v.lr !== undefined) given.lr = number('lr', v.lr);
  if (v.seed !== undefined) given.seed = number('seed', v.seed);
  if (v.norm !== undefined) given.norm = choice('norm', v.norm, ['half', 'imagenet'] as const);
  if (v.augment) given.augment = true;
  if (v.freeze !== undefined) given.freeze = choice('freeze', v.freeze, FREEZES);
  if (v['limit-train'] !== undefined) given.limitTrain = number('limit-train', v['limit-train']);
  if (v['limit-test'] !== undefined) given.limitTest = number('limit-test', v['limit-test']);
  if (v.val !== undefined) given.val = number('val', v.val);
  if (v['select-by'] !== undefined) given.selectBy = choice('select-by', v['select-by'], ['test', 'val'] as const);
  if (v['label-smoothing'] !== undefined) given.labelSmoothing = number('label-smoothing', v['label-smoothing']);
  if (v.schedule !== undefined) given.schedule = choice('schedule', v.schedule, SCHEDULES);
  if (v['weight-decay'] !== undefined) given.weightDecay = number('weight-decay', v['weight-decay']);
  if (v['no-pretrained']) given.pretrained = false;
  if (v.weights !== undefined) {
    if (v['no-pretrained']) throw new UsageError('--weights picks a pretrained backbone; it cannot be combined with --no-pretrained');
    given.weights = parseWeightsFlag(v.weights);
  }
  if (v['no-filter-norm']) given.filterNorm = false;
  if (v['no-response-scale']) given.responseScale = false;
  if (v.upsample !== undefined) given.upsample = number('upsample', v.upsample);
  if (v.adapter) given.adapter = true;
  if (v['log-every'] !== undefined) given.logEvery = number('log-every', v['log-every']);
  if (v['eval-batch-size'] !== undefined) given.evalBatchSize = number('eval-batch-size', v['eval-batch-size']);
  const resume = v.resume === undefined ? undefined : choice<CheckpointKind>('resume', v.resume, CHECKPOINT_KINDS);
  const progress = v.progress === undefined ? undefined : choice<TerminalMode>('progress', v.progress, ['bar', 'lines', 'none']);
  if (v.fresh && (resume || v['eval-only'])) throw new UsageError('--fresh cannot be combined with --resume or --eval-only');
  return {
    help: false as const,
    run: v.run,
    given,
    resume,
    evalOnly: v['eval-only'] ?? false,
    fresh: v.fresh ?? false,
    runsDir: path.resolve(v['runs-dir'] ?? PATHS.runs),
    progress,
  };
}

/** The saved settings of an existing run: config.json, else the config inside a checkpoint. */
export function savedConfig(store: RunDir): TrainConfig | undefined {
  const fromFile = store.readConfig();
  if (fromFile) return fromFile;
  for (const kind of CHECKPOINT_KINDS) {
    const file = store.checkpoint(kind);
    if (fs.existsSync(file)) return validateConfig(readCheckpointMeta(file).config, `the config saved in ${file}`);
  }
  return undefined;
}

/**
 * The config a command line asks for: the run's saved settings (unless --fresh), then the lab's
 * recipe for anything the run does not have, overridden by the flags given.
 */
export function resolveTrainConfig(args: { run: string; given: Partial<TrainConfig>; fresh: boolean; runsDir: string }): TrainConfig {
  let store: RunDir;
  try {
    store = new RunDir(args.runsDir, args.run);
  } catch (err) {
    throw new UsageError(`--run: ${(err as Error).message}`);
  }
  const base = args.fresh ? undefined : savedConfig(store);
  try {
    return validateConfig({ ...LAB_RECIPE, ...base, ...args.given, run: args.run }, 'the command line');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
