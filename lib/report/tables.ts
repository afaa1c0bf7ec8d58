/**
 * Columns for showing lib/experiments' typed rows as tables (lib/report/html-table, lib/report/display
 * showTable): labels and number formats only. What the numbers mean is the notebooks' Markdown;
 * verdicts are the computed ones (lib/experiments/stats), shown as they are.
 */
import type {
  AblationRunRow,
  CauseFact,
  ComparisonRow,
  DynamicCosts,
  ExperimentRow,
  FreezeFacts,
  LabRunRow,
  NetworkFacts,
  PairedComparison,
  RecipeRow,
  RecipeTarget,
  RecordBatch,
  RunRow,
  StepTime,
  StepTimeRow,
  SweepRow,
} from '../experiments/index';
import { sweepSettings, verdictPhrase } from '../experiments/index';
import type { ParameterInfo } from '../model/index';
import { causeStatus } from './answers';
import type { ReceptiveField } from './receptive-field';
import { escapeHtml, formatPercent, type Column } from './html-table';

const code = (s: string) => ({ html: `<code>${escapeHtml(s)}</code>` });
const pct = (x: number | null | undefined) => (x === null || x === undefined ? '–' : formatPercent(x));
const seconds = (s: number | null) => (s === null || !Number.isFinite(s) ? '–' : s.toFixed(0));
const count = (n: number) => n.toLocaleString('en-US');

