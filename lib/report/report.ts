/**
 * The lab report: the executed notebooks (results/notebooks/01-… to 06-…, written by `npm start`)
 * rendered as one HTML document, results/report/report.html, and printed to report.pdf. The
 * notebooks are the report: nothing here computes or words a result.
 *
 * 1. checkExecutedNotebooks: every notebook of notebooks/ (but 00-kernel-check) has an executed
 *    copy, ran to the end without an error, and was run from the notebook as it is now in git
 *    (its cells' sources); otherwise a clear error naming the notebook, the cell and the command.
 * 2. scripts/render_report.py (the .venv's nbconvert, template lib/report/nbconvert-template):
 *    the notebooks merged in order, code inputs hidden (a "Show code" button shows them), a table
 *    of contents from the Markdown headings, plotly figures drawn by plotly.js inlined from
 *    node_modules (the page reaches no network), images and HTML tables inline.
 * 3. Chromium (playwright-core) opens the HTML, waits until every plotly figure is drawn and
 *    prints the PDF.
 *
 * Both files are written to temporary names and renamed at the end: a failed render leaves the
 * previous report as it was. Ctrl-C or an exit removes this render's temporary files; those of a
 * render that was killed are removed by the next one (removeReportTempFiles). A render without the
 * PDF removes an earlier report.pdf, which would no longer match the HTML.
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';
import type { Browser } from 'playwright-core';
import { isAlive, writeFileAtomic } from '../formats/index';
import { PATHS } from '../config';
import { launchChromium } from './chromium';
import {
  cellSource,
  errorOutputs,
  executedDir,
  listNotebooks,
  NOTEBOOKS_DIR,
  readNotebook,
  venvPython,
  type NotebookJson,
} from './notebooks';

const REPORT_TITLE = 'Dynamic convolutional filters for CIFAR-10: lab report';
const TEMPLATE_DIR = path.join(__dirname, 'nbconvert-template');

export interface ReportOptions {
  /** The executed copies (default <results>/notebooks: results/notebooks, results/quick/notebooks in quick mode). */
  notebooksDir?: string;
  /** The notebooks in git: their NN-*.ipynb but 00 are the report's chapters, and the executed copies must match them (default notebooks/). */
  sourceDir?: string;
  /** Where report.html and report.pdf go (default <results>/report). */
  outDir?: string;
  /** Also print the PDF (default true). */
  pdf?: boolean;
  /** Render executed copies whose cells differ from notebooks/ (a warning instead of an error). */
  allowStale?: boolean;
  /** Quick mode: only for the commands the errors suggest (`npm start -- --quick …`). */
  quick?: boolean;
  /** A browser to reuse (default: one is launched and closed). */
  browser?: Browser;
  onProgress?: (message: string) => void;
}

export interface ReportResult {
  html: string;
  pdf?: string;
  /** The executed notebooks rendered, in order. */
  notebooks: string[];
  /** Plotly figures drawn (counted when the PDF is printed). */
  figures?: number;
  /** Stale notebooks rendered anyway (allowStale). */
  warnings: string[];
}

/** How scripts/execute_notebook.py records a run in the executed copy. */
interface ExecutionRecord {
  status?: 'ok' | 'error';
  quick?: boolean;
  started?: string;
  finished?: string;
}

export interface CheckedNotebooks {
  files: string[];
  records: (ExecutionRecord | undefined)[];
  warnings: string[];
}

/** The notebooks that make up the report: notebooks/NN-*.ipynb but 00-kernel-check. */
function reportNotebookNames(sourceDir: string = NOTEBOOKS_DIR): string[] {
  return listNotebooks(sourceDir)
    .map((f) => path.basename(f))
    .filter((name) => !name.startsWith('00-'));
}

function rel(file: string): string {
  const r = path.relative(process.cwd(), file);
  return r.startsWith('..') ? file : r;
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim()) ?? '';
  return line.length > 70 ? `${line.slice(0, 67)}…` : line;
}

/** The first cell where the executed copy and the source differ, or undefined. */
function firstDifference(executed: NotebookJson, source: NotebookJson): string | undefined {
  const n = Math.max(executed.cells.length, source.cells.length);
  for (let i = 0; i < n; i++) {
    const a = executed.cells[i];
    const b = source.cells[i];
    if (!a || !b) return `it has ${executed.cells.length} cells, the notebook ${source.cells.length}`;
    if (a.cell_type !== b.cell_type || cellSource(a) !== cellSource(b)) return `cell ${i} differs`;
  }
  return undefined;
}

