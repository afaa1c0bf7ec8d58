/**
 * CIFAR-10 as typed uint8 arrays: the loader for the official binary layout, and the dataset's
 * simple statistics. The whole training set is 150 MB as bytes; float copies are made per batch
 * only (lib/data/batches.ts). "Test" always means the official 10,000 test images.
 *
 * Files, verification and provisioning live in lib/data/cifar10-files.ts and lib/data/cifar10-provision.ts;
 * the names other modules need are re-exported here.
 */
import * as fs from 'fs';
import * as path from 'path';
import { NUM_CLASSES, PATHS } from '../config';
import {
  IMAGE_BYTES,
  labelProblem,
  PIXELS_PER_CHANNEL,
  RECORD_BYTES,
  RECORDS_PER_BATCH,
  sizeProblem,
  TEST_FILE,
  TRAIN_FILES,
  verifyBatchFiles,
  type BatchFile,
} from './cifar10-files';

export { ensureCifar10, type EnsureOptions, type EnsureReport } from './cifar10-provision';
export { BATCH_FILES, BATCH_SHA256, type BatchStatus, IMAGE_BYTES, verifyBatchFiles } from './cifar10-files';

export type SplitName = 'train' | 'test';

/** A set of images in memory, as bytes. */
export interface Cifar10Split {
  /** [count, 32, 32, 3] HWC RGB, 0 … 255. */
  images: Uint8Array;
  /** [count] class numbers 0 … 9. */
  labels: Uint8Array;
  count: number;
}

export interface LoadOptions {
  /** Folder with the batch files (default PATHS.cifarDir). */
  dir?: string;
  /** Read only the first `limit` images (in file order), for tests and quick runs. */
  limit?: number;
  /** Training batches to read, numbered 1 … 5 (default all); ignored for 'test'. */
  batches?: number[];
  /** Records per file (default 10,000); tests use small synthetic files. */
  recordsPerBatch?: number;
}

/** The batch files a split reads, in order. */
function splitFiles(split: SplitName, batches?: number[]): string[] {
  if (split === 'test') return [TEST_FILE];
  if (split !== 'train') throw new Error(`split must be 'train' or 'test'; got '${split as string}'`);
  const numbers = batches ?? [1, 2, 3, 4, 5];
  for (const n of numbers) {
    if (!Number.isInteger(n) || n < 1 || n > TRAIN_FILES.length) {
      throw new Error(`training batches are numbered 1 … ${TRAIN_FILES.length}; got ${n}`);
    }
  }
  return numbers.map((n) => TRAIN_FILES[n - 1]);
}

/**
 * Reads a split into uint8 storage, converting each record's CHW planes to HWC once.
 * Each file must hold exactly `recordsPerBatch` records (a shorter file is truncated, even when
 * only its first images are read) and only labels 0 … 9: anything else is an error naming the
 * file and telling how to repair it. Official-size files are also checked against their sha256:
 * cheaply, through the stamp `npm run data` leaves (size, mtime, ctime, inode); a file that no
 * longer matches its stamp (or has none) is hashed once and re-stamped, or refused if it changed.
 */
export function loadCifar10(split: SplitName, opts: LoadOptions = {}): Cifar10Split {
  const dir = opts.dir ?? PATHS.cifarDir;
  const perFile = opts.recordsPerBatch ?? RECORDS_PER_BATCH;
  const files = splitFiles(split, opts.batches);
  const available = files.length * perFile;
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit >= 0)) {
    throw new Error(`limit must be a whole number ≥ 0; got ${opts.limit}`);
  }
  const count = Math.min(opts.limit ?? available, available);
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Uint8Array(count);
  const repair =
    dir === PATHS.cifarDir
      ? 'run `npm run data` to rebuild it'
      : `rebuild it with \`npm run data -- --dir ${dir}\` or replace it with a good copy`;

  let done = 0;
  for (const name of files) {
    if (done === count) break;
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) {
      throw new Error(`CIFAR-10 batch ${file} is missing: run \`npm run data\` to provision the data set`);
    }
    const size = fs.statSync(file).size;
    if (size !== perFile * RECORD_BYTES)
      throw new Error(`CIFAR-10 batch ${file} ${sizeProblem(size, perFile)}: ${repair}`);
    if (perFile === RECORDS_PER_BATCH) checkAgainstStamp(dir, name as BatchFile, repair);
    const take = Math.min(perFile, count - done);
    const bytes = readPrefix(file, take * RECORD_BYTES);
    const recordBytes = RECORD_BYTES; // local copies: imported constants are property reads
    const classes = NUM_CLASSES;
    for (let r = 0; r < take; r++) {
      const label = bytes[r * recordBytes];
      if (label >= classes) throw new Error(`CIFAR-10 batch ${file} ${labelProblem(r, label)}: ${repair}`);
      labels[done + r] = label;
    }
    planesToHwc(bytes, take, images, done);
    done += take;
  }
  return { images, labels, count };
}

