import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { CLASS_NAMES } from '../lib/config';
import { escapeHtml, formatPercent, htmlTable } from '../lib/report/html-table';
import {
  cellMapsFigure,
  confusionMatrixFigure,
  filterHeatmap,
  meanStdBars,
  pairedIntervalsFigure,
  pairedSeedsFigure,
  perClassAccuracy,
  responseMapFigure,
  smooth,
  softmax,
  stepCurves,
  trainingCurves,
  upsampleBilinear,
  type Trace,
} from '../lib/report/plots';
import { confusionMatrix, meanStd, runOutcomes, type EpochPoint } from '../lib/experiments/summary';

/** Two variants × two seeds × 3 epochs × train/test, with accuracies chosen by hand. */
function rows(): EpochPoint[] {
  const out: EpochPoint[] = [];
  const acc: Record<string, number[]> = {
    'dynamic-s0': [0.5, 0.6, 0.7],
    'dynamic-s1': [0.54, 0.62, 0.68],
    'static-s0': [0.45, 0.55, 0.6],
    'static-s1': [0.47, 0.57, 0.64],
  };
  for (const [run, values] of Object.entries(acc)) {
    const [variant, s] = run.split('-');
    values.forEach((a, i) => {
      out.push({ run, variant, seed: Number(s.slice(1)), epoch: i + 1, split: 'test', loss: 2 - a, accuracy: a });
      out.push({
        run,
        variant,
        seed: Number(s.slice(1)),
        epoch: i + 1,
        split: 'train',
        loss: 1.9 - a,
        accuracy: a + 0.05,
        wallSeconds: 10 + i,
      });
    });
  }
  // Rows arrive in any order: shuffle epochs of one run.
  return out.reverse();
}

describe('summary', () => {
  it('meanStd uses the sample standard deviation', () => {
    const s = meanStd([0.5, 0.7]);
    expect(s.mean).toBeCloseTo(0.6, 12);
    expect(s.std).toBeCloseTo(Math.SQRT2 * 0.1, 12);
    expect(meanStd([3])).toEqual({ mean: 3, std: 0, n: 1 });
    expect(meanStd([]).n).toBe(0);
  });

  it('runOutcomes finds the final and the best test epoch of each run, and time per epoch', () => {
    const out = runOutcomes(rows());
    const d1 = out.find((o) => o.run === 'dynamic-s1')!;
    expect(d1).toMatchObject({
      variant: 'dynamic',
      seed: 1,
      epochs: 3,
      finalAccuracy: 0.68,
      bestAccuracy: 0.68,
      bestEpoch: 3,
    });
    expect(d1.secondsPerEpoch).toBeCloseTo(11, 12);
  });

  it('confusionMatrix counts true × predicted and rejects labels out of range', () => {
    const m = confusionMatrix([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], 3);
    expect(m).toEqual([
      [1, 1, 0],
      [0, 1, 0],
      [1, 0, 1],
    ]);
    expect(() => confusionMatrix([0, 3], [0, 0], 3)).toThrow(/item 1/);
    expect(() => confusionMatrix([0], [0, 1], 3)).toThrow(/1 labels but 2/);
  });
});

describe('upsampleBilinear', () => {
  it('matches tf.image.resizeBilinear with half-pixel centres (PyTorch align_corners=False)', () => {
    const src = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 1.7) * 3 + (i % 5));
    const ours = upsampleBilinear(src, 8, 8, 32, 32);
    const ref = tf.tidy(() =>
      tf.image.resizeBilinear(tf.tensor4d(src, [1, 8, 8, 1]), [32, 32], false, true).dataSync(),
    );
    let maxDiff = 0;
    for (let i = 0; i < ours.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours[i] - ref[i]));
    expect(maxDiff).toBeLessThan(1e-5);
  });

  it('keeps a constant map constant and rejects a wrong size', () => {
    expect(new Set(upsampleBilinear(new Float32Array(64).fill(2.5), 8, 8, 32, 32))).toEqual(new Set([2.5]));
    expect(() => upsampleBilinear(new Float32Array(63), 8, 8, 32, 32)).toThrow(/63 values/);
  });
});

