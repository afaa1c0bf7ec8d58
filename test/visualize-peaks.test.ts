// Peak statistics of response maps: synthetic maps with a known peak cell.
import { describe, expect, it } from 'vitest';
import { peakStatistics, type ImageMaps } from '../lib/report/visualize';

/** An image whose class-`cls` map is 1 at cell (y, x) of the 8×8 grid and 0 elsewhere. */
function example(label: number, predicted: number, peaks: Record<number, [number, number]>): ImageMaps {
  const maps = new Float32Array(10 * 64);
  for (const [cls, [y, x]] of Object.entries(peaks)) maps[Number(cls) * 64 + y * 8 + x] = 1;
  return {
    index: 0,
    image: new Uint8Array(32 * 32 * 3),
    label,
    predicted,
    maps,
    scores: new Float32Array(10),
    caption: '',
  };
}

describe('peakStatistics', () => {
  it('counts peaks in the central quarter and measures their distance from the centre', () => {
    const centred = example(3, 3, { 3: [3, 4] }); // cell (3, 4) → pixels around (14, 18)
    const corner = example(5, 2, { 5: [0, 0], 2: [4, 4] });
    const s = peakStatistics([centred, corner]);
    expect(s.images).toBe(2);
    expect(s.central).toBe(0.5);
    // the corner cell's upsampled peak is at pixel (0..2, 0..2): about 20 px from the centre (15.5, 15.5)
    expect(s.meanDistance).toBeGreaterThan(10);
    expect(s.meanDistance).toBeLessThan(14);
    // by the predicted class instead: both central
    expect(peakStatistics([centred, corner], 'predicted').central).toBe(1);
    expect(Number.isNaN(peakStatistics([]).central)).toBe(true);
  });
});
