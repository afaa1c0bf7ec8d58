/**
 * A minimal ZIP writer (PKWARE APPNOTE 6.3: local headers, central directory, end record; no
 * ZIP64), enough for the lab's hand-in: a few MB of code and a PDF, held in memory. Deflate and
 * CRC-32 come from Node's zlib, so no dependency. Entries keep their Unix mode (executable bits,
 * symbolic links), which unzip and Python's zipfile read from the central directory.
 */
import * as zlib from 'zlib';

export interface ZipEntry {
  /** Path inside the archive, '/'-separated and relative, e.g. `code/lib/config.ts`. */
  name: string;
  /** The file's bytes; for a symbolic link, its target (e.g. `../lib`). */
  data: Uint8Array;
  /** Unix mode with the file type: 0o100644 (default), 0o100755, 0o120777 (a symbolic link). */
  mode?: number;
}

export interface ZipOptions {
  /** The modification time written for every entry (ZIP stores local time, to 2 seconds). */
  mtime: Date;
}

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
/** Version 2.0: deflate. "Made by" Unix (3) so that readers take the mode from the external attributes. */
const VERSION_NEEDED = 20;
const VERSION_MADE_BY = (3 << 8) | VERSION_NEEDED;
/** General purpose flag bit 11: names are UTF-8. */
const UTF8_NAMES = 0x0800;
const STORED = 0;
const DEFLATED = 8;
/** Past these, the format needs ZIP64 records, which this writer does not write. */
const MAX_ENTRIES = 0xffff;
const MAX_BYTES = 0xffffffff;

/** The CRC-32 (ISO 3309, as ZIP and gzip use it) of `data`. */
export function crc32(data: Uint8Array): number {
  return zlib.crc32(data) >>> 0;
}

/** MS-DOS date and time fields of `date` in local time; before 1980 (DOS's epoch) is 1980-01-01. */
export function dosDateTime(date: Date): { date: number; time: number } {
  if (date.getFullYear() < 1980) return { date: (1 << 5) | 1, time: 0 };
  return {
    date: ((date.getFullYear() - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate(),
    time: (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1),
  };
}

/** Throws unless `name` is a relative '/'-separated path with no '.', '..' or empty part. */
function checkName(name: string): void {
  const parts = name.split('/');
  if (name.includes('\\') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`zip: bad entry name '${name}': use a relative path with '/' and no '.', '..' or empty parts`);
  }
}

/** The bytes of a ZIP archive of `entries`, in the order given (deflated where that is smaller). */
export function zip(entries: readonly ZipEntry[], opts: ZipOptions): Buffer {
  if (entries.length > MAX_ENTRIES) {
    throw new Error(`zip: ${entries.length} entries; at most ${MAX_ENTRIES} without ZIP64`);
  }
  const { date, time } = dosDateTime(opts.mtime);
  const seen = new Set<string>();
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    checkName(entry.name);
    if (seen.has(entry.name)) throw new Error(`zip: entry '${entry.name}' appears twice`);
    seen.add(entry.name);
    const name = Buffer.from(entry.name, 'utf8');
    const data = Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
    const mode = entry.mode ?? 0o100644;
    // A link's target is stored as it is; a file is deflated unless that does not shrink it (a PDF, Parquet).
    const deflated = (mode & 0o170000) === 0o120000 ? data : zlib.deflateRawSync(data, { level: 9 });
    const method = deflated.length < data.length ? DEFLATED : STORED;
    const body = method === DEFLATED ? deflated : data;
    if (data.length > MAX_BYTES || offset > MAX_BYTES) {
      throw new Error(`zip: '${entry.name}' does not fit in a ZIP without ZIP64 (4 GiB)`);
    }
    const crc = crc32(data);

    const local = Buffer.alloc(30);
    local.writeUInt32LE(LOCAL_HEADER, 0);
    local.writeUInt16LE(VERSION_NEEDED, 4);
    local.writeUInt16LE(UTF8_NAMES, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(time, 10);
    local.writeUInt16LE(date, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28); // no extra field

    const central = Buffer.alloc(46);
    central.writeUInt32LE(CENTRAL_HEADER, 0);
    central.writeUInt16LE(VERSION_MADE_BY, 4);
    central.writeUInt16LE(VERSION_NEEDED, 6);
    central.writeUInt16LE(UTF8_NAMES, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(time, 12);
    central.writeUInt16LE(date, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    // extra field length, comment length, disk number, internal attributes: all 0
    central.writeUInt32LE((mode << 16) >>> 0, 38); // external attributes: the Unix mode in the high half
    central.writeUInt32LE(offset, 42);

    locals.push(local, name, body);
    centrals.push(central, name);
    offset += local.length + name.length + body.length;
  }
  const directory = Buffer.concat(centrals);
  if (offset + directory.length > MAX_BYTES) throw new Error('zip: the archive does not fit in 4 GiB without ZIP64');
  const end = Buffer.alloc(22);
  end.writeUInt32LE(END_OF_CENTRAL_DIRECTORY, 0);
  // disk numbers 0
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  // no comment
  return Buffer.concat([...locals, directory, end]);
}
