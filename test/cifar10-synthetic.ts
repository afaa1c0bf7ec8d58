// Small CIFAR-10 files the tests write themselves: a few records in the official binary layout,
// with pixel values that encode (image, channel, position) so a layout mistake cannot pass.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PATHS } from '../lib/config';
import { BATCH_FILES, PIXELS_PER_CHANNEL, RECORD_BYTES } from '../lib/data/cifar10-files';

/** The byte a synthetic image holds at channel c, pixel p (p = y * 32 + x). */
export function pixelValue(image: number, channel: number, p: number): number {
  return (image * 7 + channel * 85 + p) & 255;
}

/** `count` records in the official layout (label, R plane, G plane, B plane); image i has label labelOf(i). */
export function syntheticRecords(count: number, labelOf: (i: number) => number = (i) => i % 10, first = 0): Buffer {
  const out = Buffer.alloc(count * RECORD_BYTES);
  for (let i = 0; i < count; i++) {
    const r = i * RECORD_BYTES;
    out[r] = labelOf(first + i);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < PIXELS_PER_CHANNEL; p++)
        out[r + 1 + c * PIXELS_PER_CHANNEL + p] = pixelValue(first + i, c, p);
    }
  }
  return out;
}

/** A fresh temporary folder holding the six batch files with `perFile` synthetic records each. */
export function syntheticCifarDir(perFile: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-cifar-'));
  BATCH_FILES.forEach((name, k) =>
    fs.writeFileSync(path.join(dir, name), syntheticRecords(perFile, undefined, k * perFile)),
  );
  return dir;
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-cifar-'));
}

/** True when `npm run data` has provisioned the real data set. */
export function hasRealData(): boolean {
  return BATCH_FILES.every((name) => fs.existsSync(path.join(PATHS.cifarDir, name)));
}
