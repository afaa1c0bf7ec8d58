/**
 * Small static SVG charts for the short report: deterministic text (the committed report is
 * compared byte for byte with a rebuild), no script, readable in a PDF. Three kinds: lines with
 * bands (curves over epochs), intervals (paired differences with their CIs), and an image with its
 * heat maps (response maps as PNG data URIs).
 */
import { PNG } from 'pngjs';
import { escapeHtml } from './html-table';

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const FONT = 'font-family="Helvetica, Arial, sans-serif"';
const f = (x: number) => (Math.round(x * 10) / 10).toString();

interface Axis {
  min: number;
  max: number;
  ticks: number[];
}

/** Round ticks covering [min, max] (about `count` of them). */
function niceAxis(min: number, max: number, count = 5): Axis {
  if (!(max > min)) [min, max] = [min - 1, max + 1];
  const raw = (max - min) / count;
  const step = [1, 2, 2.5, 5, 10].map((m) => m * 10 ** Math.floor(Math.log10(raw))).find((s) => s >= raw)!;
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let t = lo; t <= hi + step / 2; t += step) ticks.push(+t.toFixed(10));
  return { min: lo, max: hi, ticks };
}

export interface LineSeries {
  name: string;
  x: number[];
  y: number[];
  /** Half-width of a band around y (e.g. the sd over seeds), same length as y. */
  band?: number[];
  dashed?: boolean;
  color?: number;
  /** Index of a point to mark with a dot (e.g. the best epoch). */
  mark?: number;
  /** Leave the series out of the legend (many runs of one kind). */
  unlisted?: boolean;
}

/** One panel of lines (with optional bands) and a legend; x and y labels. */
export function lineChart(
  series: readonly LineSeries[],
  opts: { title: string; xLabel: string; yLabel: string; width?: number; height?: number },
): string {
  const W = opts.width ?? 340;
  // Two legend entries per row under the plot: the bottom margin grows with the rows, the plot keeps its height.
  const legendRows = Math.ceil(series.filter((s) => !s.unlisted).length / 2);
  const m = { l: 48, r: 10, t: 24, b: 32 + 12 * legendRows };
  const H = (opts.height ?? 206) + 12 * legendRows;
  const xs = series.flatMap((s) => s.x);
  const ys = series
    .flatMap((s) => s.y.flatMap((y, i) => [y - (s.band?.[i] ?? 0), y + (s.band?.[i] ?? 0)]))
    .filter(Number.isFinite);
  const ax = niceAxis(Math.min(...xs), Math.max(...xs), Math.min(6, Math.max(...xs) - Math.min(...xs)));
  const ay = niceAxis(Math.min(...ys), Math.max(...ys));
  const X = (x: number) => m.l + ((x - ax.min) / (ax.max - ax.min)) * (W - m.l - m.r);
  const Y = (y: number) => H - m.b - ((y - ay.min) / (ay.max - ay.min)) * (H - m.t - m.b);
  const parts: string[] = [];
  let legendEntries = 0;
  for (const t of ay.ticks)
    parts.push(
      `<line x1="${m.l}" x2="${W - m.r}" y1="${f(Y(t))}" y2="${f(Y(t))}" stroke="#e5e5e5"/><text x="${m.l - 4}" y="${f(Y(t) + 3)}" text-anchor="end">${t}</text>`,
    );
  for (const t of ax.ticks) parts.push(`<text x="${f(X(t))}" y="${H - m.b + 13}" text-anchor="middle">${t}</text>`);
  series.forEach((s, k) => {
    const color = PALETTE[(s.color ?? k) % PALETTE.length];
    if (s.band) {
      const upper = s.x.map((x, i) => `${f(X(x))},${f(Y(s.y[i] + s.band![i]))}`);
      const lower = s.x.map((x, i) => `${f(X(x))},${f(Y(s.y[i] - s.band![i]))}`).reverse();
      parts.push(
        `<polygon points="${[...upper, ...lower].join(' ')}" fill="${color}" fill-opacity="0.15" stroke="none"/>`,
      );
    }
    const d = s.x.map((x, i) => `${i ? 'L' : 'M'}${f(X(x))},${f(Y(s.y[i]))}`).join('');
    parts.push(
      `<path d="${d}" fill="none" stroke="${color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/>`,
    );
    if (s.mark !== undefined)
      parts.push(`<circle cx="${f(X(s.x[s.mark]))}" cy="${f(Y(s.y[s.mark]))}" r="3.5" fill="${color}"/>`);
    if (s.unlisted) return;
    const listed = legendEntries++;
    const lx = m.l + (listed % 2) * ((W - m.l - m.r) / 2);
    const ly = H - m.b + 42 + Math.floor(listed / 2) * 12;
    parts.push(
      `<line x1="${lx}" x2="${lx + 16}" y1="${ly - 3}" y2="${ly - 3}" stroke="${color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/>`,
    );
    parts.push(`<text x="${lx + 20}" y="${ly}">${escapeHtml(s.name)}</text>`);
  });
  return svg(W, H, [
    `<text x="${W / 2}" y="14" text-anchor="middle" font-weight="bold">${escapeHtml(opts.title)}</text>`,
    `<text x="12" y="${(H - m.b + m.t) / 2}" transform="rotate(-90 12 ${(H - m.b + m.t) / 2})" text-anchor="middle">${escapeHtml(opts.yLabel)}</text>`,
    `<text x="${(W + m.l) / 2}" y="${H - m.b + 26}" text-anchor="middle">${escapeHtml(opts.xLabel)}</text>`,
    `<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#888"/>`,
    ...parts,
  ]);
}