describe('curves', () => {
  it('draws loss and accuracy per run and split, sorted by epoch', () => {
    const fig = trainingCurves(rows(), { runs: ['dynamic-s0', 'static-s1'] });
    expect(fig.data).toHaveLength(2 /* runs */ * 2 /* splits */ * 2 /* panels */);
    const acc = fig.data.find((t) => t.name === 'dynamic-s0 · test' && t.yaxis === 'y2')!;
    expect(acc.x).toEqual([1, 2, 3]);
    expect(acc.y).toEqual([0.5, 0.6, 0.7]);
    expect((acc.line as { dash: string }).dash).toBe('dash');
    // Train and test differ by marker as well, which is all a one-epoch run shows.
    const train = fig.data.find((t) => t.name === 'dynamic-s0 · train' && t.yaxis === 'y2')!;
    expect((acc.marker as { symbol: string }).symbol).not.toBe((train.marker as { symbol: string }).symbol);
    expect(() => trainingCurves(rows(), { runs: ['nope'] })).toThrow(/no metric rows for run\(s\) nope/);
  });

  it('smooths steps with bias correction (a constant stays constant)', () => {
    expect(smooth([1, 1, 1], 0.9).every((v) => Math.abs(v - 1) < 1e-12)).toBe(true);
    expect(smooth([0, 10], 0.5)[1]).toBeCloseTo((10 * 0.5) / 0.75, 12);
    const fig = stepCurves([1, 2, 3].map((step) => ({ run: 'r', step, loss: 1 / step, accuracy: 0.1 * step })));
    expect(fig.data).toHaveLength(4);
  });

  it('bars carry their error bars', () => {
    const fig = meanStdBars([{ name: 'dynamic', mean: 0.7, std: 0.02, n: 3 }]);
    expect((fig.data[0].error_y as { array: number[] }).array).toEqual([0.02]);
    expect(() => perClassAccuracy([{ name: 'x', perClass: [0.5] }])).toThrow(/1 values for 10 classes/);
  });
});

describe('confusion matrix figure', () => {
  it('colours by row rate, prints counts, and states the accuracy', () => {
    const counts: number[][] = CLASS_NAMES.map((_, i) => CLASS_NAMES.map((__, j) => (i === j ? 9 : j === 0 ? 1 : 0)));
    counts[0][0] = 10;
    const fig = confusionMatrixFigure(counts);
    const z = fig.data[0].z as number[][];
    expect(z[3][3]).toBeCloseTo(0.9, 12);
    expect(z[3][0]).toBeCloseTo(0.1, 12);
    expect((fig.data[0].text as string[][])[3][0]).toBe('1');
    expect(JSON.stringify(fig.layout.title)).toContain('91.00% of 100');
    expect(() => confusionMatrixFigure([[1]])).toThrow(/10×10/);
  });
});

