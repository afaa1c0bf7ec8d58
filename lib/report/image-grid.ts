/**
 * Pictures of the data set: a grid of CIFAR-10 images as a PNG (for notebooks and the report).
 * Rows are lists of image indices, e.g. the first ten images of each class.
 */
import { PNG } from 'pngjs';
import { CHANNELS, IMAGE_SIZE } from '../config';
import type { Cifar10Split } from '../data/index';

export interface GridOptions {
  /** Each image pixel becomes scale×scale screen pixels (default 2). */
  scale?: number;
  /** White space between images, in screen pixels (default 2). */
  gap?: number;
}

/**
 * A PNG of `rows` (each a list of indices into `split`, or uint8 HWC images [32, 32, 3]), one
 * image per cell, nearest-neighbour upscaled. Shorter rows leave white cells.
 */
export function imageGridPng(split: Cifar10Split, rows: ArrayLike<number>[], opts: GridOptions = {}): Buffer {
  return imagesGridPng(
    rows.map((row) =>
      Array.from(row, (j) => {
        if (!(j >= 0 && j < split.count)) throw new Error(`imageGridPng: index ${j} outside 0 … ${split.count - 1}`);
        const bytes = IMAGE_SIZE * IMAGE_SIZE * CHANNELS;
        return split.images.subarray(j * bytes, (j + 1) * bytes);
      }),
    ),
    opts,
  );
}

/** A PNG of rows of uint8 HWC images [32, 32, 3] (e.g. augmented copies that are in no split). */
export function imagesGridPng(rows: Uint8Array[][], opts: GridOptions = {}): Buffer {
  const scale = opts.scale ?? 2;
  const gap = opts.gap ?? 2;
  const cols = Math.max(0, ...rows.map((r) => r.length));
  if (rows.length === 0 || cols === 0) throw new Error('imagesGridPng: nothing to draw (no rows or empty rows)');
  const cell = IMAGE_SIZE * scale;
  const width = cols * cell + (cols + 1) * gap;
  const height = rows.length * cell + (rows.length + 1) * gap;
  const png = new PNG({ width, height });
  png.data.fill(255);
  rows.forEach((row, r) =>
    row.forEach((image, c) => {
      if (image.length !== IMAGE_SIZE * IMAGE_SIZE * CHANNELS) {
        throw new Error(`imagesGridPng: image ${c} of row ${r} has ${image.length} bytes, expected 32×32×3`);
      }
      const left = gap + c * (cell + gap);
      const top = gap + r * (cell + gap);
      for (let y = 0; y < cell; y++) {
        for (let x = 0; x < cell; x++) {
          const src = (Math.floor(y / scale) * IMAGE_SIZE + Math.floor(x / scale)) * CHANNELS;
          const dst = ((top + y) * width + left + x) * 4;
          png.data[dst] = image[src];
          png.data[dst + 1] = image[src + 1];
          png.data[dst + 2] = image[src + 2];
        }
      }
    }),
  );
  return PNG.sync.write(png, { colorType: 2 });
}

/** A PNG as a data URI, for <img> tags in notebook HTML and the report. */
export function pngDataUri(png: Buffer): string {
  return `data:image/png;base64,${png.toString('base64')}`;
}
