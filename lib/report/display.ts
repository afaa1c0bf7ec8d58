/**
 * Showing things in a tslab notebook: plotly figures (JupyterLab's plotly renderer draws them),
 * HTML tables and markdown, and the few composite views the notebooks share (an answer in words,
 * paired comparisons with their evidence, runs still missing, training curves). tslab is required
 * lazily, inside the functions, so that lib/ loads in plain Node (tests, CLI) where no kernel is
 * listening; captureDisplay collects what would be shown instead.
 */
import type * as Tslab from 'tslab';
import type pl from 'nodejs-polars';
import {
  compare,
  runGaps,
  unfinished,
  type ArmComparison,
  type ExperimentRow,
  type LabResults,
  type Source,
} from '../experiments/index';
import type { Answer, ProsCons } from './answers';
import { htmlTable, type TableOptions } from './html-table';
import { pairedIntervalsFigure, trainingCurves, type Figure } from './plots';
import { COMPARISON_COLUMNS, EXCLUDED_COLUMNS } from './tables';

export const PLOTLY_MIME = 'application/vnd.plotly.v1+json';

/** One MIME bundle as shown. */
export interface Shown {
  mime: string;
  content: unknown;
}

function tslab(): typeof Tslab {
  return require('tslab') as typeof Tslab;
}

/** Where bundles go: the kernel, or a list while captureDisplay runs. */
let capture: Shown[] | undefined;

/** Sends one MIME bundle to the notebook; a clear error outside a tslab kernel. */
function raw(mime: string, content: unknown): void {
  if (capture) {
    capture.push({ mime, content });
    return;
  }
  try {
    // tslab serialises the object itself: pass it, not a JSON string.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    tslab().display.raw(mime, content as any);
  } catch (err) {
    if ((err as Error).message === 'Not ready') {
      throw new Error(
        `lib/report/display shows ${mime} only inside a tslab notebook kernel; outside one, write figures with ` +
          'lib/report/figures-export (exportFigures) or tables with lib/report/html-table (htmlTable).',
      );
    }
    throw err;
  }
}

/** What `show` calls in `fn` would display, in order, instead of displaying it (outside a kernel too). */
export function captureDisplay(fn: () => void): Shown[] {
  const outer = capture;
  capture = [];
  try {
    fn();
    return capture;
  } finally {
    capture = outer;
  }
}

/** Draws a plotly figure (from lib/report/plots) in the cell's output. */
export function show(figure: Figure): void {
  if (!figure || !Array.isArray(figure.data))
    throw new Error('show() takes a plotly figure { data, layout } (from lib/report/plots)');
  // A plain, JSON-safe copy: typed arrays become arrays, undefined fields disappear.
  raw(PLOTLY_MIME, JSON.parse(JSON.stringify(figure)));
}

function showHtml(html: string): void {
  raw('text/html', html);
}

export function showMarkdown(markdown: string): void {
  raw('text/markdown', markdown);
}

/** Renders rows as an HTML table (lib/report/html-table) in the cell's output. */
export function showTable<Row extends object>(rows: readonly Row[], opts?: TableOptions<Row>): void {
  showHtml(htmlTable(rows, opts));
}

/** An answer of lib/report/answers as Markdown: its title, its sentences, and its lists of pros and cons if any. */
export function answerMarkdown(a: Answer & Partial<ProsCons>): string {
  const list = (title: string, items: readonly string[] | undefined) =>
    items?.length ? [`**${title}**`, '', ...items.map((x) => `- ${x}`), ''] : [];
  const lead = `**${a.id} ${a.title}.** ${a.sentences.join(' ')}`;
  return [lead, '', ...list('Advantages', a.advantages), ...list('Downsides', a.downsides)].join('\n').trim();
}

/** Shows an answer (lib/report/answers) in words, as the short report states it. */
export function showAnswer(a: Answer & Partial<ProsCons>): void {
  showMarkdown(answerMarkdown(a));
}

/**
 * Paired comparisons of one source of the results table (lib/experiments/table): the table with
 * each difference, its 95 % and 90 % intervals against the equivalence margin and the computed
 * verdict; the runs of those arms left out (unfinished, diverged); and the differences per seed
 * with their intervals, when any comparison has a pair.
 */
export function showComparisons(
  t: pl.DataFrame,
  comparisons: readonly ArmComparison[],
  caption: string,
  source: Source = 'recorded',
): void {
  const rows = compare(t, comparisons, source);
  showTable(rows, { columns: COMPARISON_COLUMNS, caption });
  const left = unfinished(t, [...new Set(comparisons.flatMap((c) => [c.a, c.b]))], source);
  const leftOut = 'Runs of these arms left out of the statistics (no finished result)';
  if (left.length) showTable(left, { columns: EXCLUDED_COLUMNS, caption: leftOut });
  const paired = rows.filter((r) => r.n > 0);
  if (paired.length) show(pairedIntervalsFigure(paired, { title: caption }));
}

/** Your runs among `names` that are missing or unfinished, with the command that completes them (nothing if none). */
export function showGaps(experiments: readonly ExperimentRow[], names: readonly string[]): void {
  const g = runGaps(experiments, names);
  if (!g.command) return;
  const rows = [
    ...g.missing.map((m) => ({ run: m.name, state: m.status, detail: m.detail })),
    ...g.unfinished.map((u) => ({ run: u.name, state: u.status, detail: `${u.epochsDone}/${u.epochs} epochs so far` })),
  ];
  showTable(rows, { caption: `Not finished yet; to finish them: ${g.command}` });
}

/** Loss and accuracy per epoch of those of your runs `names` that have epochs (train solid, test dashed). */
export function showCurves(results: LabResults, names: readonly string[], title: string): void {
  const runs = names.filter((n) => results.runs.some((r) => r.name === n && r.epochs.length));
  const rows = results.epochRows.filter((r) => runs.includes(r.run) && r.split !== 'val');
  if (runs.length) show(trainingCurves(rows, { runs, title }));
}
