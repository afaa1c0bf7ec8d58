/**
 * The lab's questions and their answers, built from two sources kept apart, never mixed in one
 * statistic:
 *  - "Your runs": the lab suite that `npm start` trains (lib/experiments LAB_EXPERIMENTS, seed 0,
 *    best epoch chosen on test accuracy as the lab states it), read from the experiment table
 *    (results/experiments.parquet, lib/experiment-table), the measurements
 *    (results/measurements.parquet) and the runs' own metrics (curves). One run per setting:
 *    differences between them are stated, never given a verdict.
 *  - "Recorded results": the paired suite committed under results/recorded/paired (lib/recorded):
 *    every arm with seeds 0–4, the epoch chosen on a fixed validation split and test accuracy
 *    quoted at that epoch; arms compared seed by seed with lib/stats (95% t interval,
 *    permutation p, a verdict computed from the interval).
 * Every number quoted comes from there and names its run or arm; every verdict is computed.
 * Notebook 06 and the report both show these answers and their figures.
 */
import * as fs from 'fs';
import * as path from 'path';
import { FEATURE_CHANNELS, IMAGE_SIZE, PATHS } from '../config';
import { type ArmComparison, armsBySeed, BEST_EPOCHS, DIVERGED_FILE, type ExperimentGroup, type ExperimentRow, EXPERIMENTS_FILE, type LabResults, meanStd, type Measure, type MeasurementRow, MEASUREMENTS_FILE, PAIRED_COMPARISONS, PAIRED_FIXES, PAIRED_SEEDS, pairedComparison, type PairedComparison, type Provenance, readExperimentTable, readMeasurements, readRecorded, type RecordedRow, VALIDATION_IMAGES, type Verdict } from '../experiments';
import { escapeHtml, formatPercent, htmlTable, NOTE_STYLE, textToHtml } from './html-table';
import { meanStdBars, trainingCurves, type Figure } from './plots';
import { listSavedFigures } from './figures-export';

export type AnswerStatus = 'answered' | 'partial' | 'no-run-yet';

/** A figure that belongs to an answer (drawn after it in the report and notebook 06). */
export interface AnswerFigure {
  name: string;
  caption: string;
  figure: Figure;
}

export interface Answer {
  id: string;
  title: string;
  /** The lab's question, as asked. */
  question: string;
  status: AnswerStatus;
  /** The measured evidence and what it says (HTML). */
  html: string;
  /** What to run to get (the rest of) the evidence, when something is missing. */
  todo?: string;
  /** Your runs (results/runs) whose numbers the answer quotes. */
  cites: string[];
  figures: AnswerFigure[];
}

/** One configuration of python/recipe_sweep.py (PyTorch, GPU): what motivated best-dynamic. */
export interface SweepRow {
  name: string;
  config: Record<string, unknown>;
  epochs: number;
  bestTestAccuracy: number;
  finalTestAccuracy: number;
  seconds: number;
  machine: string;
}

/** The recorded paired suite (lib/recorded readRecorded('paired')). */
export interface Recorded {
  rows: RecordedRow[];
  provenance: Provenance;
}

/** Everything the answers read besides the runs. Missing files give empty lists (and no `recorded`). */
export interface Evidence {
  /** results/experiments.parquet: one row per experiment of the lab suite (your runs). */
  experiments: ExperimentRow[];
  /** results/measurements.parquet: parameter counts and step times. */
  measurements: MeasurementRow[];
  /** python/recipe_sweep_results.jsonl (a GPU sweep; motivation, not a result of this machine). */
  sweep: SweepRow[];
  /** results/recorded/paired: the multi-seed paired suite, when the checkout has it. */
  recorded?: Recorded;
}

export const SWEEP_FILE = path.join(PATHS.root, 'python', 'recipe_sweep_results.jsonl');
export const RECORDED_PAIRED_DIR = path.join(PATHS.recorded, 'paired');

/** Reads the recipe sweep's JSON lines ([] when the file is absent). */
export function readSweep(file: string = SWEEP_FILE): SweepRow[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((line, i) => {
      const r = JSON.parse(line) as Record<string, unknown>;
      const config = (r.config ?? {}) as Record<string, unknown>;
      if (typeof r.best_test_accuracy !== 'number') throw new Error(`${file} line ${i + 1}: no best_test_accuracy`);
      return {
        name: String(config.name ?? `line ${i + 1}`), config, epochs: Number(r.epochs_done ?? config.epochs),
        bestTestAccuracy: r.best_test_accuracy, finalTestAccuracy: Number(r.final_test_accuracy), seconds: Number(r.seconds), machine: String(r.machine ?? ''),
      };
    });
}

/**
 * Reads experiments.parquet and measurements.parquet of `resultsDir`, the sweep, and the recorded
 * paired suite (`recordedDir`, default results/recorded/paired) when its experiments.parquet exists.
 */
export function loadEvidence(resultsDir: string = PATHS.results, opts: { sweepFile?: string; recordedDir?: string } = {}): Evidence {
  const experimentsFile = path.join(resultsDir, EXPERIMENTS_FILE);
  const measurementsFile = path.join(resultsDir, MEASUREMENTS_FILE);
  const experiments = fs.existsSync(experimentsFile) ? readExperimentTable(experimentsFile) : [];
  const measurements = fs.existsSync(measurementsFile) ? readMeasurements(measurementsFile) : [];
  // Parquet Int64 columns may come back as bigint: numbers from here on.
  for (const r of experiments) {
    r.parameters = Number(r.parameters);
    r.trainableParameters = Number(r.trainableParameters);
    r.seed = Number(r.seed);
  }
  const recordedDir = opts.recordedDir ?? RECORDED_PAIRED_DIR;
  const evidence: Evidence = { experiments, measurements, sweep: readSweep(opts.sweepFile) };
  if (fs.existsSync(path.join(recordedDir, 'experiments.parquet'))) {
    const recorded = readRecorded('paired', recordedDir);
    for (const r of recorded.rows) r.seed = Number(r.seed);
    evidence.recorded = recorded;
  }
  return evidence;
}

// ---- your runs: helpers over the experiment table ---------------------------------------------

const cmd = (names: readonly string[]) => `npm run experiments -- --only ${names.join(',')}`;
const PAIRED_CMD = 'npm run experiments -- --suite paired';
const code = (s: string) => `<code>${escapeHtml(s)}</code>`;
/** A difference of accuracies (fractions) in points, signed: "+1.23" / "−0.40". */
const signed = (d: number) => (Number.isFinite(d) ? `${d < 0 ? '−' : '+'}${Math.abs(100 * d).toFixed(2)}` : '–');
const pts = (a: number, b: number) => `${signed(a - b)} points`;

function hasResult(r: ExperimentRow | undefined): r is ExperimentRow & { bestTestAccuracy: number; finalTestAccuracy: number; bestEpoch: number } {
  return !!r && r.bestTestAccuracy !== null && r.bestTestAccuracy !== undefined && r.finalTestAccuracy !== null;
}

/** A diverged run or one with a finished epoch: something to report. (No type predicate: TypeScript 5.0, as in tslab, narrows its false branch to never.) */
function reportable(r: ExperimentRow | undefined): boolean {
  return !!r && (r.status === 'diverged' || (r.bestTestAccuracy !== null && r.bestTestAccuracy !== undefined));
}

/** Experiments that a question needs but that have no finished epoch (or are unfinished). */
interface Gaps {
  /** No epoch yet (not started, or mismatched / unreadable). */
  missing: string[];
  /** Some epochs, not all (running or interrupted). */
  unfinished: ExperimentRow[];
}

