/**
 * The lab report: results/report/report.html and report.pdf, rebuilt from what is in results/
 * (runs, their Parquet metrics, the figures the notebooks saved) without training anything.
 *
 * The report's own figures are named report-* in results/figures (PNG, SVG and the plotly spec,
 * like every figure); the notebooks' saved figures keep their names. Each figure is embedded in
 * the HTML as SVG, so report.html stands alone and the PDF stays vector.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { Browser } from 'playwright-core';
import { answerHtml, answerQuestions, experimentBars, experimentTableHtml, loadEvidence, type Answer, type Evidence } from './answers';
import { writeFileAtomic } from '../formats';
import { launchChromium } from './chromium';
import { loadCifar10, indicesPerClass } from '../data';
import { isQuick, PATHS } from '../config';
import { labRecipeRuns, type LabResults, loadLabResults, perClassByVariant, type RunResult, summarizeOutcomes, writeExperimentTable } from '../experiments';
import { FigureExporter, listSavedFigures, loadFigureJson, type ExportedFigure } from './figures-export';
import { escapeHtml, formatMeanStd, formatPercent, htmlTable, NOTE_STYLE, textToHtml } from './html-table';
import { meanStdBars, perClassAccuracy, sampleGrid, trainingCurves, variantComparison, type Figure } from './plots';

export interface ReportOptions {
  /** Where the runs and saved figures are read (default results/). */
  resultsDir?: string;
  /** Where report.html and report.pdf go (default results/report). */
  outDir?: string;
  /** Where the report's figures go (default <resultsDir>/figures). */
  figuresDir?: string;
  /**
   * Rebuild <resultsDir>/experiments.parquet from the runs first (default true; trains nothing).
   * `quick` picks quick mode's experiment configs (default: isQuick()).
   */
  rebuildTable?: boolean;
  quick?: boolean;
  /** The recorded paired suite the answers quote (default results/recorded/paired; lib/answers loadEvidence). */
  recordedDir?: string;
  /** Also print the PDF (default true). */
  pdf?: boolean;
  /** A browser to reuse (default: one is launched and closed). */
  browser?: Browser;
  onProgress?: (message: string) => void;
}

export interface ReportResult {
  html: string;
  pdf?: string;
  figures: ExportedFigure[];
  runs: number;
  answers: { id: string; status: Answer['status'] }[];
}

/** One figure in the report: its file name, caption, and the spec to draw. */
interface ReportFigure {
  name: string;
  caption: string;
  figure: Figure;
}

/** A section: prose and tables (HTML) followed by figures, then blocks of their own (HTML + figures). */
interface Section {
  id: string;
  title: string;
  html: string;
  figures: ReportFigure[];
  blocks?: { html: string; figures: ReportFigure[] }[];
}

const REPORT_PREFIX = 'report-';

function placeholder(text: string): string {
  return `<p class="dcf-placeholder" style="${NOTE_STYLE.placeholder}"><strong>No run yet.</strong> ${textToHtml(text)}</p>`;
}

function pct(mean: number, std?: number): string {
  return formatPercent(mean, std);
}