/**
 * The executed copies the report renders, checked: each present, run to the end without an error,
 * and run from the notebook as it is in `sourceDir`. Every problem is listed in one error.
 */
export function checkExecutedNotebooks(
  opts: Pick<ReportOptions, 'notebooksDir' | 'sourceDir' | 'allowStale' | 'quick'> = {},
): CheckedNotebooks {
  const sourceDir = opts.sourceDir ?? NOTEBOOKS_DIR;
  const notebooksDir = opts.notebooksDir ?? executedDir();
  const names = reportNotebookNames(sourceDir);
  if (names.length === 0) throw new Error(`no notebooks NN-*.ipynb in ${rel(sourceDir)}`);
  const start = opts.quick ? 'npm start -- --quick' : 'npm start';
  const rerun = (name: string) => `\`npm start -- ${opts.quick ? '--quick ' : ''}--only ${name.slice(0, 2)}\``;
  const problems: string[] = [];
  const warnings: string[] = [];
  const files: string[] = [];
  const records: (ExecutionRecord | undefined)[] = [];
  for (const name of names) {
    const file = path.join(notebooksDir, name);
    if (!fs.existsSync(file)) {
      problems.push(`${rel(file)} is missing: run \`${start}\` (or ${rerun(name)}) first`);
      continue;
    }
    let nb: NotebookJson;
    try {
      nb = readNotebook(file);
    } catch (err) {
      problems.push(`${(err as Error).message}: run ${rerun(name)} again`);
      continue;
    }
    const errors = errorOutputs(nb);
    if (errors.length) {
      for (const e of errors) {
        const cell = nb.cells[e.cell];
        const where = cell ? `cell ${e.cell} (\`${firstLine(cellSource(cell))}\`)` : 'a cell';
        problems.push(
          `${rel(file)} has an error in ${where}: ${e.ename}: ${e.evalue.replace(/\.$/, '')}. Fix it and run ${rerun(name)}`,
        );
      }
      continue;
    }
    const notRun = nb.cells.findIndex(
      (c) =>
        c.cell_type === 'code' &&
        cellSource(c).trim() !== '' &&
        (c.execution_count === null || c.execution_count === undefined),
    );
    if (notRun >= 0) {
      problems.push(`${rel(file)} did not run to the end (cell ${notRun} never ran): run ${rerun(name)}`);
      continue;
    }
    const difference = firstDifference(nb, readNotebook(path.join(sourceDir, name)));
    if (difference) {
      const message = `${rel(file)} was run from another version of ${rel(path.join(sourceDir, name))} (${difference}): run ${rerun(name)}`;
      if (opts.allowStale) warnings.push(message);
      else {
        problems.push(`${message} (or \`npm run report -- --allow-stale\` to render it as it is)`);
        continue;
      }
    }
    files.push(file);
    records.push(nb.metadata.dcf_execution as ExecutionRecord | undefined);
  }
  if (files.length === 0 && names.every((name) => !fs.existsSync(path.join(notebooksDir, name)))) {
    throw new Error(
      `no executed notebooks in ${rel(notebooksDir)}: run \`${start}\` first (it runs them, then builds the report)`,
    );
  }
  if (problems.length) {
    throw new Error(`cannot build the report from ${rel(notebooksDir)}:\n  - ${problems.join('\n  - ')}`);
  }
  return { files, records, warnings };
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: PATHS.root,
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
  } catch {
    return 'unknown';
  }
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const minute = (iso: string) => iso.replace('T', ' ').slice(0, 16);

