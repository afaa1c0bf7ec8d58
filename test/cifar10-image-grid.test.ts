import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { imageGridPng, imagesGridPng, pngDataUri } from '../lib/report/image-grid';

function solid(r: number, g: number, b: number): Uint8Array {
  const image = new Uint8Array(3072);
  for (let p = 0; p < 1024; p++) image.set([r, g, b], p * 3);
  return image;
}

describe('image grid', () => {
  it('lays images out in rows with white gaps, upscaled by nearest neighbour', () => {
    const red = solid(255, 0, 0);
    const blue = solid(0, 0, 255);
    blue.set([10, 20, 30], (31 * 32 + 31) * 3); // bottom-right pixel
    const png = PNG.sync.read(imagesGridPng([[red, blue], [blue]], { scale: 2, gap: 3 }));
    expect([png.width, png.height]).toEqual([2 * 64 + 3 * 3, 2 * 64 + 3 * 3]);
    const at = (x: number, y: number) =>
      Array.from(png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3));
    expect(at(0, 0)).toEqual([255, 255, 255]); // gap
    expect(at(3, 3)).toEqual([255, 0, 0]); // first image
    expect(at(3 + 64 + 3, 3)).toEqual([0, 0, 255]); // second image, same row
    expect(at(3 + 64 + 3 + 63, 3 + 63)).toEqual([10, 20, 30]); // its bottom-right pixel, 2×2 upscaled
    expect(at(3 + 64 + 3 + 62, 3 + 62)).toEqual([10, 20, 30]);
    expect(at(3, 3 + 64 + 3)).toEqual([0, 0, 255]); // second row
    expect(at(3 + 64 + 3, 3 + 64 + 3)).toEqual([255, 255, 255]); // short row leaves white
  });

  it('draws images of a split by index and names bad input', () => {
    const split = {
      images: new Uint8Array([...solid(1, 2, 3), ...solid(4, 5, 6)]),
      labels: new Uint8Array(2),
      count: 2,
    };
    const png = PNG.sync.read(imageGridPng(split, [[1]], { scale: 1, gap: 0 }));
    expect(Array.from(png.data.subarray(0, 3))).toEqual([4, 5, 6]);
    expect(() => imageGridPng(split, [[2]])).toThrow(/index 2 outside 0 … 1/);
    expect(() => imagesGridPng([[new Uint8Array(10)]])).toThrow(/image 0 of row 0 has 10 bytes, expected 32×32×3/);
    expect(() => imagesGridPng([])).toThrow(/nothing to draw/);
    expect(pngDataUri(Buffer.from([1, 2]))).toBe('data:image/png;base64,AQI=');
  });
});