/** Every run as an HTML table: recipe, epochs, final and best test accuracy, time, checkpoints. */
export function runsTable(runs: readonly RunResult[]): string {
  return htmlTable(runs, {
    caption: 'Every run in results/runs (test accuracy; time per epoch from the training pass)',
    empty: 'No runs yet: train one with `npm run train`, notebook 03, or `npm run experiments`.',
    columns: [
      { label: 'run', value: (r) => ({ html: `<code>${escapeHtml(r.name)}</code>` }) },
      { label: 'head', value: (r) => r.config.variant ?? '–' },
      { label: 'seed', value: (r) => r.config.seed ?? '–', align: 'right' },
      { label: 'recipe', value: (r) => (r.problem ? `unreadable: ${r.problem}` : [r.changes.join(', ') || 'lab recipe', r.subset ? '(subset)' : ''].join(' ').trim()) },
      { label: 'epochs', value: (r) => (r.outcome ? `${r.outcome.epochs}/${r.config.epochs ?? '?'}` : `0/${r.config.epochs ?? '?'}`), align: 'right' },
      { label: 'final', value: (r) => (r.outcome ? pct(r.outcome.finalAccuracy) : '–'), align: 'right' },
      { label: 'best (epoch)', value: (r) => (r.outcome ? `${pct(r.outcome.bestAccuracy)} (${r.outcome.bestEpoch})` : '–'), align: 'right' },
      { label: 's / epoch', value: (r) => (r.outcome?.secondsPerEpoch != null ? r.outcome.secondsPerEpoch.toFixed(0) : '–'), align: 'right' },
      { label: 'checkpoints', value: (r) => [r.hasBest ? 'best' : '', r.hasLast ? 'last' : ''].filter(Boolean).join(' + ') || '–' },
    ],
  });
}

function savedFigures(results: LabResults, prefix: string, caption: (name: string) => string): ReportFigure[] {
  const dir = path.join(results.resultsDir, 'figures');
  return savedFigureNames(results)
    .filter((n) => n.startsWith(prefix))
    .map((name) => ({ name, caption: caption(name), figure: loadFigureJson(name, dir) }));
}

function dataSection(): Section {
  const section: Section = { id: 'data', title: 'Data', html: '', figures: [] };
  try {
    const test = loadCifar10('test', { limit: 1000 });
    const picks = indicesPerClass(test.labels, 2).flat().sort((a, b) => a - b);
    const images = new Uint8Array(picks.length * 3072);
    picks.forEach((idx, k) => images.set(test.images.subarray(idx * 3072, (idx + 1) * 3072), k * 3072));
    section.html = '<p>CIFAR-10: 50,000 training and 10,000 test images of 32×32 pixels in ten balanced classes. Two test images of each class:</p>';
    section.figures.push({
      name: `${REPORT_PREFIX}samples`,
      caption: 'Test images (index under each), two per class.',
      figure: sampleGrid(images, picks.map((i) => test.labels[i]), { columns: 10, indices: picks, title: 'CIFAR-10 test images' }),
    });
  } catch (err) {
    section.html = placeholder(`CIFAR-10 is not in data/ (${(err as Error).message.split('\n')[0]}): run \`npm run data\` or notebook 01.`);
  }
  return section;
}

function trainingSection(results: LabResults): Section {
  const section: Section = { id: 'training', title: 'Training', html: runsTable(results.runs), figures: [] };
  const { runs, subset } = labRecipeRuns(results);
  if (runs.length) {
    section.figures.push({
      name: `${REPORT_PREFIX}curves-lab-recipe`,
      caption: `Loss and accuracy per epoch of the lab-recipe runs${subset ? ' (quick-mode subset runs)' : ''}: train solid, test dashed.`,
      figure: trainingCurves(runs.flatMap((r) => r.epochs), { title: 'Training curves — lab recipe' }),
    });
  } else {
    section.html += placeholder('No lab-recipe run has finished an epoch: run notebook 03 or `npm run train`.');
  }
  return section;
}

