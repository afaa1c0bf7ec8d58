/**
 * The `npm run train` command line: flags → TrainConfig and options for lib/train. A setting's
 * flag, parsing and help come from its declaration (train-config TRAIN_SETTINGS); this file adds
 * the options that are not settings. Pure apart from reading a run's saved config.
 */
import * as fs from 'fs';
import { parseArgs } from 'util';
import { ARCHITECTURE_SETTINGS } from '../model/index';
import { CHECKPOINT_KINDS, readCheckpointMeta, type CheckpointKind } from './checkpoint';
import { commandLinePath, joinDashValues, parseChoice, PATHS, type Setting } from '../config';
import type { TerminalMode } from './progress';
import { RunDir } from './run';
import { CONFIG_FIELDS, LAB_RECIPE, RESUMABLE_FIELDS, TRAIN_SETTINGS, validateConfig } from './train-config';
import type { ConfigField, TrainConfig } from './train-config';

/** A command-line mistake: the CLI prints it with the usage and exits 2. */
export class UsageError extends Error {}

/** The options that are not settings: usage, help, and whether they take a value. */
const OPTIONS: Record<string, { usage: string; help: string; boolean?: true }> = {
  run: { usage: '--run NAME', help: 'the run: results/runs/NAME (required)' },
  resume: { usage: '--resume best|last', help: 'continue an existing run from this checkpoint (default best)' },
  'eval-only': { usage: '--eval-only', help: 'evaluate the checkpoint; train and write nothing', boolean: true },
  fresh: { usage: '--fresh', help: 'start the run over (replacing the old one after its first epoch)', boolean: true },
  'runs-dir': { usage: '--runs-dir DIR', help: 'folder of runs (default results/runs)' },
  progress: { usage: '--progress bar|lines|none', help: 'terminal output (default: a bar on a terminal, else lines)' },
};

/** The settings that have a flag: its name without the dashes ('batch-size'), the field, the declaration. */
const FLAGS = CONFIG_FIELDS.flatMap((field) => {
  const s: Setting<unknown> = TRAIN_SETTINGS[field];
  return s.flag ? [{ name: s.flag.slice(2), field, s }] : [];
});

/** One option's lines of the usage text: the flag, then its help wrapped at 100 columns. */
function usageLines(flag: string, help: string): string[] {
  const lines = help.match(/.{1,70}(\s|$)/g)!.map((l) => l.trim());
  const head = flag.length < 27 ? [`  ${flag.padEnd(27)}${lines.shift()}`] : [`  ${flag}`];
  return [...head, ...lines.map((l) => ' '.repeat(29) + l)];
}

const settingLines = (arch: boolean) =>
  FLAGS.filter((f) => f.field in ARCHITECTURE_SETTINGS === arch).flatMap(({ s }) =>
    typeof s.default === 'boolean' // a boolean's flag takes no value
      ? usageLines(s.flag!, s.help!)
      : usageLines(`${s.flag} ${s.placeholder}`, `${s.help} (default ${s.default})`),
  );
const resumable = RESUMABLE_FIELDS.map((f) => TRAIN_SETTINGS[f].flag);

export const TRAIN_USAGE = [
  'usage: npm run train -- --run NAME [options]',
  '',
  ...Object.values(OPTIONS).flatMap((o) => usageLines(o.usage, o.help)),
  'settings:',
  ...settingLines(false),
  "architecture (experiments; default: the lab's net):",
  ...settingLines(true),
  '',
  'Running an existing NAME again continues it from its best checkpoint with its saved settings;',
  `only ${resumable.slice(0, -1).join(', ')} and ${resumable[resumable.length - 1]} may change on a resume.`,
].join('\n');

/** `f()`, its error a UsageError (its message after `prefix`). */
function usage<T>(f: () => T, prefix = ''): T {
  try {
    return f();
  } catch (err) {
    throw new UsageError(prefix + (err as Error).message);
  }
}

/** Parses `npm run train` arguments; only the flags given end up in `given`. */
export function parseTrainArgs(argv: string[]) {
  const opts: Record<string, { type: 'string' | 'boolean'; short?: 'h' }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, o] of Object.entries(OPTIONS)) opts[name] = { type: o.boolean ? 'boolean' : 'string' };
  for (const { name, s } of FLAGS) opts[name] = { type: typeof s.default === 'boolean' ? 'boolean' : 'string' };
  const numeric = FLAGS.filter(({ s }) => typeof s.default === 'number').map((f) => f.name);
  const args = joinDashValues(argv, numeric);
  const v = usage(() => parseArgs({ args, strict: true, allowPositionals: false, options: opts }).values);
  if (v.help) return { help: true as const };
  if (typeof v.run !== 'string' || !v.run) throw new UsageError('--run NAME is required');
  // Only the flags given: a resumed run keeps its saved settings for the rest.
  const given: Partial<Record<ConfigField, unknown>> = {};
  for (const { name, field, s } of FLAGS) {
    const text = v[name];
    if (typeof text === 'string') given[field] = usage(() => s.parse!(text, `--${name}`));
    else if (text === true) given[field] = !s.default;
  }
  if (given.weights !== undefined && given.pretrained === false) {
    throw new UsageError('--weights picks a pretrained backbone; it cannot be combined with --no-pretrained');
  }
  const choice = <T extends string>(name: string, allowed: readonly T[]) =>
    typeof v[name] === 'string' ? usage(() => parseChoice(`--${name}`, v[name] as string, allowed)) : undefined;
  const resume = choice<CheckpointKind>('resume', CHECKPOINT_KINDS);
  const progress = choice<TerminalMode>('progress', ['bar', 'lines', 'none']);
  if (v.fresh && (resume || v['eval-only']))
    throw new UsageError('--fresh cannot be combined with --resume or --eval-only');
  return {
    help: false as const,
    run: v.run,
    given: given as Partial<TrainConfig>,
    resume,
    evalOnly: v['eval-only'] === true,
    fresh: v.fresh === true,
    runsDir: typeof v['runs-dir'] === 'string' ? commandLinePath(v['runs-dir']) : PATHS.runs,
    progress,
  };
}

/** The saved settings of an existing run: config.json, else the config inside a checkpoint. */
function savedConfig(store: RunDir): TrainConfig | undefined {
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
export function resolveTrainConfig(args: {
  run: string;
  given: Partial<TrainConfig>;
  fresh: boolean;
  runsDir: string;
}): TrainConfig {
  const store = usage(() => new RunDir(args.runsDir, args.run), '--run: ');
  const base = args.fresh ? undefined : savedConfig(store);
  return usage(() => validateConfig({ ...LAB_RECIPE, ...base, ...args.given, run: args.run }, 'the command line'));
}
