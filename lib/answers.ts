/**
 * The lab's questions and their answers, built from what is in results/: the experiment table
 * (results/experiments.parquet, lib/experiment-table), the step-time and parameter measurements
 * (results/measurements.parquet, lib/measurements) and the runs' own metrics (curves). Every number
 * quoted comes from there and names its run; an experiment that has not run yet is named with the
 * command that runs it ("not run yet: npm run experiments -- --only NAME"), never guessed.
 * Notebook 06 and the report both show these answers and their figures.
 */
import * as fs from 'fs';
import * as path from 'path';
import { FEATURE_CHANNELS, PATHS } from './config';
import { EXPERIMENTS_FILE, readExperimentTable, type ExperimentRow } from './experiment-table';
import { escapeHtml, formatMeanStd, formatPercent, htmlTable, NOTE_STYLE, textToHtml } from './html-table';
import { MEASUREMENTS_FILE, readMeasurements, type Measure, type MeasurementRow } from './measurements';
import { meanStdBars, trainingCurves, type Figure } from './plots';
import { labRecipeRuns, type LabResults } from './results';
import { meanStd, summarizeOutcomes, welchT, type GroupSummary } from './summary';

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
  /** The runs whose numbers the answer quotes. */
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

/** Everything the answers read besides the runs. Missing files give empty lists. */
export interface Evidence {
  /** results/experiments.parquet: one row per experiment of lib/experiments. */
  experiments: ExperimentRow[];
  /** results/measurements.parquet: parameter counts and step times. */
  measurements: MeasurementRow[];
  /** python/recipe_sweep_results.jsonl (a GPU sweep; motivation, not a result of this machine). */
  sweep: SweepRow[];
}

export const SWEEP_FILE = path.join(PATHS.root, 'python', 'recipe_sweep_results.jsonl');

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

/** Reads experiments.parquet and measurements.parquet of `resultsDir` and the sweep ([] for what is missing). */
export function loadEvidence(resultsDir: string = PATHS.results, opts: { sweepFile?: string } = {}): Evidence {
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
  return { experiments, measurements, sweep: readSweep(opts.sweepFile) };
}

// ---- helpers over the experiment table ------------------------------------------------------

const cmd = (names: readonly string[]) => `npm run experiments -- --only ${names.join(',')}`;
const code = (s: string) => `<code>${escapeHtml(s)}</code>`;
const pts = (a: number, b: number) => `${a >= b ? '+' : '−'}${Math.abs(100 * (a - b)).toFixed(2)} points`;

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

function gaps(rows: readonly (ExperimentRow | undefined)[], names: readonly string[]): Gaps {
  const byName = new Map(rows.filter((r): r is ExperimentRow => !!r).map((r) => [r.name, r]));
  const missing: string[] = [];
  const unfinished: ExperimentRow[] = [];
  for (const n of names) {
    const r = byName.get(n);
    if (!r || !reportable(r)) missing.push(n);
    else if (r.status !== 'done' && r.status !== 'diverged') unfinished.push(r);
  }
  return { missing, unfinished };
}

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
  return out.length ? `<p class="dcf-placeholder" style="${NOTE_STYLE.placeholder}">${out.map((s) => s.replace(/`([^`]+)`/g, '<code>$1</code>')).join('<br>')}</p>` : '';
}

function todoOf(g: Gaps): string | undefined {
  const names = [...g.missing, ...g.unfinished.map((r) => r.name)];
  return names.length ? `\`${cmd(names)}\`` : undefined;
}

function noRunYet(id: string, title: string, question: string, needs: string, todo: string): Answer {
  return {
    id, title, question, status: 'no-run-yet', cites: [], figures: [],
    html: `<p class="dcf-placeholder" style="${NOTE_STYLE.placeholder}"><strong>No run yet.</strong> This answer needs ${textToHtml(needs)}: \`${textToHtml(todo)}\`.</p>`.replace(/`([^`]+)`/g, '<code>$1</code>'),
    todo: `\`${todo}\``,
  };
}

const seconds = (s: number | null) => (s === null || !Number.isFinite(s) ? '–' : s.toFixed(0));

/** A table of experiments (one row each): status, best (epoch), final, Δ best vs `base`, cost. */
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