export interface IntervalRow {
  label: string;
  mean: number;
  low: number;
  high: number;
  /** The equivalence test's (90 %) interval, drawn thicker. */
  low90?: number;
  high90?: number;
  /** Individual values (each seed's difference), drawn as dots. */
  points?: number[];
}

/** Horizontal intervals on a shared axis, a zero line and optional ±margin lines (equivalence). */
export function intervalChart(
  rows: readonly IntervalRow[],
  opts: { title: string; xLabel: string; margin?: number; width?: number },
): string {
  const W = opts.width ?? 700;
  const rowH = 26;
  const labelW = 300;
  const m = { l: labelW, r: 16, t: 26, b: 34 };
  const H = m.t + m.b + rows.length * rowH;
  const values = rows.flatMap((r) => [r.low, r.high, r.mean, ...(r.points ?? [])]).filter(Number.isFinite);
  const margin = opts.margin ?? 0;
  const ax = niceAxis(Math.min(0, -margin, ...values), Math.max(0, margin, ...values), 8);
  const X = (x: number) => m.l + ((x - ax.min) / (ax.max - ax.min)) * (W - m.l - m.r);
  const parts: string[] = [];
  for (const t of ax.ticks)
    parts.push(
      `<line x1="${f(X(t))}" x2="${f(X(t))}" y1="${m.t}" y2="${H - m.b}" stroke="#eee"/><text x="${f(X(t))}" y="${H - m.b + 13}" text-anchor="middle">${t}</text>`,
    );
  parts.push(`<line x1="${f(X(0))}" x2="${f(X(0))}" y1="${m.t}" y2="${H - m.b}" stroke="#444"/>`);
  if (margin > 0) {
    for (const v of [-margin, margin])
      parts.push(
        `<line x1="${f(X(v))}" x2="${f(X(v))}" y1="${m.t}" y2="${H - m.b}" stroke="#2ca02c" stroke-dasharray="4,3"/>`,
      );
  }
  rows.forEach((r, i) => {
    const y = m.t + i * rowH + rowH / 2;
    parts.push(`<text x="${m.l - 8}" y="${f(y + 3)}" text-anchor="end">${escapeHtml(r.label)}</text>`);
    for (const p of r.points ?? []) parts.push(`<circle cx="${f(X(p))}" cy="${f(y)}" r="2.2" fill="#999"/>`);
    if (Number.isFinite(r.low) && Number.isFinite(r.high))
      parts.push(
        `<line x1="${f(X(r.low))}" x2="${f(X(r.high))}" y1="${f(y)}" y2="${f(y)}" stroke="#1f77b4" stroke-width="1.5"/>`,
      );
    if (r.low90 !== undefined && r.high90 !== undefined && Number.isFinite(r.low90) && Number.isFinite(r.high90)) {
      parts.push(
        `<line x1="${f(X(r.low90))}" x2="${f(X(r.high90))}" y1="${f(y)}" y2="${f(y)}" stroke="#1f77b4" stroke-width="4" stroke-opacity="0.5"/>`,
      );
    }
    if (Number.isFinite(r.mean))
      parts.push(
        `<rect x="${f(X(r.mean) - 3.5)}" y="${f(y - 3.5)}" width="7" height="7" fill="#1f77b4" transform="rotate(45 ${f(X(r.mean))} ${f(y)})"/>`,
      );
  });
  return svg(W, H, [
    `<text x="${W / 2}" y="15" text-anchor="middle" font-weight="bold">${escapeHtml(opts.title)}</text>`,
    `<text x="${(W + m.l) / 2}" y="${H - 6}" text-anchor="middle">${escapeHtml(opts.xLabel)}</text>`,
    ...parts,
  ]);
}

/** An image drawn pixel by pixel as a PNG data URI, each pixel scale×scale. */
export function pixelsPngUri(
  width: number,
  height: number,
  pixel: (x: number, y: number) => [number, number, number],
  scale = 1,
): string {
  const png = new PNG({ width: width * scale, height: height * scale });
  for (let y = 0; y < height * scale; y++) {
    for (let x = 0; x < width * scale; x++) {
      const [r, g, b] = pixel(Math.floor(x / scale), Math.floor(y / scale));
      const o = (y * width * scale + x) * 4;
      png.data[o] = r;
      png.data[o + 1] = g;
      png.data[o + 2] = b;
      png.data[o + 3] = 255;
    }
  }
  return `data:image/png;base64,${PNG.sync.write(png, { deflateLevel: 9 }).toString('base64')}`;
}

/** Viridis-like colour for t in [0, 1] (five stops, linear between them). */
export function heatColor(t: number): [number, number, number] {
  const stops: [number, number, number][] = [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
  ];
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u));
  const w = u - i;
  return stops[i].map((c, k) => Math.round(c + w * (stops[i + 1][k] - c))) as [number, number, number];
}

function svg(w: number, h: number, body: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" ${FONT} font-size="10">${body.join('')}</svg>`;
}
