/**
 * Writes figures to results/figures/<name>.{json,svg,png}: the plotly spec, and the two images
 * drawn by plotly.js itself in headless Chromium, so the files look exactly like the notebook.
 *
 * plotly.js comes from npm (plotly.js-dist-min, the version JupyterLab's plotly renderer uses)
 * and is loaded into the page from its file: the page never touches the network. One browser
 * and one page draw any number of figures; every file is written to a temporary name and
 * renamed.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Browser, Page } from 'playwright-core';
import { writeFileAtomic } from '../formats/index';
import { launchChromium } from './chromium';
import { PATHS } from '../config';
import type { Figure } from './plots';

export type ImageFormat = 'png' | 'svg';

export interface ExportOptions {
  /** Output folder (default results/figures). */
  dir?: string;
  /** Default both. The plotly spec (.json) is always written. */
  formats?: readonly ImageFormat[];
  /** Pixel size when the figure's layout does not set one (defaults 900 × 450). */
  width?: number;
  height?: number;
  /** PNG device-pixel ratio (default 2: sharp in the PDF report). */
  scale?: number;
}

export interface ExportedFigure {
  name: string;
  json: string;
  svg?: string;
  png?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Figure names become file names: letters, digits, '.', '_' and '-' only. */
function checkFigureName(name: string): string {
  if (!NAME.test(name) || name.endsWith('.json')) {
    throw new Error(
      `figure name '${name}' must be letters, digits, '.', '_' or '-' (it becomes results/figures/<name>.png)`,
    );
  }
  return name;
}

function checkFigure(name: string, figure: Figure): void {
  if (!figure || !Array.isArray(figure.data) || typeof figure.layout !== 'object' || figure.layout === null) {
    throw new Error(
      `figure '${name}' is not a plotly figure: expected { data: [...], layout: {...} } (from lib/report/plots)`,
    );
  }
}

/** The plotly.js bundle's source, read once per process. */
let plotlySource: string | undefined;
function plotlyJs(): string {
  plotlySource ??= fs.readFileSync(require.resolve('plotly.js-dist-min/plotly.min.js'), 'utf8');
  return plotlySource;
}

/** Writes the figure's plotly spec (no browser needed): the report redraws it from this file. */
export function saveFigureJson(name: string, figure: Figure, dir: string = PATHS.figures): string {
  checkFigure(name, figure);
  const file = path.join(dir, `${checkFigureName(name)}.json`);
  writeFileAtomic(file, JSON.stringify(figure));
  return file;
}

/** Reads a spec written by saveFigureJson / FigureExporter.export. */
export function loadFigureJson(name: string, dir: string = PATHS.figures): Figure {
  const file = path.join(dir, `${checkFigureName(name)}.json`);
  if (!fs.existsSync(file)) throw new Error(`no figure '${name}' in ${dir} (expected ${file})`);
  const fig = JSON.parse(fs.readFileSync(file, 'utf8')) as Figure;
  if (!Array.isArray(fig.data) || typeof fig.layout !== 'object')
    throw new Error(`${file} is not a plotly figure ({ data, layout })`);
  return fig;
}

/** Names of the figure specs saved in `dir`, sorted. */
export function listSavedFigures(dir: string = PATHS.figures): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json') && !f.startsWith('.'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** Draws plotly figures to SVG and PNG in one headless Chromium page. */
export class FigureExporter {
  private constructor(
    private readonly browser: Browser,
    private readonly page: Page,
    private readonly ownsBrowser: boolean,
  ) {}

