/**
 * Figures as data: every function here turns numbers into a plotly figure object
 * ({ data, layout }) and does nothing else. Notebooks display them (lib/report/display), the export
 * writes them to PNG/SVG (lib/report/figures-export), the report assembles them (lib/report).
 *
 * Conventions: accuracy is a fraction in [0, 1] shown as percent; images are uint8 HWC RGB
 * ([32, 32, 3]); response maps are class-major ([10, 8, 8]).
 */
import { CLASS_NAMES, FEATURE_SIZE, IMAGE_SIZE } from '../config';
import { groupBy, type EpochPoint, type MeanStd, type Split, type StepPoint } from '../experiments/index';

/** One plotly trace: plotly.js attributes, passed through as they are. */
export interface Trace {
  type?: string;
  [attribute: string]: unknown;
}
export type Layout = Record<string, unknown>;
/** What Plotly.newPlot, JupyterLab's plotly renderer and the exporter take. */
export interface Figure {
  data: Trace[];
  layout: Layout;
}

/** plotly's default (d3 category10) colours, one per run or variant. */
const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
] as const;
/** Fixed colours for the two heads, so every figure shows them the same way. */
const VARIANT_COLORS: Record<string, string> = { dynamic: '#1f77b4', static: '#ff7f0e' };
const SPLIT_DASH: Record<string, string> = { train: 'solid', val: 'dot', test: 'dash' };
// Markers differ too: a one-epoch run has no line to dash.
const SPLIT_SYMBOL: Record<string, string> = { train: 'circle', val: 'diamond', test: 'square-open' };

const BASE_LAYOUT: Layout = {
  font: { family: 'Liberation Sans, Arial, sans-serif', size: 12 },
  paper_bgcolor: 'white',
  plot_bgcolor: 'white',
  margin: { l: 60, r: 20, t: 60, b: 50 },
};
const GRID_AXIS = { showgrid: true, gridcolor: '#e5e5e5', zeroline: false, linecolor: '#888', showline: true };

function colorFor(key: string, index: number): string {
  return VARIANT_COLORS[key] ?? PALETTE[index % PALETTE.length];
}

/** rgba() of a #rrggbb colour, for translucent bands. */
function withAlpha(hex: string, alpha: number): string {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) throw new Error(`withAlpha: expected a #rrggbb colour, got '${hex}'`);
  return `rgba(${parseInt(m[1], 16)}, ${parseInt(m[2], 16)}, ${parseInt(m[3], 16)}, ${alpha})`;
}

// ---------------------------------------------------------------------------------------------
// Subplot grids (plotly.js has no make_subplots: axes and domains are laid out here).

interface Cell {
  /** Trace references: 'x', 'x2', … */
  x: string;
  y: string;
  /** Layout keys: 'xaxis', 'xaxis2', … */
  xKey: string;
  yKey: string;
  xDomain: [number, number];
  yDomain: [number, number];
}

/** Cells of a rows × cols grid, row-major from the top left. */
function grid(rows: number, cols: number, gapX = 0.06, gapY = 0.1): Cell[] {
  const w = (1 - gapX * (cols - 1)) / cols;
  const h = (1 - gapY * (rows - 1)) / rows;
  const cells: Cell[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const suffix = i === 0 ? '' : String(i + 1);
      const x0 = c * (w + gapX);
      const y1 = 1 - r * (h + gapY);
      cells.push({
        x: `x${suffix}`,
        y: `y${suffix}`,
        xKey: `xaxis${suffix}`,
        yKey: `yaxis${suffix}`,
        xDomain: [round(x0), round(x0 + w)],
        yDomain: [round(y1 - h), round(y1)],
      });
    }
  }
  return cells;
}

function round(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}

/** A title centred above a grid cell. */
function cellTitle(cell: Cell, text: string, color = '#222', size = 12): Record<string, unknown> {
  return {
    text,
    xref: 'paper',
    yref: 'paper',
    x: (cell.xDomain[0] + cell.xDomain[1]) / 2,
    y: cell.yDomain[1],
    xanchor: 'center',
    yanchor: 'bottom',
    showarrow: false,
    font: { size, color },
  };
}

