/**
 * Showing things in a tslab notebook: plotly figures (JupyterLab's plotly renderer draws them),
 * HTML tables and markdown. tslab is required lazily, inside the functions, so that lib/ loads in
 * plain Node (tests, CLI) where no kernel is listening.
 */
import type * as Tslab from 'tslab';
import { htmlTable, type TableOptions } from './html-table';
import type { Figure } from './plots';

export const PLOTLY_MIME = 'application/vnd.plotly.v1+json';

function tslab(): typeof Tslab {
  return require('tslab') as typeof Tslab;
}

/** Sends one MIME bundle to the notebook; a clear error outside a tslab kernel. */
function raw(mime: string, content: unknown): void {
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

/** Draws a plotly figure (from lib/report/plots) in the cell's output. */
export function show(figure: Figure): void {
  if (!figure || !Array.isArray(figure.data)) throw new Error('show() takes a plotly figure { data, layout } (from lib/report/plots)');
  // A plain, JSON-safe copy: typed arrays become arrays, undefined fields disappear.
  raw(PLOTLY_MIME, JSON.parse(JSON.stringify(figure)));
}

export function showHtml(html: string): void {
  raw('text/html', html);
}

export function showMarkdown(markdown: string): void {
  raw('text/markdown', markdown);
}

/** Renders rows as an HTML table (lib/report/html-table) in the cell's output. */
export function showTable<Row extends object>(rows: readonly Row[], opts?: TableOptions<Row>): void {
  showHtml(htmlTable(rows, opts));
}