/** The line under the title: where the notebooks came from, when they ran, the commit. */
function metaHtml(checked: CheckedNotebooks, notebooksDir: string, quick: boolean): string {
  const times = checked.records.flatMap((r, i) => {
    if (r?.started && r?.finished) return [r.started, r.finished];
    return [fs.statSync(checked.files[i]).mtime.toISOString()];
  });
  times.sort();
  const names = checked.files.map((f) => path.basename(f, '.ipynb'));
  const ran = times.length ? `run ${minute(times[0])}–${minute(times[times.length - 1]).slice(11)} UTC` : '';
  return (
    `The executed notebook${names.length > 1 ? `s ${escapeHtml(names[0])} … ${escapeHtml(names[names.length - 1])}` : ` ${escapeHtml(names[0])}`} in <code>${escapeHtml(rel(notebooksDir))}</code>` +
    `${ran ? ` (${ran})` : ''}, rendered ${minute(new Date().toISOString())} UTC at commit ${escapeHtml(gitCommit())}. ` +
    `Rebuild with <code>npm run report${quick ? ' -- --quick' : ''}</code>; code inputs are hidden (<em>Show code</em> shows them).`
  );
}

/**
 * A render's temporary files in the report folder, with the pid of the process that made them:
 * `.report.<pid>.<ms>.tmp.html` (the HTML until it is complete), nbconvert's
 * `..report.<pid>.<ms>.tmp.html.<random>.tmp` (scripts/atomic_write.py) and `.report.pdf.<pid>.tmp`.
 */
const REPORT_TEMP = /^\.\.?report\.(?:pdf\.)?(\d+)\.(?:tmp$|\d+\.tmp\.html)/;

/**
 * Removes the temporary files of renders in `outDir` whose process no longer runs (a report that
 * was interrupted or killed: the HTML alone is ~10 MB), and with `own` this process's too.
 * Returns the names removed.
 */