function gaps(rows: readonly ExperimentRow[], names: readonly string[]): Gaps {
  const byName = new Map(rows.map((r) => [r.name, r]));
  const missing: string[] = [];
  const unfinished: ExperimentRow[] = [];
  for (const n of names) {
    const r = byName.get(n);
    if (!r || !reportable(r)) missing.push(n);
    else if (r.status !== 'done' && r.status !== 'diverged') unfinished.push(r);
  }
  return { missing, unfinished };
}

const complete = (g: Gaps) => g.missing.length === 0 && g.unfinished.length === 0;

/** "Not run yet: …" and "unfinished: …" notes with the commands that complete them. */
function gapsHtml(g: Gaps, rows: readonly ExperimentRow[]): string {
  const out: string[] = [];
  if (g.missing.length) {
    const why = g.missing.map((n) => {
      const r = rows.find((x) => x.name === n);
      if (r && (r.status === 'mismatch' || r.status === 'unreadable')) return `${n} (${r.status}: ${r.detail})`;
      return r && r.status === 'running' ? `${n} (training now, no finished epoch yet)` : n;
    });
    out.push(`<strong>Not run yet:</strong> ${textToHtml(why.join(', '))} — \`${cmd(g.missing)}\``);
  }
  if (g.unfinished.length) {
    out.push(
      `<strong>Unfinished</strong> (numbers so far): ${g.unfinished.map((r) => `${code(r.name)} ${r.epochsDone}/${r.epochs} epochs${r.status === 'running' ? ', training now' : ''}`).join(', ')} — ` +
        textToHtml(`\`${cmd(g.unfinished.map((r) => r.name))}\``),
    );
  }
  return out.length ? placeholder(out.map((s) => s.replace(/`([^`]+)`/g, '<code>$1</code>')).join('<br>')) : '';
}

function todoOf(g: Gaps, recordedMissing = false): string | undefined {
  const names = [...g.missing, ...g.unfinished.map((r) => r.name)];
  const todo = [...(names.length ? [`\`${cmd(names)}\``] : []), ...(recordedMissing ? ['`git checkout -- results/recorded` (the recorded paired suite)'] : [])];
  return todo.length ? todo.join('; ') : undefined;
}

const placeholder = (html: string) => `<p class="dcf-placeholder" style="${NOTE_STYLE.placeholder}">${html}</p>`;
const note = (html: string) => `<p class="dcf-note" style="font-size:12.5px;color:#555">${html}</p>`;

function noRunYet(id: string, title: string, question: string, needs: string, todo: string): Answer {
  return {
    id, title, question, status: 'no-run-yet', cites: [], figures: [],
    html: placeholder(`<strong>No run yet.</strong> This answer needs ${textToHtml(needs)}: <code>${escapeHtml(todo)}</code>.`),
    todo: `\`${todo}\``,
  };
}

/** Answered when your runs are complete, partial when anything is there, else no run yet. */
function statusOf(g: Gaps, anything: boolean): AnswerStatus {
  return complete(g) ? 'answered' : anything ? 'partial' : 'no-run-yet';
}

const seconds = (s: number | null) => (s === null || !Number.isFinite(s) ? '–' : s.toFixed(0));

/** A table of your runs (one row each): status, best (epoch), final, Δ best vs `base`, cost. */
function experimentsTable(rows: readonly ExperimentRow[], caption: string, base?: ExperimentRow): string {
  return htmlTable(rows, {
    caption,
    columns: [
      { label: 'run', value: (r) => ({ html: code(r.name) }) },
      { label: 'settings', value: (r) => r.settings },
      { label: 'status', value: (r) => (r.status === 'done' ? `done (${r.epochsDone} epochs)` : r.status === 'diverged' ? `diverged after ${r.epochsDone} epoch(s)` : `${r.status} ${r.epochsDone}/${r.epochs}`) },
      { label: 'best test acc. (epoch)', value: (r) => (hasResult(r) ? `${formatPercent(r.bestTestAccuracy)} (${r.bestEpoch})` : '–'), align: 'right' },
      { label: 'final test acc.', value: (r) => (hasResult(r) ? formatPercent(r.finalTestAccuracy) : '–'), align: 'right' },
      ...(base && hasResult(base)
        ? [{ label: `best vs ${base.name}`, value: (r: ExperimentRow) => (hasResult(r) && r !== base ? pts(r.bestTestAccuracy, base.bestTestAccuracy) : '–'), align: 'right' as const }]
        : []),
      { label: 'trained / all parameters', value: (r) => `${r.trainableParameters.toLocaleString('en-US')} / ${r.parameters.toLocaleString('en-US')}`, align: 'right' },
      { label: 's / epoch (train pass)', value: (r) => seconds(r.secondsPerEpoch), align: 'right' },
    ],
  });
}

function curvesFigure(results: LabResults, names: readonly string[], name: string, title: string, caption: string): AnswerFigure | undefined {
  const runs = names.filter((n) => results.runs.some((r) => r.name === n && r.epochs.length));
  if (runs.length === 0) return undefined;
  const rows = results.epochRows.filter((r) => runs.includes(r.run) && r.split !== 'val');
  return { name, caption, figure: trainingCurves(rows, { runs, title }) };
}

const TIME_CAVEAT =
  'Seconds per epoch are wall-clock times of each run\'s training pass, taken whenever that run trained: they include whatever else the 2 cores were doing then (and code changes between runs), so compare them only roughly; the controlled comparison is the step-time measurement (results/measurements.parquet).';

/** The "Your runs" heading and what the lab suite is. */
function yourRunsHeading(): string {
  return (
    '<h4 class="dcf-part">Your runs</h4>' +
    note('The lab suite in results/runs (what <code>npm start</code> trains): seed 0, each run\'s best epoch chosen on <em>test</em> accuracy as the lab states it. One run per setting, so a difference between two of them is stated, never given a verdict.')
  );
}

/** Quick-mode runs on a slice of CIFAR-10 are flagged. */
function subsetWarning(rows: readonly ExperimentRow[]): string {
  return rows.some((r) => r.subset && hasResult(r))
    ? `<p class="dcf-warning" style="${NOTE_STYLE.warning}">Some of your runs are quick-mode runs on a subset of CIFAR-10: they show that the pipeline works, not the lab's numbers.</p>`
    : '';
}

// ---- recorded results: paired comparisons -----------------------------------------------------

/** One paired comparison: arm `b` against arm `a` (b − a per seed), and what it isolates (lib/experiments PAIRED_COMPARISONS). */
type Pair = Pick<ArmComparison, 'a' | 'b' | 'isolates'>;

const VERDICT_TEXT: Record<Verdict, string> = {
  better: 'better',
  worse: 'worse',
  'no detectable difference': 'no detectable difference at this n',
  'too few pairs': 'too few pairs',
};

function comparison(rec: Recorded, p: Pick<Pair, 'a' | 'b'>): PairedComparison {
  const arms = armsBySeed(rec.rows);
  return pairedComparison(arms.get(p.a) ?? new Map(), arms.get(p.b) ?? new Map());
}

/** An arm's selected test accuracy over its finished seeds: the mean (NaN without one) and their number. */
function armAccuracy(rec: Recorded, arm: string): { mean: number; n: number } {
  const values = [...(armsBySeed(rec.rows).get(arm)?.values() ?? [])];
  return { mean: values.length ? values.reduce((s, v) => s + v, 0) / values.length : NaN, n: values.length };
}

/** "84.12% (n=5)" */
function armMean(rec: Recorded, arm: string): string {
  const { mean, n } = armAccuracy(rec, arm);
  return n ? `${formatPercent(mean)} (n=${n})` : '–';
}

