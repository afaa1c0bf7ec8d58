/**
 * The lab's questions and their answers, built from the runs in results/: every number quoted
 * comes from a run, and a question whose runs do not exist yet says so ("no run yet") together
 * with what to run. Notebook 06 and the report both show these.
 */
import { escapeHtml, formatMeanStd, formatPercent, htmlTable, NOTE_STYLE, textToHtml } from './html-table';
import { labRecipeRuns, type LabResults, type RunResult } from './results';
import { groupBy, meanStd, summarizeOutcomes, welchT, type MeanStd } from './summary';

export type AnswerStatus = 'answered' | 'partial' | 'no-run-yet';

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
}

const EXPERIMENTS = 'run `npm run experiments` (or notebook 06)';

function noRunYet(id: string, title: string, question: string, needs: string, todo = EXPERIMENTS): Answer {
  return {
    id, title, question, status: 'no-run-yet',
    html: `<p class="dcf-placeholder" style="${NOTE_STYLE.placeholder}"><strong>No run yet.</strong> This answer needs ${textToHtml(needs)}.</p>`,
    todo,
  };
}

const pct = (s: MeanStd) => formatMeanStd(s);

/** Runs grouped by how they differ from the recipe, with best test accuracy mean ± std. */
function recipeTable(runs: readonly RunResult[], caption: string): string {
  const groups = [...groupBy(runs.filter((r) => r.outcome), (r) => `${r.config.variant ?? '?'} · ${r.changes.join(', ') || 'lab recipe'}`)];
  return htmlTable(
    groups.map(([name, list]) => ({
      name,
      runs: list.map((r) => r.name).join(', '),
      best: meanStd(list.map((r) => r.outcome!.bestAccuracy)),
      final: meanStd(list.map((r) => r.outcome!.finalAccuracy)),
      secondsPerEpoch: meanStd(list.filter((r) => r.outcome!.secondsPerEpoch !== null).map((r) => r.outcome!.secondsPerEpoch!)),
    })),
    {
      caption,
      columns: [
        { label: 'setting', value: (g) => g.name },
        { label: 'best test accuracy', value: (g) => pct(g.best), align: 'right' },
        { label: 'final test accuracy', value: (g) => pct(g.final), align: 'right' },
        { label: 's / epoch', value: (g) => (g.secondsPerEpoch.n ? g.secondsPerEpoch.mean.toFixed(0) : '–'), align: 'right' },
        { label: 'runs', value: (g) => g.runs },
      ],
    },
  );
}

const PENDING_DISCUSSION = `<p class="dcf-placeholder" style="${NOTE_STYLE.placeholder}">Discussion: to be written from these measurements (experiments issue).</p>`;

function compare(results: LabResults): Answer {
  const id = 'compare';
  const title = 'Dynamic vs static head';
  const question = 'Does generating the class filters from embeddings (dynamic) beat learning them directly (static), with the lab\'s recipe?';
  const { runs, subset } = labRecipeRuns(results);
  const groups = summarizeOutcomes(runs.map((r) => r.outcome!));
  const dyn = groups.find((g) => g.group === 'dynamic');
  const sta = groups.find((g) => g.group === 'static');
  if (!dyn || !sta) {
    return noRunYet(id, title, question, 'runs of both heads with the lab\'s recipe (3 seeds each), e.g. `npm run train -- --variant dynamic --seed 0`');
  }
  const diff = dyn.bestAccuracy.mean - sta.bestAccuracy.mean;
  const t = welchT(dyn.bestAccuracy, sta.bestAccuracy);
  const verdict =
    t === null
      ? 'With fewer than two seeds per head the seed-to-seed spread is unknown, so this difference cannot be told from noise yet.'
      : Math.abs(t) >= 2
        ? `The gap is larger than the seed-to-seed spread (Welch t = ${t.toFixed(1)}).`
        : `The gap is within the seed-to-seed spread (Welch t = ${t.toFixed(1)}): no measurable difference.`;
  const html =
    (subset ? `<p class="dcf-warning" style="${NOTE_STYLE.warning}">These are quick-mode runs on a subset of CIFAR-10: they show the pipeline works, not the lab's numbers.</p>` : '') +
    `<p>Best test accuracy: dynamic <strong>${pct(dyn.bestAccuracy)}</strong>, static <strong>${pct(sta.bestAccuracy)}</strong> ` +
    `(difference ${(100 * diff).toFixed(2)} points). Final-epoch test accuracy: dynamic ${pct(dyn.finalAccuracy)}, static ${pct(sta.finalAccuracy)}. ` +
    `${verdict}</p>`;
  const enough = dyn.bestAccuracy.n >= 3 && sta.bestAccuracy.n >= 3 && !subset;
  return { id, title, question, status: enough ? 'answered' : 'partial', html, todo: enough ? undefined : 'train at least 3 seeds of each head on the full set: ' + EXPERIMENTS };
}

function responseMaps(results: LabResults): Answer {
  const id = 'response-maps';
  const title = 'What the response maps show';
  const question = 'Upsample each class\'s response map to 32×32 over the image: where does each class respond, and what can the maps serve for?';
  const figures = results.savedFigures.filter((f) => f.startsWith('response-map'));
  if (figures.length === 0) return noRunYet(id, title, question, 'response-map figures from a trained run', 'run notebook 05-visualize');
  return {
    id, title, question, status: 'partial',
    html: `<p>Figures: ${figures.map((f) => `<code>${escapeHtml(f)}</code>`).join(', ')} (section Visualize).</p>${PENDING_DISCUSSION}`,
    todo: 'measure the maps\' peaks against the objects and discuss (notebook 05)',
  };
}

