/**
 * A minimal reader for (gzipped) tar archives: enough for the official CIFAR-10 archive and npm
 * package tarballs, so that provisioning needs neither a system `tar` nor another dependency.
 *
 * Reads ustar/GNU headers, GNU long names (`L`) and pax `path` records (`x`); yields regular
 * files only. The whole archive is held in memory (the CIFAR-10 archives are under 200 MB).
 */
import * as fs from 'fs';
import * as zlib from 'zlib';

export interface TarEntry {
  /** Path inside the archive, e.g. `cifar-10-batches-bin/data_batch_1.bin`. */
  name: string;
  /** A view into the archive's bytes (no copy). */
  data: Buffer;
}

const BLOCK = 512;

function field(header: Buffer, start: number, length: number): string {
  const raw = header.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? raw.length : end).toString('utf8');
}

function octal(header: Buffer, start: number, length: number, where: string): number {
  // GNU tar writes sizes ≥ 8 GiB in base-256 (high bit set); nothing here is that large.
  if (header[start] & 0x80) throw new Error(`${where}: base-256 sizes are not supported`);
  const text = field(header, start, length).trim();
  const value = text === '' ? 0 : parseInt(text, 8);
  if (!Number.isFinite(value)) throw new Error(`${where}: bad size field '${text}'`);
  return value;
}

/** The regular files of an uncompressed tar archive, in archive order. `source` names it in errors. */
export function* readTar(archive: Buffer, source = 'tar archive'): Generator<TarEntry> {
  let offset = 0;
  let longName: string | undefined;
  while (offset + BLOCK <= archive.length) {
    const header = archive.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) return; // end-of-archive marker
    const where = `${source} (header at byte ${offset})`;
    const size = octal(header, 124, 12, where);
    const type = String.fromCharCode(header[156] || 48); // NUL means a regular file ('0')
    const dataStart = offset + BLOCK;
    if (dataStart + size > archive.length) {
      throw new Error(
        `${source} is truncated: an entry needs ${size} bytes at ${dataStart}, archive has ${archive.length}`,
      );
    }
    const data = archive.subarray(dataStart, dataStart + size);
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;

    if (type === 'L') {
      longName = field(data, 0, data.length);
      continue;
    }
    if (type === 'x') {
      const match = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      if (match) longName = match[1];
      continue;
    }
    const prefix = field(header, 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    longName = undefined;
    if (type === '0' || type === '7') yield { name, data };
  }
  throw new Error(`${source} is truncated: it ends at byte ${archive.length} without the end-of-archive marker`);
}

/** Reads a `.tar.gz`/`.tgz` (or plain `.tar`) file and returns its regular files by path. */
export function readTarFile(file: string): Map<string, Buffer> {
  let bytes: Buffer = fs.readFileSync(file);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = zlib.gunzipSync(bytes);
    } catch (err) {
      throw new Error(
        `${file} is not a valid gzip file (${(err as Error).message}); it may be truncated: fetch it again`,
      );
    }
  }
  const entries = new Map<string, Buffer>();
  for (const entry of readTar(bytes, file)) entries.set(entry.name, entry.data);
  return entries;
}
