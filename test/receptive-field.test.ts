// The theoretical receptive field of a layer1 cell (lib/report/receptive-field): its size, and how
// much of the image each cell of the 8×8 map sees once the field is clipped to the image.
import { describe, expect, it } from 'vitest';
import { receptiveField } from '../lib/report/receptive-field';
import { htmlTable } from '../lib/report/html-table';
import { FIELD_CELL_COLUMNS, FIELD_LAYER_COLUMNS } from '../lib/report/tables';

describe('receptive field', () => {
  it('gives a layer1 cell of ResNet-18 a 43-pixel field, which covers the 32×32 image only for central cells', () => {
    const rf = receptiveField();
    expect(rf.size).toBe(43);
    expect(rf.layers.map((l) => [l.layer, l.jumpBefore, l.field, l.mapSize])).toEqual([
      ['conv1', 1, 7, 16],
      ['max-pool', 2, 11, 8],
      ['layer1 conv 1', 4, 19, 8],
      ['layer1 conv 2', 4, 27, 8],
      ['layer1 conv 3', 4, 35, 8],
      ['layer1 conv 4', 4, 43, 8],
    ]);
    // Cell i is centred on pixel 4i: the corner cell sees pixels 0…21 of each axis, a central one all 32.
    expect(rf.cells.map((c) => c.pixels)).toEqual([22, 26, 30, 32, 32, 32, 29, 25]);
    expect(rf.cells[7]).toEqual({ cell: 7, from: 7, to: 31, pixels: 25 });
    const text = (html: string) => html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
    expect(text(htmlTable(rf.layers, { columns: FIELD_LAYER_COLUMNS }))).toContain('max-pool 3 / 2 / 1 2 4 11 8×8');
    expect(text(htmlTable(rf.cells, { columns: FIELD_CELL_COLUMNS }))).toContain('0 0 … 21 22');
  });

  it('follows the layers it is given: one 3×3 convolution sees 3 pixels, 2 at the border', () => {
    const rf = receptiveField([{ layer: 'c', kernel: 3, stride: 1, padding: 1 }], 4);
    expect(rf.size).toBe(3);
    expect(rf.cells.map((c) => [c.from, c.to])).toEqual([
      [0, 1],
      [0, 2],
      [1, 3],
      [2, 3],
    ]);
    // Without padding the map shrinks and every cell's field lies inside the image.
    expect(receptiveField([{ layer: 'c', kernel: 3, stride: 1, padding: 0 }], 4).cells).toEqual([
      { cell: 0, from: 0, to: 2, pixels: 3 },
      { cell: 1, from: 1, to: 3, pixels: 3 },
    ]);
  });
});