/** "+1.23 points (95% interval +0.40 to +2.06)" */
function differenceText(c: PairedComparison): string {
  if (c.n === 0) return 'no pairs';
  return c.n < 2 ? `${signed(c.mean)} points (one pair: no interval)` : `${signed(c.mean)} points (95% interval ${signed(c.low)} to ${signed(c.high)})`;
}

/** One comparison in a sentence, its verdict computed by lib/stats. */
function pairSentence(rec: Recorded, p: Pair): string {
  const c = comparison(rec, p);
  if (c.n === 0) return `${code(p.b)} vs ${code(p.a)} (${escapeHtml(p.isolates)}): no finished pair in the recorded suite yet.`;
  return (
    `${code(p.b)} vs ${code(p.a)} (${escapeHtml(p.isolates)}): ${differenceText(c)}, permutation p = ${c.permutationP.toFixed(3)}, ` +
    `${c.wins} win(s) and ${c.losses} loss(es) over ${c.n} paired seed(s): <strong>${VERDICT_TEXT[c.verdict]}</strong>.`
  );
}

/** Recorded runs of these arms left out of the statistics (not finished, diverged, …), by arm. */
function excludedNote(rec: Recorded, arms: readonly string[]): string {
  const out = arms.flatMap((arm) => {
    const left = rec.rows.filter((r) => r.arm === arm && (r.status !== 'done' || r.selected_test_acc === null));
    if (!left.length) return [];
    const byStatus = new Map<string, number[]>();
    for (const r of left) byStatus.set(r.status, [...(byStatus.get(r.status) ?? []), Number(r.seed)]);
    return [`${code(arm)}: ${[...byStatus].map(([s, seeds]) => `seed${seeds.length > 1 ? 's' : ''} ${seeds.join(', ')} ${escapeHtml(s)}`).join('; ')}`];
  });
  return out.length ? note(`Not in these statistics (runs of the suite without a finished result): ${out.join(' · ')}.`) : '';
}

/**
 * The table every answer uses for the recorded suite: each row arm B vs arm A with both arms'
 * means, the number of pairs, the mean difference with its 95% interval, the permutation p,
 * wins/losses and the verdict.
 */
function pairedTable(rec: Recorded, pairs: readonly Pair[], caption: string): string {
  const rows = pairs.map((p) => ({ p, c: comparison(rec, p) }));
  return (
    htmlTable(rows, {
      caption,
      columns: [
        { label: 'B vs A', value: ({ p }) => ({ html: `${code(p.b)} vs ${code(p.a)}` }) },
        { label: 'what it isolates', value: ({ p }) => p.isolates },
        { label: 'B: test acc. (seeds)', value: ({ p }) => armMean(rec, p.b), align: 'right' },
        { label: 'A: test acc. (seeds)', value: ({ p }) => armMean(rec, p.a), align: 'right' },
        { label: 'pairs', value: ({ c }) => c.n, align: 'right' },
        { label: 'B − A, points (95% interval)', value: ({ c }) => (c.n === 0 ? '–' : c.n < 2 ? signed(c.mean) : `${signed(c.mean)} (${signed(c.low)} to ${signed(c.high)})`), align: 'right' },
        { label: 'permutation p', value: ({ c }) => (c.n ? c.permutationP.toFixed(3) : '–'), align: 'right' },
        { label: 'wins / losses', value: ({ c }) => `${c.wins} / ${c.losses}`, align: 'right' },
        { label: 'verdict', value: ({ c }) => ({ html: `<strong>${VERDICT_TEXT[c.verdict]}</strong>` }) },
      ],
    }) + excludedNote(rec, [...new Set(pairs.flatMap((p) => [p.a, p.b]))])
  );
}

/** The "Recorded results" heading: what the suite is, and where and when it ran (provenance). */
function recordedHeading(rec: Recorded | undefined): string {
  const heading = '<h4 class="dcf-part">Recorded results</h4>';
  if (!rec) {
    return (
      heading +
      placeholder(
        '<strong>The recorded paired suite is missing</strong> from this checkout (results/recorded/paired/experiments.parquet): ' +
          `<code>git checkout -- results/recorded</code> restores the committed one; <code>${PAIRED_CMD}</code> trains it again and <code>${PAIRED_CMD} --record</code> records it.`,
      )
    );
  }
  const pv = rec.provenance;
  const commit = pv.commit.replace(/-dirty$/, '');
  const day = (s: string | null) => (s ? s.slice(0, 10) : '?');
  const m = pv.machine;
  return (
    heading +
    note(
      `The paired suite committed in results/recorded/paired: every arm trained with seeds ${PAIRED_SEEDS.join(', ')} (run k of each arm shares seed k: head initialisation and batch order) ` +
        `on ${(50000 - VALIDATION_IMAGES).toLocaleString('en-US')} training images; each run's epoch chosen on a fixed ${VALIDATION_IMAGES.toLocaleString('en-US')}-image validation split, ` +
        'and the number quoted is its <em>test</em> accuracy at that epoch (<code>selected_test_acc</code>). ' +
        `Trained at commit <code>${escapeHtml(commit.slice(0, 12))}</code>${pv.commit.endsWith('-dirty') ? ' (with uncommitted changes)' : ''} on ${escapeHtml(m.cpu)} (${m.cores} cores, ${m.memoryGiB} GiB), ` +
        `${escapeHtml(pv.backend || 'backend not recorded')}, epochs from ${day(pv.firstEpochAt)} to ${day(pv.lastEpochAt)}, recorded ${day(pv.recordedAt)}. ` +
        'B − A is taken seed by seed; the verdict says better or worse only when the 95% t interval of the mean difference excludes 0 ' +
        `(the exact sign-flip permutation p cannot go below ${2 / 2 ** PAIRED_SEEDS.length} with ${PAIRED_SEEDS.length} pairs).`,
    )
  );
}

// ---- the questions ----------------------------------------------------------------------------

const LAB = 'lab-dynamic-s0';
const LAB_STATIC = 'lab-static-s0';

const pairsOf = (group: ExperimentGroup): ArmComparison[] => PAIRED_COMPARISONS.filter((c) => c.group === group);
const COMPARE_PAIRS = pairsOf('compare');

function compare(results: LabResults, ev: Evidence): Answer {
  void results;
  const id = 'compare';
  const title = 'Dynamic vs static head';
  const question = 'Does generating the class filters from embeddings (dynamic) beat learning them directly (static), with the lab\'s recipe?';
  const names = [LAB, LAB_STATIC];
  const rows = names.map((n) => ev.experiments.find((r) => r.name === n)).filter((r): r is ExperimentRow => !!r);
  const g = gaps(ev.experiments, names);
  const dyn = rows.find((r) => r.name === LAB);
  const sta = rows.find((r) => r.name === LAB_STATIC);
  const rec = ev.recorded;
  if (!rec && !hasResult(dyn) && !hasResult(sta)) return noRunYet(id, title, question, 'your lab-recipe runs of both heads', cmd(names));
  const parts = [yourRunsHeading(), subsetWarning(rows)];
  if (hasResult(dyn) && hasResult(sta)) {
    parts.push(
      experimentsTable(rows, 'Your runs: the two heads with the lab\'s recipe (results/experiments.parquet)', sta) +
        `<p>Best test accuracy: dynamic ${code(LAB)} <strong>${formatPercent(dyn.bestTestAccuracy)}</strong> (epoch ${dyn.bestEpoch}), ` +
        `static ${code(LAB_STATIC)} <strong>${formatPercent(sta.bestTestAccuracy)}</strong> (epoch ${sta.bestEpoch}): dynamic − static = ${pts(dyn.bestTestAccuracy, sta.bestTestAccuracy)}. ` +
        'This is one pair: it cannot separate the heads, because one pair says nothing about how much two runs of the same head differ by seed. No verdict from your runs; the recorded results below give one.</p>',
    );
  }
  parts.push(gapsHtml(g, ev.experiments), recordedHeading(rec));
  if (rec) {
    parts.push(
      pairedTable(rec, COMPARE_PAIRS, 'Recorded: dynamic vs static, and the two factors apart (test accuracy at the validation-selected epoch)') +
        `<p>${COMPARE_PAIRS.map((p) => pairSentence(rec, p)).join(' ')}</p>`,
    );
  }
  parts.push(
    '<p>The static head lacks two things the dynamic one has: the generator (embeddings → MLP → filter) and the L2 normalisation of the filters. ' +
      'The lab\'s comparison changes both at once; <code>static-l2</code> (learned filters, L2-normalised) separates them. ' +
      'See "Pros and cons of dynamic filters" for what the generator costs.</p>',
  );
  return {
    id, title, question, status: statusOf(g, true), html: parts.join('\n'), todo: todoOf(g, !rec),
    cites: rows.filter(hasResult).map((r) => r.name), figures: [],
  };
}