describe('images', () => {
  it('overlays ten upsampled maps on one shared colour scale, titled with scores', () => {
    const image = new Uint8Array(3072).fill(128);
    const maps = new Float32Array(640);
    maps[3 * 64 + 9] = 5; // class 3 (cat) peaks at (y=1, x=1) of its 8×8 map
    const scores = [0, 0.5, 0, 4, 0, 0, 0, 0, 0, 1];
    const fig = responseMapFigure({ image, maps, scores, label: 5 });
    const heatmaps = fig.data.filter((t) => t.type === 'heatmap') as (Trace & {
      z: number[][];
      zmax: number;
      zmin: number;
    })[];
    expect(heatmaps).toHaveLength(10);
    const cat = heatmaps[3].z;
    const catMax = Math.max(...cat.flat());
    // One scale for all ten maps: the largest upsampled value anywhere, the smallest (0).
    expect(heatmaps.every((h) => h.zmax === catMax && h.zmin === 0)).toBe(true);
    expect(catMax).toBeGreaterThan(3);
    expect(cat).toHaveLength(32);
    expect(cat[0]).toHaveLength(32);
    // The peak of the 8×8 cell (1, 1) lands around pixels 4…7 after ×4 upsampling.
    let best = [0, 0];
    cat.forEach((row, y) =>
      row.forEach((v, x) => {
        if (v > cat[best[0]][best[1]]) best = [y, x];
      }),
    );
    expect(best[0]).toBeGreaterThanOrEqual(4);
    expect(best[0]).toBeLessThanOrEqual(7);
    const titles = (fig.layout.annotations as { text: string; font: { color: string } }[]).map((a) => a.text);
    expect(titles[4]).toBe('<b>cat 4.00</b>');
    expect(titles[6]).toBe('<u>dog 0.00</u>');
    expect(JSON.stringify(fig.layout.title)).toContain('wrong');
    expect(softmax(scores)[3]).toBeCloseTo(Math.exp(4) / (Math.exp(4) + Math.exp(0.5) + Math.exp(1) + 7), 12);
    expect(() => responseMapFigure({ image, maps: maps.subarray(0, 64), scores })).toThrow(/expected 10×8×8/);
  });

  it('draws an attribution on a diverging scale symmetric about 0', () => {
    const image = new Uint8Array(3072).fill(128);
    const maps = new Float32Array(640);
    maps[2 * 64 + 10] = 3;
    maps[7 * 64 + 40] = -5;
    const fig = responseMapFigure({ image, maps, scores: new Array(10).fill(0), kind: 'attribution' });
    const heatmaps = fig.data.filter((t) => t.type === 'heatmap') as (Trace & {
      zmax: number;
      zmin: number;
      colorscale: string;
    })[];
    // The bound comes from the larger |value| (the −5, upsampled), so 0 sits in the middle of the scale.
    expect(heatmaps.every((h) => h.zmin === -h.zmax && h.zmax > 3 && h.colorscale === 'RdBu')).toBe(true);
    expect(JSON.stringify(fig.layout.title)).toContain('Gradient × response');
  });

  it('draws one line per seed through the arms, leaving a gap where a seed is missing', () => {
    const fig = pairedSeedsFigure(
      [
        {
          name: 'static',
          bySeed: new Map([
            [0, 0.75],
            [1, 0.76],
          ]),
        },
        { name: 'dynamic', bySeed: new Map([[0, 0.77]]) },
      ],
      { title: 't' },
    );
    expect(fig.data.map((t) => t.name)).toEqual(['seed 0', 'seed 1']);
    expect((fig.data[0] as Trace & { y: (number | null)[] }).y).toEqual([75, 77]);
    expect((fig.data[1] as Trace & { y: (number | null)[] }).y).toEqual([76, null]);
  });

  it('draws each paired difference with its seeds, its 95 % and 90 % intervals, and the margin', () => {
    const row = { a: 'static', b: 'dynamic', differences: [0.01, 0.03], mean: 0.02, n: 2, margin: 0.01 };
    const two = { ...row, low: 0.005, high: 0.035, low90: 0.01, high90: 0.03 };
    const one = { ...row, b: 'x', differences: [0.01], n: 1, low: NaN, high: NaN, low90: NaN, high90: NaN };
    const fig = pairedIntervalsFigure([two, one], { title: 't' });
    type Bars = Trace & { x: number[]; y: string[]; error_x: { array: number[]; arrayminus: number[] } };
    const [seeds, ninety, mean] = fig.data as Bars[];
    expect(seeds.x).toEqual([1, 3, 1]);
    expect(seeds.y).toEqual(['dynamic − static', 'dynamic − static', 'x − static']);
    expect(mean.error_x.array[0]).toBeCloseTo(1.5, 10);
    expect(mean.error_x.arrayminus[0]).toBeCloseTo(1.5, 10);
    expect(ninety.error_x.array[0]).toBeCloseTo(1, 10);
    expect([mean.error_x.array[1], ninety.error_x.array[1]]).toEqual([0, 0]); // one pair: no interval
    expect((fig.layout.shapes as { x0: number }[]).map((s) => s.x0)).toEqual([-1, 1]);
    expect(pairedIntervalsFigure([{ ...two, margin: 0 }], { title: 't' }).layout.shapes).toEqual([]);
  });

  it('draws ten filters as rows of a heatmap centred on 0', () => {
    const filters = CLASS_NAMES.map((_, c) => [c, -c, 0]);
    type Heatmap = Trace & { z: number[][]; y: string[]; x: number[]; zmid: number };
    const [h] = filterHeatmap(filters, { title: 'f' }).data as Heatmap[];
    expect(h.z[3]).toEqual([3, -3, 0]);
    expect(h.y).toEqual([...CLASS_NAMES]);
    expect(h.x).toEqual([0, 1, 2]);
    expect(h.zmid).toBe(0);
    expect(() => filterHeatmap(filters.slice(0, 9), { title: 'f' })).toThrow(/9 filters for 10 classes/);
  });

  it('lays small 8×8 cell maps side by side on one symmetric scale', () => {
    const a = new Float32Array(64);
    a[8] = 2; // row 1, column 0
    const b = new Float32Array(64).fill(-0.5);
    const fig = cellMapsFigure(
      [
        { title: 'a', values: a },
        { title: 'b', values: b },
      ],
      { title: 'cells' },
    );
    const heatmaps = fig.data as (Trace & { z: number[][]; zmax: number; zmin: number })[];
    expect(heatmaps).toHaveLength(2);
    expect(heatmaps[0].z[1][0]).toBe(2);
    expect(heatmaps.every((h) => h.zmax === 2 && h.zmin === -2)).toBe(true);
    expect(() => cellMapsFigure([{ title: 'x', values: new Float32Array(10) }], { title: '' })).toThrow(
      /panel 'x' has 10 values, expected 8×8/,
    );
  });
});

describe('html tables', () => {
  it('escapes text, formats numbers and renders an empty message', () => {
    const html = htmlTable([{ run: '<b>x</b>', acc: 0.123456, n: 3 }]);
    expect(html).toContain('&lt;b&gt;x&lt;/b&gt;');
    expect(html).toContain('0.1235');
    expect(html).toContain('>3<');
    expect(htmlTable([], { empty: 'no run yet' })).toContain('no run yet');
    expect(escapeHtml(`"'&`)).toBe('&quot;&#39;&amp;');
    expect(formatPercent(0.72314, 0.0045)).toBe('72.31 ± 0.45%');
  });
});