// ---- the questions ----------------------------------------------------------------------------

const LAB = 'lab-dynamic-s0';
/** The three reasons a frozen backbone falls short (numbered as in the freezing answer). */
const CAUSES: Record<string, string> = {
  '(1)': 'the scale at which the ImageNet filters see a 32×32 image',
  '(2)': "BatchNorm's ImageNet statistics",
  '(3)': 'a head that cannot re-mix the frozen features',
};
const SEEDS = { dynamic: ['lab-dynamic-s0', 'lab-dynamic-s1', 'lab-dynamic-s2'], static: ['lab-static-s0', 'lab-static-s1', 'lab-static-s2'] };

/** Seed-to-seed spread of the dynamic lab recipe (best test accuracy), when ≥ 2 seeds exist. */
function dynamicSpread(results: LabResults): GroupSummary | undefined {
  const { runs, subset } = labRecipeRuns(results);
  if (subset) return undefined;
  return summarizeOutcomes(runs.map((r) => r.outcome!)).find((g) => g.group === 'dynamic');
}

function spreadSentence(spread: GroupSummary | undefined): string {
  return spread && spread.bestAccuracy.n >= 2
    ? `For scale: the dynamic lab recipe's best test accuracy varies by ${(100 * spread.bestAccuracy.std).toFixed(2)} points (std) between seeds (n=${spread.bestAccuracy.n}: ${spread.runs.join(', ')}).`
    : 'The seed-to-seed spread is not known yet (it needs lab-dynamic-s1 and -s2): with one seed each, differences of about a point cannot be told from noise.';
}

/**
 * A one-seed difference (accuracy, 0–1) read against the lab recipe's seed spread: within twice
 * the std is no measurable effect. Undefined while the spread is unknown.
 */
function spreadVerdict(diff: number, spread: GroupSummary | undefined): { measurable: boolean; text: string } | undefined {
  if (!spread || spread.bestAccuracy.n < 2) return undefined;
  const std = spread.bestAccuracy.std;
  return Math.abs(diff) <= 2 * std
    ? { measurable: false, text: 'within twice the seed spread: no measurable effect' }
    : { measurable: true, text: `${(Math.abs(diff) / Math.max(std, 1e-9)).toFixed(1)} times the seed std: a real ${diff > 0 ? 'gain' : 'loss'}, though from one seed` };
}

function compare(results: LabResults, ev: Evidence): Answer {
  const id = 'compare';
  const title = 'Dynamic vs static head';
  const question = 'Does generating the class filters from embeddings (dynamic) beat learning them directly (static), with the lab\'s recipe?';
  const { runs, subset } = labRecipeRuns(results);
  const groups = summarizeOutcomes(runs.map((r) => r.outcome!));
  const dyn = groups.find((g) => g.group === 'dynamic');
  const sta = groups.find((g) => g.group === 'static');
  const g = gaps(ev.experiments, ev.experiments.length ? [...SEEDS.dynamic, ...SEEDS.static] : []);
  if (!dyn || !sta) {
    return noRunYet(id, title, question, 'lab-recipe runs of both heads (3 seeds each)', cmd([...SEEDS.dynamic, ...SEEDS.static]));
  }
  const diff = dyn.bestAccuracy.mean - sta.bestAccuracy.mean;
  const t = welchT(dyn.bestAccuracy, sta.bestAccuracy);
  const n = `n = ${dyn.bestAccuracy.n} dynamic, ${sta.bestAccuracy.n} static seed(s)`;
  const verdict =
    t === null
      ? `With ${n}, the seed-to-seed spread of at least one head is unknown, so this difference cannot be told from noise yet.`
      : Math.abs(t) >= 2
        ? `The gap is larger than the seed-to-seed spread (${n}; Welch t = ${t.toFixed(1)}).`
        : `The gap is within the seed-to-seed spread (${n}; Welch t = ${t.toFixed(1)}): no measurable difference.`;
  const html =
    (subset ? `<p class="dcf-warning" style="${NOTE_STYLE.warning}">These are quick-mode runs on a subset of CIFAR-10: they show the pipeline works, not the lab's numbers.</p>` : '') +
    `<p>Best test accuracy: dynamic <strong>${formatMeanStd(dyn.bestAccuracy)}</strong> (${dyn.runs.map(code).join(', ')}), ` +
    `static <strong>${formatMeanStd(sta.bestAccuracy)}</strong> (${sta.runs.map(code).join(', ')}): difference ${pts(dyn.bestAccuracy.mean, sta.bestAccuracy.mean).replace(' points', '')} points. ` +
    `Final-epoch test accuracy: dynamic ${formatMeanStd(dyn.finalAccuracy)}, static ${formatMeanStd(sta.finalAccuracy)}. ${verdict}</p>` +
    `<p>The two heads share the backbone and the score MLP; the dynamic head adds the embeddings and the generator ` +
    `(see "Pros and cons of dynamic filters" for their cost). ${diff > 0 ? 'The dynamic head is ahead' : 'The static head is ahead or level'} on these seeds.</p>` +
    gapsHtml(g, ev.experiments);
  const enough = dyn.bestAccuracy.n >= 3 && sta.bestAccuracy.n >= 3 && !subset;
  return {
    id, title, question, status: enough ? 'answered' : 'partial', html, cites: [...dyn.runs, ...sta.runs], figures: [],
    todo: enough ? undefined : todoOf(g) ?? 'train at least 3 seeds of each head on the full set',
  };
}

