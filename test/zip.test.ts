// The ZIP writer (lib/formats/zip.ts), read back by Python's zipfile and checked by `unzip -t`:
// every entry's bytes, mode and date come back as written, deflated where that shrinks it.
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { crc32, dosDateTime, zip, type ZipEntry } from '../lib/formats/zip';
import { readZipWithPython, unzipTest } from './helpers/zip-read';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-zip-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, bytes: Buffer): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

describe('zip', () => {
  it('crc32 gives the standard check value and changes with one bit', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.from('123456788'))).not.toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('writes entries that Python and unzip read back byte for byte, with their modes and date', () => {
    const text = Buffer.from('const x = 1;\n'.repeat(500));
    const noise = randomBytes(50_000);
    const entries: ZipEntry[] = [
      { name: 'Lab_4_u1234567.pdf', data: Buffer.concat([Buffer.from('%PDF-1.4\n'), noise]) },
      { name: 'code/lib/a.ts', data: text },
      { name: 'code/empty.txt', data: new Uint8Array(0) },
      { name: 'code/scripts/run.sh', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o100755 },
      { name: 'code/notebooks/lib', data: Buffer.from('../lib'), mode: 0o120777 },
      { name: 'code/données/é.md', data: Buffer.from('UTF-8 names\n') },
      // A view into a larger buffer: only its own bytes go in.
      { name: 'code/view.bin', data: new Uint8Array(noise.buffer, noise.byteOffset + 10, 20) },
    ];
    const mtime = new Date(2026, 10, 28, 14, 37, 43);
    const file = write('a.zip', zip(entries, { mtime }));

    const back = readZipWithPython(file);
    expect(back.map((e) => e.name)).toEqual(entries.map((e) => e.name));
    for (const [i, e] of back.entries()) {
      expect(e.data.equals(Buffer.from(entries[i].data)), e.name).toBe(true);
      expect(e.mode, e.name).toBe(entries[i].mode ?? 0o100644);
      // DOS time keeps even seconds.
      expect(e.dateTime, e.name).toEqual([2026, 11, 28, 14, 37, 42]);
    }
    // Text shrinks, so it is deflated; random bytes do not, so they are stored.
    expect(back.find((e) => e.name === 'code/lib/a.ts')!.method).toBe(8);
    expect(back[0].method).toBe(0);
    expect(fs.statSync(file).size).toBeLessThan(noise.length + text.length / 4);

    const t = unzipTest(file);
    expect(t.status, t.output).toBe(0);
    expect(t.output).toContain('No errors detected');
  });

  it('gives the same bytes for the same entries and date, other bytes for another date', () => {
    const entries = [{ name: 'a.txt', data: Buffer.from('a\n') }];
    const a = zip(entries, { mtime: new Date(2026, 0, 2, 3, 4, 6) });
    expect(zip(entries, { mtime: new Date(2026, 0, 2, 3, 4, 6) }).equals(a)).toBe(true);
    expect(zip(entries, { mtime: new Date(2026, 0, 2, 3, 4, 8) }).equals(a)).toBe(false);
  });

  it('an empty archive is valid', () => {
    expect(readZipWithPython(write('empty.zip', zip([], { mtime: new Date() })))).toEqual([]);
  });

  it('dates before 1980 (the DOS epoch) become 1980-01-01', () => {
    expect(dosDateTime(new Date(1970, 0, 1))).toEqual(dosDateTime(new Date(1980, 0, 1, 0, 0, 0)));
    expect(dosDateTime(new Date(1981, 0, 1))).not.toEqual(dosDateTime(new Date(1980, 0, 1)));
  });

  it('refuses names that would land outside the folder it is unpacked in, and duplicates', () => {
    const mtime = new Date();
    for (const name of ['/etc/passwd', '../up.txt', 'code/../../x', 'a//b', 'a\\b', './a', '']) {
      expect(() => zip([{ name, data: Buffer.from('x') }], { mtime }), name).toThrow(/bad entry name/);
    }
    const twice = [
      { name: 'a', data: Buffer.from('1') },
      { name: 'a', data: Buffer.from('2') },
    ];
    expect(() => zip(twice, { mtime })).toThrow(/'a' appears twice/);
  });
});
