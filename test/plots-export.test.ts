import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FigureExporter, exportFigures, listSavedFigures, loadFigureJson } from '../lib/report/figures-export';
import { meanStdBars, type Figure } from '../lib/report/plots';

// One headless Chromium for the whole file (a launch takes a few seconds on 2 cores).
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-figures-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const bars: Figure = meanStdBars(
  [
    { name: 'dynamic', mean: 0.8, std: 0.01, n: 3 },
    { name: 'static', mean: 0.7, std: 0.02, n: 3 },
  ],
  { title: 'export-check' },
);

describe('figure export (headless Chromium + plotly.js)', () => {
  it('writes the spec, an SVG drawn by plotly and a PNG of the requested size, atomically', async () => {
    const written = await exportFigures({ bars }, { dir, width: 400, height: 300, scale: 2 });
    expect(written).toEqual([
      {
        name: 'bars',
        json: path.join(dir, 'bars.json'),
        svg: path.join(dir, 'bars.svg'),
        png: path.join(dir, 'bars.png'),
      },
    ]);

    const svg = fs.readFileSync(path.join(dir, 'bars.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('export-check'); // the title, drawn as text
    expect(svg).toMatch(/width="400"/);
    expect((svg.match(/class="point"/g) ?? []).length).toBe(2); // two bars

    const png = PNG.sync.read(fs.readFileSync(path.join(dir, 'bars.png')));
    // Width from the options (the layout sets none), height from the layout (400), both × scale 2.
    expect([png.width, png.height]).toEqual([800, 800]);
    // Not blank: the bars' colours are in the picture.
    const colours = new Set<number>();
    for (let i = 0; i < png.data.length; i += 4 * 97)
      colours.add((png.data[i] << 16) | (png.data[i + 1] << 8) | png.data[i + 2]);
    expect(colours.size).toBeGreaterThan(3);

    expect(loadFigureJson('bars', dir)).toEqual(JSON.parse(JSON.stringify(bars)));
    expect(listSavedFigures(dir)).toEqual(['bars']);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('reuses one page for many figures and rejects bad names before drawing', async () => {
    const exporter = await FigureExporter.open();
    try {
      const a = await exporter.render(bars, 'svg', { width: 300, height: 200 });
      const b = await exporter.render({ ...bars, layout: { ...bars.layout, title: { text: 'second' } } }, 'svg', {
        width: 300,
        height: 200,
      });
      expect(a).toContain('export-check');
      expect(b).toContain('second');
      expect(b).not.toContain('export-check'); // the previous figure was purged
      await expect(exporter.export('../escape', bars, { dir })).rejects.toThrow(/figure name/);
      await expect(exporter.export('empty', { data: 'x' } as unknown as Figure, { dir })).rejects.toThrow(
        /not a plotly figure/,
      );
    } finally {
      await exporter.close();
    }
    expect(fs.existsSync(path.join(dir, 'empty.json'))).toBe(false);
  });
});
