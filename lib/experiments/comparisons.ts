/**
 * The recorded paired suite's comparisons as typed rows: each arm's test accuracy at the
 * validation-selected epoch over its seeds, every comparison of PAIRED_COMPARISONS with its paired
 * interval, permutation p and computed verdict (lib/experiments/stats), the runs left out of the
 * statistics, and each fix measured against its control. Pure functions of the recorded rows:
 * the notebooks show them; no sentence about the outcome is written anywhere.
 */
import { BASE_SEEDS, PAIRED_COMPARISONS, PAIRED_FIXES, VALIDATION_IMAGES, type ArmComparison, type ExperimentGroup } from './experiments';
import { armsBySeed, compareArms, type Provenance, type RecordedRow } from './recorded';
import { pairedComparison, signFlipPValue, type BySeed, type PairedComparison } from './stats';
import { meanStd } from './summary';

/** The comparisons of one group (compare, freeze, init, ablation), in PAIRED_COMPARISONS' order. */
export function comparisonsOf(group: ExperimentGroup, comparisons: readonly ArmComparison[] = PAIRED_COMPARISONS): ArmComparison[] {
  return comparisons.filter((c) => c.group === group);
}

/** An arm's selected test accuracy over its finished seeds (mean NaN and n 0 without one). */
export interface ArmAccuracy {
  arm: string;
  mean: number;
  /** Sample standard deviation over seeds (0 for one seed, NaN for none). */
  sd: number;
  n: number;
  seeds: number[];
}

export function armAccuracy(rows: readonly RecordedRow[], arm: string): ArmAccuracy {
  const bySeed = armsBySeed(rows).get(arm) ?? new Map<number, number>();
  const seeds = [...bySeed.keys()].sort((a, b) => a - b);
  const s = meanStd(seeds.map((k) => bySeed.get(k)!));
  return { arm, mean: s.mean, sd: s.std, n: s.n, seeds };
}

/** Each arm (default: every arm of the rows, first-seen order) with its accuracy over seeds. */
export function armAccuracies(rows: readonly RecordedRow[], arms?: readonly string[]): ArmAccuracy[] {
  return (arms ?? [...new Set(rows.map((r) => r.arm))]).map((arm) => armAccuracy(rows, arm));
}

/** One comparison, b − a seed by seed, with both arms' means over their own finished seeds. */
export interface ComparisonRow extends ArmComparison, PairedComparison {
  meanA: number;
  nA: number;
  meanB: number;
  nB: number;
}

export function comparisonRows(rows: readonly RecordedRow[], comparisons: readonly ArmComparison[] = PAIRED_COMPARISONS): ComparisonRow[] {
  return compareArms(rows, comparisons).map((c) => {
    const a = armAccuracy(rows, c.a);
    const b = armAccuracy(rows, c.b);
    return { ...c, meanA: a.mean, nA: a.n, meanB: b.mean, nB: b.n };
  });
}

/** The smallest two-sided sign-flip p that `n` pairs can reach (2 / 2^n): 0.0625 for 5 pairs. */
export function smallestPermutationP(n: number = BASE_SEEDS.length): number {
  return signFlipPValue(new Array<number>(n).fill(1));
}

/** Runs of an arm left out of the statistics (not finished, diverged, …), grouped by status. */
export interface ExcludedRuns {
  arm: string;
  status: string;
  seeds: number[];
}

export function excludedRuns(rows: readonly RecordedRow[], arms: readonly string[]): ExcludedRuns[] {
  return arms.flatMap((arm) => {
    const left = rows.filter((r) => r.arm === arm && (r.status !== 'done' || r.selected_test_acc === null));
    const byStatus = new Map<string, number[]>();
    for (const r of left) byStatus.set(r.status, [...(byStatus.get(r.status) ?? []), Number(r.seed)]);
    return [...byStatus].map(([status, seeds]) => ({ arm, status, seeds }));
  });
}

/** The arms a list of comparisons involves, first-seen order. */
export function armsOf(comparisons: readonly ArmComparison[]): string[] {
  return [...new Set(comparisons.flatMap((c) => [c.a, c.b]))];
}