function responseMaps(results: LabResults): Answer {
  const id = 'response-maps';
  const title = 'What the response maps show';
  const question = 'Upsample each class\'s response map to 32×32 over the image: where does each class respond, and what can the maps serve for?';
  const figures = results.savedFigures.filter((f) => f.startsWith('response-map'));
  if (figures.length === 0) return noRunYet(id, title, question, 'response-map figures from a trained run', 'run notebook 05-visualize');
  return {
    id, title, question, status: 'answered', cites: [], figures: [],
    html:
      `<p>Figures: ${figures.map(code).join(', ')} (section Response maps; each names its run). ` +
      'The peaks against the objects\' positions and the uses of the maps (weak localisation, explaining a mistake, spotting shortcuts) are measured and discussed in notebook 05.</p>',
  };
}

const FREEZE = ['frozen-all', 'frozen-keep-bn', 'frozen-upsample', 'frozen-adapter'];

function freeze(results: LabResults, ev: Evidence): Answer {
  const id = 'freeze';
  const title = 'Freezing the backbone';
  const question = 'What happens when the pretrained backbone is frozen, why, and how can it be fixed?';
  const rows = [LAB, ...FREEZE].map((n) => ev.experiments.find((r) => r.name === n)).filter((r): r is ExperimentRow => !!r);
  const lab = rows.find((r) => r.name === LAB);
  const all = rows.find((r) => r.name === 'frozen-all');
  const g = gaps(rows, [LAB, ...FREEZE]);
  if (!hasResult(all)) return noRunYet(id, title, question, 'the run with the backbone frozen (and its fixes) beside the lab recipe', cmd(hasResult(lab) ? FREEZE : [LAB, ...FREEZE]));
  const parts: string[] = [experimentsTable(rows, 'Frozen backbone and its fixes against the lab recipe (seed 0 each; results/experiments.parquet)', lab)];
  if (hasResult(lab)) {
    parts.push(
      `<p><strong>Frozen:</strong> ${code('frozen-all')} reaches <strong>${formatPercent(all.bestTestAccuracy)}</strong> best test accuracy against ` +
        `<strong>${formatPercent(lab.bestTestAccuracy)}</strong> for the lab recipe ${code(LAB)} (${pts(all.bestTestAccuracy, lab.bestTestAccuracy)}), ` +
        `training ${all.trainableParameters.toLocaleString('en-US')} of ${all.parameters.toLocaleString('en-US')} parameters (the head only). ${spreadSentence(dynamicSpread(results))}</p>`,
    );
  }
  parts.push(
    '<p><strong>Why.</strong> (1) The backbone was trained on 224×224 ImageNet images, where its stem (stride 2 + max-pool) and ' +
      '<code>layer1</code> see object parts; a 32×32 CIFAR image comes out at 8×8 positions, each covering a quarter of the ' +
      'object, at a scale the ImageNet filters were never tuned for. (2) Frozen, BatchNorm normalises with ImageNet\'s running ' +
      'statistics, which do not match CIFAR-10 activations (and the lab\'s mean/std 0.5 input normalisation is not ImageNet\'s), so ' +
      'the features reach the head shifted and scaled. (3) The head cannot repair this: it only takes a 1×1 filter (a weighted sum ' +
      `of the ${FEATURE_CHANNELS} channels) per class and scores the 8×8 map; nothing in it can re-mix the features spatially. ` +
      'Training the backbone (the lab recipe) adapts all three.</p>',
  );
  const spread = dynamicSpread(results);
  // Each fix, what it is, and the cause above (a CAUSES key) it addresses.
  const fixes = [
    { name: 'frozen-keep-bn', how: 'BatchNorm trainable (affine parameters learnt, running statistics re-estimated on CIFAR-10)', cause: '(2)' },
    { name: 'frozen-upsample', how: 'input upsampled ×2 (64×64 → 16×16 features, pooled to 8×8)', cause: '(1)' },
    { name: 'frozen-adapter', how: 'a trainable residual 3×3 conv + BN + ReLU adapter after the frozen backbone', cause: '(3)' },
  ];
  const fixItems = fixes.map(({ name, how, cause }) => {
    const what = `${how}: addresses ${cause}`;
    const r = rows.find((x) => x.name === name);
    if (!hasResult(r)) return `<li>${code(name)} — ${escapeHtml(what)}: <em>not run yet</em> (${code(cmd([name]))}).</li>`;
    const cost =
      r.secondsPerEpoch !== null && all.secondsPerEpoch !== null ? `; ${seconds(r.secondsPerEpoch)} s per training epoch against ${seconds(all.secondsPerEpoch)} s frozen` : '';
    const partial = r.status === 'done' ? '' : ` (${r.epochsDone}/${r.epochs} epochs so far)`;
    const verdict = spreadVerdict(r.bestTestAccuracy - all.bestTestAccuracy, spread);
    return (
      `<li>${code(name)} — ${escapeHtml(what)}: best <strong>${formatPercent(r.bestTestAccuracy)}</strong>${partial}, ` +
      `${pts(r.bestTestAccuracy, all.bestTestAccuracy)} over frozen${verdict ? ` (${verdict.text})` : ''}${hasResult(lab) ? `, ${pts(r.bestTestAccuracy, lab.bestTestAccuracy)} against the lab recipe` : ''}; ` +
      `${r.trainableParameters.toLocaleString('en-US')} trained parameters${cost}.</li>`
    );
  });
  parts.push(`<p><strong>The fixes</strong>, each measured:</p><ul>${fixItems.join('')}</ul>`);
  // Which cause weighs most: the fixes ranked by how much of the frozen net's loss they win back.
  const measured = fixes.flatMap((f) => {
    const r = rows.find((x) => x.name === f.name);
    return hasResult(r) && r.status === 'done' ? [{ ...f, r, verdict: spreadVerdict(r.bestTestAccuracy - all.bestTestAccuracy, spread) }] : [];
  });
  if (hasResult(lab) && measured.length >= 2) {
    const lost = lab.bestTestAccuracy - all.bestTestAccuracy;
    const ranked = [...measured].sort((a, b) => b.r.bestTestAccuracy - a.r.bestTestAccuracy);
    const share = (f: (typeof ranked)[number]) => {
      const pct = Math.round((100 * (f.r.bestTestAccuracy - all.bestTestAccuracy)) / lost);
      return `${code(f.name)} ${escapeHtml(f.cause)} ${pct < 0 ? '−' : ''}${Math.abs(pct)}%`;
    };
    const none = ranked.filter((f) => f.verdict?.measurable === false);
    parts.push(
      `<p><strong>What weighs most.</strong> Freezing costs ${(100 * lost).toFixed(2)} points; of those, each fix on its own wins back: ${ranked.map(share).join(', ')}. ` +
        `So cause ${escapeHtml(ranked[0].cause)}, ${escapeHtml(CAUSES[ranked[0].cause] ?? 'see its item above')}, weighs most here.` +
        (none.length
          ? ` ${none.map((f) => code(f.name)).join(' and ')} on ${none.length === 1 ? 'its' : 'their'} own ${none.length === 1 ? 'gives' : 'give'} nothing measurable: with the other causes left in place, fixing ${none.length === 1 ? 'that one' : 'those'} alone does not reach the head.`
          : '') +
        ' Training the whole backbone (the lab recipe) still beats every single fix; they combine (e.g. an adapter with trainable BatchNorm), which these runs do not measure.</p>',
    );
  }
  parts.push(`<p class="dcf-note" style="font-size:12.5px;color:#555">${escapeHtml(TIME_CAVEAT)}</p>`);
  parts.push(gapsHtml(g, ev.experiments));
  const figures: AnswerFigure[] = [];
  const curves = curvesFigure(results, [LAB, ...FREEZE], 'report-freeze-curves', 'Frozen backbone and fixes against the lab recipe', 'Frozen backbone (and fixes) against the lab recipe: loss and accuracy per epoch, train solid, test dashed.');
  if (curves) figures.push(curves);
  const done = g.missing.length === 0 && g.unfinished.length === 0;
  return { id, title, question, status: done ? 'answered' : 'partial', html: parts.join('\n'), todo: todoOf(g), cites: rows.filter(hasResult).map((r) => r.name), figures };
}

