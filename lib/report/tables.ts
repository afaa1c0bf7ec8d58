/**
 * Columns for showing lib/experiments' typed rows as tables (lib/report/html-table, lib/report/display
 * showTable): labels and number formats only. What the numbers mean is the notebooks' Markdown;
 * verdicts are the computed ones (lib/experiments/stats), shown as they are.
 */
import type { ComparisonRow, StepTime, ExperimentRow, LabRunRow, PairedComparison, RecipeRow, RecipeTarget, RunRow, SweepRow } from '../experiments/index';
import { sweepSettings, verdictPhrase } from '../experiments/index';
import { escapeHtml, formatPercent, type Column } from './html-table';

const code = (s: string) => ({ html: `<code>${escapeHtml(s)}</code>` });
const pct = (x: number | null | undefined) => (x === null || x === undefined ? '–' : formatPercent(x));
const seconds = (s: number | null) => (s === null || !Number.isFinite(s) ? '–' : s.toFixed(0));
const count = (n: number) => n.toLocaleString('en-US');

/** A difference of accuracies (fractions) in points, signed: "+1.23" / "−0.40" ('–' when not finite). */
export function points(d: number | null | undefined): string {
  return d === null || d === undefined || !Number.isFinite(d) ? '–' : `${d < 0 ? '−' : '+'}${Math.abs(100 * d).toFixed(2)}`;
}

/** The computed verdict as a table cell (lib/experiments verdictPhrase: the margin or the n that qualifies it). */
export function verdictLabel(c: Pick<PairedComparison, 'verdict' | 'n' | 'margin'>): string {
  return verdictPhrase(c);
}

/** The mean paired difference and its 95 % interval: "+2.00 (+0.76 to +3.24)". */
export function differenceCell(c: Pick<PairedComparison, 'n' | 'mean' | 'low' | 'high'>): string {
  if (c.n === 0) return '–';
  return c.n < 2 ? points(c.mean) : `${points(c.mean)} (${points(c.low)} to ${points(c.high)})`;
}

/** A median step time with its spread: "31.2 ± 1.0 ms" ('–' when not measured). */
export function formatStepTime(t: StepTime | null): string {
  if (!t) return '–';
  const d = (x: number) => x.toFixed(x < 1 ? 2 : 1);
  return `${d(t.ms)} ± ${d(t.spread)} ms`;
}

/** Paired comparisons (lib/experiments compare). */
export const COMPARISON_COLUMNS: readonly Column<ComparisonRow>[] = [
  { label: 'B vs A', value: (c) => ({ html: `<code>${escapeHtml(c.b)}</code> vs <code>${escapeHtml(c.a)}</code>` }) },
  { label: 'what it isolates', value: (c) => c.isolates },
  { label: 'B: test acc. (seeds)', value: (c) => (c.nB ? `${formatPercent(c.meanB)} (${c.nB})` : '–'), align: 'right' },
  { label: 'A: test acc. (seeds)', value: (c) => (c.nA ? `${formatPercent(c.meanA)} (${c.nA})` : '–'), align: 'right' },
  { label: 'pairs', value: (c) => c.n, align: 'right' },
  { label: 'B − A, points (95 % interval)', value: (c) => differenceCell(c), align: 'right' },
  { label: '90 % interval (equivalence)', value: (c) => (c.n < 2 ? '–' : `${points(c.low90)} to ${points(c.high90)}`), align: 'right' },
  { label: 'sign-flip p', value: (c) => (c.n ? c.permutationP.toFixed(3) : '–'), align: 'right' },
  { label: 'wins / losses', value: (c) => `${c.wins} / ${c.losses}`, align: 'right' },
  { label: 'verdict', value: (c) => ({ html: `<strong>${escapeHtml(verdictLabel(c))}</strong>` }) },
];

/** Recorded runs left out of the statistics (lib/experiments unfinished). */
export const EXCLUDED_COLUMNS: readonly Column<{ arm: string; status: string; seeds: number[] }>[] = [
  { label: 'arm', value: (e) => code(e.arm) },
  { label: 'status', value: (e) => e.status },
  { label: 'seeds', value: (e) => e.seeds.join(', ') },
];

/** Your lab-suite runs (lib/experiments labRunRows). */
export const LAB_RUN_COLUMNS: readonly Column<LabRunRow>[] = [
  { label: 'run', value: (r) => code(r.name) },
  { label: 'settings', value: (r) => r.settings },
  { label: 'status', value: (r) => (r.status === 'done' ? `done (${r.epochsDone} epochs)` : r.status === 'diverged' ? `diverged after ${r.epochsDone} epoch(s)` : `${r.status} ${r.epochsDone}/${r.epochs}`) },
  { label: 'best test acc. (epoch)', value: (r) => (r.bestTestAccuracy === null ? '–' : `${formatPercent(r.bestTestAccuracy)} (${r.bestEpoch})`), align: 'right' },
  { label: 'final test acc.', value: (r) => pct(r.finalTestAccuracy), align: 'right' },
  { label: 'best − its base, points (one pair)', value: (r) => (r.vsBase === null ? '–' : `${points(r.vsBase)} vs ${r.base}`), align: 'right' },
  { label: 'trained / all parameters', value: (r) => `${count(r.trainableParameters)} / ${count(r.parameters)}`, align: 'right' },
  { label: 's / epoch (train pass)', value: (r) => seconds(r.secondsPerEpoch), align: 'right' },
];

