// The report renders the executed notebooks through the real path (nbconvert with the project's
// template, Chromium for the PDF): a table of contents from the Markdown headings, code inputs
// hidden until "Show code", plotly figures drawn offline, tables and images inline. A missing,
// failed or outdated executed notebook is a clear error, and the previous report stays as it was.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../lib/report/chromium';
import { formatNotebook, type NotebookCell, type NotebookJson, type NotebookOutput } from '../lib/report/notebooks';
import { buildReport, checkExecutedNotebooks } from '../lib/report/report';

let browser: Browser;
let root: string;
beforeAll(async () => {
  browser = await launchChromium();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-report-'));
});
afterAll(async () => {
  await browser?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

// A 1×1 PNG.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const FIGURE = {
  data: [{ type: 'bar', x: ['dynamic', 'static'], y: [0.78, 0.74], name: 'fixture-trace' }],
  layout: { title: { text: 'Fixture figure' }, width: 1400, height: 420 },
};

let cellCount = 0;
const md = (source: string): NotebookCell => ({ cell_type: 'markdown', id: `c${cellCount++}`, source, metadata: {} });
const code = (source: string, outputs: NotebookOutput[] = []): NotebookCell => ({
  cell_type: 'code',
  id: `c${cellCount++}`,
  source,
  metadata: {},
  outputs,
  execution_count: 1,
});
const notebook = (cells: NotebookCell[], executed: boolean): NotebookJson => ({
  cells: executed
    ? cells
    : cells.map((c) => (c.cell_type === 'code' ? { ...c, outputs: [], execution_count: null } : c)),
  metadata: {
    kernelspec: { name: 'tslab', display_name: 'TypeScript', language: 'typescript' },
    language_info: { name: 'typescript' },
    ...(executed
      ? {
          dcf_execution: {
            status: 'ok',
            started: '2026-12-02T10:00:00Z',
            finished: '2026-12-02T10:01:00Z',
            quick: false,
          },
        }
      : {}),
  },
  nbformat: 4,
  nbformat_minor: 5,
});

const FIXTURES: Record<string, NotebookCell[]> = {
  '00-kernel-check.ipynb': [
    md('# 00 · Kernel check, not in the report'),
    code('1 + 1', [{ output_type: 'execute_result', data: { 'text/plain': '2' } }]),
  ],
  '01-first.ipynb': [
    md('# 01 · First notebook\n\nProse of the first notebook.'),
    code('const hiddenInputMarker = 42;', [
      { output_type: 'stream', name: 'stdout', text: 'printed-by-the-cell\n' },
      { output_type: 'stream', name: 'stderr', text: 'stderr-warning-marker\n' },
    ]),
    md('## 1 · A table'),
    code('showTable(rows)', [
      {
        output_type: 'display_data',
        data: { 'text/html': '<table><tr><th>head</th></tr><tr><td>fixture-cell-value</td></tr></table>' },
      },
    ]),
    code('const noOutputHere = 1;'),
  ],
  '02-second.ipynb': [
    md('# 02 · Second notebook'),
    md('## 1 · A figure'),
    code('show(figure)', [{ output_type: 'display_data', data: { 'application/vnd.plotly.v1+json': FIGURE } }]),
    md('## 2 · An image'),
    code('display.png(bytes)', [{ output_type: 'display_data', data: { 'image/png': PNG } }]),
  ],
};

/** notebooks/ (clean) and results/notebooks/ (executed copies, but `skip`) under `dir`. */
function makeLab(dir: string, skip: string[] = []): { sourceDir: string; notebooksDir: string; outDir: string } {
  const sourceDir = path.join(dir, 'notebooks');
  const notebooksDir = path.join(dir, 'results', 'notebooks');
  fs.mkdirSync(sourceDir, { recursive: true });
  fs.mkdirSync(notebooksDir, { recursive: true });
  for (const [name, cells] of Object.entries(FIXTURES)) {
    fs.writeFileSync(path.join(sourceDir, name), formatNotebook(notebook(cells, false)));
    if (!skip.includes(name)) fs.writeFileSync(path.join(notebooksDir, name), formatNotebook(notebook(cells, true)));
  }
  return { sourceDir, notebooksDir, outDir: path.join(dir, 'results', 'report') };
}

function editExecuted(file: string, edit: (nb: NotebookJson) => void): void {
  const nb = JSON.parse(fs.readFileSync(file, 'utf8')) as NotebookJson;
  edit(nb);
  fs.writeFileSync(file, formatNotebook(nb));
}

/** Every file in the report folder with the sha256 of its bytes (no temporary file may stay). */
function snapshot(outDir: string): Record<string, string> {
  return Object.fromEntries(
    fs
      .readdirSync(outDir)
      .sort()
      .map((f) => [
        f,
        createHash('sha256')
          .update(fs.readFileSync(path.join(outDir, f)))
          .digest('hex'),
      ]),
  );
}

describe('report from the executed notebooks', () => {
  const lab = () => makeLab(path.join(root, 'lab'));
  let dirs: ReturnType<typeof makeLab>;

  it(
    'renders one HTML document with a table of contents, hidden code, inline figures, and a PDF',
    { timeout: 180_000 },
    async () => {
      dirs = lab();
      const messages: string[] = [];
      const report = await buildReport({ ...dirs, browser, onProgress: (m) => messages.push(m) });
      expect(report.html).toBe(path.join(dirs.outDir, 'report.html'));
      expect(report.notebooks.map((f) => path.basename(f))).toEqual(['01-first.ipynb', '02-second.ipynb']);
      expect(report.figures).toBe(1);
      expect(fs.readdirSync(dirs.outDir).sort()).toEqual(['report.html', 'report.pdf']);

      const html = fs.readFileSync(report.html, 'utf8');
      // The table of contents: each notebook's title and its sections, linking to unique ids.
      const toc = /<nav[^>]*id="dcf-toc"[^>]*>([\s\S]*?)<\/nav>/.exec(html)?.[1] ?? '';
      for (const [id, text] of [
        ['nb01', '01 · First notebook'],
        ['nb01-1-a-table', '1 · A table'],
        ['nb02', '02 · Second notebook'],
        ['nb02-1-a-figure', '1 · A figure'],
        ['nb02-2-an-image', '2 · An image'],
      ]) {
        expect(toc).toContain(`<a href="#${id}">${text}</a>`);
        expect(html).toContain(`id="${id}"`);
      }
      expect(html).not.toContain('Kernel check'); // 00 is not part of the report
      expect(html).toContain('Prose of the first notebook.');
      expect(html).toContain('<td>fixture-cell-value</td>');
      expect(html).toContain('printed-by-the-cell');
      expect(html).not.toContain('stderr-warning-marker');
      expect(html).toContain(`data:image/png;base64,${PNG}`);
      expect(html).toContain('application/vnd.plotly.v1+json');
      expect(html).toContain('plotly.js v'); // the bundle itself, inlined
      // Offline: no script, stylesheet or image from elsewhere (plotly.js's own source aside).
      const outsideScripts = html.replace(/<script[\s\S]*?<\/script>/g, '');
      expect(outsideScripts).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//i);
      expect(html).not.toMatch(/<script[^>]+src=/i);
      expect(outsideScripts).not.toMatch(/cdn/i);

      // In the browser: code hidden until "Show code", the figure drawn, nothing fetched.
      const page = await browser.newPage();
      const requests: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url());
      });
      try {
        await page.goto(pathToFileURL(report.html).href);
        await page.waitForFunction(
          () => (window as unknown as { dcfReport?: { done: boolean } }).dcfReport?.done === true,
        );
        expect(await page.getByText('hiddenInputMarker').isVisible()).toBe(false);
        expect(await page.getByText('noOutputHere').isVisible()).toBe(false);
        expect(await page.getByText('printed-by-the-cell').isVisible()).toBe(true);
        expect(await page.getByText('fixture-cell-value').isVisible()).toBe(true);
        expect(await page.locator('.dcf-plotly .main-svg').count()).toBeGreaterThan(0);
        expect(await page.locator('.dcf-plotly').textContent()).toContain('Fixture figure');
        // Wider than the page: drawn at the page's width.
        const width = await page
          .locator('.dcf-plotly .main-svg')
          .first()
          .evaluate((e) => e.getBoundingClientRect().width);
        expect(width).toBeLessThan(1000);
        await page.click('#dcf-code-toggle');
        expect(await page.getByText('hiddenInputMarker').isVisible()).toBe(true);
        expect(requests).toEqual([]);
      } finally {
        await page.close();
      }

      const pdf = fs.readFileSync(report.pdf!);
      expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
      expect(pdf.length).toBeGreaterThan(20_000);
      expect(messages.some((m) => m.startsWith('wrote') && m.includes('report.pdf'))).toBe(true);
    },
  );

  it(
    'refuses a missing notebook with the command that makes it, and keeps the previous report',
    { timeout: 60_000 },
    async () => {
      const before = snapshot(dirs.outDir);
      expect(Object.keys(before)).toEqual(['report.html', 'report.pdf']);
      fs.renameSync(path.join(dirs.notebooksDir, '02-second.ipynb'), path.join(root, 'aside.ipynb'));
      try {
        await expect(buildReport({ ...dirs, browser })).rejects.toThrow(
          /02-second\.ipynb is missing: run `npm start` \(or `npm start -- --only 02`\) first/,
        );
        expect(() => checkExecutedNotebooks({ ...dirs, quick: true })).toThrow(/`npm start -- --quick --only 02`/);
        expect(() => checkExecutedNotebooks({ ...dirs, notebooksDir: path.join(root, 'none') })).toThrow(
          /^no executed notebooks in .*none: run `npm start` first/,
        );
        expect(snapshot(dirs.outDir)).toEqual(before);
      } finally {
        fs.renameSync(path.join(root, 'aside.ipynb'), path.join(dirs.notebooksDir, '02-second.ipynb'));
      }
    },
  );

  it(
    'refuses a notebook with an error, naming it and the cell, and keeps the previous report',
    { timeout: 60_000 },
    async () => {
      const before = snapshot(dirs.outDir);
      const file = path.join(dirs.notebooksDir, '02-second.ipynb');
      const good = fs.readFileSync(file);
      try {
        // An error output, as a Python kernel writes it.
        editExecuted(file, (nb) =>
          nb.cells[2].outputs!.push({ output_type: 'error', ename: 'Error', evalue: 'boom', traceback: [] }),
        );
        await expect(buildReport({ ...dirs, browser })).rejects.toThrow(
          /02-second\.ipynb has an error in cell 2 \(`show\(figure\)`\): Error: boom\. Fix it and run `npm start -- --only 02`/,
        );
        // tslab's way: no error output, the runner's record names the cell.
        fs.writeFileSync(file, good);
        editExecuted(
          file,
          (nb) =>
            (nb.metadata.dcf_execution = {
              status: 'error',
              failed_cell: 4,
              message: 'TypeError: x is not a function',
            }),
        );
        await expect(buildReport({ ...dirs, browser, pdf: false })).rejects.toThrow(
          /has an error in cell 4 \(`display\.png\(bytes\)`\): TypeError: x is not a function/,
        );
        expect(snapshot(dirs.outDir)).toEqual(before);
      } finally {
        fs.writeFileSync(file, good);
      }
    },
  );

  it(
    'refuses an executed copy of an older notebook unless told to render it anyway',
    { timeout: 120_000 },
    async () => {
      const source = path.join(dirs.sourceDir, '01-first.ipynb');
      const good = fs.readFileSync(source);
      try {
        editExecuted(source, (nb) => (nb.cells[3].source = 'showTable(otherRows)'));
        expect(() => checkExecutedNotebooks(dirs)).toThrow(
          /01-first\.ipynb was run from another version of .*01-first\.ipynb \(cell 3 differs\): run `npm start -- --only 01`/,
        );
        const report = await buildReport({ ...dirs, browser, pdf: false, allowStale: true });
        expect(report.warnings).toHaveLength(1);
        expect(fs.readFileSync(report.html, 'utf8')).toContain('changed since they ran');
      } finally {
        fs.writeFileSync(source, good);
      }
    },
  );
});
