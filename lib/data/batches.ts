/**
 * From uint8 images to float32 batches: the epoch's (seeded) order, optional augmentation
 * (torchvision's RandomCrop(32, padding=4) then RandomHorizontalFlip), per-channel normalisation,
 * and the validation split carved from the training set.
 *
 * Only a batch or two at a time exist as floats ([batch, 32, 32, 3] NHWC); the data set stays bytes.
 * BatchPrefetcher makes the same batches one ahead in a worker thread: a training step blocks
 * JavaScript's thread (tfjs-node runs the session synchronously), so that is the only way to
 * prepare the next batch while TensorFlow computes.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'worker_threads';
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
 * Where pixel (x, y) of an augmented image comes from: the source pixel's number (row-major),
 * or -1 for padding. The source is padded with `pad` black pixels on each side, the window at
 * (left dx, top dy) with dx, dy in 0 … 2·pad (pad = no shift) is taken, then mirrored left-right
 * if `flip`. Sizes are arguments: the prefetch worker runs this source, where nothing is imported.
 */
function cropSource(x: number, y: number, dx: number, dy: number, flip: boolean, size: number, pad: number): number {
  const sy = y + dy - pad;
  const sx = (flip ? size - 1 - x : x) + dx - pad;
  return sy < 0 || sy >= size || sx < 0 || sx >= size ? -1 : sy * size + sx;
}

/**
 * One augmented image (cropSource with 4 pixels of padding): `src` and `dst` are [32, 32, 3] HWC bytes.
 */
export function augmentImage(src: Uint8Array, dst: Uint8Array, dx: number, dy: number, flip: boolean): void {
  // Local copies: imported constants compile to property reads, slow in hot loops.
  const S = IMAGE_SIZE;
  const C = CHANNELS;
  for (let p = 0; p < S * S; p++) {
    const i = cropSource(p % S, Math.floor(p / S), dx, dy, flip, S, CROP_PADDING);
    for (let c = 0; c < C; c++) dst[p * C + c] = i < 0 ? 0 : src[i * C + c];
  }
}

/**
 * The batch kernel: image k of the batch, the [size, size, 3] HWC bytes at `images[starts[k]]`,
 * as normalised floats at `out[k · size² · 3]`, through the normalisation table [3 · 256] (channel
 * c, byte v → table[c · 256 + v]). With `crops` [3 · n]: image k augmented by cropSource with
 * (dx, dy, flip) = crops[3k], crops[3k + 1], crops[3k + 2]; padding is byte 0 (black).
 * Self-contained (no names from outside but cropSource): the prefetch worker runs this same source.
 */
function fillBatch(
  images: Uint8Array,
  starts: ArrayLike<number>,
  crops: Uint8Array | null,
  table: Float32Array,
  out: Float32Array,
  size: number,
  pad: number,
): void {
  const pixels = size * size;
  for (let k = 0; k < starts.length; k++) {
    const s = starts[k];
    const base = k * pixels * 3;
    if (!crops) {
      for (let p = 0; p < pixels * 3; p += 3) {
        out[base + p] = table[images[s + p]];
        out[base + p + 1] = table[256 + images[s + p + 1]];
        out[base + p + 2] = table[512 + images[s + p + 2]];
      }
      continue;
    }
    const dx = crops[3 * k];
    const dy = crops[3 * k + 1];
    const flip = crops[3 * k + 2] === 1;
    for (let p = 0; p < pixels; p++) {
      const i = cropSource(p % size, (p - (p % size)) / size, dx, dy, flip, size, pad);
      const o = base + 3 * p;
      const from = s + 3 * i;
      out[o] = table[i < 0 ? 0 : images[from]];
      out[o + 1] = table[256 + (i < 0 ? 0 : images[from + 1])];
      out[o + 2] = table[512 + (i < 0 ? 0 : images[from + 2])];
    }
  }
}

/** normalizationTable's three rows as one [3 · 256] array (fillBatch's layout). */
function flatTable(norm: NormName): Float32Array {
  const table = new Float32Array(3 * 256);
  normalizationTable(norm).forEach((row, c) => table.set(row, c * 256));
  return table;
}

/** Byte offset of each image of `indices` in its split. */
const startsOf = (indices: Int32Array) => indices.map((j) => j * IMAGE_BYTES);

/**
 * The images at `indices` as one normalised float tensor [n, 32, 32, 3] (no augmentation), for
 * evaluation, prediction and figures. The caller disposes it.
 */