function compareSection(results: LabResults): Section {
  const section: Section = { id: 'compare', title: 'Dynamic vs static', html: '', figures: [] };
  const { runs, subset } = labRecipeRuns(results);
  const variants = new Set(runs.map((r) => r.config.variant));
  if (!variants.has('dynamic') || !variants.has('static')) {
    section.html = placeholder('The comparison needs lab-recipe runs of both heads: run notebook 04 or `npm run experiments`.');
    return section;
  }
  const groups = summarizeOutcomes(runs.map((r) => r.outcome!));
  section.html =
    (subset ? `<p class="dcf-warning" style="${NOTE_STYLE.warning}">Quick-mode runs on a subset of CIFAR-10: these numbers only show that the pipeline works.</p>` : '') +
    htmlTable(groups, {
      caption: 'Test accuracy over seeds (mean ± std)',
      columns: [
        { label: 'head', value: (g) => g.group },
        { label: 'seeds', value: (g) => g.runs.length, align: 'right' },
        { label: 'final test accuracy', value: (g) => formatMeanStd(g.finalAccuracy), align: 'right' },
        { label: 'best test accuracy', value: (g) => formatMeanStd(g.bestAccuracy), align: 'right' },
        { label: 's / epoch', value: (g) => (g.secondsPerEpoch.n ? g.secondsPerEpoch.mean.toFixed(0) : '–'), align: 'right' },
        { label: 'runs', value: (g) => g.runs.join(', ') },
      ],
    });
  const rows = runs.flatMap((r) => r.epochs);
  section.figures.push(
    { name: `${REPORT_PREFIX}compare-curves`, caption: 'Mean over seeds (line) ± one standard deviation (band).', figure: variantComparison(rows) },
    {
      name: `${REPORT_PREFIX}compare-best`,
      caption: 'Best test accuracy of each head, mean ± std over seeds.',
      figure: meanStdBars(groups.map((g) => ({ name: g.group, ...g.bestAccuracy }))),
    },
  );
  const perClass = perClassByVariant(runs);
  section.figures.push({ name: `${REPORT_PREFIX}per-class`, caption: 'Per-class test accuracy at the last epoch (mean over seeds).', figure: perClassAccuracy(perClass) });
  section.figures.push(...savedFigures(results, 'confusion', (n) => `Confusion matrix (${n}).`));
  return section;
}

function visualizeSection(results: LabResults): Section {
  const figures = savedFigures(results, 'response-map', (n) => `Response maps (${n}): each class's 8×8 map upsampled bilinearly to 32×32 over the image, titled with the class's score.`);
  return {
    id: 'visualize',
    title: 'Response maps',
    html: figures.length ? '' : placeholder('No response-map figure saved yet: run notebook 05 (it saves them to results/figures/response-map-*).'),
    figures,
  };
}

function experimentsSection(evidence: Evidence): Section {
  const bars = experimentBars(evidence);
  return {
    id: 'experiments',
    title: 'Experiments',
    html:
      '<p>Your runs: every experiment of the lab suite (<code>npm run experiments</code>, what <code>npm start</code> trains; lib/experiments): both heads with the lab\'s recipe, ' +
      'the lab\'s freeze, the fixed-function freeze and two fixes, all with seed 0 and the best epoch chosen on test accuracy as the lab states it. The multi-seed comparisons come from the recorded paired suite, quoted in the answers.</p>' +
      experimentTableHtml(evidence),
    figures: bars ? [bars] : [],
  };
}

function questionsSection(answers: readonly Answer[]): Section {
  return {
    id: 'questions',
    title: 'The lab\'s questions',
    html: '<p>Each answer shows your runs (the experiment table, the measurements, the runs\' metrics) and the recorded paired suite apart, and names the runs it used.</p>',
    figures: [],
    blocks: answers.map((a) => ({ html: answerHtml(a), figures: a.figures })),
  };
}

