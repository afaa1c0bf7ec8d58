/**
 * From uint8 images to float32 batches: the epoch's (seeded) order, optional augmentation
 * (torchvision's RandomCrop(32, padding=4) then RandomHorizontalFlip), per-channel normalisation,
 * and the validation split carved from the training set.
 *
 * Only one batch at a time exists as floats ([batch, 32, 32, 3] NHWC); the data set stays bytes.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CHANNELS, IMAGE_SIZE, NORMALIZATIONS, NUM_CLASSES, type NormName } from '../config';
import { type Cifar10Split, IMAGE_BYTES, subset } from './cifar10';
import { deriveSeed, mulberry32, permutation, randomInt } from '../runtime/index';

export interface Batch {
  /** [batch, 32, 32, 3] float32, normalised. */
  x: tf.Tensor4D;
  /** [batch] int32 class numbers. */
  y: tf.Tensor1D;
  /** [batch] positions of these images in the split. */
  indices: Int32Array;
}

export interface BatchOptions {
  batchSize: number;
  norm: NormName;
  /** Visit the images in a seeded random order, new each epoch (default false: file order). */
  shuffle?: boolean;
  seed?: number;
  /** Random 4-pixel-padded crop and horizontal flip (default false). */
  augment?: boolean;
  /** Chooses this epoch's order and augmentation; same seed and epoch, same batches. */
  epoch?: number;
  /** Skip a last batch smaller than batchSize (default false). */
  dropLast?: boolean;
  /** Only the images at these indices of the split, in this order (default: all, in the epoch's order). */
  indices?: ArrayLike<number>;
}

/** Zero padding on each side before the random 32×32 crop. */
export const CROP_PADDING = 4;

// Separate random streams, so that e.g. turning augmentation on does not change the order.
const STREAM_ORDER = 1;
const STREAM_AUGMENT = 2;
const STREAM_VALIDATION = 3;

/** The order an epoch visits `count` images in: a seeded permutation, or 0 … count-1. */
export function epochOrder(count: number, opts: { shuffle?: boolean; seed?: number; epoch?: number } = {}): Int32Array {
  if (!opts.shuffle) return Int32Array.from({ length: count }, (_, i) => i);
  return permutation(count, mulberry32(deriveSeed(opts.seed ?? 0, opts.epoch ?? 0, STREAM_ORDER)));
}

/** How many batches an epoch has. */
export function numBatches(count: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

/**
 * Per channel, the normalised float for each byte value: (v / 255 - mean) / std.
 * [3][256]; a table lookup per pixel instead of arithmetic.
 */
export function normalizationTable(norm: NormName): Float32Array[] {
  const spec = NORMALIZATIONS[norm];
  if (!spec) throw new Error(`norm must be one of ${Object.keys(NORMALIZATIONS).join(', ')}; got '${norm}'`);
  return [0, 1, 2].map((c) => Float32Array.from({ length: 256 }, (_, v) => (v / 255 - spec.mean[c]) / spec.std[c]));
}

/**
 * One augmented image: the source padded with 4 black pixels on each side, the 32×32 window at
 * (top dy, left dx) with dx, dy in 0 … 8 (4 = no shift), then mirrored left-right if `flip`.
 * `src` and `dst` are [32, 32, 3] HWC bytes.
 */
export function augmentImage(src: Uint8Array, dst: Uint8Array, dx: number, dy: number, flip: boolean): void {
  // Local copies: imported constants compile to property reads, slow in hot loops.
  const S = IMAGE_SIZE;
  const C = CHANNELS;
  const pad = CROP_PADDING;
  for (let y = 0; y < S; y++) {
    const sy = y + dy - pad;
    for (let x = 0; x < S; x++) {
      const sx = (flip ? S - 1 - x : x) + dx - pad;
      const o = (y * S + x) * C;
      if (sy < 0 || sy >= S || sx < 0 || sx >= S) {
        dst[o] = dst[o + 1] = dst[o + 2] = 0;
      } else {
        const i = (sy * S + sx) * C;
        dst[o] = src[i];
        dst[o + 1] = src[i + 1];
        dst[o + 2] = src[i + 2];
      }
    }
  }
}

/** Writes one [32, 32, 3] byte image as normalised floats into `out` at image slot `slot`. */
function writeImage(out: Float32Array, slot: number, pixels: Uint8Array, table: Float32Array[]): void {
  const [r, g, b] = table;
  const imageBytes = IMAGE_BYTES; // local: imported constants are property reads
  const base = slot * imageBytes;
  for (let p = 0; p < imageBytes; p += 3) {
    out[base + p] = r[pixels[p]];
    out[base + p + 1] = g[pixels[p + 1]];
    out[base + p + 2] = b[pixels[p + 2]];
  }
}

/**
 * The images at `indices` as one normalised float tensor [n, 32, 32, 3] (no augmentation), for
 * evaluation, prediction and figures. The caller disposes it.
 */
export function imagesToTensor(split: Cifar10Split, indices: ArrayLike<number>, norm: NormName): tf.Tensor4D {
  const table = normalizationTable(norm);
  const out = new Float32Array(indices.length * IMAGE_BYTES);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    if (!(j >= 0 && j < split.count)) throw new Error(`image index ${j} outside 0 … ${split.count - 1}`);
    writeImage(out, i, split.images.subarray(j * IMAGE_BYTES, (j + 1) * IMAGE_BYTES), table);
  }
  return tf.tensor4d(out, [indices.length, IMAGE_SIZE, IMAGE_SIZE, CHANNELS], 'float32');
}