function responseMaps(results: LabResults): Answer {
  const id = 'response-maps';
  const title = 'What the response maps show';
  const question = 'Upsample each class\'s response map to 32×32 over the image: where does each class respond, and what can the maps serve for?';
  const figures = savedFigureNames(results).filter((f) => f.startsWith('response-map'));
  if (figures.length === 0) return noRunYet(id, title, question, 'response-map figures from a trained run', 'run notebook 05-visualize');
  return {
    id, title, question, status: 'answered', cites: [], figures: [],
    html:
      `<p>Figures: ${figures.map(code).join(', ')} (section Response maps; each names its run). ` +
      'The peaks against the objects\' positions and the uses of the maps (weak localisation, explaining a mistake, spotting shortcuts) are measured and discussed in notebook 05.</p>',
  };
}

/** Your freezing runs: the lab's freeze, the fixed-function freeze, and two fixes, each with the run it differs from in one thing. */
const OWN_FREEZE: readonly { name: string; what: string; base: string }[] = [
  {
    name: 'frozen-requires-grad', base: LAB,
    what: "THE LAB'S FREEZE: requires_grad = False on every backbone parameter, BatchNorm still in training mode (each batch normalised with its own statistics; the running statistics keep updating, and evaluation uses them)",
  },
  {
    name: 'frozen-all', base: 'frozen-requires-grad',
    what: 'a different experiment: parameters frozen AND BatchNorm in evaluation mode on the ImageNet running statistics, so the backbone is a fixed function',
  },
  { name: 'frozen-keep-bn', base: 'frozen-requires-grad', what: "fix for cause (2): convolutions frozen, BatchNorm's γ/β trained (training mode)" },
  { name: 'frozen-adapter', base: 'frozen-all', what: 'fix for cause (3): the fixed backbone followed by a trainable residual 3×3 conv + BN + ReLU adapter' },
];
const FREEZE = OWN_FREEZE.map((f) => f.name);

/** Which of the causes above each recorded fix (lib/experiments PAIRED_FIXES) addresses. */
const FIX_CAUSES: Record<string, string> = { 'frozen-eval-imagenet': '(2)', 'fix-bn-only': '(2)', 'fix-stem-frozen': '(1) and (3)' };
const RECORDED_FIXES = PAIRED_FIXES.map((f) => ({ ...f, causes: FIX_CAUSES[f.arm] ?? '' }));

/** Theoretical receptive field of a layer1 cell in input pixels: conv1 7×7/2, max-pool 3×3/2, layer1's four 3×3 convs. */
function layer1ReceptiveField(): { size: number; terms: string } {
  const layers: readonly [number, number][] = [[7, 2], [3, 2], [3, 1], [3, 1], [3, 1], [3, 1]];
  let size = 1;
  let jump = 1;
  const terms: string[] = [];
  for (const [kernel, stride] of layers) {
    terms.push(jump === 1 ? `${kernel}` : `${kernel - 1}·${jump}`);
    size += (kernel - 1) * jump;
    jump *= stride;
  }
  return { size, terms: terms.join(' + ') };
}

function freeze(results: LabResults, ev: Evidence): Answer {
  const id = 'freeze';
  const title = 'Freezing the backbone';
  const question = 'What happens when the pretrained backbone is frozen, why, and how can it be fixed?';
  const names = [LAB, ...FREEZE];
  const rows = names.map((n) => ev.experiments.find((r) => r.name === n)).filter((r): r is ExperimentRow => !!r);
  const row = (n: string) => rows.find((r) => r.name === n);
  const g = gaps(ev.experiments, names);
  const rec = ev.recorded;
  if (!rec && !rows.some(hasResult)) return noRunYet(id, title, question, 'your runs with the backbone frozen (and its fixes) beside the lab recipe', cmd(names));
  const lab = row(LAB);
  const parts: string[] = [yourRunsHeading(), subsetWarning(rows)];
  if (rows.some(hasResult)) {
    parts.push(experimentsTable(rows, 'Your runs: frozen backbones and fixes against the lab recipe (results/experiments.parquet)', lab));
    const items = OWN_FREEZE.map(({ name, what, base }) => {
      const r = row(name);
      // row(name) again, not r: tslab's TypeScript 5.0 narrows r to never in this branch.
      if (!hasResult(r)) return `<li>${code(name)} — ${escapeHtml(what)}: <em>${row(name)?.status === 'running' ? 'training now, no finished epoch yet' : 'not run yet'}</em> (${code(cmd([name]))}).</li>`;
      const b = row(base);
      const vs = [
        ...(base !== LAB && hasResult(b) ? [`${pts(r.bestTestAccuracy, b.bestTestAccuracy)} against ${code(base)}`] : []),
        ...(hasResult(lab) ? [`${pts(r.bestTestAccuracy, lab.bestTestAccuracy)} against ${code(LAB)}`] : []),
      ];
      return (
        `<li>${code(name)} — ${escapeHtml(what)}: best <strong>${formatPercent(r.bestTestAccuracy)}</strong> (epoch ${r.bestEpoch})` +
        `${r.status === 'done' ? '' : ` (${r.epochsDone}/${r.epochs} epochs so far)`}${vs.length ? `, ${vs.join(', ')}` : ''}; ` +
        `${r.trainableParameters.toLocaleString('en-US')} of ${r.parameters.toLocaleString('en-US')} parameters trained.</li>`
      );
    });
    parts.push(`<ul>${items.join('')}</ul>`);
    const scored = rows.filter(hasResult).sort((a, b) => b.bestTestAccuracy - a.bestTestAccuracy);
    const frozen = scored.filter((r) => r.name !== LAB);
    parts.push(
      `<p>Of your runs, ${code(scored[0].name)} is highest at ${formatPercent(scored[0].bestTestAccuracy)}` +
        (frozen.length && hasResult(lab) ? `; the best with a frozen backbone, ${code(frozen[0].name)}, is ${pts(frozen[0].bestTestAccuracy, lab.bestTestAccuracy)} against ${code(LAB)}` : '') +
        '. One seed each: no verdict from these; the recorded comparisons below give one.</p>',
    );
  }
  parts.push(gapsHtml(g, ev.experiments), note(escapeHtml(TIME_CAVEAT)));
  const rf = layer1ReceptiveField();
  parts.push(
    '<p><strong>Why a frozen backbone falls short.</strong> (1) <em>Scale.</em> A <code>layer1</code> cell\'s theoretical receptive field is ' +
      `${rf.size}×${rf.size} input pixels (${rf.terms} = ${rf.size}: each layer adds (kernel − 1) × the stride so far), which covers the whole ${IMAGE_SIZE}×${IMAGE_SIZE} image; ` +
      'its effective receptive field, where the gradient mass lies, is much smaller and centred. The backbone was tuned on 224-pixel ImageNet objects, so on ' +
      `${IMAGE_SIZE}-pixel images each cell's effective field covers a large part of a small object, at a scale its filters were not trained for. ` +
      '(2) <em>Statistics.</em> The lab\'s freeze leaves BatchNorm in training mode: it normalises each batch with the batch\'s own statistics and moves its running ' +
      'statistics towards CIFAR-10\'s. The fixed-function freeze normalises with ImageNet\'s running statistics, which do not match CIFAR-10 activations, the less so as the ' +
      'lab\'s input normalisation (mean/std 0.5) is not ImageNet\'s; the features reach the head shifted and scaled. (3) <em>The head.</em> It only takes a 1×1 filter ' +
      `(a weighted sum of the ${FEATURE_CHANNELS} channels) per class and scores the 8×8 map: nothing in it re-mixes the features spatially. ` +
      'Training the whole backbone (the lab\'s recipe) adapts all three.</p>',
  );
  parts.push(recordedHeading(rec));
  if (rec) {
    const vsDynamic = pairsOf('freeze').filter((c) => c.a === 'dynamic');
    const fixPairs = pairsOf('freeze')
      .filter((c) => c.a !== 'dynamic')
      .map((c) => ({ ...c, isolates: RECORDED_FIXES.some((f) => f.arm === c.b && f.control === c.a) ? `${c.isolates} (cause ${FIX_CAUSES[c.b]})` : c.isolates }));
    const [init] = pairsOf('init');
    parts.push(
      pairedTable(rec, vsDynamic, 'Recorded: each frozen arm against training the whole backbone (dynamic)') +
        pairedTable(rec, fixPairs, 'Recorded: each fix against both frozen arms (its control is the one it differs from in the fix alone)') +
        pairedTable(rec, [init], 'Recorded: initialisation control') +
        `<p>The lab's freeze: ${pairSentence(rec, vsDynamic[0])} The fixed-function freeze: ${pairSentence(rec, vsDynamic[1])} Initialisation: ${pairSentence(rec, init)}</p>`,
    );
    parts.push(weighsMost(rec));
  }
  const figures: AnswerFigure[] = [];
  const curves = curvesFigure(results, names, 'report-freeze-curves', 'Frozen backbone and fixes against the lab recipe', 'Your frozen-backbone runs (and fixes) against the lab recipe: loss and accuracy per epoch, train solid, test dashed.');
  if (curves) figures.push(curves);
  return { id, title, question, status: statusOf(g, true), html: parts.join('\n'), todo: todoOf(g, !rec), cites: rows.filter(hasResult).map((r) => r.name), figures };
}

