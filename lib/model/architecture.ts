/**
 * The network's architecture options: what the experiments change in the lab's net (the
 * questions' ablations and the frozen-backbone fixes), declared once as settings of the training
 * config (lib/train/train-config spreads them into its table). The defaults are the lab's net, so
 * a run, a checkpoint or a state saved before these options existed means LAB_ARCHITECTURE.
 *
 * Pure: no tensors here, so configs, checkpoints and reports can reason about architectures.
 */
import { booleanSetting, numberSetting, settingProblems, type SettingValues } from '../config';

/** Upsampling factors allowed (memory and time grow with the square of the factor). */
const MAX_UPSAMPLE = 4;

// `missing`: a config saved before these options existed describes the lab's net.
export const ARCHITECTURE_SETTINGS = {
  filterNorm: booleanSetting(true, {
    missing: true,
    flag: '--no-filter-norm',
    column: 'Bool',
    describe: (v) => (v ? 'filter norm' : 'no filter norm'),
    help: 'dynamic head without the L2 normalisation of the generated filters ("for numerical stability")',
  }),
  // The control that differs from the dynamic net in the generator alone (the lab's static head
  // differs in two factors: no generator AND no normalisation).
  staticNorm: booleanSetting(false, {
    missing: false,
    describe: (v) => (v ? 'L2-normalised static filters' : 'unnormalised static filters'),
    help: "L2-normalise each of the static head's learned filters",
  }),
  responseScale: booleanSetting(true, {
    missing: true,
    flag: '--no-response-scale',
    column: 'Bool',
    describe: (v) => (v ? '/√64' : 'no /√64'),
    help: 'response maps not divided by √64 (both heads)',
  }),
  // 32×32 → 64×64 with 2: [batch, 16, 16, 64] features, average-pooled back to 8×8 for the head (lib/model/model).
  upsample: numberSetting(
    1,
    { whole: true, min: 1, max: MAX_UPSAMPLE },
    {
      missing: 1,
      flag: '--upsample',
      column: 'Int32',
      describe: (v) => `upsample ×${v}`,
      help: `bilinear upsampling of the input by this factor (1–${MAX_UPSAMPLE}) before the backbone (1: none)`,
    },
  ),
  // relu(x + BN(conv3×3(x))), 64→64, state `adapter.*` (lib/model/adapter).
  adapter: booleanSetting(false, {
    missing: false,
    flag: '--adapter',
    column: 'Bool',
    describe: (v) => (v ? 'adapter' : 'no adapter'),
    help: 'trainable residual conv 3×3 + BN + ReLU after the backbone',
  }),
};

/** The architecture: these fields of a training config (lib/train's TrainConfig has them all). */
export type Architecture = SettingValues<typeof ARCHITECTURE_SETTINGS>;
const ARCHITECTURE_KEYS = Object.keys(ARCHITECTURE_SETTINGS) as (keyof Architecture)[];

/** The lab's net. */
export const LAB_ARCHITECTURE: Readonly<Architecture> = Object.freeze(architectureOf(undefined));

/**
 * The architecture a record (a TrainConfig, a checkpoint's config, partial options) describes:
 * its fields where present, the lab's net for the rest.
 */
export function architectureOf(record: Partial<Record<keyof Architecture, unknown>> | undefined): Architecture {
  const a: Record<string, unknown> = {};
  for (const k of ARCHITECTURE_KEYS) a[k] = record?.[k] !== undefined ? record[k] : ARCHITECTURE_SETTINGS[k].default;
  return a as Architecture;
}

/** The problems of the options together with `variant` (each option on its own: settingProblems). */
export function variantProblems(a: Architecture, variant?: string): string[] {
  const problems: string[] = [];
  if (variant === 'static' && a.filterNorm === false) {
    problems.push(
      "filterNorm false applies to the dynamic head only (the static head's filters are never normalised); " +
        'keep it true for static',
    );
  }
  if (variant === 'dynamic' && a.staticNorm === true) {
    problems.push("staticNorm applies to the static head only; the dynamic head's filters follow filterNorm");
  }
  return problems;
}

/** Every problem with an architecture for `variant` (empty when it is valid). */
export function architectureProblems(a: Architecture, variant?: string): string[] {
  return [...settingProblems(ARCHITECTURE_SETTINGS, a), ...variantProblems(a, variant)];
}

/**
 * The fields in which architecture `a` differs from `b`, as { field, a, b }. For whole training
 * configs (architecture fields included) use lib/train's configDifferences; this is the part the
 * model layer, which knows no configs, compares.
 */
export function architectureDifferences(
  a: Architecture,
  b: Architecture,
): { field: keyof Architecture; a: Architecture[keyof Architecture]; b: Architecture[keyof Architecture] }[] {
  return ARCHITECTURE_KEYS.filter((k) => a[k] !== b[k]).map((field) => ({ field, a: a[field], b: b[field] }));
}

/** An architecture field's value in words, as a change from the lab's net: 'no filter norm', 'upsample ×2'. */
function describeArchitectureField(field: keyof Architecture, value: unknown): string {
  return (ARCHITECTURE_SETTINGS[field].describe as (v: unknown) => string)(value);
}

/** How `a` differs from the lab's net, e.g. ['no filter norm', 'upsample ×2']; empty for the lab's net. */
export function describeArchitecture(a: Architecture): string[] {
  return architectureDifferences(a, LAB_ARCHITECTURE).map((d) => describeArchitectureField(d.field, d.a));
}