export function imagesToTensor(split: Cifar10Split, indices: ArrayLike<number>, norm: NormName): tf.Tensor4D {
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    if (!(j >= 0 && j < split.count)) throw new Error(`image index ${j} outside 0 … ${split.count - 1}`);
  }
  const out = new Float32Array(indices.length * IMAGE_BYTES);
  fillBatch(split.images, startsOf(Int32Array.from(indices)), null, flatTable(norm), out, IMAGE_SIZE, CROP_PADDING);
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
    if (!(Number.isInteger(i) && i >= 0 && i < split.count))
      throw new Error(`image index ${i} outside 0 … ${split.count - 1}`);
  }
  return Int32Array.from(indices);
}

/** One batch to make: its images, and their augmentation when there is one. */
interface BatchJob {
  indices: Int32Array;
  /** [3 · n] (dx, dy, flip) per image, for fillBatch. */
  crops: Uint8Array | null;
  labels: Int32Array;
}

/** An epoch's batch jobs, in order: the seeded order, and each image's augmentation drawn in turn. */
function* batchJobs(split: Cifar10Split, opts: BatchOptions): Generator<BatchJob> {
  const { batchSize } = opts;
  if (!(Number.isInteger(batchSize) && batchSize > 0))
    throw new Error(`batchSize must be a whole number > 0; got ${batchSize}`);
  const order = opts.indices ? selectIndices(split, opts.indices, opts) : epochOrder(split.count, opts);
  const rng = mulberry32(deriveSeed(opts.seed ?? 0, opts.epoch ?? 0, STREAM_AUGMENT));
  const total = numBatches(order.length, batchSize, opts.dropLast);
  for (let b = 0; b < total; b++) {
    const indices = order.slice(b * batchSize, Math.min((b + 1) * batchSize, order.length));
    let crops: Uint8Array | null = null;
    if (opts.augment) {
      crops = new Uint8Array(3 * indices.length);
      for (let i = 0; i < indices.length; i++) {
        crops[3 * i] = randomInt(rng, 2 * CROP_PADDING + 1); // dx
        crops[3 * i + 1] = randomInt(rng, 2 * CROP_PADDING + 1); // dy
        crops[3 * i + 2] = rng() < 0.5 ? 1 : 0; // flip
      }
    }
    yield { indices, crops, labels: Int32Array.from(indices, (j) => split.labels[j]) };
  }
}

function toBatch(job: BatchJob, x: Float32Array): Batch {
  const n = job.indices.length;
  return {
    x: tf.tensor4d(x, [n, IMAGE_SIZE, IMAGE_SIZE, CHANNELS], 'float32'),
    y: tf.tensor1d(job.labels, 'int32'),
    indices: job.indices,
  };
}

/**
 * Yields one epoch of batches. The caller owns each batch's tensors and disposes them
 * (`tf.dispose([batch.x, batch.y])`) once used.
 */
export function* batches(split: Cifar10Split, opts: BatchOptions): Generator<Batch> {
  const table = flatTable(opts.norm);
  for (const job of batchJobs(split, opts)) {
    const x = new Float32Array(job.indices.length * IMAGE_BYTES);
    fillBatch(split.images, startsOf(job.indices), job.crops, table, x, IMAGE_SIZE, CROP_PADDING);
    yield toBatch(job, x);
  }
}

// ---- the same batches, made one ahead in a worker thread ---------------------------------------

/** A slot's state in the shared control array. */
const SLOT_FREE = 0;
const SLOT_READY = 1;
const SLOT_FAILED = 2;
/** How long to wait for the worker before giving up on it. */
const WORKER_TIMEOUT_MS = 120_000;

/**
 * The worker's loop, run from its source (fillBatch and cropSource defined before it): each
 * message { slot, bytes, crops, table, n } fills float slot `slot` and marks it ready (or failed,
 * with the error on the error port).
 */
function prefetchWorker(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parentPort, workerData } = require('worker_threads');
  const { control, floats, slotFloats, size, pad, errors, ready, failed } = workerData;
  const flags = new Int32Array(control);
  parentPort.on(
    'message',
    (m: { slot: number; bytes: Uint8Array; crops: Uint8Array | null; table: Float32Array; n: number }) => {
      try {
        const starts = new Int32Array(m.n);
        for (let k = 0; k < m.n; k++) starts[k] = k * size * size * 3;
        fillBatch(
          m.bytes,
          starts,
          m.crops,
          m.table,
          new Float32Array(floats, m.slot * slotFloats * 4, m.n * size * size * 3),
          size,
          pad,
        );
        Atomics.store(flags, m.slot, ready);
      } catch (err) {
        errors.postMessage(String((err as Error)?.stack ?? err));
        Atomics.store(flags, m.slot, failed);
      }
      Atomics.notify(flags, m.slot);
    },
  );
}

/**
 * batches() of one split, each made while the caller still works on the one before: a worker
 * thread turns the next batch's bytes into floats (fillBatch, the same code) while JavaScript's
 * thread waits in TensorFlow. Same batches, same order, same bits as batches(). Keep one for a
 * run (the worker starts once); dispose() ends the worker.
 */