/** Refuses an official batch file whose bytes are not the official ones (see loadCifar10). */
function checkAgainstStamp(dir: string, name: BatchFile, repair: string): void {
  const [status] = verifyBatchFiles(dir, { names: [name] });
  if (status.ok) return;
  const since = status.changedSinceVerified ? ' (it changed after it was last verified)' : '';
  throw new Error(`CIFAR-10 batch ${status.path} ${status.problem}${since}: ${repair}`);
}

function readPrefix(file: string, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  const fd = fs.openSync(file, 'r');
  try {
    let read = 0;
    while (read < length) {
      const n = fs.readSync(fd, buffer, read, length - read, read);
      if (n === 0) throw new Error(`CIFAR-10 batch ${file} ended early while reading: it changed during the read`);
      read += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return buffer;
}

/** Copies `count` records' planes (R, G, B; each 32×32 row-major) into HWC images starting at image `at`. */
function planesToHwc(records: Uint8Array, count: number, images: Uint8Array, at: number): void {
  // Local copies: imported constants compile to property reads (getters under tsx), which make
  // this loop over 150 M bytes about 20 times slower.
  const P = PIXELS_PER_CHANNEL;
  const recordBytes = RECORD_BYTES;
  const imageBytes = IMAGE_BYTES;
  for (let i = 0; i < count; i++) {
    const r = i * recordBytes + 1;
    const g = r + P;
    const b = g + P;
    const dst = (at + i) * imageBytes;
    for (let p = 0; p < P; p++) {
      const o = dst + p * 3;
      images[o] = records[r + p];
      images[o + 1] = records[g + p];
      images[o + 2] = records[b + p];
    }
  }
}

/** The images at `indices` (in that order) as a new split. */
export function subset(split: Cifar10Split, indices: ArrayLike<number>): Cifar10Split {
  const count = indices.length;
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const j = indices[i];
    if (!(j >= 0 && j < split.count)) throw new Error(`subset: index ${j} outside 0 … ${split.count - 1}`);
    images.set(split.images.subarray(j * IMAGE_BYTES, (j + 1) * IMAGE_BYTES), i * IMAGE_BYTES);
    labels[i] = split.labels[j];
  }
  return { images, labels, count };
}

/** How many images of each class: [10]. */
export function classCounts(labels: Uint8Array): number[] {
  const counts = new Array<number>(NUM_CLASSES).fill(0);
  for (const label of labels) counts[label]++;
  return counts;
}

/** The first `perClass` indices of each class, in file order: [10][≤ perClass]. */
export function indicesPerClass(labels: Uint8Array, perClass: number): number[][] {
  const picked: number[][] = Array.from({ length: NUM_CLASSES }, () => []);
  for (let i = 0; i < labels.length; i++) {
    const bucket = picked[labels[i]];
    if (bucket.length < perClass) bucket.push(i);
  }
  return picked;
}

export interface ChannelStats {
  /** Per-channel mean of the pixels scaled to [0, 1], R G B. */
  mean: [number, number, number];
  /** Per-channel standard deviation (population) of the pixels scaled to [0, 1], R G B. */
  std: [number, number, number];
}

/** Per-channel mean and standard deviation over every pixel of the split, from a byte histogram. */
export function channelStats(split: Cifar10Split): ChannelStats {
  // Counting byte values per channel is exact and avoids summing 50M floats.
  const [hr, hg, hb] = [new Float64Array(256), new Float64Array(256), new Float64Array(256)];
  const histogram = [hr, hg, hb];
  const { images } = split;
  const n = split.count * PIXELS_PER_CHANNEL;
  if (n === 0) throw new Error('channelStats: the split has no images');
  for (let p = 0; p < 3 * n; p += 3) {
    hr[images[p]]++;
    hg[images[p + 1]]++;
    hb[images[p + 2]]++;
  }
  const mean: [number, number, number] = [0, 0, 0];
  const std: [number, number, number] = [0, 0, 0];
  for (let c = 0; c < 3; c++) {
    let sum = 0;
    let sumSq = 0;
    for (let v = 0; v < 256; v++) {
      sum += histogram[c][v] * v;
      sumSq += histogram[c][v] * v * v;
    }
    const m = sum / n;
    mean[c] = m / 255;
    std[c] = Math.sqrt(Math.max(0, sumSq / n - m * m)) / 255;
  }
  return { mean, std };
}