/** How many finished runs of `arms` diverged (a result for the ablations). */
export function divergedRuns(rows: readonly RecordedRow[], arms: readonly string[]): { settled: number; diverged: string[] } {
  const settled = rows.filter((r) => arms.includes(r.arm) && (r.status === 'done' || r.status === 'diverged'));
  return { settled: settled.length, diverged: settled.filter((r) => r.status === 'diverged').map((r) => r.name) };
}

/** A fix of the frozen backbone against its control (the frozen arm it differs from in the fix alone). */
export interface FixEffect {
  arm: string;
  control: string;
  /** What the fix changes, in a few words (PAIRED_FIXES). */
  how: string;
  /** fix − control, seed by seed. */
  gain: PairedComparison;
  /** dynamic − control: how far the control is behind training everything. */
  gap: PairedComparison;
  /** gain.mean / gap.mean: the share of the gap the fix wins back; null unless the gap's mean is > 0. */
  shareOfGap: number | null;
}

/** Every fix against its control, largest mean gain first (fixes without a pair last). */
export function fixEffects(rows: readonly RecordedRow[], fixes: readonly { arm: string; control: string; how: string }[] = PAIRED_FIXES): FixEffect[] {
  const arms = armsBySeed(rows);
  const none: BySeed = new Map();
  const effects = fixes.map((f) => {
    const gain = pairedComparison(arms.get(f.control) ?? none, arms.get(f.arm) ?? none);
    const gap = pairedComparison(arms.get(f.control) ?? none, arms.get('dynamic') ?? none);
    return { arm: f.arm, control: f.control, how: f.how, gain, gap, shareOfGap: gain.n > 0 && gap.n > 0 && gap.mean > 0 ? gain.mean / gap.mean : null };
  });
  const key = (e: FixEffect) => (Number.isFinite(e.gain.mean) ? e.gain.mean : -Infinity);
  return effects.sort((x, y) => key(y) - key(x));
}

/** The fix with the highest mean test accuracy, and how it compares with training everything (dynamic). */
export interface BestFix {
  accuracy: ArmAccuracy;
  vsDynamic: ComparisonRow;
}

export function bestFix(rows: readonly RecordedRow[], fixes: readonly { arm: string }[] = PAIRED_FIXES): BestFix | undefined {
  const scored = fixes.map((f) => armAccuracy(rows, f.arm)).filter((a) => a.n > 0).sort((x, y) => y.mean - x.mean);
  if (scored.length === 0) return undefined;
  const [vsDynamic] = comparisonRows(rows, [{ group: 'freeze', a: 'dynamic', b: scored[0].arm, isolates: 'the best fix against training everything' }]);
  return { accuracy: scored[0], vsDynamic };
}

/** Where and when a recorded suite ran, and how its numbers were chosen. */
export interface RecordedSummary {
  commit: string;
  /** The code had uncommitted changes when the suite trained. */
  dirty: boolean;
  cpu: string;
  cores: number;
  memoryGiB: number;
  backend: string;
  firstEpoch: string | null;
  lastEpoch: string | null;
  recorded: string;
  /** Training and evaluation summed over the runs (one run at a time), hours. */
  runHours: number;
  seeds: number[];
  trainingImages: number;
  validationImages: number;
  /** The smallest p the sign-flip test can reach with this many pairs. */
  smallestP: number;
}

export function recordedSummary(provenance: Provenance): RecordedSummary {
  const day = (s: string | null) => (s ? s.slice(0, 10) : null);
  return {
    commit: provenance.commit.replace(/-dirty$/, '').slice(0, 12),
    dirty: provenance.commit.endsWith('-dirty'),
    cpu: provenance.machine.cpu, cores: provenance.machine.cores, memoryGiB: provenance.machine.memoryGiB,
    backend: provenance.backend,
    firstEpoch: day(provenance.firstEpochAt), lastEpoch: day(provenance.lastEpochAt), recorded: day(provenance.recordedAt) ?? '',
    runHours: provenance.runSeconds / 3600,
    seeds: [...BASE_SEEDS], trainingImages: 50_000 - VALIDATION_IMAGES, validationImages: VALIDATION_IMAGES,
    smallestP: smallestPermutationP(BASE_SEEDS.length),
  };
}