/** Which cause weighs most, from the recorded paired comparisons alone. */
function weighsMost(rec: Recorded): string {
  const measured = RECORDED_FIXES.map((f) => ({
    f,
    gain: comparison(rec, { b: f.arm, a: f.control }),
    gap: comparison(rec, { b: 'dynamic', a: f.control }),
  })).filter((x) => x.gain.n >= 2 && x.gap.n >= 2);
  if (measured.length === 0) return placeholder(`<strong>What weighs most:</strong> the recorded suite has no fix with its control over two seeds or more yet — <code>${PAIRED_CMD}</code>.`);
  const ranked = [...measured].sort((a, b) => b.gain.mean - a.gain.mean);
  const share = (x: (typeof ranked)[number]) => (x.gap.mean > 0 ? ` (${Math.round((100 * x.gain.mean) / x.gap.mean)}% of the ${(100 * x.gap.mean).toFixed(2)} points ${code(x.f.control)} is behind dynamic)` : '');
  const top = ranked[0];
  const nothing = ranked.filter((x) => x.gain.verdict === 'no detectable difference');
  const fixes = RECORDED_FIXES.map((f) => f.arm).filter((a) => armAccuracy(rec, a).n > 0);
  const best = [...fixes].sort((a, b) => armAccuracy(rec, b).mean - armAccuracy(rec, a).mean)[0];
  const bestVsDynamic = best ? comparison(rec, { b: best, a: 'dynamic' }) : undefined;
  const conclusion: Record<Verdict, string> = {
    worse: 'Training the whole backbone stays ahead of the best single fix.',
    better: 'The best single fix beats training the whole backbone.',
    'no detectable difference': 'The best single fix cannot be told from training the whole backbone at this n.',
    'too few pairs': 'Too few pairs to compare the best fix with training the whole backbone.',
  };
  return (
    `<p><strong>What weighs most</strong> (recorded, each fix against its control, mean over paired seeds): ` +
    ranked.map((x) => `${code(x.f.arm)} ${signed(x.gain.mean)} points over ${code(x.f.control)}${share(x)}, ${VERDICT_TEXT[x.gain.verdict]}`).join('; ') +
    '. ' +
    (top.gain.verdict === 'better'
      ? `So ${top.f.causes.includes('and') ? `causes ${top.f.causes} weigh` : `cause ${top.f.causes} weighs`} most here (${code(top.f.arm)}: ${escapeHtml(top.f.how)}).`
      : 'No fix is measurably better than its control at this n, so the recorded suite does not rank the causes.') +
    (nothing.length
      ? ` ${nothing.map((x) => `${code(x.f.arm)} against ${code(x.f.control)}: ${VERDICT_TEXT[x.gain.verdict]} (${x.gain.n} pairs)`).join('; ')} — on ${nothing.length === 1 ? 'its' : 'their'} own, ${nothing.length === 1 ? 'that fix gives' : 'those fixes give'} nothing measurable here.`
      : '') +
    (best && bestVsDynamic
      ? ` The best fix by mean test accuracy, ${code(best)} (${formatPercent(armAccuracy(rec, best).mean)}): ${pairSentence(rec, { b: best, a: 'dynamic', isolates: 'best fix against training everything' })} ${conclusion[bestVsDynamic.verdict]}`
      : '') +
    ' Fixes can combine (an adapter with trainable BatchNorm, say), which these runs do not measure.</p>'
  );
}

function timeOf(ms: readonly MeasurementRow[], measure: Measure, variant: string, setting = 'lab'): MeasurementRow | undefined {
  return ms.find((m) => m.measure === measure && m.variant === variant && m.setting === setting && m.unit === 'ms');
}

const fmtMs = (m: MeasurementRow | undefined) => (m ? `${m.value.toFixed(m.value < 1 ? 2 : 1)} ± ${m.spread.toFixed(m.spread < 1 ? 2 : 1)} ms` : 'not measured yet');