export class BatchPrefetcher {
  private readonly worker: Worker;
  private readonly flags: Int32Array;
  private readonly floats: Float32Array;
  private readonly slotFloats: number;
  private readonly errors: MessagePort;
  private readonly tables = new Map<NormName, Float32Array>();
  private table?: Float32Array;
  /** Slots with a job sent and not yet taken back. */
  private readonly pending = new Set<number>();

  /** `maxBatch`: the largest batch size it will be asked for. */
  constructor(
    private readonly split: Cifar10Split,
    readonly maxBatch: number,
  ) {
    if (!(Number.isInteger(maxBatch) && maxBatch > 0))
      throw new Error(`batchSize must be a whole number > 0; got ${maxBatch}`);
    this.slotFloats = maxBatch * IMAGE_BYTES;
    const control = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
    const floats = new SharedArrayBuffer(2 * this.slotFloats * Float32Array.BYTES_PER_ELEMENT);
    this.flags = new Int32Array(control);
    this.floats = new Float32Array(floats);
    const channel = new MessageChannel();
    this.errors = channel.port1;
    // The source of three functions of this file: whichever compiler made this module's JavaScript
    // (tsx, vitest, tslab), their text is the code that runs here. __name: esbuild's keepNames helper.
    const source = `const __name = (f) => f;
${cropSource}
${fillBatch}
(${prefetchWorker})();`;
    this.worker = new Worker(source, {
      eval: true,
      workerData: {
        control,
        floats,
        slotFloats: this.slotFloats,
        size: IMAGE_SIZE,
        pad: CROP_PADDING,
        errors: channel.port2,
        ready: SLOT_READY,
        failed: SLOT_FAILED,
      },
      transferList: [channel.port2],
    });
    this.worker.unref(); // never keeps the process alive
  }

  /** batches(split, opts): the same batches, made one ahead. Stopping early (break, throw) is fine. */
  *batches(opts: BatchOptions): Generator<Batch> {
    if (opts.batchSize > this.maxBatch)
      throw new Error(`BatchPrefetcher: batch size ${opts.batchSize} > the ${this.maxBatch} it was made for`);
    this.table = this.tables.get(opts.norm) ?? this.tables.set(opts.norm, flatTable(opts.norm)).get(opts.norm)!;
    for (const s of [...this.pending]) this.take(s, 0); // an earlier epoch left without closing its generator
    const jobs = batchJobs(this.split, opts);
    let slot = 0;
    let current = jobs.next();
    if (!current.done) this.send(slot, current.value);
    try {
      while (!current.done) {
        const next = jobs.next();
        if (!next.done) this.send(1 - slot, next.value); // made while the caller uses this one
        yield toBatch(current.value, this.take(slot, current.value.indices.length));
        current = next;
        slot = 1 - slot;
      }
    } finally {
      for (const s of [...this.pending]) this.take(s, 0); // a job still running must not write into a reused slot
    }
  }

  private send(slot: number, job: BatchJob): void {
    const bytes = new Uint8Array(job.indices.length * IMAGE_BYTES);
    job.indices.forEach((j, k) =>
      bytes.set(this.split.images.subarray(j * IMAGE_BYTES, (j + 1) * IMAGE_BYTES), k * IMAGE_BYTES),
    );
    this.worker.postMessage({ slot, bytes, crops: job.crops, table: this.table, n: job.indices.length }, [
      bytes.buffer,
    ]);
    this.pending.add(slot);
  }

  /** Waits for `slot` (blocking: JavaScript has nothing else to do) and copies out its first n images. */
  private take(slot: number, n: number): Float32Array {
    const deadline = performance.now() + WORKER_TIMEOUT_MS;
    while (Atomics.load(this.flags, slot) === SLOT_FREE) {
      if (performance.now() > deadline)
        throw new Error(`batch preparation: the worker thread did not answer within ${WORKER_TIMEOUT_MS / 1000} s`);
      Atomics.wait(this.flags, slot, SLOT_FREE, 1000);
    }
    this.pending.delete(slot);
    const failed = Atomics.load(this.flags, slot) === SLOT_FAILED;
    Atomics.store(this.flags, slot, SLOT_FREE);
    if (failed)
      throw new Error(
        `batch preparation failed in the worker thread: ${receiveMessageOnPort(this.errors)?.message ?? 'no message'}`,
      );
    const start = slot * this.slotFloats;
    return this.floats.slice(start, start + n * IMAGE_BYTES); // a copy: the slot is reused two batches on
  }

  /** Ends the worker thread. */
  dispose(): void {
    void this.worker.terminate();
    this.errors.close();
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
      throw new Error(
        `a class-balanced validation split of ${count} needs ${want} images of class ${c}; the training set has ${members.length}`,
      );
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