function timeOf(ms: readonly MeasurementRow[], measure: Measure, variant: string, setting = 'lab'): MeasurementRow | undefined {
  return ms.find((m) => m.measure === measure && m.variant === variant && m.setting === setting && m.unit === 'ms');
}

const fmtMs = (m: MeasurementRow | undefined) => (m ? `${m.value.toFixed(m.value < 1 ? 2 : 1)} ± ${m.spread.toFixed(m.spread < 1 ? 2 : 1)} ms` : 'not measured yet');

function prosCons(results: LabResults, ev: Evidence): Answer {
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
  const cmp = summarizeOutcomes(labRecipeRuns(results).runs.map((r) => r.outcome!));
  const dyn = cmp.find((x) => x.group === 'dynamic');
  const sta = cmp.find((x) => x.group === 'static');
  if (dyn && sta) {
    pros.push(`Accuracy here: best ${formatMeanStd(dyn.bestAccuracy)} dynamic against ${formatMeanStd(sta.bestAccuracy)} static (${[...dyn.runs, ...sta.runs].map(code).join(', ')}; see the comparison for whether that exceeds the seed spread).`);
  }
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
    todo: missingTimes.length || !counts.length ? `\`${measureCmd}\` (on a quiet machine)` : undefined, cites: dyn && sta ? [...dyn.runs, ...sta.runs] : [], figures: [],
  };
}

