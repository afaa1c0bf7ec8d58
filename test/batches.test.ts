import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  augmentImage,
  BatchPrefetcher,
  batches,
  CROP_PADDING,
  epochOrder,
  imagesToTensor,
  normalizationTable,
  numBatches,
  splitValidation,
  VALIDATION_SEED,
  tensorToImages,
} from '../lib/data/batches';
import { type Cifar10Split, loadCifar10 } from '../lib/data/cifar10';
import { NORMALIZATIONS } from '../lib/config';
import { mulberry32 } from '../lib/runtime/random';
import { hasRealData } from './cifar10-synthetic';

/** n images whose every byte is distinct enough to identify image, position and channel. */
function synthetic(n: number): Cifar10Split {
  const images = new Uint8Array(n * 3072);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < 1024; p++) {
      for (let c = 0; c < 3; c++) images[i * 3072 + p * 3 + c] = (i * 31 + p * 3 + c * 101 + 1) & 255;
    }
  }
  return { images, labels: Uint8Array.from({ length: n }, (_, i) => (i * 3) % 10), count: n };
}

const pixel = (img: Uint8Array, y: number, x: number, c: number) => img[(y * 32 + x) * 3 + c];

describe('normalisation', () => {
  it('maps byte v of channel c to (v / 255 - mean[c]) / std[c] for both normalisations', () => {
    for (const norm of ['half', 'imagenet'] as const) {
      const table = normalizationTable(norm);
      const { mean, std } = NORMALIZATIONS[norm];
      for (const c of [0, 1, 2]) {
        for (const v of [0, 1, 128, 255]) expect(table[c][v]).toBeCloseTo((v / 255 - mean[c]) / std[c], 6);
      }
    }
    expect(normalizationTable('half')[0][0]).toBe(-1);
    expect(normalizationTable('half')[2][255]).toBe(1);
    expect(() => normalizationTable('bogus' as 'half')).toThrow(/norm must be one of half, imagenet; got 'bogus'/);
  });

  it('gives float32 NHWC tensors of the chosen images', () => {
    const split = synthetic(5);
    const x = imagesToTensor(split, [4, 1], 'imagenet');
    expect(x.shape).toEqual([2, 32, 32, 3]);
    expect(x.dtype).toBe('float32');
    const values = x.dataSync();
    const { mean, std } = NORMALIZATIONS.imagenet;
    // Image 4, pixel (y=2, x=7), channel 1 lands at [0, 2, 7, 1].
    const v = pixel(split.images.subarray(4 * 3072), 2, 7, 1);
    expect(values[(2 * 32 + 7) * 3 + 1]).toBeCloseTo((v / 255 - mean[1]) / std[1], 6);
    x.dispose();
  });
});

describe('back to bytes', () => {
  it('recovers the exact bytes from a normalised tensor', () => {
    const split = synthetic(3);
    for (const norm of ['half', 'imagenet'] as const) {
      const x = imagesToTensor(split, [2, 0], norm);
      const images = tensorToImages(x, norm);
      x.dispose();
      expect(images.length).toBe(2);
      expect(images[0]).toEqual(split.images.subarray(2 * 3072, 3 * 3072));
      expect(images[1]).toEqual(split.images.subarray(0, 3072));
    }
  });
});

describe('epoch order', () => {
  it('is file order without shuffling, and a seeded permutation with it', () => {
    expect(Array.from(epochOrder(5))).toEqual([0, 1, 2, 3, 4]);
    const a = epochOrder(1000, { shuffle: true, seed: 7, epoch: 0 });
    expect(Array.from(a).sort((p, q) => p - q)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(a)).not.toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(epochOrder(1000, { shuffle: true, seed: 7, epoch: 0 })).toEqual(a);
    expect(epochOrder(1000, { shuffle: true, seed: 7, epoch: 1 })).not.toEqual(a);
    expect(epochOrder(1000, { shuffle: true, seed: 8, epoch: 0 })).not.toEqual(a);
  });

  it('draws from the reference mulberry32 generator', () => {
    // The first draws of the reference mulberry32 (the well-known public-domain snippet) for seed
    // 1: fixed forever, so that a seed keeps meaning the same run.
    const rng = mulberry32(1);
    expect([rng(), rng(), rng()].map((v) => v.toFixed(8))).toEqual(['0.62707394', '0.00273572', '0.52744704']);
  });
});