/** Every run in results/runs (lib/experiments runRows). */
export const RUN_COLUMNS: readonly Column<RunRow>[] = [
  { label: 'run', value: (r) => code(r.name) },
  { label: 'head', value: (r) => r.variant ?? '–' },
  { label: 'seed', value: (r) => r.seed ?? '–', align: 'right' },
  { label: 'recipe', value: (r) => (r.problem ? `unreadable: ${r.problem}` : `${r.changes.join(', ') || 'lab recipe'}${r.subset ? ' (subset)' : ''}`) },
  { label: 'epochs', value: (r) => `${r.epochsDone}/${r.epochs ?? '?'}`, align: 'right' },
  { label: 'final', value: (r) => pct(r.finalTestAccuracy), align: 'right' },
  { label: 'best (epoch)', value: (r) => (r.bestTestAccuracy === null ? '–' : `${formatPercent(r.bestTestAccuracy)} (${r.bestEpoch})`), align: 'right' },
  { label: 's / epoch', value: (r) => seconds(r.secondsPerEpoch), align: 'right' },
  { label: 'checkpoints', value: (r) => r.checkpoints.join(' + ') || '–' },
];

/** The experiment table (results/experiments.parquet). */
export const EXPERIMENT_COLUMNS: readonly Column<ExperimentRow>[] = [
  { label: 'run', value: (r) => code(r.name) },
  { label: 'group', value: (r) => r.group },
  { label: 'head', value: (r) => r.variant },
  { label: 'seed', value: (r) => r.seed, align: 'right' },
  { label: 'settings', value: (r) => r.settings },
  { label: 'status', value: (r) => (r.status === 'done' ? 'done' : `${r.status} ${r.epochsDone}/${r.epochs}`) },
  { label: 'best (epoch)', value: (r) => (r.bestTestAccuracy === null ? '–' : `${formatPercent(r.bestTestAccuracy)} (${r.bestEpoch})`), align: 'right' },
  { label: 'final', value: (r) => pct(r.finalTestAccuracy), align: 'right' },
  { label: 's / epoch', value: (r) => seconds(r.secondsPerEpoch), align: 'right' },
  { label: 'trained params', value: (r) => count(Number(r.trainableParameters)), align: 'right' },
];

const minutes = (s: number | null) => (s === null ? '–' : `${(s / 60).toFixed(1)} min`);
const yesNo = (b: boolean) => (b ? 'yes' : 'no');

/** Recorded recipes against the target (lib/experiments recipeRows). */
export function recipeColumns(target: RecipeTarget): Column<RecipeRow>[] {
  return [
    { label: 'recipe', value: (r) => code(r.name) },
    { label: 'seed', value: (r) => r.seed, align: 'right' },
    { label: 'status', value: (r) => (r.status === 'done' ? 'done' : `${r.status} ${r.epochsDone}/${r.epochs}`) },
    { label: 'selected epoch (on val)', value: (r) => (r.selectedEpoch === null ? '–' : `${r.selectedEpoch} of ${r.epochsDone}`), align: 'right' },
    { label: 'val acc. there', value: (r) => pct(r.valAccuracy), align: 'right' },
    { label: 'test acc. there', value: (r) => ({ html: `<strong>${escapeHtml(pct(r.testAccuracy))}</strong>` }), align: 'right' },
    { label: 'wall time (train pass)', value: (r) => `${minutes(r.wallSeconds)} (${minutes(r.trainSeconds)})`, align: 'right' },
    { label: 'cores', value: (r) => r.cores, align: 'right' },
    { label: `≥ ${formatPercent(target.testAccuracy, undefined, 0)} test`, value: (r) => yesNo(r.meetsAccuracy) },
    { label: `≤ ${target.seconds / 60} min`, value: (r) => yesNo(r.meetsTime) },
    { label: `≤ ${target.cores} cores`, value: (r) => yesNo(r.meetsCores) },
    { label: 'target met', value: (r) => ({ html: `<strong>${yesNo(r.meetsTarget)}</strong>` }) },
    { label: 'chosen on val', value: (r) => (r.chosen ? '✓' : '') },
  ];
}

/** The PyTorch recipe sweep (selected on TEST accuracy: motivation only). */
export const SWEEP_COLUMNS: readonly Column<SweepRow>[] = [
  { label: 'config', value: (s) => s.name },
  { label: 'epochs', value: (s) => s.epochs, align: 'right' },
  { label: 'settings', value: (s) => sweepSettings(s).join(', ') },
  { label: 'best test (test-selected)', value: (s) => formatPercent(s.bestTestAccuracy), align: 'right' },
  { label: 'final test', value: (s) => formatPercent(s.finalTestAccuracy), align: 'right' },
  { label: 'seconds (GPU)', value: (s) => s.seconds.toFixed(0), align: 'right' },
];