  /** Opens a page with plotly.js loaded (in `browser`, or a Chromium launched for it). */
  static async open(opts: { browser?: Browser } = {}): Promise<FigureExporter> {
    const browser = opts.browser ?? (await launchChromium());
    try {
      const page = await browser.newPage();
      // Nothing in a figure needs the network; refuse any request rather than wait on it.
      await page.route(/^(https?|wss?):/, (route) => route.abort());
      await page.setContent(
        '<!doctype html><html><head><meta charset="utf-8"></head><body><div id="figure"></div></body></html>',
      );
      await page.addScriptTag({ content: plotlyJs() });
      // Page code names the browser's globals through globalThis: tslab compiles lib/ without the DOM types.
      const version = await page.evaluate(
        () => (globalThis as unknown as { Plotly?: { version: string } }).Plotly?.version,
      );
      if (!version) throw new Error('plotly.js did not load in Chromium');
      return new FigureExporter(browser, page, !opts.browser);
    } catch (err) {
      if (!opts.browser) await browser.close();
      throw err;
    }
  }

  /** Renders one figure to an SVG string or PNG bytes. */
  async render(figure: Figure, format: 'svg', opts?: ExportOptions): Promise<string>;
  async render(figure: Figure, format: 'png', opts?: ExportOptions): Promise<Buffer>;
  async render(figure: Figure, format: ImageFormat, opts: ExportOptions = {}): Promise<string | Buffer> {
    const width = numberOr(figure.layout.width, opts.width ?? 900);
    const height = numberOr(figure.layout.height, opts.height ?? 450);
    const scale = opts.scale ?? 2;
    const url = await this.page.evaluate(
      async ({ fig, format, width, height, scale }) => {
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        const page = globalThis as any;
        const Plotly = page.Plotly;
        const div = page.document.getElementById('figure');
        Plotly.purge(div);
        await Plotly.newPlot(div, fig.data, { ...fig.layout, width, height }, { staticPlot: true });
        return (await Plotly.toImage(div, { format, width, height, scale: format === 'png' ? scale : 1 })) as string;
      },
      { fig: figure, format, width, height, scale },
    );
    const comma = url.indexOf(',');
    const header = url.slice(0, comma);
    const body = url.slice(comma + 1);
    if (format === 'png') {
      if (!header.startsWith('data:image/png;base64')) throw new Error(`plotly returned '${header}' for a PNG`);
      return Buffer.from(body, 'base64');
    }
    if (!header.startsWith('data:image/svg+xml')) throw new Error(`plotly returned '${header}' for an SVG`);
    return header.endsWith(';base64') ? Buffer.from(body, 'base64').toString('utf8') : decodeURIComponent(body);
  }

  /** Writes <dir>/<name>.json and the requested images; returns the paths written. */
  async export(name: string, figure: Figure, opts: ExportOptions = {}): Promise<ExportedFigure> {
    checkFigureName(name);
    checkFigure(name, figure);
    const dir = opts.dir ?? PATHS.figures;
    const formats = opts.formats ?? ['svg', 'png'];
    const out: ExportedFigure = { name, json: saveFigureJson(name, figure, dir) };
    if (formats.includes('svg')) {
      out.svg = path.join(dir, `${name}.svg`);
      writeFileAtomic(out.svg, await this.render(figure, 'svg', opts));
    }
    if (formats.includes('png')) {
      out.png = path.join(dir, `${name}.png`);
      writeFileAtomic(out.png, await this.render(figure, 'png', opts));
    }
    return out;
  }

  /** Closes the page, and the browser when this exporter launched it. */
  async close(): Promise<void> {
    await this.page.close().catch(() => undefined);
    if (this.ownsBrowser) await this.browser.close();
  }
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}

/**
 * Exports several figures with one browser: results/figures/<name>.{json,svg,png} for each entry.
 * `onProgress` hears each name as it is written.
 */
export async function exportFigures(
  figures: Record<string, Figure>,
  opts: ExportOptions & { browser?: Browser; onProgress?: (name: string) => void } = {},
): Promise<ExportedFigure[]> {
  for (const [name, figure] of Object.entries(figures)) {
    checkFigureName(name);
    checkFigure(name, figure);
  }
  const exporter = await FigureExporter.open({ browser: opts.browser });
  try {
    const written: ExportedFigure[] = [];
    for (const [name, figure] of Object.entries(figures)) {
      written.push(await exporter.export(name, figure, opts));
      opts.onProgress?.(name);
    }
    return written;
  } finally {
    await exporter.close();
  }
}