function prosCons(ev: Evidence): Answer {
  const id = 'dynamic-pros-cons';
  const title = 'Pros and cons of dynamic filters';
  const question = 'What do dynamic filters cost and buy here (parameters, time per step), and what would input-conditioned filters add?';
  const counts = ev.measurements.filter((m) => m.measure === 'parameters' && m.setting === 'lab');
  const measureCmd = 'npm run experiments -- --measure';
  if (counts.length === 0 && ev.measurements.length === 0) {
    return noRunYet(id, title, question, 'the parameter counts and step times (results/measurements.parquet; trains nothing)', measureCmd);
  }
  const parts: string[] = [];
  const count = (variant: string, part: string) => counts.find((m) => m.variant === variant && m.part === part)?.value;
  const partNames = [...new Set(counts.map((m) => m.part))].filter((p) => p !== 'total');
  const headTotal = (variant: string) => counts.filter((m) => m.variant === variant && m.part.startsWith('head')).reduce((a, m) => a + m.value, 0);
  if (counts.length) {
    parts.push(
      htmlTable([...partNames, 'total'].map((part) => ({ part })), {
        caption: 'Parameters per part (results/measurements.parquet)',
        columns: [
          { label: 'part', value: (p) => p.part },
          { label: 'dynamic', value: (p) => count('dynamic', p.part)?.toLocaleString('en-US') ?? '–', align: 'right' },
          { label: 'static', value: (p) => count('static', p.part)?.toLocaleString('en-US') ?? '–', align: 'right' },
        ],
      }),
    );
  }
  const times = (['train-step', 'inference-step', 'inference-step-precomputed-filters', 'filter-generation'] as Measure[]).map((measure) => ({
    measure, dynamic: timeOf(ev.measurements, measure, 'dynamic'), static: timeOf(ev.measurements, measure, 'static'),
  }));
  const anyTime = times.some((t) => t.dynamic || t.static);
  const timed = [...times.flatMap((t) => [t.dynamic, t.static])].filter((m): m is MeasurementRow => !!m);
  if (anyTime) {
    const load = Math.max(...timed.map((m) => m.load1));
    // Other processes' share of the CPUs during the timing says how quiet it was; files from
    // before that column have only the load average (trailing, and counting the timing itself).
    const shares = timed.map((m) => m.othersShare).filter((v): v is number => typeof v === 'number');
    const busiest = shares.length ? Math.max(...shares) : null;
    const cpus = timed[0].cpus;
    const busy =
      busiest !== null
        ? busiest > 0.25 ? `Timed while other processes took ${(busiest * 100).toFixed(0)}% of the ${cpus} CPUs` : undefined
        : load > cpus * 0.75 ? `Timed with a load average of ${load.toFixed(1)} on ${cpus} cores (other training may have run at the same time)` : undefined;
    parts.push(
      htmlTable(times, {
        caption: `Median time per step, batch ${timed.find((m) => m.batch > 10)?.batch ?? 64} (± half the 10–90% spread; results/measurements.parquet)`,
        columns: [
          { label: 'measure', value: (t) => t.measure },
          { label: 'dynamic', value: (t) => fmtMs(t.dynamic), align: 'right' },
          { label: 'static', value: (t) => (t.measure === 'inference-step-precomputed-filters' ? '(filters are parameters)' : t.static ? fmtMs(t.static) : '–'), align: 'right' },
        ],
      }) +
        (busy
          ? `<p class="dcf-warning" style="${NOTE_STYLE.warning}">${busy}: the rounds alternate between the nets, so ratios hold better than absolute times. Re-measure on a quiet machine with <code>${measureCmd}</code>.</p>`
          : ''),
    );
  }
  const [train, infer, pre, gen] = times;
  // Both heads' train and inference steps; the filter times matter for the dynamic head only.
  const missingTimes = times.filter((t) => !t.dynamic || (!t.static && (t.measure === 'train-step' || t.measure === 'inference-step'))).map((t) => t.measure);
  const hd = headTotal('dynamic');
  const hs = headTotal('static');
  const pros: string[] = [];
  const cons: string[] = [];
  if (hd && hs) {
    cons.push(
      `More parameters: the dynamic head has ${hd.toLocaleString('en-US')} against ${hs.toLocaleString('en-US')} for the static one ` +
        `(${(hd / hs).toFixed(1)}×; ${count('dynamic', 'head.gen')?.toLocaleString('en-US') ?? '?'} of them in the generator), to produce the same ten ${FEATURE_CHANNELS}-number filters.`,
    );
  }
  if (train.dynamic && train.static) {
    cons.push(
      `A training step costs ${fmtMs(train.dynamic)} against ${fmtMs(train.static)} for the static head (ratio ${(train.dynamic.value / train.static.value).toFixed(2)}); ` +
        'the shared backbone dominates both.',
    );
  }
  if (gen.dynamic) {
    pros.push(
      `The filters depend on the class only, never on the image: the generator runs once per step for all ten classes (${fmtMs(gen.dynamic)}), not once per image` +
        (train.dynamic ? `, ${((100 * gen.dynamic.value) / train.dynamic.value).toFixed(1)}% of a training step.` : '.') +
        (pre.dynamic && infer.static
          ? ` For inference they can be generated once and cached: an inference step with cached filters takes ${fmtMs(pre.dynamic)}, against ${fmtMs(infer.static)} for the static head (and ${fmtMs(infer.dynamic)} regenerating them every batch) — the same cost as static filters.`
          : ' Cached for inference, they cost exactly what static filters cost (one 1×1 convolution of ten filters).'),
    );
  } else {
    pros.push('The filters depend on the class only, never on the image: they can be generated once per step and cached for inference, where they cost the same as static filters (one 1×1 convolution of ten filters).');
  }
  pros.push(
    'The classes share the generator: a filter is a function of a 128-d embedding, so classes can share structure, and a new class needs only a new embedding (or one derived from side information such as a word vector — the route to zero-shot classes), not a new filter learnt from scratch.',
  );
  const own = [LAB, LAB_STATIC].map((n) => ev.experiments.find((r) => r.name === n));
  const [dyn, sta] = own;
  pros.push(
    'Accuracy — ' +
      (ev.recorded ? `recorded: ${pairSentence(ev.recorded, COMPARE_PAIRS[0])}` : 'recorded: the paired suite is missing from this checkout (see the comparison).') +
      (hasResult(dyn) && hasResult(sta) ? ` Your runs: ${code(LAB)} ${formatPercent(dyn.bestTestAccuracy)} against ${code(LAB_STATIC)} ${formatPercent(sta.bestTestAccuracy)} (one pair, no verdict).` : ''),
  );
  parts.push(`<p><strong>Pros</strong></p><ul>${pros.map((p) => `<li>${p}</li>`).join('')}</ul>`);
  parts.push(`<p><strong>Cons</strong></p><ul>${cons.map((p) => `<li>${p}</li>`).join('') || '<li>Parameter counts and step times: not measured yet.</li>'}</ul>`);
  parts.push(
    '<p><strong>Input-conditioned filters</strong> (Dynamic Filter Networks, De Brabandere et al. 2016) would generate the filters from the <em>image</em> ' +
      '(or from each position), so the head could adapt to the content: sharpen a class\'s filter to the object actually present, or vary it over ' +
      'positions. The price: the generator runs for every image (and class) of every batch, the filters can no longer be cached for inference, ' +
      'and a per-sample convolution batches less well' +
      (gen.dynamic ? ` — at the measured ${gen.dynamic.value.toFixed(2)} ms per ten filters, a batch of 64 images would add about ${(64 * gen.dynamic.value).toFixed(0)} ms per step if done naively one image at a time.` : '.') +
      '</p>',
  );
  if (missingTimes.length) parts.push(`<p class="dcf-placeholder" style="${NOTE_STYLE.placeholder}"><strong>Not measured yet:</strong> ${escapeHtml(missingTimes.join(', '))} of ${missingTimes.some((m) => !timeOf(ev.measurements, m, 'dynamic')) ? 'the dynamic head' : 'the static head'} — <code>${measureCmd}</code></p>`);
  return {
    id, title, question, status: missingTimes.length || !counts.length ? 'partial' : 'answered', html: parts.join('\n'),
    todo: missingTimes.length || !counts.length ? `\`${measureCmd}\` (on a quiet machine)` : undefined, cites: own.filter(hasResult).map((r) => r!.name), figures: [],
  };
}


const ABLATION_PAIRS = pairsOf('ablation');