export function removeReportTempFiles(outDir: string, own = false): string[] {
  if (!fs.existsSync(outDir)) return [];
  const removed: string[] = [];
  for (const name of fs.readdirSync(outDir)) {
    const pid = Number(REPORT_TEMP.exec(name)?.[1]);
    if (!pid || (pid === process.pid ? !own : isAlive(pid))) continue;
    fs.rmSync(path.join(outDir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * Until the returned function is called: this process's temporary report files in `outDir` are
 * removed when it exits, and on Ctrl-C when nothing else handles it (then it dies of the SIGINT
 * as it would have). With another handler (Playwright's, while Chromium runs), that one exits.
 */
function cleanUpOnExit(outDir: string): () => void {
  const onExit = () => removeReportTempFiles(outDir, true);
  const onSigint = () => {
    if (process.listenerCount('SIGINT') > 1) return;
    done();
    onExit();
    process.kill(process.pid, 'SIGINT');
  };
  const done = () => {
    process.off('exit', onExit);
    process.off('SIGINT', onSigint);
  };
  process.on('exit', onExit);
  process.on('SIGINT', onSigint);
  return done;
}

/** Runs scripts/render_report.py; the HTML goes to `output`. */
function renderHtml(spec: Record<string, unknown>, output: string): Promise<void> {
  const specFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-report-')), 'spec.json');
  fs.writeFileSync(specFile, JSON.stringify({ ...spec, output }));
  const python = venvPython();
  return new Promise<void>((resolve, reject) => {
    const child = spawn(python, [path.join(PATHS.root, 'scripts', 'render_report.py'), specFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0 && fs.existsSync(output)) resolve();
      else
        reject(
          new Error(
            `nbconvert could not render the report (scripts/render_report.py, exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' ') || 'no message'}`,
          ),
        );
    });
  }).finally(() => fs.rmSync(path.dirname(specFile), { recursive: true, force: true }));
}

/** Prints the HTML file to PDF once every plotly figure is drawn; the number of figures drawn. */
async function printPdf(browser: Browser, htmlFile: string): Promise<{ pdf: Buffer; figures: number }> {
  // The print area of A4 less 12 mm margins is 703 CSS px; at scale 0.8 the page lays out 880 px wide,
  // the width the figures are drawn at.
  const page = await browser.newPage({ viewport: { width: 880, height: 1200 } });
  try {
    const blocked: string[] = [];
    await page.route(/^(https?|wss?):/, (route) => {
      blocked.push(route.request().url());
      return route.abort();
    });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(pathToFileURL(htmlFile).href, { waitUntil: 'load', timeout: 120_000 });
    if (!(await page.evaluate(() => 'dcfReport' in window))) {
      throw new Error(`the report page's script did not run (${pageErrors.join('; ') || 'no error reported'})`);
    }
    await page.waitForFunction(
      () => (window as unknown as { dcfReport?: { done: boolean } }).dcfReport?.done === true,
      undefined,
      { timeout: 120_000 },
    );
    const state = await page.evaluate(
      () => (window as unknown as { dcfReport: { figures: number; errors: string[] } }).dcfReport,
    );
    const problems = [...state.errors, ...pageErrors];
    if (problems.length) throw new Error(`the report's figures did not draw: ${problems.join('; ')}`);
    if (blocked.length)
      throw new Error(`the report reached for the network (blocked): ${[...new Set(blocked)].slice(0, 3).join(', ')}`);
    await page.emulateMedia({ media: 'print' });
    const pdf = await page.pdf({
      format: 'A4',
      scale: 0.8,
      printBackground: true,
      outline: true,
      margin: { top: '14mm', bottom: '14mm', left: '12mm', right: '12mm' },
    });
    return { pdf, figures: state.figures };
  } finally {
    await page.close();
  }
}

/** Builds report.html (and report.pdf) from the executed notebooks. */
export async function buildReport(opts: ReportOptions = {}): Promise<ReportResult> {
  const progress = opts.onProgress ?? (() => undefined);
  const notebooksDir = opts.notebooksDir ?? executedDir();
  const outDir = opts.outDir ?? path.join(path.dirname(notebooksDir), 'report');
  const checked = checkExecutedNotebooks({ ...opts, notebooksDir });
  for (const w of checked.warnings) progress(`warning: ${w}`);
  progress(`rendering ${checked.files.length} executed notebook(s) from ${rel(notebooksDir)}`);

  const quick = checked.records.some((r) => r?.quick);
  const htmlFile = path.join(outDir, 'report.html');
  const pdfFile = path.join(outDir, 'report.pdf');
  fs.mkdirSync(outDir, { recursive: true });
  const stale = removeReportTempFiles(outDir);
  if (stale.length) progress(`removed ${stale.length} temporary file(s) of an interrupted report: ${stale.join(', ')}`);
  // Ends in .html: Chromium shows a file by its extension.
  const tmpHtml = path.join(outDir, `.report.${process.pid}.${Date.now()}.tmp.html`);
  const stopCleanUp = cleanUpOnExit(outDir);
  let browser: Browser | undefined;
  try {
    await renderHtml(
      {
        notebooks: checked.files,
        template_dir: TEMPLATE_DIR,
        plotly_js: require.resolve('plotly.js-dist-min/plotly.min.js'),
        title: REPORT_TITLE,
        meta_html: metaHtml(checked, notebooksDir, quick),
        warning_html: [
          quick
            ? 'Quick mode (<code>DCF_QUICK=1</code>): small slices of CIFAR-10 and one short epoch; these numbers only show that the pipeline works.'
            : '',
          checked.warnings.length
            ? `Rendered from notebooks that have changed since they ran: ${checked.warnings.map((w) => escapeHtml(w.split(' ')[0])).join(', ')}.`
            : '',
        ]
          .filter(Boolean)
          .join(' '),
      },
      tmpHtml,
    );
    progress(`HTML rendered (${(fs.statSync(tmpHtml).size / 1e6).toFixed(1)} MB)`);
    let figures: number | undefined;
    if (opts.pdf ?? true) {
      browser = opts.browser ?? (await launchChromium());
      const printed = await printPdf(browser, tmpHtml);
      figures = printed.figures;
      writeFileAtomic(pdfFile, printed.pdf);
      progress(`wrote ${rel(pdfFile)} (${figures} figure(s), ${(printed.pdf.length / 1e6).toFixed(1)} MB)`);
    }
    fs.renameSync(tmpHtml, htmlFile);
    progress(`wrote ${rel(htmlFile)}`);
    if (!(opts.pdf ?? true) && fs.existsSync(pdfFile)) {
      // Printed from an earlier render: beside the new HTML it would pass for this report.
      fs.rmSync(pdfFile);
      progress(`removed ${rel(pdfFile)}: it was printed from an earlier render (without --no-pdf it prints this one)`);
    }
    return {
      html: htmlFile,
      pdf: (opts.pdf ?? true) ? pdfFile : undefined,
      notebooks: checked.files,
      figures,
      warnings: checked.warnings,
    };
  } finally {
    fs.rmSync(tmpHtml, { force: true });
    stopCleanUp();
    if (browser && !opts.browser) await browser.close();
  }
}