/** A difference of accuracies (fractions) in points, signed: "+1.23" / "−0.40" ('–' when not finite). */
export function points(d: number | null | undefined): string {
  return d === null || d === undefined || !Number.isFinite(d)
    ? '–'
    : `${d < 0 ? '−' : '+'}${Math.abs(100 * d).toFixed(2)}`;
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

/** The 90 % interval against the ±margin it must lie inside to be called equivalent: "−0.85 to +1.06 (±1.00)". */
export function equivalenceCell(c: Pick<PairedComparison, 'n' | 'low90' | 'high90' | 'margin'>): string {
  return c.n < 2 ? '–' : `${points(c.low90)} to ${points(c.high90)} (±${(100 * c.margin).toFixed(2)})`;
}

/** A median step time with its spread: "31.2 ± 1.0 ms" ('–' when not measured). */
function formatStepTime(t: StepTime | null): string {
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
  { label: '90 % interval (equivalence margin)', value: (c) => equivalenceCell(c), align: 'right' },
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
  {
    label: 'status',
    value: (r) =>
      r.status === 'done'
        ? `done (${r.epochsDone} epochs)`
        : r.status === 'diverged'
          ? `diverged after ${r.epochsDone} epoch(s)`
          : `${r.status} ${r.epochsDone}/${r.epochs}`,
  },
  {
    label: 'best test acc. (epoch)',
    value: (r) => (r.bestTestAccuracy === null ? '–' : `${formatPercent(r.bestTestAccuracy)} (${r.bestEpoch})`),
    align: 'right',
  },
  { label: 'final test acc.', value: (r) => pct(r.finalTestAccuracy), align: 'right' },
  {
    label: 'best − its base, points (one pair)',
    value: (r) => (r.vsBase === null ? '–' : `${points(r.vsBase)} vs ${r.base}`),
    align: 'right',
  },
  {
    label: 'trained / all parameters',
    value: (r) => `${count(r.trainableParameters)} / ${count(r.parameters)}`,
    align: 'right',
  },
  { label: 's / epoch (train pass)', value: (r) => seconds(r.secondsPerEpoch), align: 'right' },
];

/** Every run in results/runs (lib/experiments runRows). */
export const RUN_COLUMNS: readonly Column<RunRow>[] = [
  { label: 'run', value: (r) => code(r.name) },
  { label: 'head', value: (r) => r.variant ?? '–' },
  { label: 'seed', value: (r) => r.seed ?? '–', align: 'right' },
  {
    label: 'recipe',
    value: (r) =>
      r.problem ? `unreadable: ${r.problem}` : `${r.changes.join(', ') || 'lab recipe'}${r.subset ? ' (subset)' : ''}`,
  },
  { label: 'epochs', value: (r) => `${r.epochsDone}/${r.epochs ?? '?'}`, align: 'right' },
  { label: 'final', value: (r) => pct(r.finalTestAccuracy), align: 'right' },
  {
    label: 'best (epoch)',
    value: (r) => (r.bestTestAccuracy === null ? '–' : `${formatPercent(r.bestTestAccuracy)} (${r.bestEpoch})`),
    align: 'right',
  },
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
  {
    label: 'best (epoch)',
    value: (r) => (r.bestTestAccuracy === null ? '–' : `${formatPercent(r.bestTestAccuracy)} (${r.bestEpoch})`),
    align: 'right',
  },
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
    {
      label: 'selected epoch (on val)',
      value: (r) => (r.selectedEpoch === null ? '–' : `${r.selectedEpoch} of ${r.epochsDone}`),
      align: 'right',
    },
    { label: 'val acc. there', value: (r) => pct(r.valAccuracy), align: 'right' },
    {
      label: 'test acc. there',
      value: (r) => ({ html: `<strong>${escapeHtml(pct(r.testAccuracy))}</strong>` }),
      align: 'right',
    },
    {
      label: 'wall time (train pass)',
      value: (r) => `${minutes(r.wallSeconds)} (${minutes(r.trainSeconds)})`,
      align: 'right',
    },
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

/** Parameters per part of a net (ParameterInfo.part), buffers apart, then the total. */
export interface PartRow {
  part: string;
  tensors: number;
  parameters: number;
  /** BatchNorm running statistics and counters. */
  buffers: number;
  trainable: number;
}

export function partRows(info: readonly ParameterInfo[]): PartRow[] {
  const rows = new Map<string, PartRow>();
  for (const p of info) {
    const row = rows.get(p.part) ?? { part: p.part, tensors: 0, parameters: 0, buffers: 0, trainable: 0 };
    row.tensors += 1;
    row[p.kind === 'parameter' ? 'parameters' : 'buffers'] += p.size;
    if (p.trainable) row.trainable += p.size;
    rows.set(p.part, row);
  }
  const sum = (k: keyof Omit<PartRow, 'part'>) => [...rows.values()].reduce((n, r) => n + r[k], 0);
  const total = { part: 'total', tensors: sum('tensors'), parameters: sum('parameters'), buffers: sum('buffers') };
  return [...rows.values(), { ...total, trainable: sum('trainable') }];
}

/** The parameters of each head, part by part (lib/experiments networkFacts): null where a head has no such part. */
export function networkRows(n: NetworkFacts): { part: string; dynamic: number | null; static: number | null }[] {
  return [
    { part: 'backbone (stem + layer1)', dynamic: n.backbone, static: n.backbone },
    { part: 'class embeddings', dynamic: n.embeddings, static: null },
    { part: 'generator MLP', dynamic: n.generator, static: null },
    { part: 'learned filters', dynamic: null, static: n.staticFilters },
    { part: 'score MLP', dynamic: n.scoreMlp, static: n.scoreMlp },
    { part: 'head in all', dynamic: n.head.dynamic, static: n.head.static },
  ];
}

const countOrDash = (n: number | null) => (n === null ? '–' : count(n));

export const NETWORK_COLUMNS: readonly Column<ReturnType<typeof networkRows>[number]>[] = [
  { label: 'part', value: (r) => r.part },
  { label: 'dynamic head', value: (r) => countOrDash(r.dynamic), align: 'right' },
  { label: 'static head', value: (r) => countOrDash(r.static), align: 'right' },
];

/** "2026-12-02T06:05" of an ISO time ('–' without one). */
const minute = (iso: string | null) => iso?.slice(0, 16) ?? '–';
/** "<code>b</code> vs <code>a</code>". */
const versus = (b: string, a: string) => ({ html: `<code>${escapeHtml(b)}</code> vs <code>${escapeHtml(a)}</code>` });

/** The recorded suite's batches (provenance.json): where, when and at which commit each group of runs trained. */
export const PROVENANCE_COLUMNS: readonly Column<RecordBatch>[] = [
  { label: 'runs', value: (b) => b.runs.length, align: 'right' },
  { label: 'commit', value: (b) => code(b.commit.slice(0, 12)) },
  { label: 'machine', value: (b) => `${b.machine.cpu}, ${b.machine.cores} cores, ${b.machine.memoryGiB} GiB` },
  { label: 'backend', value: (b) => b.backend },
  { label: 'epochs from … to', value: (b) => `${minute(b.firstEpochAt)} … ${minute(b.lastEpochAt)}` },
  { label: 'hours (summed over runs)', value: (b) => (b.runSeconds / 3600).toFixed(1), align: 'right' },
  { label: 'note', value: (b) => b.note || '–' },
];

/** Each candidate cause of the frozen backbone's loss (FREEZE_CAUSES), tested by the arm that removes it alone. */
export const CAUSE_COLUMNS: readonly Column<CauseFact>[] = [
  { label: 'cause', value: (c) => c.cause },
  { label: 'removed by', value: (c) => c.how },
  { label: 'arm vs control', value: (c) => versus(c.test.b, c.test.a) },
  { label: 'pairs', value: (c) => c.test.n, align: 'right' },
  { label: 'difference, points (95 % interval)', value: (c) => differenceCell(c.test), align: 'right' },
  { label: '90 % interval (equivalence margin)', value: (c) => equivalenceCell(c.test), align: 'right' },
  { label: 'verdict', value: (c) => verdictLabel(c.test) },
  { label: 'the cause is', value: (c) => ({ html: `<strong>${escapeHtml(causeStatus(c))}</strong>` }) },
];

/** "62.37% (5)": a mean accuracy over n seeds ('–' for none). */
const meanOver = (mean: number, n: number) => (n ? `${formatPercent(mean)} (${n})` : '–');

/** Each fix (PAIRED_FIXES) against its frozen control and against training everything, in freezeFacts' order. */
export const FIX_COLUMNS: readonly Column<FreezeFacts['fixes'][number]>[] = [
  { label: 'fix', value: (f) => code(f.arm) },
  { label: 'what it trains', value: (f) => f.how },
  { label: 'test acc. (seeds)', value: (f) => meanOver(f.vsDynamic.meanB, f.vsDynamic.nB), align: 'right' },
  { label: 'vs its control', value: (f) => code(f.vsControl.a) },
  { label: '− control, points (95 %)', value: (f) => differenceCell(f.vsControl), align: 'right' },
  { label: 'verdict', value: (f) => verdictLabel(f.vsControl) },
  { label: '− dynamic, points (95 %)', value: (f) => differenceCell(f.vsDynamic), align: 'right' },
  { label: '90 % (margin)', value: (f) => equivalenceCell(f.vsDynamic), align: 'right' },
  { label: 'verdict', value: (f) => verdictLabel(f.vsDynamic) },
];

/** "79.00% (2)": an accuracy and the epoch it was reached at ('–' without one). */
const atEpoch = (acc: number | null, epoch: number | null) => (acc === null ? '–' : `${formatPercent(acc)} (${epoch})`);

/** Your runs without the L2 normalisation or the /√64 (lib/experiments ablationRunRows). */
export const ABLATION_RUN_COLUMNS: readonly Column<AblationRunRow>[] = [
  { label: 'run', value: (r) => code(r.name) },
  { label: 'changes', value: (r) => r.changes.join(', ') },
  { label: 'seed', value: (r) => r.seed ?? '–', align: 'right' },
  { label: 'best test acc. (epoch)', value: (r) => atEpoch(r.bestTestAccuracy, r.bestEpoch), align: 'right' },
  { label: 'diverged', value: (r) => (r.diverged ? 'yes' : 'no') },
  { label: 'best − lab-dynamic-s0, points (one pair)', value: (r) => points(r.vsBase), align: 'right' },
];

/** What the static head has instead of cached generated filters. */
const CACHED_STATIC = '(its filters are parameters)';

/** Median time per step of each head (lib/experiments dynamicCosts). */
export const STEP_TIME_COLUMNS: readonly Column<StepTimeRow>[] = [
  { label: 'measure', value: (t) => t.measure },
  { label: 'dynamic', value: (t) => formatStepTime(t.dynamic), align: 'right' },
  {
    label: 'static',
    value: (t) => (t.measure === 'inference-step-precomputed-filters' ? CACHED_STATIC : formatStepTime(t.static)),
    align: 'right',
  },
];

/** The ratios derived from the measurements, as { quantity, value } rows ('–' for what is not measured). */
export function costRows(c: DynamicCosts): { quantity: string; value: string }[] {
  const ratio = (x: number | null, digits = 2) => (x === null ? '–' : x.toFixed(digits));
  const h = c.head;
  const generation = c.generationShareOfTrainStep;
  const share = generation === null ? '–' : formatPercent(generation, undefined, 1);
  const others = c.timing.othersShare;
  return [
    {
      quantity: 'head parameters, dynamic / static',
      value: h.dynamic === null ? '–' : `${count(h.dynamic)} / ${countOrDash(h.static)} = ${ratio(h.ratio, 1)}×`,
    },
    { quantity: 'of which in the generator', value: countOrDash(h.generator) },
    { quantity: 'training step, dynamic / static', value: ratio(c.trainStepRatio) },
    { quantity: 'filter generation / dynamic training step', value: share },
    { quantity: 'inference with cached filters / static inference', value: ratio(c.cachedInferenceRatio) },
    {
      quantity: `input-conditioned, naively: ${c.batch ?? '–'} generator passes per step (ms)`,
      value: c.perImageGenerationMs === null ? '–' : c.perImageGenerationMs.toFixed(0),
    },
    {
      quantity: 'timed with other processes taking (share of the CPUs)',
      value: others === null ? 'not recorded' : `${(100 * others).toFixed(0)}% of ${c.timing.cpus}`,
    },
  ];
}

/**
 * What each recipe would take on your machine: its epochs times the seconds of a training pass of
 * your `lab` run (lab-dynamic-s0), an estimate (the recipe's augmentation and evaluations are not in it).
 */
export function recipeEstimates(recipes: readonly RecipeRow[], lab?: LabRunRow): Record<string, string | number>[] {
  const s = lab?.secondsPerEpoch;
  if (!lab || s === null || s === undefined) return [];
  return recipes.map((r) => ({
    recipe: r.name,
    epochs: r.epochs,
    [`s / epoch of ${lab.name} here`]: s.toFixed(0),
    'estimated training time here (min)': ((r.epochs * s) / 60).toFixed(0),
  }));
}

/** The receptive field layer by layer (lib/report/receptive-field). */
export const FIELD_LAYER_COLUMNS: readonly Column<ReceptiveField['layers'][number]>[] = [
  { label: 'layer', value: (l) => l.layer },
  { label: 'kernel / stride / padding', value: (l) => `${l.kernel} / ${l.stride} / ${l.padding}`, align: 'right' },
  { label: 'input pixels between cells before it', value: (l) => l.jumpBefore, align: 'right' },
  { label: 'widens the field by (px)', value: (l) => l.widens, align: 'right' },
  { label: 'field after it (px)', value: (l) => l.field, align: 'right' },
  { label: 'map after it', value: (l) => `${l.mapSize}×${l.mapSize}`, align: 'right' },
];

/** The image pixels inside the field of each row (or column) of the map. */
export const FIELD_CELL_COLUMNS: readonly Column<ReceptiveField['cells'][number]>[] = [
  { label: 'row or column of the map', value: (c) => c.cell, align: 'right' },
  { label: 'image pixels seen', value: (c) => `${c.from} … ${c.to}`, align: 'right' },
  { label: 'how many', value: (c) => c.pixels, align: 'right' },
];