function stability(results: LabResults, ev: Evidence): Answer {
  const id = 'stability';
  const title = 'Numerical stability: L2 normalisation and /√64';
  const question = 'The lab normalises each generated filter (L2) and divides the response map by √64 "for numerical stability": what changes without them?';
  const rec = ev.recorded;
  // Your ablation runs, if any: not in the lab suite, but trained by hand (or by an older suite).
  const lab = results.runs.find((r) => r.name === LAB && r.outcome);
  const own = results.runs.filter((r) => !r.problem && (r.config.filterNorm === false || r.config.responseScale === false) && (r.outcome || fs.existsSync(path.join(r.dir, DIVERGED_FILE))));
  if (!rec && own.length === 0) return noRunYet(id, title, question, 'the stability ablations of the recorded paired suite (ablate-no-norm, ablate-no-scale)', PAIRED_CMD);
  const parts: string[] = [yourRunsHeading()];
  if (own.length) {
    const items = own.map((r) => {
      const diverged = fs.existsSync(path.join(r.dir, DIVERGED_FILE)) ? '; <strong>diverged</strong> (its diverged.json says why)' : '';
      const acc = r.outcome
        ? `best <strong>${formatPercent(r.outcome.bestAccuracy)}</strong> (epoch ${r.outcome.bestEpoch})${lab?.outcome ? `, ${pts(r.outcome.bestAccuracy, lab.outcome.bestAccuracy)} against ${code(LAB)} (${formatPercent(lab.outcome.bestAccuracy)})` : ''}`
        : 'no finished epoch';
      return `<li>${code(r.name)} (${escapeHtml(r.changes.join(', '))}, seed ${r.config.seed ?? '?'}): ${acc}${diverged}.</li>`;
    });
    parts.push(`<ul>${items.join('')}</ul>`);
  } else {
    parts.push('<p>The lab suite has no ablation run (results/runs holds none): the answer is the recorded one below.</p>');
  }
  parts.push(recordedHeading(rec));
  let status: AnswerStatus = 'partial';
  if (rec) {
    const arms = ABLATION_PAIRS.map((p) => p.b);
    const settled = rec.rows.filter((r) => arms.includes(r.arm) && (r.status === 'done' || r.status === 'diverged'));
    const diverged = settled.filter((r) => r.status === 'diverged');
    parts.push(
      pairedTable(rec, ABLATION_PAIRS, 'Recorded: each stability device removed, against the lab\'s net (dynamic)') +
        `<p>${ABLATION_PAIRS.map((p) => pairSentence(rec, p)).join(' ')} ` +
        (diverged.length
          ? `Diverged: ${diverged.map((r) => code(r.name)).join(', ')} (${diverged.length} of ${settled.length} finished ablation runs).`
          : `None of the ${settled.length} finished ablation runs diverged at the lab's learning rate with Adam.`) +
        '</p>',
    );
    if (ABLATION_PAIRS.every((p) => comparison(rec, p).n >= 2)) status = 'answered';
  }
  parts.push(
    '<p><strong>What the devices do.</strong> The generator ends in Tanh, so each of the 64 filter weights lies in [−1, 1] and a filter\'s length is at most √64 = 8; ' +
      'the L2 normalisation fixes it at 1, so the response depends on the filter\'s direction only. ' +
      'The filter is unit-norm, the features are not: for a unit-norm filter f and the feature vector x at a position, ⟨f, x⟩ = ‖x‖ cos θ, so the response\'s size is set by the ' +
      'feature norm ‖x‖ — not by a sum of 64 unit-variance products growing like √64, the argument for the /√d of scaled dot-product attention, where both vectors have ' +
      'unit-variance entries. Here the /√64 (= /8) is a fixed rescale of the score MLP\'s input: the same as dividing the initial weights of the score MLP\'s first layer by 8, and, ' +
      'because Adam\'s step does not depend on the gradient\'s scale, the same as giving those weights an 8× smaller effective learning rate than every other parameter, that layer\'s bias included. ' +
      'That is a change of initialisation and step size rather than a guard against sums growing like √64; whether it matters is what the recorded ablation above says.</p>',
  );
  const tuples = ev.sweep.filter((s) => s.config.filter_norm === false || s.config.response_scale === false);
  const labSweep = ev.sweep.find((s) => s.name === 'lab5');
  if (tuples.length && labSweep) {
    parts.push(
      `<p>Cross-check on another framework (PyTorch on a GPU, python/recipe_sweep_results.jsonl; not a run of this project): the lab recipe ${formatPercent(labSweep.bestTestAccuracy)}, ` +
        tuples.map((s) => `${escapeHtml(s.name)} ${formatPercent(s.bestTestAccuracy)}`).join(', ') + '.</p>',
    );
  }
  const figures: AnswerFigure[] = [];
  const curves = curvesFigure(results, [LAB, ...own.map((r) => r.name)], 'report-ablation-curves', 'Stability ablations against the lab recipe', 'Your ablation runs against the lab recipe: loss and accuracy per epoch, train solid, test dashed.');
  if (curves && own.length) figures.push(curves);
  return {
    id, title, question, status, html: parts.join('\n'), figures,
    todo: status === 'answered' ? undefined : rec ? `\`${PAIRED_CMD}\` (the ablation phase), then \`${PAIRED_CMD} --record\`` : '`git checkout -- results/recorded` (the recorded paired suite)',
    cites: [...(lab && own.length ? [LAB] : []), ...own.map((r) => r.name)],
  };
}

const BEST = 'best-dynamic';
const BEST_CMD = `${PAIRED_CMD} --only ${BEST}`;