const ABLATIONS = ['ablate-no-norm', 'ablate-no-scale', 'ablate-no-norm-no-scale'];

function stability(results: LabResults, ev: Evidence): Answer {
  const id = 'stability';
  const title = 'Numerical stability: L2 normalisation and /√64';
  const question = 'The lab normalises each generated filter (L2) and divides the response map by √64 "for numerical stability": what changes without them?';
  const rows = [LAB, ...ABLATIONS].map((n) => ev.experiments.find((r) => r.name === n)).filter((r): r is ExperimentRow => !!r);
  const lab = rows.find((r) => r.name === LAB);
  const g = gaps(rows, [LAB, ...ABLATIONS]);
  const ablated = rows.filter((r) => r.name !== LAB && reportable(r));
  if (ablated.length === 0 && !rows.some((r) => r.name !== LAB && r.status === 'running')) return noRunYet(id, title, question, 'ablation runs without the L2 normalisation and without the /√64 scaling', cmd(ABLATIONS));
  const parts: string[] = [experimentsTable(rows, 'Stability ablations against the lab recipe (seed 0 each; results/experiments.parquet)', lab)];
  const spread = dynamicSpread(results);
  const items = ABLATIONS.map((name) => {
    const r = rows.find((x) => x.name === name);
    if (r && r.status === 'diverged') return `<li>${code(name)}: <strong>diverged</strong> after ${r.epochsDone} finished epoch(s) — ${escapeHtml(r.detail)}. That is the instability the lab's devices prevent.</li>`;
    const running = r?.status === 'running';
    if (!hasResult(r)) return `<li>${code(name)}: <em>${running ? 'training now, no finished epoch yet' : 'not run yet'}</em> (${code(cmd([name]))}).</li>`;
    const vs = hasResult(lab) ? `, ${pts(r.bestTestAccuracy, lab.bestTestAccuracy)} against ${code(LAB)} (${formatPercent(lab.bestTestAccuracy)})` : '';
    const verdict = hasResult(lab) ? spreadVerdict(r.bestTestAccuracy - lab.bestTestAccuracy, spread) : undefined;
    return `<li>${code(name)}: best <strong>${formatPercent(r.bestTestAccuracy)}</strong> (epoch ${r.bestEpoch}), final ${formatPercent(r.finalTestAccuracy)}${vs}${verdict ? ` (${verdict.text})` : ''}${r.status === 'done' ? '' : `; ${r.epochsDone}/${r.epochs} epochs so far`}; no divergence.</li>`;
  });
  parts.push(`<ul>${items.join('')}</ul>`);
  parts.push(`<p>${escapeHtml(spreadSentence(spread))}</p>`);
  // The verdict, once every ablation has finished and the seed spread is known.
  const finished = ABLATIONS.map((n) => rows.find((x) => x.name === n)).filter((r): r is ExperimentRow => !!r && (r.status === 'done' || r.status === 'diverged'));
  if (finished.length === ABLATIONS.length && hasResult(lab) && spread && spread.bestAccuracy.n >= 2) {
    const diverged = finished.filter((r) => r.status === 'diverged');
    const scored = finished.flatMap((r) => (hasResult(r) && r.status === 'done' ? [r] : []));
    const measurable = (r: (typeof scored)[number]) => spreadVerdict(r.bestTestAccuracy - lab.bestTestAccuracy, spread)?.measurable;
    const hurt = scored.filter((r) => r.bestTestAccuracy < lab.bestTestAccuracy && measurable(r) === true);
    const same = scored.filter((r) => measurable(r) === false);
    parts.push(
      `<p><strong>So:</strong> ${diverged.length ? `${diverged.map((r) => code(r.name)).join(', ')} diverged` : 'nothing diverged at the lab\'s learning rate with Adam'}` +
        (same.length ? `; no measurable change for ${same.map((r) => `${code(r.name)} (${escapeHtml(r.settings)})`).join(', ')}` : '') +
        (hurt.length ? `; a loss of ${hurt.map((r) => `${(100 * (lab.bestTestAccuracy - r.bestTestAccuracy)).toFixed(1)} points for ${code(r.name)} (${escapeHtml(r.settings)})`).join(' and ')}` : '') +
        '. ' +
        (diverged.length
          ? 'Here the devices are what keeps training from diverging.'
          : hurt.length
            ? 'Here the devices buy a little accuracy rather than rescuing training from divergence.'
            : 'Here the devices make no measurable difference.') +
        ' One seed per ablation, five epochs.</p>',
    );
  }
  parts.push(
    '<p><strong>What the devices do.</strong> The generator ends in Tanh, so each of the 64 filter weights lies in [−1, 1] and a filter\'s length is at most 8; ' +
      'the L2 normalisation fixes it at 1. The response ⟨F, f⟩ sums 64 products, so its size grows like √64 = 8 times the typical product; dividing by √64 ' +
      'brings it back (as in scaled dot-product attention). Without one of them the maps reach the score MLP up to 8× larger, without both up to 64×: larger ' +
      'pre-activations and gradients early in training. Adam rescales each parameter\'s step by its own gradient size, which absorbs much of this; what is left ' +
      'shows as the differences (or the divergence) measured above, to be read against the seed spread.</p>',
  );
  const tuples = ev.sweep.filter((s) => s.config.filter_norm === false || s.config.response_scale === false);
  const labSweep = ev.sweep.find((s) => s.name === 'lab5');
  if (tuples.length && labSweep) {
    parts.push(
      `<p>Cross-check on another framework (PyTorch on a GPU, python/recipe_sweep_results.jsonl; not a run of this project): the lab recipe ${formatPercent(labSweep.bestTestAccuracy)}, ` +
        tuples.map((s) => `${escapeHtml(s.name)} ${formatPercent(s.bestTestAccuracy)}`).join(', ') + '.</p>',
    );
  }
  parts.push(gapsHtml(g, ev.experiments));
  const figures: AnswerFigure[] = [];
  const curves = curvesFigure(results, [LAB, ...ABLATIONS], 'report-ablation-curves', 'Stability ablations against the lab recipe', 'Without the L2 normalisation and/or the /√64, against the lab recipe: loss and accuracy per epoch, train solid, test dashed.');
  if (curves) figures.push(curves);
  const done = g.missing.length === 0 && g.unfinished.length === 0;
  return { id, title, question, status: done ? 'answered' : 'partial', html: parts.join('\n'), todo: todoOf(g), cites: [LAB, ...ABLATIONS].filter((n) => rows.some((r) => r.name === n && reportable(r))), figures };
}