function axisPair(layout: Layout, cell: Cell, x: Record<string, unknown>, y: Record<string, unknown>): void {
  layout[cell.xKey] = { ...x, domain: cell.xDomain, anchor: cell.y };
  layout[cell.yKey] = { ...y, domain: cell.yDomain, anchor: cell.x };
}

function runOrder(rows: readonly { run: string }[], runs?: readonly string[]): string[] {
  const present = [...new Set(rows.map((r) => r.run))];
  if (!runs) return present;
  const missing = runs.filter((r) => !present.includes(r));
  if (missing.length)
    throw new Error(`no metric rows for run(s) ${missing.join(', ')}; runs present: ${present.join(', ') || 'none'}`);
  return [...runs];
}

// ---------------------------------------------------------------------------------------------
// Training curves.

export interface CurveOptions {
  /** Which runs to draw, in this order (default: all, in first-seen order). */
  runs?: readonly string[];
  /** Which splits to draw (default: every split present). */
  splits?: readonly Split[];
  title?: string;
}

/**
 * Loss (left) and accuracy (right) against epoch for each run: one colour per run, the line
 * style says the split (train solid, val dotted, test dashed).
 */
export function trainingCurves(rows: readonly EpochPoint[], opts: CurveOptions = {}): Figure {
  const runs = runOrder(rows, opts.runs);
  const [lossCell, accCell] = grid(1, 2, 0.1);
  const data: Trace[] = [];
  runs.forEach((run, i) => {
    const color = PALETTE[i % PALETTE.length];
    const runRows = rows.filter((r) => r.run === run);
    for (const [split, list] of groupBy(runRows, (r) => r.split)) {
      if (opts.splits && !opts.splits.includes(split as Split)) continue;
      const sorted = [...list].sort((a, b) => a.epoch - b.epoch);
      const line = { color, dash: SPLIT_DASH[split] ?? 'solid', width: 2 };
      const marker = { color, size: 5, symbol: SPLIT_SYMBOL[split] ?? 'circle' };
      const common = { type: 'scatter', mode: sorted.length > 1 ? 'lines+markers' : 'markers', line, marker };
      const name = `${run} · ${split}`;
      const epochs = sorted.map((r) => r.epoch);
      data.push({
        ...common,
        name,
        legendgroup: name,
        x: epochs,
        y: sorted.map((r) => r.loss),
        xaxis: lossCell.x,
        yaxis: lossCell.y,
        hovertemplate: `${name}<br>epoch %{x}<br>loss %{y:.4f}<extra></extra>`,
      });
      data.push({
        ...common,
        name,
        legendgroup: name,
        showlegend: false,
        x: epochs,
        y: sorted.map((r) => r.accuracy),
        xaxis: accCell.x,
        yaxis: accCell.y,
        hovertemplate: `${name}<br>epoch %{x}<br>accuracy %{y:.2%}<extra></extra>`,
      });
    }
  });
  const layout: Layout = {
    ...BASE_LAYOUT,
    title: { text: opts.title ?? 'Training curves' },
    height: 420,
    legend: { orientation: 'h', y: -0.26, yanchor: 'top' },
    annotations: [cellTitle(lossCell, 'Loss'), cellTitle(accCell, 'Accuracy')],
  };
  axisPair(
    layout,
    lossCell,
    { ...GRID_AXIS, title: { text: 'epoch' }, dtick: 1 },
    { ...GRID_AXIS, title: { text: 'cross-entropy' } },
  );
  axisPair(layout, accCell, { ...GRID_AXIS, title: { text: 'epoch' }, dtick: 1 }, { ...GRID_AXIS, tickformat: '.1~%' });
  if (maxEpoch(rows) > 20) {
    delete (layout[lossCell.xKey] as Record<string, unknown>).dtick;
    delete (layout[accCell.xKey] as Record<string, unknown>).dtick;
  }
  return { data, layout };
}

function maxEpoch(rows: readonly EpochPoint[]): number {
  return rows.reduce((m, r) => Math.max(m, r.epoch), 0);
}

/** Exponential moving average with bias correction (as TensorBoard's smoothing). */
export function smooth(values: readonly number[], factor: number): number[] {
  if (!(factor >= 0 && factor < 1)) throw new Error(`smoothing factor must be in [0, 1), got ${factor}`);
  const out: number[] = [];
  let avg = 0;
  values.forEach((v, i) => {
    avg = factor * avg + (1 - factor) * v;
    out.push(avg / (1 - factor ** (i + 1)));
  });
  return out;
}

