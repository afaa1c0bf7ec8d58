import * as fs from 'fs';
import * as path from 'path';
import { afterEach, describe, expect, it } from 'vitest';
import { channelStats, classCounts, indicesPerClass, loadCifar10, subset } from '../lib/data/cifar10';
import { BATCH_SHA256, RECORD_BYTES, STAMP_FILE, verifyBatchFiles } from '../lib/data/cifar10-files';
import { PATHS } from '../lib/config';
import { hasRealData, pixelValue, syntheticCifarDir, syntheticRecords, tempDir } from './cifar10-synthetic';

const dirs: string[] = [];
function makeDir(perFile: number): string {
  const dir = syntheticCifarDir(perFile);
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('loadCifar10 on small files in the official layout', () => {
  it("turns each record's R, G, B planes into HWC images and keeps the labels", () => {
    const dir = makeDir(4);
    const test = loadCifar10('test', { dir, recordsPerBatch: 4 });
    expect(test.count).toBe(4);
    expect(test.images.length).toBe(4 * 32 * 32 * 3);
    // test_batch.bin is the sixth file: its images are numbered 20 … 23 by the fixture.
    expect(Array.from(test.labels)).toEqual([0, 1, 2, 3]);
    for (const [i, y, x] of [
      [0, 0, 0],
      [1, 5, 31],
      [3, 31, 7],
    ]) {
      for (let c = 0; c < 3; c++) {
        expect(test.images[((i * 32 + y) * 32 + x) * 3 + c]).toBe(pixelValue(20 + i, c, y * 32 + x));
      }
    }
  });

  it('reads the training batches in order, a chosen subset of them, and stops at the limit', () => {
    const dir = makeDir(4);
    const all = loadCifar10('train', { dir, recordsPerBatch: 4 });
    expect(all.count).toBe(20);
    expect(Array.from(all.labels)).toEqual(Array.from({ length: 20 }, (_, i) => i % 10));

    const some = loadCifar10('train', { dir, recordsPerBatch: 4, batches: [3, 5], limit: 6 });
    expect(some.count).toBe(6);
    // batch 3 holds images 8 … 11, batch 5 images 16 … 19.
    expect(Array.from(some.labels)).toEqual([8, 9, 0, 1, 6, 7]);
    expect(some.images[4 * 3072]).toBe(pixelValue(16, 0, 0));
    expect(some.images.length).toBe(6 * 3072);
  });

  it('names a missing batch file and says how to get it', () => {
    const dir = makeDir(4);
    fs.rmSync(path.join(dir, 'data_batch_2.bin'));
    expect(() => loadCifar10('train', { dir, recordsPerBatch: 4 })).toThrow(
      /data_batch_2\.bin is missing: run `npm run data`/,
    );
    // A limit that stops inside batch 1 does not need batch 2.
    expect(loadCifar10('train', { dir, recordsPerBatch: 4, limit: 3 }).count).toBe(3);
  });

  it('names a file of the wrong size, even when only its first images are wanted', () => {
    const dir = makeDir(4);
    const file = path.join(dir, 'test_batch.bin');
    fs.truncateSync(file, 3 * RECORD_BYTES + 100);
    expect(() => loadCifar10('test', { dir, recordsPerBatch: 4, limit: 1 })).toThrow(
      /test_batch\.bin has 9,319 bytes, expected 12,292 \(4 records of 3,073 bytes\): it is truncated/,
    );
    fs.writeFileSync(file, Buffer.concat([syntheticRecords(4), Buffer.alloc(1)]));
    expect(() => loadCifar10('test', { dir, recordsPerBatch: 4 })).toThrow(
      /test_batch\.bin has 12,293 bytes.*too long/,
    );
  });

  it('names a file with a label byte above 9 and the record that holds it', () => {
    const dir = makeDir(4);
    fs.writeFileSync(
      path.join(dir, 'data_batch_1.bin'),
      syntheticRecords(4, (i) => (i === 2 ? 10 : 1)),
    );
    expect(() => loadCifar10('train', { dir, recordsPerBatch: 4 })).toThrow(
      /data_batch_1\.bin has label byte 10 in record 2 \(labels are 0 … 9\): it is corrupt/,
    );
  });

  it('rejects bad arguments with the valid range', () => {
    const dir = makeDir(4);
    expect(() => loadCifar10('train', { dir, recordsPerBatch: 4, batches: [6] })).toThrow(/numbered 1 … 5; got 6/);
    expect(() => loadCifar10('train', { dir, recordsPerBatch: 4, limit: -1 })).toThrow(/limit must be/);
    expect(() => loadCifar10('val' as 'train', { dir })).toThrow(/split must be 'train' or 'test'/);
  });
});

describe('data set statistics', () => {
  it('counts classes, picks the first images of each class, and takes subsets', () => {
    const labels = Uint8Array.from([3, 1, 3, 9, 3, 1]);
    expect(classCounts(labels)).toEqual([0, 2, 0, 3, 0, 0, 0, 0, 0, 1]);
    expect(indicesPerClass(labels, 2)[3]).toEqual([0, 2]);
    expect(indicesPerClass(labels, 2)[9]).toEqual([3]);
    expect(indicesPerClass(labels, 2)[0]).toEqual([]);

    const dir = makeDir(4);
    const split = loadCifar10('train', { dir, recordsPerBatch: 4, limit: 8 });
    const picked = subset(split, [5, 0]);
    expect(Array.from(picked.labels)).toEqual([5, 0]);
    expect(Array.from(picked.images.subarray(0, 3072))).toEqual(Array.from(split.images.subarray(5 * 3072, 6 * 3072)));
    expect(() => subset(split, [8])).toThrow(/index 8 outside 0 … 7/);
  });

  it('computes per-channel mean and population std in [0, 1] units', () => {
    // Two flat images: red 0 then 255, green 51 in both, blue 0 then 102.
    const images = new Uint8Array(2 * 3072);
    for (let p = 0; p < 1024; p++) {
      images[p * 3] = 0;
      images[p * 3 + 1] = 51;
      images[p * 3 + 2] = 0;
      images[3072 + p * 3] = 255;
      images[3072 + p * 3 + 1] = 51;
      images[3072 + p * 3 + 2] = 102;
    }
    const stats = channelStats({ images, labels: new Uint8Array(2), count: 2 });
    expect(stats.mean[0]).toBeCloseTo(0.5, 12);
    expect(stats.mean[1]).toBeCloseTo(0.2, 12);
    expect(stats.mean[2]).toBeCloseTo(0.2, 12);
    expect(stats.std[0]).toBeCloseTo(0.5, 12);
    expect(stats.std[1]).toBeCloseTo(0, 6);
    expect(stats.std[2]).toBeCloseTo(0.2, 12);
  });
});

describe.skipIf(!hasRealData())('loadCifar10 on the real data (data/cifar-10-batches-bin)', () => {
  it('starts the official test set with the labels 3, 8, 8, 0, 6, 6, 1, 6', () => {
    const test = loadCifar10('test', { limit: 300 });
    expect(test.count).toBe(300);
    expect(Array.from(test.labels.subarray(0, 8))).toEqual([3, 8, 8, 0, 6, 6, 1, 6]);
  });

  it('starts the training set with the labels 6, 9, 9, 4, 1, 1, 2, 7 and holds natural images', () => {
    const train = loadCifar10('train', { limit: 300 });
    expect(Array.from(train.labels.subarray(0, 8))).toEqual([6, 9, 9, 4, 1, 1, 2, 7]);
    const stats = channelStats(train);
    // A few hundred photographs already sit near the full set's statistics.
    for (const [c, mean] of [0.4914, 0.4822, 0.4465].entries())
      expect(Math.abs(stats.mean[c] - mean)).toBeLessThan(0.04);
    for (const [c, std] of [0.247, 0.2435, 0.2616].entries()) expect(Math.abs(stats.std[c] - std)).toBeLessThan(0.03);
  });

  it('has 1,000 test images of each class', () => {
    const test = loadCifar10('test');
    expect(test.count).toBe(10_000);
    expect(classCounts(test.labels)).toEqual(new Array(10).fill(1000));
  });
});

describe.skipIf(!hasRealData())('loadCifar10 checks official files against their sha256 (issue #14)', () => {
  const MTIME = new Date('2024-01-02T03:04:05Z'); // whole seconds, so that it can be set back exactly

  /** A folder holding a copy of the real test batch. */
  function copyOfTestBatch(): { dir: string; file: string } {
    const dir = tempDir();
    dirs.push(dir);
    const file = path.join(dir, 'test_batch.bin');
    fs.copyFileSync(path.join(PATHS.cifarDir, 'test_batch.bin'), file);
    fs.utimesSync(file, MTIME, MTIME);
    return { dir, file };
  }

  /** Changes one pixel byte in place and sets the modification time back, so size and mtime are unchanged. */
  function changePixelKeepingMtime(file: string): void {
    const before = fs.statSync(file);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0xa5]), 0, 1, 100); // pixel 99 of image 0
    fs.closeSync(fd);
    fs.utimesSync(file, MTIME, MTIME);
    expect(fs.statSync(file)).toMatchObject({ size: before.size, mtimeMs: before.mtimeMs });
  }

  it('verifies a file once, stamps it, then trusts the stamp while the file is unchanged', () => {
    const { dir, file } = copyOfTestBatch();
    expect(loadCifar10('test', { dir, limit: 8 }).labels.subarray(0, 8)).toEqual(
      Uint8Array.from([3, 8, 8, 0, 6, 6, 1, 6]),
    );
    const stat = fs.statSync(file);
    const entry = JSON.parse(fs.readFileSync(path.join(dir, STAMP_FILE), 'utf8')).files['test_batch.bin'];
    expect(entry).toEqual({
      size: stat.size,
      mtimeMs: stat.mtimeMs,
      ctimeMs: stat.ctimeMs,
      ino: stat.ino,
      sha256: BATCH_SHA256['test_batch.bin'],
    });
    expect(verifyBatchFiles(dir, { names: ['test_batch.bin'] })[0]).toMatchObject({ ok: true, fromStamp: true });
  });

  it('refuses a verified file changed since, even with its size and mtime kept, saying how to rebuild it', () => {
    const { dir, file } = copyOfTestBatch();
    loadCifar10('test', { dir, limit: 8 });
    changePixelKeepingMtime(file);
    expect(() => loadCifar10('test', { dir, limit: 8 })).toThrow(
      new RegExp(
        `CIFAR-10 batch ${file} has sha256 [0-9a-f]{12}…, expected 8e2eb146ae34…: its pixels or labels are corrupt ` +
          `\\(it changed after it was last verified\\): rebuild it with \`npm run data -- --dir ${dir}\``,
      ),
    );
  });

  it('refuses a corrupt file that was never stamped (labels and size fine)', () => {
    const { dir, file } = copyOfTestBatch();
    changePixelKeepingMtime(file);
    expect(() => loadCifar10('test', { dir, limit: 1 })).toThrow(
      /test_batch\.bin has sha256 .*its pixels or labels are corrupt: rebuild it/,
    );
    expect(fs.existsSync(path.join(dir, STAMP_FILE))).toBe(false);
  });
});
