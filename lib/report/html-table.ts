/**
 * Results tables as HTML, for notebooks (lib/report/display) and the report (lib/report): one renderer,
 * so a table looks the same in both. Pure: rows in, an HTML string out.
 */

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Escapes text and turns `backticked` spans into <code> (for commands in prose). */
export function textToHtml(text: string): string {
  return escapeHtml(text).replace(/`([^`]+)`/g, '<code>$1</code>');
}

export type Cell = string | number | boolean | null | undefined | { html: string };

export interface Column<Row> {
  /** Header text. */
  label: string;
  /** The cell: a value (escaped, numbers formatted) or { html } (inserted as is). */
  value: (row: Row) => Cell;
  /** Right-align numbers (default: right when the first value is a number). */
  align?: 'left' | 'right';
}

export interface TableOptions<Row> {
  /** Columns in order (default: every key of the first row). */
  columns?: readonly Column<Row>[];
  caption?: string;
  /** Significant decimals for plain numbers (default 4). */
  digits?: number;
  /** Shown instead of an empty table. */
  empty?: string;
}

/** Formats a plain number: integers as they are, others to `digits` decimals; NaN as '–'. */
function formatNumber(value: number, digits = 4): string {
  if (!Number.isFinite(value)) return '–';
  if (Number.isInteger(value)) return String(value);
  return value.toFixed(digits);
}

/** "72.31 ± 0.45 %" from fractions; '–' when there is no value. */
export function formatPercent(mean: number, std?: number, digits = 2): string {
  if (!Number.isFinite(mean)) return '–';
  const m = (100 * mean).toFixed(digits);
  return std === undefined || !Number.isFinite(std) ? `${m}%` : `${m} ± ${(100 * std).toFixed(digits)}%`;
}

function cellHtml(value: Cell, digits: number): string {
  if (value === null || value === undefined) return '–';
  if (typeof value === 'object') return value.html;
  if (typeof value === 'number') return formatNumber(value, digits);
  return escapeHtml(String(value));
}

/** An HTML table with class "dcf-table" (styled by the report and by JupyterLab's defaults). */
export function htmlTable<Row extends object>(rows: readonly Row[], opts: TableOptions<Row> = {}): string {
  const digits = opts.digits ?? 4;
  const columns: readonly Column<Row>[] =
    opts.columns ??
    (rows.length
      ? Object.keys(rows[0]).map((k) => ({ label: k, value: (r: Row) => (r as Record<string, unknown>)[k] as Cell }))
      : []);
  const caption = opts.caption ? `<caption>${escapeHtml(opts.caption)}</caption>` : '';
  if (rows.length === 0) {
    return `<table class="dcf-table">${caption}<tbody><tr><td class="dcf-empty">${textToHtml(opts.empty ?? 'no rows')}</td></tr></tbody></table>`;
  }
  const aligns = columns.map((c) => c.align ?? (typeof c.value(rows[0]) === 'number' ? 'right' : 'left'));
  const head = columns.map((c, i) => `<th style="text-align:${aligns[i]}">${escapeHtml(c.label)}</th>`).join('');
  const body = rows
    .map(
      (row) =>
        `<tr>${columns.map((c, i) => `<td style="text-align:${aligns[i]}">${cellHtml(c.value(row), digits)}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return `<table class="dcf-table">${caption}<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
}