/** Per-step training loss and accuracy: raw values faint, smoothed values bold. */
export function stepCurves(
  steps: readonly StepPoint[],
  opts: { runs?: readonly string[]; smoothing?: number; title?: string } = {},
): Figure {
  const runs = runOrder(steps, opts.runs);
  const factor = opts.smoothing ?? 0.9;
  const [lossCell, accCell] = grid(1, 2, 0.1);
  const data: Trace[] = [];
  runs.forEach((run, i) => {
    const color = PALETTE[i % PALETTE.length];
    const sorted = steps.filter((s) => s.run === run).sort((a, b) => a.step - b.step);
    const x = sorted.map((s) => s.step);
    for (const [cell, metric] of [
      [lossCell, 'loss'],
      [accCell, 'accuracy'],
    ] as const) {
      const y = sorted.map((s) => s[metric]);
      data.push({
        type: 'scatter',
        mode: 'lines',
        x,
        y,
        xaxis: cell.x,
        yaxis: cell.y,
        line: { color: withAlpha(color, 0.25), width: 1 },
        showlegend: false,
        hoverinfo: 'skip',
        legendgroup: run,
      });
      data.push({
        type: 'scatter',
        mode: 'lines',
        x,
        y: smooth(y, factor),
        xaxis: cell.x,
        yaxis: cell.y,
        name: run,
        legendgroup: run,
        showlegend: metric === 'loss',
        line: { color, width: 2 },
        hovertemplate: `${run}<br>step %{x}<br>${metric} %{y:${metric === 'loss' ? '.4f' : '.2%'}}<extra>smoothed</extra>`,
      });
    }
  });
  const layout: Layout = {
    ...BASE_LAYOUT,
    title: { text: opts.title ?? `Training steps (smoothing ${factor})` },
    height: 380,
    legend: { orientation: 'h', y: -0.26, yanchor: 'top' },
    annotations: [cellTitle(lossCell, 'Loss per step'), cellTitle(accCell, 'Batch accuracy')],
  };
  axisPair(layout, lossCell, { ...GRID_AXIS, title: { text: 'step' } }, { ...GRID_AXIS });
  axisPair(layout, accCell, { ...GRID_AXIS, title: { text: 'step' } }, { ...GRID_AXIS, tickformat: '.1~%' });
  return { data, layout };
}

/** One bar per experiment with its mean ± std error bar (e.g. best test accuracy over seeds). */
export function meanStdBars(
  items: readonly ({ name: string } & MeanStd)[],
  opts: { title?: string; yTitle?: string; percent?: boolean } = {},
): Figure {
  const percent = opts.percent ?? true;
  const fmt = percent ? '.2%' : '.4g';
  return {
    data: [
      {
        type: 'bar',
        x: items.map((i) => i.name),
        y: items.map((i) => i.mean),
        error_y: { type: 'data', array: items.map((i) => i.std), visible: true, color: '#444' },
        marker: { color: items.map((i, k) => colorFor(i.name, k)) },
        customdata: items.map((i) => [i.std, i.n]),
        text: items.map((i) => (percent ? `${(i.mean * 100).toFixed(1)}%` : i.mean.toPrecision(3))),
        textposition: 'outside',
        cliponaxis: false,
        hovertemplate: `%{x}<br>%{y:${fmt}} ± %{customdata[0]:${fmt}} (n=%{customdata[1]})<extra></extra>`,
      },
    ],
    layout: {
      ...BASE_LAYOUT,
      title: { text: opts.title ?? 'Best test accuracy (mean ± std over seeds)' },
      height: 400,
      xaxis: { ...GRID_AXIS, showgrid: false },
      yaxis: {
        ...GRID_AXIS,
        title: { text: opts.yTitle ?? '' },
        tickformat: percent ? '.0%' : undefined,
        rangemode: 'tozero',
      },
    },
  };
}