function appendixSection(results: LabResults, shown: Set<string>): Section {
  const section: Section = { id: 'appendix', title: 'Appendix: every run and other figures', html: '', figures: [] };
  for (const run of results.runs) {
    if (!run.outcome) continue;
    section.figures.push({
      name: `${REPORT_PREFIX}curves-${run.name}`,
      caption: `Run ${run.name}: ${run.changes.join(', ') || 'lab recipe'}${run.subset ? ' (subset)' : ''}.`,
      figure: trainingCurves(run.epochs, { title: `Run ${run.name}` }),
    });
  }
  const dir = path.join(results.resultsDir, 'figures');
  for (const name of savedFigureNames(results)) {
    if (name.startsWith(REPORT_PREFIX) || shown.has(name)) continue;
    section.figures.push({ name, caption: `Figure saved by a notebook: ${name}.`, figure: loadFigureJson(name, dir) });
  }
  if (section.figures.length === 0) section.html = '<p>No runs or other figures yet.</p>';
  return section;
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PATHS.root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

const CSS = `
body { font-family: 'Liberation Sans', Arial, sans-serif; color: #222; max-width: 1000px; margin: 24px auto; padding: 0 16px; line-height: 1.45; }
h1 { font-size: 26px; margin-bottom: 4px; } h2 { border-bottom: 2px solid #1f77b4; padding-bottom: 4px; margin-top: 32px; break-after: avoid; }
h3 { margin-bottom: 4px; break-after: avoid; } .dcf-meta { color: #666; font-size: 13px; }
table.dcf-table { border-collapse: collapse; margin: 12px 0; font-size: 12.5px; break-inside: avoid; }
table.dcf-table caption { text-align: left; font-weight: bold; margin-bottom: 4px; }
table.dcf-table th, table.dcf-table td { border-bottom: 1px solid #ddd; padding: 4px 8px; vertical-align: top; }
table.dcf-table th { background: #f3f6fa; } table.dcf-table td code { white-space: nowrap; }
figure { margin: 16px 0; break-inside: avoid; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 12.5px; color: #555; } code { background: #f4f4f4; padding: 0 3px; border-radius: 3px; }
.dcf-placeholder { background: #fff8e1; border-left: 4px solid #f0b400; padding: 6px 10px; }
.dcf-warning { background: #fdecea; border-left: 4px solid #d62728; padding: 6px 10px; }
.dcf-answer { break-inside: avoid; margin-bottom: 18px; } .dcf-question { font-style: italic; }
.dcf-status { font-size: 12px; font-weight: normal; padding: 1px 6px; border-radius: 8px; background: #eee; }
.dcf-answered .dcf-status { background: #dff0d8; } .dcf-no-run-yet .dcf-status { background: #fff3cd; }
.dcf-todo { color: #8a6d3b; font-size: 13px; } nav ol { columns: 2; font-size: 14px; }
`;

/** The report's HTML from its sections; `images` maps figure names to their SVG text. */
function renderHtml(results: LabResults, sections: readonly Section[], images: Map<string, string>): string {
  const generated = new Date().toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  const backends = [...new Set(results.epochRows.map((r) => r.backend))];
  const figureHtml = (f: ReportFigure) => {
    const svg = images.get(f.name);
    const img = svg ? `<img alt="${escapeHtml(f.name)}" src="data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}">` : '<p>(figure missing)</p>';
    return `<figure id="fig-${escapeHtml(f.name)}">${img}<figcaption><strong>${escapeHtml(f.name)}</strong> — ${escapeHtml(f.caption)}</figcaption></figure>`;
  };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dynamic convolutional filters for CIFAR-10 — lab report</title><style>${CSS}</style></head>
<body>
<h1>Dynamic convolutional filters for CIFAR-10</h1>
<p class="dcf-meta">Lab report generated ${escapeHtml(generated)} from <code>results/</code> (commit ${escapeHtml(gitCommit())}) ·
${results.runs.length} run(s) · backend: ${escapeHtml(backends.join('; ') || 'no runs yet')}. Rebuild with <code>npm run report</code>.</p>
<p>An image goes through an ImageNet-pretrained ResNet-18 cut after <code>layer1</code> (64×8×8 features). Each class has a learned
128-d embedding that a generator MLP (128→256→64, Tanh) turns into a 1×1 filter; the L2-normalised filter's response map,
divided by √64, is scored by an MLP (64→64→1). The static head learns the ten filters directly.</p>
<nav><ol>${sections.map((s) => `<li><a href="#${s.id}">${escapeHtml(s.title)}</a></li>`).join('')}</ol></nav>
${sections
  .map((s) =>
    `<section id="${s.id}"><h2>${escapeHtml(s.title)}</h2>\n${s.html}\n${s.figures.map(figureHtml).join('\n')}` +
    (s.blocks ?? []).map((b) => `${b.html}\n${b.figures.map(figureHtml).join('\n')}`).join('\n') +
    '</section>',
  )
  .join('\n')}
</body></html>
`;
}

/** Removes report-* figure files that this build did not write (runs that are gone). */
function removeStaleReportFigures(dir: string, keep: Set<string>): void {
  if (!fs.existsSync(dir)) return;
  for (const file of fs.readdirSync(dir)) {
    const m = /^(report-.+)\.(json|svg|png)$/.exec(file);
    if (m && !keep.has(m[1])) fs.rmSync(path.join(dir, file), { force: true });
  }
}

/** Builds report.html (and report.pdf) from results/. */
export async function buildReport(opts: ReportOptions = {}): Promise<ReportResult> {
  const progress = opts.onProgress ?? (() => undefined);
  const results = loadLabResults({ resultsDir: opts.resultsDir });
  const outDir = opts.outDir ?? path.join(results.resultsDir, 'report');
  const figuresDir = opts.figuresDir ?? path.join(results.resultsDir, 'figures');
  progress(`${results.runs.length} run(s), ${savedFigureNames(results).length} saved figure(s) in ${results.resultsDir}`);
  if (opts.rebuildTable ?? true) {
    const table = writeExperimentTable({ resultsDir: results.resultsDir, quick: opts.quick ?? isQuick() });
    progress(`experiment table ${table.file}: ${table.rows.filter((r) => r.status === 'done').length} of ${table.rows.length} done`);
  }
  const evidence = loadEvidence(results.resultsDir, { recordedDir: opts.recordedDir });

  const answers = answerQuestions(results, evidence);
  const sections = [dataSection(), trainingSection(results), experimentsSection(evidence), compareSection(results), visualizeSection(results), questionsSection(answers)];
  const sectionFigures = (s: Section) => [...s.figures, ...(s.blocks ?? []).flatMap((b) => b.figures)];
  const shown = new Set(sections.flatMap((s) => sectionFigures(s).map((f) => f.name)));
  sections.push(appendixSection(results, shown));
  const figures = sections.flatMap(sectionFigures);

  const browser = opts.browser ?? (await launchChromium());
  try {
    const exporter = await FigureExporter.open({ browser });
    const exported: ExportedFigure[] = [];
    const images = new Map<string, string>();
    try {
      for (const f of figures) {
        const written = await exporter.export(f.name, f.figure, { dir: figuresDir });
        exported.push(written);
        images.set(f.name, fs.readFileSync(written.svg!, 'utf8'));
        progress(`figure ${f.name}`);
      }
    } finally {
      await exporter.close();
    }
    removeStaleReportFigures(figuresDir, new Set(figures.filter((f) => f.name.startsWith(REPORT_PREFIX)).map((f) => f.name)));

    const html = renderHtml(results, sections, images);
    const htmlFile = path.join(outDir, 'report.html');
    writeFileAtomic(htmlFile, html);
    progress(`wrote ${htmlFile}`);
    let pdfFile: string | undefined;
    if (opts.pdf ?? true) {
      const page = await browser.newPage();
      try {
        await page.route(/^(https?|wss?):/, (route) => route.abort());
        await page.setContent(html, { waitUntil: 'load' });
        const pdf = await page.pdf({ format: 'A4', printBackground: true, margin: { top: '14mm', bottom: '14mm', left: '12mm', right: '12mm' } });
        pdfFile = path.join(outDir, 'report.pdf');
        writeFileAtomic(pdfFile, pdf);
        progress(`wrote ${pdfFile}`);
      } finally {
        await page.close();
      }
    }
    return { html: htmlFile, pdf: pdfFile, figures: exported, runs: results.runs.length, answers: answers.map((a) => ({ id: a.id, status: a.status })) };
  } finally {
    if (!opts.browser) await browser.close();
  }
}

/** The figure specs the notebooks saved under the results folder's figures/. */
function savedFigureNames(results: LabResults): string[] {
  return listSavedFigures(path.join(results.resultsDir, 'figures'));
}