const BEST = 'best-dynamic';

function beyond(results: LabResults, ev: Evidence): Answer {
  void results;
  const id = 'beyond';
  const title = 'Beyond the lab: the best recipe';
  const question = 'How far can the dynamic net go on this machine (target: 85% test accuracy), and at what training cost?';
  const row = ev.experiments.find((r) => r.name === BEST);
  const lab = ev.experiments.find((r) => r.name === LAB);
  const parts: string[] = [];
  let status: AnswerStatus = 'no-run-yet';
  let todo: string | undefined = `\`${cmd([BEST])}\``;
  if (row && hasResult(row)) {
    const hours = row.secondsPerEpoch !== null ? (row.secondsPerEpoch * row.epochsDone) / 3600 : null;
    const full = row.secondsPerEpoch !== null ? (row.secondsPerEpoch * row.epochs) / 3600 : null;
    parts.push(
      `<p>${code(BEST)} (${escapeHtml(row.settings)}): best test accuracy <strong>${formatPercent(row.bestTestAccuracy)}</strong> at epoch ${row.bestEpoch}, ` +
        `final ${formatPercent(row.finalTestAccuracy)}, after ${row.epochsDone} of ${row.epochs} epochs` +
        (hours !== null ? `; ${hours.toFixed(1)} h of training passes (${seconds(row.secondsPerEpoch)} s per epoch, wall clock on the machine that trained it, with whatever else ran there; evaluation not counted)` : '') +
        (row.status !== 'done' && full !== null ? `, about ${full.toFixed(1)} h for all ${row.epochs} at that pace` : '') +
        `. ${row.bestTestAccuracy >= 0.85 ? 'That meets the 85% target.' : 'Below the 85% target' + (row.status === 'done' ? '.' : ' so far.')}` +
        (hasResult(lab) ? ` The lab recipe (${code(LAB)}) reached ${formatPercent(lab.bestTestAccuracy)}.` : '') +
        '</p>',
    );
    status = row.status === 'done' ? (row.bestTestAccuracy >= 0.85 ? 'answered' : 'partial') : 'partial';
    todo = row.status === 'done' ? undefined : `\`${cmd([BEST])}\` (${row.epochsDone}/${row.epochs} epochs)`;
  } else {
    const estimate =
      row && lab && lab.secondsPerEpoch !== null
        ? ` Its cost can only be estimated until then: ${row.epochs} epochs at ${code(LAB)}'s ${seconds(lab.secondsPerEpoch)} s per training pass would take about ${((row.epochs * lab.secondsPerEpoch) / 3600).toFixed(1)} h (an estimate from that run's wall-clock time, taken under whatever load it shared the machine with; not a measurement of ${code(BEST)}).`
        : '';
    parts.push(
      `<p class="dcf-placeholder" style="${NOTE_STYLE.placeholder}"><strong>Not run yet:</strong> ${code(BEST)}${row ? ` (${escapeHtml(row.settings)})` : ''} — <code>${cmd([BEST])}</code>.${estimate}</p>`,
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
  return { id, title, question, status, html: parts.join('\n'), todo, cites: row && hasResult(row) ? [BEST] : [], figures };
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
  return [compare(results, ev), responseMaps(results), freeze(results, ev), prosCons(results, ev), stability(results, ev), beyond(results, ev)];
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