/** Grouped bars of per-class accuracy, one group of ten bars per entry (e.g. per variant). */
export function perClassAccuracy(
  entries: readonly { name: string; perClass: ArrayLike<number> }[],
  opts: { classNames?: readonly string[]; title?: string } = {},
): Figure {
  const names = opts.classNames ?? CLASS_NAMES;
  return {
    data: entries.map((e, i) => {
      if (e.perClass.length !== names.length) {
        throw new Error(`perClassAccuracy: '${e.name}' has ${e.perClass.length} values for ${names.length} classes`);
      }
      return {
        type: 'bar',
        name: e.name,
        x: [...names],
        y: Array.from(e.perClass),
        marker: { color: colorFor(e.name, i) },
        hovertemplate: `${e.name}<br>%{x}: %{y:.1%}<extra></extra>`,
      };
    }),
    layout: {
      ...BASE_LAYOUT,
      title: { text: opts.title ?? 'Per-class test accuracy' },
      barmode: 'group',
      height: 380,
      yaxis: { ...GRID_AXIS, tickformat: '.0%', range: [0, 1] },
      xaxis: { ...GRID_AXIS, showgrid: false },
      legend: { orientation: 'h', y: -0.15 },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Confusion matrix.

/** Heatmap of counts[true][predicted]; colour is the row-normalised rate, the text the count. */
export function confusionMatrixFigure(
  counts: readonly (readonly number[])[],
  opts: { classNames?: readonly string[]; title?: string } = {},
): Figure {
  const names = opts.classNames ?? CLASS_NAMES;
  if (counts.length !== names.length || counts.some((row) => row.length !== names.length)) {
    throw new Error(`confusionMatrixFigure: expected a ${names.length}×${names.length} matrix`);
  }
  const rates = counts.map((row) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((v) => (total ? v / total : 0));
  });
  const total = counts.reduce((a, row) => a + row.reduce((x, y) => x + y, 0), 0);
  const correct = counts.reduce((a, row, i) => a + row[i], 0);
  return {
    data: [
      {
        type: 'heatmap',
        z: rates,
        x: [...names],
        y: [...names],
        text: counts.map((row) => row.map(String)),
        texttemplate: '%{text}',
        colorscale: 'Blues',
        // plotly.js's Blues runs dark → light; reversed, a high rate is dark.
        reversescale: true,
        zmin: 0,
        zmax: 1,
        colorbar: { title: { text: 'rate' }, tickformat: '.0%' },
        hovertemplate: 'true %{y}<br>predicted %{x}<br>%{text} images (%{z:.1%} of the row)<extra></extra>',
      },
    ],
    layout: {
      ...BASE_LAYOUT,
      title: {
        text: `${opts.title ?? 'Confusion matrix'} — accuracy ${total ? ((100 * correct) / total).toFixed(2) : '–'}% of ${total}`,
      },
      height: 560,
      width: 640,
      xaxis: { title: { text: 'predicted' }, tickangle: -45, constrain: 'domain' },
      yaxis: { title: { text: 'true' }, autorange: 'reversed', scaleanchor: 'x', constrain: 'domain' },
      margin: { l: 90, r: 20, t: 60, b: 90 },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Images.

/** uint8 HWC pixels of image `index` in a [n, h, w, 3] buffer, as plotly's image z ([h][w][rgb]). */
function imageRows(pixels: ArrayLike<number>, index: number, size: number): number[][][] {
  const base = index * size * size * 3;
  if (base + size * size * 3 > pixels.length) {
    throw new Error(
      `image ${index} is outside the pixel buffer (${pixels.length} bytes = ${pixels.length / (size * size * 3)} images)`,
    );
  }
  const rows: number[][][] = [];
  for (let y = 0; y < size; y++) {
    const row: number[][] = [];
    for (let x = 0; x < size; x++) {
      const o = base + (y * size + x) * 3;
      row.push([pixels[o], pixels[o + 1], pixels[o + 2]]);
    }
    rows.push(row);
  }
  return rows;
}

const HIDDEN_AXIS = { visible: false, showgrid: false, zeroline: false };

/**
 * Bilinear resize of a [inH, inW] map to [outH, outW] with half-pixel centres, as PyTorch's
 * F.interpolate(mode='bilinear', align_corners=False) and tf.image.resizeBilinear(…, false, true).
 */
export function upsampleBilinear(
  src: ArrayLike<number>,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
): Float32Array {
  if (src.length !== inH * inW) throw new Error(`upsampleBilinear: ${src.length} values for a ${inH}×${inW} map`);
  const out = new Float32Array(outH * outW);
  const sy = inH / outH;
  const sx = inW / outW;
  for (let y = 0; y < outH; y++) {
    const fy = Math.max((y + 0.5) * sy - 0.5, 0);
    const y0 = Math.min(Math.floor(fy), inH - 1);
    const y1 = Math.min(y0 + 1, inH - 1);
    const wy = fy - y0;
    for (let x = 0; x < outW; x++) {
      const fx = Math.max((x + 0.5) * sx - 0.5, 0);
      const x0 = Math.min(Math.floor(fx), inW - 1);
      const x1 = Math.min(x0 + 1, inW - 1);
      const wx = fx - x0;
      const top = src[y0 * inW + x0] * (1 - wx) + src[y0 * inW + x1] * wx;
      const bottom = src[y1 * inW + x0] * (1 - wx) + src[y1 * inW + x1] * wx;
      out[y * outW + x] = top * (1 - wy) + bottom * wy;
    }
  }
  return out;
}

/** Softmax of scores (logits), numerically stable. */
export function softmax(scores: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(scores));
  const exps = Array.from(scores, (s) => Math.exp(s - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

export interface ResponseMapInput {
  /** [32, 32, 3] uint8 HWC RGB. */
  image: ArrayLike<number>;
  /** [10, 8, 8] response maps, class-major (Net.responseMaps, one image). */
  maps: ArrayLike<number>;
  /** [10] class scores (logits). */
  scores: ArrayLike<number>;
  /** The true label, when known. */
  label?: number;
  /** Shown in the title, e.g. the test-set index. */
  caption?: string;
  classNames?: readonly string[];
  /** Overlay opacity (default 0.5). */
  opacity?: number;
  /**
   * What `maps` hold: the raw response maps (default), or an attribution such as gradient ×
   * response (signed: drawn on a diverging scale symmetric about 0).
   */
  kind?: 'response' | 'attribution';
}

/**
 * The image, then each class's response map upsampled (bilinear) to 32×32 and overlaid on it,
 * titled with the class's score. One colour scale for all ten maps, so they compare; the
 * predicted class is bold, the true class underlined, a wrong prediction red.
 */
export function responseMapFigure(input: ResponseMapInput): Figure {
  const names = input.classNames ?? CLASS_NAMES;
  const k = names.length;
  const mapSize = FEATURE_SIZE;
  if (input.image.length !== IMAGE_SIZE * IMAGE_SIZE * 3)
    throw new Error(`responseMapFigure: image has ${input.image.length} values, expected 32×32×3`);
  if (input.maps.length !== k * mapSize * mapSize)
    throw new Error(`responseMapFigure: maps have ${input.maps.length} values, expected ${k}×${mapSize}×${mapSize}`);
  if (input.scores.length !== k) throw new Error(`responseMapFigure: ${input.scores.length} scores for ${k} classes`);
  const scores = Array.from(input.scores);
  const probs = softmax(scores);
  const predicted = argmax(scores);
  const upsampled = names.map((_, c) =>
    upsampleBilinear(
      Array.prototype.slice.call(input.maps, c * mapSize * mapSize, (c + 1) * mapSize * mapSize),
      mapSize,
      mapSize,
      IMAGE_SIZE,
      IMAGE_SIZE,
    ),
  );
  let zmin = Infinity;
  let zmax = -Infinity;
  for (const m of upsampled)
    for (const v of m) {
      if (v < zmin) zmin = v;
      if (v > zmax) zmax = v;
    }
  const attribution = input.kind === 'attribution';
  if (attribution) {
    // Signed values: 0 is white, so positive (raises the score) and negative evidence read apart.
    const bound = Math.max(Math.abs(zmin), Math.abs(zmax), 1e-12);
    zmin = -bound;
    zmax = bound;
  }
  const what = attribution ? 'grad × response' : 'response';
  const cols = 6;
  const cells = grid(2, cols, 0.012, 0.14);
  const pixels = imageRows(input.image, 0, IMAGE_SIZE);
  const data: Trace[] = [];
  const layout: Layout = { ...BASE_LAYOUT, height: 450, width: 1000, margin: { l: 10, r: 80, t: 100, b: 10 } };
  const annotations: Record<string, unknown>[] = [];
  const wrong = input.label !== undefined && input.label !== predicted;
  const truth = input.label !== undefined ? names[input.label] : 'unknown';
  // Cell 0: the image alone.
  data.push({ type: 'image', z: pixels, xaxis: cells[0].x, yaxis: cells[0].y, hoverinfo: 'skip' });
  axisPair(layout, cells[0], HIDDEN_AXIS, { ...HIDDEN_AXIS, autorange: 'reversed', scaleanchor: cells[0].x });
  annotations.push(cellTitle(cells[0], `input · true <b>${truth}</b>`, '#222'));
  for (let c = 0; c < k; c++) {
    const cell = cells[c + 1];
    const z: number[][] = [];
    for (let y = 0; y < IMAGE_SIZE; y++)
      z.push(Array.from(upsampled[c].subarray(y * IMAGE_SIZE, (y + 1) * IMAGE_SIZE)));
    data.push({ type: 'image', z: pixels, xaxis: cell.x, yaxis: cell.y, hoverinfo: 'skip' });
    data.push({
      type: 'heatmap',
      z,
      xaxis: cell.x,
      yaxis: cell.y,
      zmin,
      zmax,
      colorscale: attribution ? 'RdBu' : 'Jet',
      reversescale: attribution,
      opacity: input.opacity ?? (attribution ? 0.65 : 0.5),
      zsmooth: false,
      showscale: c === 0,
      colorbar: { title: { text: what }, len: 0.8, thickness: 14 },
      hovertemplate: `${names[c]}<br>x %{x}, y %{y}<br>${what} %{z:.3f}<extra></extra>`,
    });
    axisPair(
      layout,
      cell,
      { ...HIDDEN_AXIS, range: [-0.5, IMAGE_SIZE - 0.5] },
      { ...HIDDEN_AXIS, range: [IMAGE_SIZE - 0.5, -0.5], scaleanchor: cell.x },
    );
    let text = `${names[c]} ${scores[c].toFixed(2)}`;
    if (c === predicted) text = `<b>${text}</b>`;
    if (c === input.label) text = `<u>${text}</u>`;
    annotations.push(cellTitle(cell, text, c === predicted && wrong ? '#c0392b' : '#222'));
  }
  axisPair(layout, cells[cells.length - 1], HIDDEN_AXIS, HIDDEN_AXIS);
  layout.annotations = annotations;
  const verdict = input.label === undefined ? '' : wrong ? ' — <span style="color:#c0392b">wrong</span>' : ' — correct';
  layout.title = {
    text:
      `${attribution ? 'Gradient × response' : 'Response maps'}${input.caption ? ` · ${input.caption}` : ''}: predicted <b>${names[predicted]}</b> ` +
      `(p = ${probs[predicted].toFixed(2)})${verdict}<br><span style="font-size:11px">each map upsampled bilinearly from ` +
      `${mapSize}×${mapSize} to ${IMAGE_SIZE}×${IMAGE_SIZE}; titles give each class's score (logit)</span>`,
  };
  return { data, layout };
}

/**
 * Small 8×8 maps side by side (e.g. the score MLP's weight for each map cell), each on one
 * diverging scale symmetric about 0, rows and columns as in the image (row 0 at the top).
 */
export function cellMapsFigure(
  panels: readonly { title: string; values: ArrayLike<number> }[],
  opts: { title: string; cols?: number; size?: number } = { title: '' },
): Figure {
  const size = opts.size ?? FEATURE_SIZE;
  for (const p of panels)
    if (p.values.length !== size * size)
      throw new Error(`cellMapsFigure: panel '${p.title}' has ${p.values.length} values, expected ${size}×${size}`);
  const cols = Math.min(opts.cols ?? 4, panels.length);
  const rows = Math.ceil(panels.length / cols);
  const cells = grid(rows, cols, 0.04, 0.12);
  const bound = Math.max(1e-12, ...panels.flatMap((p) => Array.from(p.values, (v) => Math.abs(v))));
  const layout: Layout = {
    ...BASE_LAYOUT,
    height: 60 + 210 * rows,
    width: 220 * cols + 120,
    margin: { l: 10, r: 90, t: 70, b: 10 },
    title: { text: opts.title },
  };
  const data: Trace[] = [];
  const annotations: Record<string, unknown>[] = [];
  panels.forEach((p, i) => {
    const z: number[][] = [];
    for (let y = 0; y < size; y++) z.push(Array.from({ length: size }, (_, x) => p.values[y * size + x]));
    data.push({
      type: 'heatmap',
      z,
      xaxis: cells[i].x,
      yaxis: cells[i].y,
      zmin: -bound,
      zmax: bound,
      colorscale: 'RdBu',
      reversescale: true,
      showscale: i === 0,
      colorbar: { len: 0.8, thickness: 14 },
      hovertemplate: `${p.title}<br>row %{y}, col %{x}: %{z:.4f}<extra></extra>`,
    });
    axisPair(layout, cells[i], HIDDEN_AXIS, { ...HIDDEN_AXIS, autorange: 'reversed', scaleanchor: cells[i].x });
    annotations.push(cellTitle(cells[i], p.title));
  });
  layout.annotations = annotations;
  return { data, layout };
}

/** Each pair of classes as a point: filter similarity against how often the net confuses them. */
export function similarityConfusionFigure(
  pairs: readonly { a: number; b: number; similarity: number; confusion: number }[],
  opts: { title: string; classNames?: readonly string[] },
): Figure {
  const names = opts.classNames ?? CLASS_NAMES;
  return {
    data: [
      {
        type: 'scatter',
        mode: 'markers+text',
        x: pairs.map((p) => p.similarity),
        y: pairs.map((p) => 100 * p.confusion),
        text: pairs.map((p) => `${names[p.a]}–${names[p.b]}`),
        textposition: 'top center',
        textfont: { size: 9 },
        marker: { size: 7, color: PALETTE[0] },
        hovertemplate: '%{text}<br>filter cosine %{x:.3f}<br>confused %{y:.2f}%<extra></extra>',
      },
    ],
    layout: {
      ...BASE_LAYOUT,
      height: 460,
      width: 760,
      title: { text: opts.title },
      xaxis: { title: { text: "cosine similarity of the two classes' filters" }, zeroline: false },
      yaxis: { title: { text: 'test images of either class given the other (%)' }, rangemode: 'tozero' },
    },
  };
}

/**
 * Arms compared seed by seed: one line per seed through the arms' values (e.g. test accuracy at
 * the validation-selected epoch), so a paired difference reads as the slope of each line.
 */
export function pairedSeedsFigure(
  arms: readonly { name: string; bySeed: ReadonlyMap<number, number> }[],
  opts: { title: string; yTitle?: string },
): Figure {
  const seeds = [...new Set(arms.flatMap((a) => [...a.bySeed.keys()]))].sort((a, b) => a - b);
  const data: Trace[] = seeds.map((seed, i) => ({
    type: 'scatter',
    mode: 'lines+markers',
    name: `seed ${seed}`,
    x: arms.map((a) => a.name),
    y: arms.map((a) => (a.bySeed.has(seed) ? 100 * a.bySeed.get(seed)! : null)),
    line: { color: PALETTE[i % PALETTE.length] },
    hovertemplate: `seed ${seed}<br>%{x}: %{y:.2f}%<extra></extra>`,
  }));
  return {
    data,
    layout: {
      ...BASE_LAYOUT,
      height: 420,
      width: 720,
      title: { text: opts.title },
      yaxis: { title: { text: opts.yTitle ?? 'test accuracy (%)' } },
    },
  };
}

/** One paired comparison as pairedIntervalsFigure draws it (lib/experiments ComparisonRow fits). */
interface PairedDifferences {
  a: string;
  b: string;
  differences: readonly number[];
  mean: number;
  low: number;
  high: number;
  low90?: number;
  high90?: number;
  n: number;
  margin?: number;
}

/**
 * Paired differences with their intervals, one row per comparison (b − a, in points): each seed's
 * difference as a dot, the mean as a diamond, its 95 % interval as a thin bar and its 90 %
 * interval as a thick one, and the equivalence margin (when the rows have one) as dotted lines at
 * ±margin. A row whose thin bar misses 0 is one the verdict calls better or worse; one whose thick
 * bar lies between the dotted lines is one it calls equivalent.
 */
export function pairedIntervalsFigure(rows: readonly PairedDifferences[], opts: { title: string }): Figure {
  const labels = rows.map((r) => `${r.b} − ${r.a}`);
  const x = rows.map((r) => 100 * r.mean);
  /** Asymmetric error bars from the mean to `lo` and `hi` (none below two pairs). */
  const bars = (lo: (r: PairedDifferences) => number | undefined, hi: (r: PairedDifferences) => number | undefined) => {
    const ok = (r: PairedDifferences) => r.n >= 2 && Number.isFinite(lo(r)) && Number.isFinite(hi(r));
    const array = rows.map((r) => (ok(r) ? 100 * (hi(r)! - r.mean) : 0));
    const arrayminus = rows.map((r) => (ok(r) ? 100 * (r.mean - lo(r)!) : 0));
    return { type: 'data', symmetric: false, array, arrayminus, visible: true, color: PALETTE[0] };
  };
  const margin = Math.max(0, ...rows.map((r) => r.margin ?? 0));
  const line = { color: PALETTE[2], dash: 'dot', width: 1.5 };
  const marginLine = (at: number) => ({ type: 'line', xref: 'x', yref: 'paper', x0: at, x1: at, y0: 0, y1: 1, line });
  const marginNote = margin ? ` (dotted: the ±${+(100 * margin).toFixed(2)}-point margin)` : '';
  const xTitle = `b − a, points of test accuracy${marginNote}`;
  return {
    data: [
      {
        type: 'scatter',
        mode: 'markers',
        name: 'seed',
        x: rows.flatMap((r) => r.differences.map((d) => 100 * d)),
        y: rows.flatMap((r, i) => r.differences.map(() => labels[i])),
        marker: { color: PALETTE[7], size: 6, opacity: 0.7 },
        hovertemplate: '%{y}: %{x:+.2f} points<extra>one seed</extra>',
      },
      {
        type: 'scatter',
        mode: 'markers',
        name: '90 % interval',
        x,
        y: labels,
        error_x: {
          ...bars(
            (r) => r.low90,
            (r) => r.high90,
          ),
          thickness: 6,
          width: 0,
        },
        marker: { color: PALETTE[0], size: 1, opacity: 0 },
        hoverinfo: 'skip',
      },
      {
        type: 'scatter',
        mode: 'markers',
        name: 'mean, 95 % interval',
        x,
        y: labels,
        error_x: {
          ...bars(
            (r) => r.low,
            (r) => r.high,
          ),
          thickness: 2,
        },
        marker: { color: PALETTE[0], size: 10, symbol: 'diamond' },
        hovertemplate: '%{y}: mean %{x:+.2f} points<extra></extra>',
      },
    ],
    layout: {
      ...BASE_LAYOUT,
      title: { text: opts.title },
      height: 120 + 40 * rows.length,
      margin: { ...(BASE_LAYOUT.margin as object), l: 260 },
      xaxis: { ...GRID_AXIS, title: { text: xTitle }, zeroline: true, zerolinecolor: '#444' },
      yaxis: { autorange: 'reversed', automargin: true },
      legend: { orientation: 'h', y: -0.2, yanchor: 'top' },
      shapes: margin ? [marginLine(-100 * margin), marginLine(100 * margin)] : [],
    },
  };
}

/** A [classes, channels] matrix of 1×1 filters as a heatmap, one row per class, diverging colours around 0. */
export function filterHeatmap(
  filters: readonly (readonly number[])[],
  opts: { title: string; classNames?: readonly string[] },
): Figure {
  const names = opts.classNames ?? CLASS_NAMES;
  if (filters.length !== names.length) {
    throw new Error(`filterHeatmap: ${filters.length} filters for ${names.length} classes`);
  }
  const channels = (filters[0] ?? []).map((_, i) => i);
  return {
    data: [
      {
        type: 'heatmap',
        z: filters.map((f) => [...f]),
        y: [...names],
        x: channels,
        colorscale: 'RdBu',
        zmid: 0,
        colorbar: { title: { text: 'weight' } },
      },
    ],
    layout: {
      ...BASE_LAYOUT,
      title: { text: opts.title },
      xaxis: { title: { text: 'feature channel' } },
      yaxis: { autorange: 'reversed' },
      height: 360,
      width: 900,
      margin: { l: 90, r: 20, t: 50, b: 50 },
    },
  };
}

/** The class with the highest score. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