function freeze(results: LabResults): Answer {
  const id = 'freeze';
  const title = 'Freezing the backbone';
  const question = 'What happens when the pretrained backbone is frozen, why, and how can it be fixed?';
  const frozen = results.runs.filter((r) => r.outcome && !r.subset && r.config.freeze !== undefined && r.config.freeze !== 'none');
  if (frozen.length === 0) return noRunYet(id, title, question, 'runs with the backbone frozen (`--freeze all`) and the fixes (`--freeze keep-bn`, …) beside the lab recipe');
  const base = labRecipeRuns(results).runs.filter((r) => !r.subset);
  return {
    id, title, question, status: 'partial',
    html: recipeTable([...base, ...frozen], 'Frozen backbone and fixes against the lab recipe') + PENDING_DISCUSSION,
    todo: 'explain the measurements (BatchNorm statistics, 8×8 features from 32×32 inputs, head capacity)',
  };
}

function prosCons(results: LabResults): Answer {
  const id = 'dynamic-pros-cons';
  const title = 'Pros and cons of dynamic filters';
  const question = 'What do dynamic filters cost and buy here (parameters, time per step), and what would input-conditioned filters add?';
  const { runs } = labRecipeRuns(results);
  const speed = [...groupBy(runs, (r) => String(r.config.variant))].map(([variant, list]) => ({
    variant,
    ips: meanStd(list.flatMap((r) => r.epochs.filter((e) => e.split === 'train').map((e) => e.imagesPerSecond))),
  }));
  if (speed.length < 2) return noRunYet(id, title, question, 'training runs of both heads (their throughput), and the parameter counts');
  return {
    id, title, question, status: 'partial',
    html:
      htmlTable(speed, {
        caption: 'Training throughput (lab recipe runs, train split)',
        columns: [
          { label: 'head', value: (s) => s.variant },
          { label: 'images / s', value: (s) => `${s.ips.mean.toFixed(0)} ± ${s.ips.std.toFixed(0)} (n=${s.ips.n} epochs)`, align: 'right' },
        ],
      }) + PENDING_DISCUSSION,
    todo: 'add parameter counts and time per step of each head (experiments issue)',
  };
}

function stability(results: LabResults): Answer {
  void results;
  return noRunYet(
    'stability',
    'Numerical stability: L2 normalisation and /√64',
    'The lab normalises each generated filter (L2) and divides the response map by √64 "for numerical stability": what changes without them?',
    'ablation runs without the L2 normalisation and without the /√64 scaling',
  );
}

function beyond(results: LabResults): Answer {
  const id = 'beyond';
  const title = 'Beyond the lab: the best recipe';
  const question = 'How far can the dynamic net go on this machine (target: 85% test accuracy), and at what training cost?';
  const tuned = results.runs.filter((r) => r.outcome && !r.subset && r.config.variant === 'dynamic' && r.changes.length > 0);
  if (tuned.length === 0) return noRunYet(id, title, question, 'dynamic-head runs with a changed recipe (normalisation, augmentation, schedule, epochs, label smoothing)');
  const best = [...tuned].sort((a, b) => b.outcome!.bestAccuracy - a.outcome!.bestAccuracy)[0];
  const o = best.outcome!;
  const hours = o.secondsPerEpoch !== null ? (o.secondsPerEpoch * o.epochs) / 3600 : null;
  return {
    id, title, question, status: o.bestAccuracy >= 0.85 ? 'answered' : 'partial',
    html:
      `<p>Best so far: <code>${escapeHtml(best.name)}</code> (${escapeHtml(best.changes.join(', '))}) reached ` +
      `<strong>${formatPercent(o.bestAccuracy)}</strong> test accuracy at epoch ${o.bestEpoch} of ${o.epochs}` +
      `${hours !== null ? `, ${hours.toFixed(1)} h of training` : ''}.</p>` +
      recipeTable(tuned, 'Dynamic-head recipes tried'),
    todo: o.bestAccuracy >= 0.85 ? undefined : 'keep tuning towards 85% (experiments issue)',
  };
}

/** Every question of the lab, in the lab's order, answered as far as results/ allows. */
export function answerQuestions(results: LabResults): Answer[] {
  return [compare(results), responseMaps(results), freeze(results), prosCons(results), stability(results), beyond(results)];
}

const STATUS_LABEL: Record<AnswerStatus, string> = { answered: 'answered', partial: 'partly answered', 'no-run-yet': 'no run yet' };

/** One answer as an HTML block: title, status, the question, the evidence, what is left to do. */
export function answerHtml(a: Answer): string {
  return (
    `<div class="dcf-answer dcf-${a.status}" id="q-${a.id}"><h3>${escapeHtml(a.title)} <span class="dcf-status">${STATUS_LABEL[a.status]}</span></h3>` +
    `<p class="dcf-question"><em>${escapeHtml(a.question)}</em></p>${a.html}` +
    (a.todo ? `<p class="dcf-todo">To do: ${textToHtml(a.todo)}</p>` : '') +
    '</div>'
  );
}