function beyond(results: LabResults, ev: Evidence): Answer {
  const id = 'beyond';
  const title = 'Beyond the lab: the best recipe';
  const question = 'How far can the dynamic net go on this machine (target: 85% test accuracy), and at what training cost?';
  const rec = ev.recorded;
  const row = rec?.rows.find((r) => r.name === BEST);
  const lab = ev.experiments.find((r) => r.name === LAB);
  const done = !!row && row.status === 'done' && row.selected_test_acc !== null;
  if (!rec && !hasResult(lab)) return noRunYet(id, title, question, `the ${BEST} run of the paired suite`, BEST_CMD);
  const parts: string[] = [yourRunsHeading()];
  if (hasResult(lab)) {
    parts.push(
      `<p>Your lab recipe run ${code(LAB)} reached ${formatPercent(lab.bestTestAccuracy)} (best test epoch ${lab.bestEpoch} of ${lab.epochs}).` +
        (lab.secondsPerEpoch !== null
          ? ` ${code(BEST)} trains ${BEST_EPOCHS} epochs: at ${code(LAB)}'s ${seconds(lab.secondsPerEpoch)} s per training pass that would take about ${((BEST_EPOCHS * lab.secondsPerEpoch) / 3600).toFixed(1)} h on your machine (an estimate from that run's wall-clock time, not a measurement of ${code(BEST)}).`
          : '') +
        '</p>',
    );
  } else {
    parts.push(gapsHtml(gaps(ev.experiments, [LAB]), ev.experiments));
  }
  parts.push(recordedHeading(rec));
  if (rec && row && done) {
    const acc = row.selected_test_acc!;
    const baseline = rec.rows.find((r) => r.arm === 'dynamic' && Number(r.seed) === Number(row.seed) && r.status === 'done' && r.selected_test_acc !== null);
    const hours = row.train_seconds_per_epoch !== null ? (row.train_seconds_per_epoch * row.epochs_done) / 3600 : null;
    parts.push(
      `<p>${code(BEST)} (${escapeHtml(row.settings)}; seed ${row.seed}): test accuracy <strong>${formatPercent(acc)}</strong> at epoch ${row.selected_epoch} of ${row.epochs_done}, ` +
        `the epoch chosen on validation (${row.best_val_acc !== null ? formatPercent(row.best_val_acc) : '–'}); final-epoch test accuracy ${row.final_test_acc !== null ? formatPercent(row.final_test_acc) : '–'}. ` +
        `${acc >= 0.85 ? 'That meets the 85% target.' : 'That is below the 85% target.'}` +
        (hours !== null ? ` Training passes took ${hours.toFixed(1)} h (${seconds(row.train_seconds_per_epoch)} s per epoch on the recording machine, evaluation not counted).` : '') +
        (baseline ? ` The lab's recipe with the same seed and selection rule (${code(baseline.name)}) reached ${formatPercent(baseline.selected_test_acc!)}: ${pts(acc, baseline.selected_test_acc!)} (one pair, no verdict).` : '') +
        '</p>',
    );
  } else if (rec) {
    parts.push(
      placeholder(
        row && row.epochs_done > 0
          ? `<strong>Unfinished in the recorded suite:</strong> ${code(BEST)} has ${row.epochs_done} of ${row.epochs} epochs (${escapeHtml(row.status)}) — <code>${BEST_CMD}</code>, then <code>${PAIRED_CMD} --record</code>.`
          : `<strong>Not in the recorded suite yet:</strong> ${code(BEST)} — <code>${BEST_CMD}</code>, then <code>${PAIRED_CMD} --record</code>.`,
      ),
    );
  }
  if (ev.sweep.length) {
    parts.push(
      '<p>Why this recipe: a sweep of the same net, data pipeline and optimiser in PyTorch on a GPU (python/recipe_sweep.py; results in ' +
        'python/recipe_sweep_results.jsonl — motivation for the choice, not a result of this project\'s code or machine). It picked 40 epochs: ' +
        'more gave nothing, fewer stayed under 85%.</p>' +
        htmlTable(ev.sweep, {
          caption: 'Recipe sweep (PyTorch, GPU), best test accuracy',
          columns: [
            { label: 'config', value: (s) => s.name },
            { label: 'epochs', value: (s) => s.epochs, align: 'right' },
            { label: 'settings', value: (s) => Object.entries(s.config).filter(([k]) => k !== 'name' && k !== 'epochs').map(([k, v]) => `${k}=${v}`).join(', ') },
            { label: 'best', value: (s) => formatPercent(s.bestTestAccuracy), align: 'right' },
            { label: 'final', value: (s) => formatPercent(s.finalTestAccuracy), align: 'right' },
          ],
        }),
    );
  }
  const figures: AnswerFigure[] = [];
  const curves = curvesFigure(results, [LAB, BEST], 'report-best-curves', 'Best recipe against the lab recipe', 'The beyond-the-lab recipe against the lab recipe: loss and accuracy per epoch, train solid, test dashed.');
  if (curves && results.runs.some((r) => r.name === BEST && r.epochs.length)) figures.push(curves);
  return {
    id, title, question, status: done ? 'answered' : 'partial', html: parts.join('\n'), figures,
    todo: done ? undefined : rec ? `\`${BEST_CMD}\`, then \`${PAIRED_CMD} --record\`` : '`git checkout -- results/recorded` (the recorded paired suite)',
    cites: hasResult(lab) ? [LAB] : [],
  };
}

/** Best test accuracy of every experiment with a result, as bars (one seed each unless grouped). */
export function experimentBars(ev: Evidence): AnswerFigure | undefined {
  const rows = ev.experiments.filter(hasResult);
  if (rows.length === 0) return undefined;
  return {
    name: 'report-experiments-best',
    caption: `Best test accuracy of every experiment with a finished epoch (${rows.length} of ${ev.experiments.length}; one seed each; unfinished runs marked *).`,
    figure: meanStdBars(
      rows.map((r) => ({ name: r.status === 'done' ? r.name : `${r.name}*`, ...meanStd([r.bestTestAccuracy]) })),
      { title: 'Best test accuracy per experiment' },
    ),
  };
}

/** The experiment table (results/experiments.parquet) as HTML, with what is left to run. */
export function experimentTableHtml(ev: Evidence): string {
  if (ev.experiments.length === 0) {
    return `<p class="dcf-placeholder" style="${NOTE_STYLE.placeholder}"><strong>No experiment table yet.</strong> Build it with <code>npm run experiments -- --table</code> (or <code>npm run report</code>).</p>`;
  }
  const left = ev.experiments.filter((r) => r.status !== 'done' && r.status !== 'diverged').map((r) => r.name);
  return (
    htmlTable(ev.experiments, {
      caption: `Every experiment (results/experiments.parquet): ${ev.experiments.length - left.length} of ${ev.experiments.length} finished`,
      columns: [
        { label: 'run', value: (r) => ({ html: code(r.name) }) },
        { label: 'group', value: (r) => r.group },
        { label: 'head', value: (r) => r.variant },
        { label: 'seed', value: (r) => r.seed, align: 'right' },
        { label: 'settings', value: (r) => r.settings },
        { label: 'status', value: (r) => (r.status === 'done' ? 'done' : `${r.status} ${r.epochsDone}/${r.epochs}`) },
        { label: 'best (epoch)', value: (r) => (hasResult(r) ? `${formatPercent(r.bestTestAccuracy)} (${r.bestEpoch})` : '–'), align: 'right' },
        { label: 'final', value: (r) => (hasResult(r) ? formatPercent(r.finalTestAccuracy) : '–'), align: 'right' },
        { label: 's / epoch', value: (r) => seconds(r.secondsPerEpoch), align: 'right' },
        { label: 'trained params', value: (r) => r.trainableParameters.toLocaleString('en-US'), align: 'right' },
      ],
    }) +
    (left.length ? `<p class="dcf-placeholder" style="${NOTE_STYLE.placeholder}"><strong>Not finished:</strong> ${escapeHtml(left.join(', '))} — <code>npm run experiments</code> runs them (finished runs are skipped).</p>` : '') +
    `<p class="dcf-note" style="font-size:12.5px;color:#555">${escapeHtml(TIME_CAVEAT)}</p>`
  );
}

/**
 * Every question of the lab, in the lab's order, answered as far as results/ allows. `evidence`
 * defaults to the files in results.resultsDir (loadEvidence).
 */
export function answerQuestions(results: LabResults, evidence?: Partial<Evidence>): Answer[] {
  const ev = { ...loadEvidenceIfNeeded(results.resultsDir, evidence), ...evidence } as Evidence;
  return [compare(results, ev), responseMaps(results), freeze(results, ev), prosCons(ev), stability(results, ev), beyond(results, ev)];
}

function loadEvidenceIfNeeded(resultsDir: string, evidence?: Partial<Evidence>): Evidence {
  if (evidence?.experiments && evidence.measurements && evidence.sweep) return evidence as Evidence;
  return loadEvidence(resultsDir);
}

const STATUS_LABEL: Record<AnswerStatus, string> = { answered: 'answered', partial: 'partly answered', 'no-run-yet': 'no run yet' };

/** One answer as an HTML block: title, status, the question, the evidence, the runs cited, what is left. */
export function answerHtml(a: Answer): string {
  return (
    `<div class="dcf-answer dcf-${a.status}" id="q-${a.id}"><h3>${escapeHtml(a.title)} <span class="dcf-status">${STATUS_LABEL[a.status]}</span></h3>` +
    `<p class="dcf-question"><em>${escapeHtml(a.question)}</em></p>${a.html}` +
    (a.cites.length ? `<p class="dcf-cites" style="font-size:12.5px;color:#555">Runs cited: ${a.cites.map(code).join(', ')} (results/runs/).</p>` : '') +
    (a.todo ? `<p class="dcf-todo">To do: ${textToHtml(a.todo)}</p>` : '') +
    '</div>'
  );
}

/** The figure specs the notebooks saved under the results folder's figures/. */
function savedFigureNames(results: LabResults): string[] {
  return listSavedFigures(path.join(results.resultsDir, 'figures'));
}