/**
 * The inverse of the normalisation: a float batch [n, 32, 32, 3] back to n uint8 HWC images,
 * to look at what the network is fed (augmented batches included).
 */
export function tensorToImages(x: tf.Tensor4D, norm: NormName): Uint8Array[] {
  const { mean, std } = NORMALIZATIONS[norm];
  const values = x.dataSync();
  const bytes = new Uint8Array(values.length);
  for (let k = 0; k < values.length; k++) {
    const c = k % CHANNELS;
    bytes[k] = Math.min(255, Math.max(0, Math.round((values[k] * std[c] + mean[c]) * 255)));
  }
  const imageBytes = IMAGE_BYTES;
  return Array.from({ length: x.shape[0] }, (_, i) => bytes.subarray(i * imageBytes, (i + 1) * imageBytes));
}

/** `indices` checked against the split (a chosen subset is visited as given: no shuffling). */
function selectIndices(split: Cifar10Split, indices: ArrayLike<number>, opts: { shuffle?: boolean }): Int32Array {
  if (opts.shuffle) throw new Error('batches: indices are visited in the order given; shuffle cannot apply to them');
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!(Number.isInteger(i) && i >= 0 && i < split.count)) throw new Error(`image index ${i} outside 0 … ${split.count - 1}`);
  }
  return Int32Array.from(indices);
}

/**
 * Yields one epoch of batches. The caller owns each batch's tensors and disposes them
 * (`tf.dispose([batch.x, batch.y])`) once used.
 */
export function* batches(split: Cifar10Split, opts: BatchOptions): Generator<Batch> {
  const { batchSize } = opts;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new Error(`batchSize must be a whole number > 0; got ${batchSize}`);
  const table = normalizationTable(opts.norm);
  const order = opts.indices ? selectIndices(split, opts.indices, opts) : epochOrder(split.count, opts);
  const rng = mulberry32(deriveSeed(opts.seed ?? 0, opts.epoch ?? 0, STREAM_AUGMENT));
  const scratch = new Uint8Array(IMAGE_BYTES);
  const total = numBatches(order.length, batchSize, opts.dropLast);

  for (let b = 0; b < total; b++) {
    const indices = order.slice(b * batchSize, Math.min((b + 1) * batchSize, order.length));
    const n = indices.length;
    const x = new Float32Array(n * IMAGE_BYTES);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const j = indices[i];
      let pixels = split.images.subarray(j * IMAGE_BYTES, (j + 1) * IMAGE_BYTES);
      if (opts.augment) {
        const dx = randomInt(rng, 2 * CROP_PADDING + 1);
        const dy = randomInt(rng, 2 * CROP_PADDING + 1);
        const flip = rng() < 0.5;
        augmentImage(pixels, scratch, dx, dy, flip);
        pixels = scratch;
      }
      writeImage(x, i, pixels, table);
      y[i] = split.labels[j];
    }
    yield {
      x: tf.tensor4d(x, [n, IMAGE_SIZE, IMAGE_SIZE, CHANNELS], 'float32'),
      y: tf.tensor1d(y, 'int32'),
      indices,
    };
  }
}

/**
 * The seed of THE validation split. It is fixed, not the run's seed, so that every run (every
 * seed, every arm of a comparison) is selected on the same held-out images.
 */
export const VALIDATION_SEED = 20260;

/**
 * Carves a class-balanced validation set of `count` images out of the training set: count / 10
 * images of each class (the remainder to the first classes), chosen at random by `seed` (default
 * VALIDATION_SEED); both parts keep file order. "Test" stays the official test set: this is for
 * model selection only.
 */
export function splitValidation(
  train: Cifar10Split,
  count: number,
  seed: number = VALIDATION_SEED,
): { train: Cifar10Split; val: Cifar10Split; trainIndices: Int32Array; valIndices: Int32Array } {
  if (!(Number.isInteger(count) && count >= 0 && count < train.count)) {
    throw new Error(`validation size must be a whole number from 0 to ${train.count - 1}; got ${count}`);
  }
  const byClass: number[][] = [];
  for (let i = 0; i < train.count; i++) (byClass[train.labels[i]] ??= []).push(i);
  const classes = NUM_CLASSES;
  const rng = mulberry32(deriveSeed(seed, STREAM_VALIDATION));
  const val: number[] = [];
  for (let c = 0; c < classes; c++) {
    const members = byClass[c] ?? [];
    const want = Math.floor(count / classes) + (c < count % classes ? 1 : 0);
    if (want > members.length) {
      throw new Error(`a class-balanced validation split of ${count} needs ${want} images of class ${c}; the training set has ${members.length}`);
    }
    const order = permutation(members.length, rng);
    for (let k = 0; k < want; k++) val.push(members[order[k]]);
  }
  const valIndices = Int32Array.from(val).sort();
  const inVal = new Uint8Array(train.count);
  for (const i of valIndices) inVal[i] = 1;
  const trainIndices = Int32Array.from({ length: train.count - count }, () => 0);
  for (let i = 0, k = 0; i < train.count; i++) if (!inVal[i]) trainIndices[k++] = i;
  return { train: subset(train, trainIndices), val: subset(train, valIndices), trainIndices, valIndices };
}