describe('batches', () => {
  it('covers the split once per epoch, in batches of the given size, labels matching indices', () => {
    const split = synthetic(10);
    const seen: number[] = [];
    const sizes: number[] = [];
    for (const batch of batches(split, { batchSize: 4, norm: 'half', shuffle: true, seed: 3 })) {
      expect(batch.x.shape.slice(1)).toEqual([32, 32, 3]);
      expect(batch.y.dtype).toBe('int32');
      expect(Array.from(batch.y.dataSync())).toEqual(Array.from(batch.indices, (i) => split.labels[i]));
      // Without augmentation the floats are the normalised bytes of exactly those images.
      const x = batch.x.dataSync();
      batch.indices.forEach((j, k) => expect(x[k * 3072 + 5]).toBeCloseTo(split.images[j * 3072 + 5] / 127.5 - 1, 6));
      sizes.push(batch.indices.length);
      seen.push(...batch.indices);
      tf.dispose([batch.x, batch.y]);
    }
    expect(sizes).toEqual([4, 4, 2]);
    expect(seen.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(numBatches(10, 4)).toBe(3);
    expect(numBatches(10, 4, true)).toBe(2);
    expect(
      [...batches(split, { batchSize: 4, norm: 'half', dropLast: true })].map(
        (b) => (tf.dispose([b.x, b.y]), b.indices.length),
      ),
    ).toEqual([4, 4]);
  });

  it('leaves no tensors behind once the caller disposes each batch', () => {
    const split = synthetic(9);
    const before = tf.memory().numTensors;
    for (const batch of batches(split, { batchSize: 4, norm: 'imagenet', augment: true, shuffle: true })) {
      tf.dispose([batch.x, batch.y]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('augments reproducibly: each image is a padded crop, maybe mirrored, of its source', () => {
    const split = synthetic(16);
    const run = () => {
      const out: Float32Array[] = [];
      for (const b of batches(split, { batchSize: 16, norm: 'half', augment: true, seed: 5, epoch: 2 })) {
        out.push(b.x.dataSync() as Float32Array);
        tf.dispose([b.x, b.y]);
      }
      return out[0];
    };
    const first = run();
    expect(run()).toEqual(first);
    const plain = imagesToTensor(
      split,
      Array.from({ length: 16 }, (_, i) => i),
      'half',
    );
    const plainValues = plain.dataSync();
    plain.dispose();
    expect(first).not.toEqual(plainValues);

    // Undo the normalisation, then find the (dx, dy, flip) that explains each image.
    const table = normalizationTable('half');
    const bytes = Uint8Array.from(first, (v, k) => table[k % 3].findIndex((t) => Math.abs(t - v) < 1e-6));
    let flips = 0;
    let shifted = 0;
    const candidate = new Uint8Array(3072);
    for (let i = 0; i < 16; i++) {
      const src = split.images.subarray(i * 3072, (i + 1) * 3072);
      const got = bytes.subarray(i * 3072, (i + 1) * 3072);
      const matches: [number, number, boolean][] = [];
      for (let dx = 0; dx <= 2 * CROP_PADDING; dx++) {
        for (let dy = 0; dy <= 2 * CROP_PADDING; dy++) {
          for (const flip of [false, true]) {
            augmentImage(src, candidate, dx, dy, flip);
            if (candidate.every((v, k) => v === got[k])) matches.push([dx, dy, flip]);
          }
        }
      }
      expect(matches.length).toBe(1);
      if (matches[0][2]) flips++;
      if (matches[0][0] !== CROP_PADDING || matches[0][1] !== CROP_PADDING) shifted++;
    }
    expect(flips).toBeGreaterThan(0);
    expect(flips).toBeLessThan(16);
    expect(shifted).toBeGreaterThan(8);
  });

  it('crops with black padding and mirrors left-right', () => {
    const src = synthetic(1).images;
    const dst = new Uint8Array(3072);
    augmentImage(src, dst, CROP_PADDING, CROP_PADDING, false);
    expect(dst).toEqual(src);
    augmentImage(src, dst, CROP_PADDING, CROP_PADDING, true);
    expect(pixel(dst, 3, 0, 2)).toBe(pixel(src, 3, 31, 2));
    expect(pixel(dst, 3, 31, 0)).toBe(pixel(src, 3, 0, 0));
    // Window 4 px right and 4 px down: the right 4 columns and bottom 4 rows are padding.
    augmentImage(src, dst, 8, 8, false);
    expect(pixel(dst, 0, 0, 1)).toBe(pixel(src, 4, 4, 1));
    expect(pixel(dst, 27, 27, 1)).toBe(pixel(src, 31, 31, 1));
    expect(pixel(dst, 28, 5, 0)).toBe(0);
    expect(pixel(dst, 5, 28, 2)).toBe(0);
    // Window 4 px left and up, then mirrored: padding on the top rows and the right columns.
    augmentImage(src, dst, 0, 0, true);
    expect(pixel(dst, 0, 10, 0)).toBe(0);
    expect(pixel(dst, 10, 31, 0)).toBe(0);
    expect(pixel(dst, 10, 0, 0)).toBe(pixel(src, 6, 27, 0));
  });

  it('rejects a bad batch size', () => {
    expect(() => [...batches(synthetic(2), { batchSize: 0, norm: 'half' })]).toThrow(
      /batchSize must be a whole number > 0; got 0/,
    );
  });

  it('visits only the chosen images, in the order given, and refuses an index outside the split', () => {
    const split = synthetic(10);
    const got = [...batches(split, { batchSize: 2, norm: 'half', indices: [7, 2, 9] })];
    expect(got.map((b) => Array.from(b.indices))).toEqual([[7, 2], [9]]);
    expect(Array.from(got[0].y.dataSync())).toEqual([split.labels[7], split.labels[2]]);
    const direct = imagesToTensor(split, [9], 'half');
    expect(Array.from(got[1].x.dataSync())).toEqual(Array.from(direct.dataSync()));
    tf.dispose([direct, ...got.flatMap((b) => [b.x, b.y])]);
    expect(() => [...batches(split, { batchSize: 2, norm: 'half', indices: [3, 10] })]).toThrow(
      /image index 10 outside 0 … 9/,
    );
  });
});

describe('validation split', () => {
  it('carves disjoint, seeded, file-ordered parts that together are the training set', () => {
    const split = synthetic(50);
    const { train, val, trainIndices, valIndices } = splitValidation(split, 12, 42);
    expect(val.count).toBe(12);
    expect(train.count).toBe(38);
    const all = [...trainIndices, ...valIndices].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(Array.from(valIndices)).toEqual([...valIndices].sort((a, b) => a - b));
    valIndices.forEach((j, k) => {
      expect(val.labels[k]).toBe(split.labels[j]);
      expect(val.images.subarray(k * 3072, (k + 1) * 3072)).toEqual(split.images.subarray(j * 3072, (j + 1) * 3072));
    });
    expect(splitValidation(split, 12, 42).valIndices).toEqual(valIndices);
    expect(splitValidation(split, 12, 43).valIndices).not.toEqual(valIndices);
    expect(() => splitValidation(split, 50, 1)).toThrow(/validation size must be a whole number from 0 to 49; got 50/);
  });

  it('is class-balanced and, by default, the same fixed split whatever the run', () => {
    const split = synthetic(200);
    const { val, valIndices } = splitValidation(split, 40);
    const perClass = new Array(10).fill(0);
    for (const l of val.labels) perClass[l]++;
    expect(perClass).toEqual(new Array(10).fill(4));
    expect(splitValidation(split, 40).valIndices).toEqual(valIndices);
    expect(splitValidation(split, 40, VALIDATION_SEED).valIndices).toEqual(valIndices);
    // 43 = 4 per class plus one more for classes 0, 1, 2.
    const odd = new Array(10).fill(0);
    for (const l of splitValidation(split, 43).val.labels) odd[l]++;
    expect(odd).toEqual([5, 5, 5, 4, 4, 4, 4, 4, 4, 4]);
  });

  it('says which class is too small for a balanced split', () => {
    const split = synthetic(30);
    split.labels.fill(1);
    split.labels[0] = 0;
    expect(() => splitValidation(split, 10)).toThrow(
      /class-balanced validation split of 10 needs 1 images of class 2; the training set has 0/,
    );
  });
});

describe.skipIf(!hasRealData())('batches of real CIFAR-10 images', () => {
  it('normalises a slice of the test set to the expected range and roughly zero mean (half)', () => {
    const test = loadCifar10('test', { limit: 256 });
    const [batch] = batches(test, { batchSize: 256, norm: 'half' });
    const x = batch.x.dataSync();
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    for (const v of x) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
    }
    expect(min).toBeGreaterThanOrEqual(-1);
    expect(max).toBeLessThanOrEqual(1);
    expect(max - min).toBeGreaterThan(1.9);
    expect(Math.abs(sum / x.length)).toBeLessThan(0.1);
    expect(Array.from(batch.y.dataSync().slice(0, 8))).toEqual([3, 8, 8, 0, 6, 6, 1, 6]);
    tf.dispose([batch.x, batch.y]);
  });
});

describe('BatchPrefetcher (the next batch made in a worker thread)', () => {
  /** Every batch of an epoch as plain arrays (tensors freed). */
  const collect = (it: Iterable<{ x: tf.Tensor4D; y: tf.Tensor1D; indices: Int32Array }>) =>
    [...it].map((b) => {
      const out = {
        x: b.x.dataSync().slice(),
        y: Array.from(b.y.dataSync()),
        indices: Array.from(b.indices),
        shape: b.x.shape,
      };
      tf.dispose([b.x, b.y]);
      return out;
    });

  it('gives batches() exactly, bit for bit: shuffled, augmented, the last batch smaller, chosen indices', () => {
    const split = synthetic(23);
    const prefetcher = new BatchPrefetcher(split, 8);
    try {
      const before = tf.memory().numTensors;
      for (const opts of [
        { batchSize: 8, norm: 'half' as const, shuffle: true, seed: 4, epoch: 1 },
        { batchSize: 8, norm: 'imagenet' as const, shuffle: true, augment: true, seed: 4, epoch: 2 },
        { batchSize: 5, norm: 'half' as const, augment: true, indices: [22, 3, 7, 7, 0, 11] },
      ]) {
        const expected = collect(batches(split, opts));
        const got = collect(prefetcher.batches(opts));
        expect(got.map((b) => b.shape)).toEqual(expected.map((b) => b.shape));
        got.forEach((b, i) => {
          expect(b.indices).toEqual(expected[i].indices);
          expect(b.y).toEqual(expected[i].y);
          expect(Buffer.from(b.x.buffer).equals(Buffer.from(expected[i].x.buffer))).toBe(true);
        });
      }
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      prefetcher.dispose();
    }
  });

  it('can stop in the middle of an epoch and start the next; refuses a batch larger than it was made for', () => {
    const split = synthetic(40);
    const prefetcher = new BatchPrefetcher(split, 8);
    try {
      const opts = { batchSize: 8, norm: 'half' as const, shuffle: true, augment: true, seed: 1, epoch: 3 };
      for (const b of prefetcher.batches(opts)) {
        tf.dispose([b.x, b.y]);
        break; // the next batch is being made in the worker: it must not land in a reused slot
      }
      const again = collect(prefetcher.batches(opts));
      const expected = collect(batches(split, opts));
      expect(again.map((b) => Array.from(b.x.slice(0, 50)))).toEqual(expected.map((b) => Array.from(b.x.slice(0, 50))));
      expect(() => [...prefetcher.batches({ ...opts, batchSize: 9 })]).toThrow(/batch size 9 > the 8 it was made for/);
    } finally {
      prefetcher.dispose();
    }
  });
});
