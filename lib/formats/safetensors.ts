/**
 * safetensors files: the one on-disk form of every tensor state in the project (pretrained
 * weights, model states, checkpoints with optimizer moments, predictions' inputs).
 *
 * Format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N,
 * N bytes of JSON `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": {..} }`,
 * then the raw little-endian tensor bytes; offsets count from the end of the header. The data
 * is read with Python's `safetensors.torch.load_file` and written back the same way.
 *
 * Whole-file checksum. Every file written here carries the metadata `file_sha256`: the SHA-256
 * of the whole file (length, header and tensor bytes) as written with these 64 hex digits
 * replaced by 64 '0' characters. Any changed byte (a tensor value, the stored epoch, the
 * header's shapes) fails it. Reading verifies it whenever it is present; files written
 * elsewhere (Python, the pretrained weights) have none and are read as they are. In Python:
 *   b = open(f, 'rb').read(); n = 8 + int.from_bytes(b[:8], 'little'); d = <file_sha256>
 *   hashlib.sha256(b[:n].replace(d.encode(), b'0' * 64, 1) + b[n:]).hexdigest() == d
 *
 * Everything here is synchronous and pure (no tf.js): records are plain typed arrays, and the
 * helpers at the end convert between records and tf.Tensors.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs-core';
import { writeFileAtomic, type WriteIo } from './atomic-file';

export type Dtype = 'F32' | 'I64' | 'I32' | 'U8';
export type TensorData = Float32Array | Int32Array | BigInt64Array | Uint8Array;

/** One tensor in row-major order with PyTorch's shape (e.g. a conv weight is [out, in, kh, kw]). */
export interface TensorRecord {
  dtype: Dtype;
  shape: number[];
  data: TensorData;
}

export interface SafetensorsContent {
  tensors: Record<string, TensorRecord>;
  /** The file's `__metadata__`: string → string (safetensors allows nothing else), without `file_sha256`. */
  metadata: Record<string, string>;
  /** True when the file carried a whole-file checksum and it matched (false: it carried none). */
  checksummed: boolean;
}

/**
 * A file that cannot be trusted: not safetensors, truncated, or failing its checksum. `problem`
 * says what is wrong without the file name, for callers that add their own advice.
 */
export class DamagedFileError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
    message = `${file} is damaged: ${problem}. Use another copy, or write it again (npm run export, or retrain).`,
  ) {
    super(message);
  }
}

/** The metadata key of the whole-file checksum (see the module comment). */
export const FILE_CHECKSUM_KEY = 'file_sha256';
const PLACEHOLDER = '0'.repeat(64);

/** The checksum field exactly as the writer lays it out in the header JSON. */
function checksumField(digest: string): Buffer {
  return Buffer.from(`"${FILE_CHECKSUM_KEY}":"${digest}"`, 'utf8');
}

/** SHA-256 of `bytes` with the 64 digits at `at` read as '0's (no copy of the file). */
function digestWithPlaceholder(bytes: Uint8Array, at: number): string {
  return createHash('sha256')
    .update(bytes.subarray(0, at))
    .update(PLACEHOLDER)
    .update(bytes.subarray(at + 64))
    .digest('hex');
}

/**
 * Verifies a file's whole-file checksum; returns a description of the fault, or undefined.
 * `header` is the JSON header's byte range within `bytes`.
 */
function checksumProblem(
  bytes: Uint8Array,
  headerStart: number,
  headerEnd: number,
  digest: string,
): string | undefined {
  if (!/^[0-9a-f]{64}$/.test(digest)) return `its ${FILE_CHECKSUM_KEY} '${digest.slice(0, 80)}' is not a sha256 digest`;
  const header = Buffer.from(bytes.buffer, bytes.byteOffset + headerStart, headerEnd - headerStart);
  const field = checksumField(digest);
  const at = header.indexOf(field);
  if (at < 0 || header.indexOf(field, at + 1) >= 0)
    return `its ${FILE_CHECKSUM_KEY} field is not laid out as this project writes it`;
  const valueAt = headerStart + at + field.length - 65;
  const actual = digestWithPlaceholder(bytes, valueAt);
  if (actual !== digest) {
    return `its bytes do not match the ${FILE_CHECKSUM_KEY} checksum it was written with (header or tensor data changed after saving)`;
  }
  return undefined;
}

/** SHA-256 over every tensor's name, dtype, shape and bytes, in name order (the checksum of dcf-checkpoint/1). */
export function tensorDigest(records: Record<string, TensorRecord>): string {
  const h = createHash('sha256');
  for (const name of Object.keys(records).sort()) {
    const r = records[name];
    h.update(`${name}\0${r.dtype}\0${r.shape.join(',')}\0`);
    h.update(new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength));
  }
  return h.digest('hex');
}

const BYTES: Record<Dtype, number> = { F32: 4, I64: 8, I32: 4, U8: 1 };
/** Dtypes read and widened to F32 (files written elsewhere, e.g. half-precision weights). */
const WIDENED: Record<string, number> = { F64: 8, F16: 2, BF16: 2 };
/** A header larger than this is not a tensor file (the spec's own limit is 100 MB). */
const MAX_HEADER = 100_000_000;

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function widenToF32(dtype: string, bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / WIDENED[dtype];
  const out = new Float32Array(n);
  const bf16 = new Uint32Array(1);
  const bf16AsF32 = new Float32Array(bf16.buffer);
  for (let i = 0; i < n; i++) {
    if (dtype === 'F64') out[i] = view.getFloat64(8 * i, true);
    else if (dtype === 'F16') out[i] = f16ToF32(view.getUint16(2 * i, true));
    else {
      bf16[0] = view.getUint16(2 * i, true) << 16;
      out[i] = bf16AsF32[0];
    }
  }
  return out;
}

/**
 * Decodes little-endian tensor bytes of a safetensors dtype name into a fresh, aligned typed
 * array (file bytes need not be 4- or 8-aligned). F64, F16 and BF16 are widened to F32.
 * Also used for PyTorch's storages (lib/formats/pth.ts). Undefined for an unknown dtype.
 */
export function decodeTensorBytes(dtype: string, bytes: Uint8Array): { dtype: Dtype; data: TensorData } | undefined {
  if (dtype in BYTES) {
    const buf = new Uint8Array(bytes).buffer;
    switch (dtype as Dtype) {
      case 'F32':
        return { dtype: 'F32', data: new Float32Array(buf) };
      case 'I32':
        return { dtype: 'I32', data: new Int32Array(buf) };
      case 'I64':
        return { dtype: 'I64', data: new BigInt64Array(buf) };
      case 'U8':
        return { dtype: 'U8', data: new Uint8Array(buf) };
    }
  }
  if (dtype in WIDENED) return { dtype: 'F32', data: widenToF32(dtype, bytes) };
  return undefined;
}

/** Bytes per element of a dtype this module reads, or undefined. */
function dtypeWidth(dtype: string): number | undefined {
  return dtype in BYTES ? BYTES[dtype as Dtype] : WIDENED[dtype];
}

/**
 * Parses safetensors bytes. Errors say which file and what is wrong (truncated, corrupt
 * header, unsupported dtype, offsets that do not match the shape). F64/F16/BF16 tensors are
 * widened to F32.
 */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>'): SafetensorsContent {
  const bad = (what: string) =>
    new DamagedFileError(
      source,
      what,
      `${source} is not a valid safetensors file: ${what}. Re-export or re-download it.`,
    );
  const content = parseUnverified(bytes, source, bad);
  const digest = content.metadata[FILE_CHECKSUM_KEY];
  if (digest === undefined) return { ...content, checksummed: false };
  const headerEnd = 8 + Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const problem = checksumProblem(bytes, 8, headerEnd, digest);
  if (problem) throw new DamagedFileError(source, problem);
  delete content.metadata[FILE_CHECKSUM_KEY];
  return { ...content, checksummed: true };
}

function parseUnverified(
  bytes: Uint8Array,
  source: string,
  bad: (what: string) => Error,
): Omit<SafetensorsContent, 'checksummed'> {
  if (bytes.byteLength < 8) throw bad(`only ${bytes.byteLength} bytes, fewer than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > MAX_HEADER) throw bad(`header length ${headerLen} is implausible (corrupt or not safetensors)`);
  if (8 + headerLen > bytes.byteLength) {
    throw bad(`truncated: header says ${headerLen} bytes but the file has ${bytes.byteLength - 8} after the length`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLen)).toString('utf8'));
  } catch (err) {
    throw bad(`corrupt JSON header (${(err as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw bad('header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: Record<string, TensorRecord> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      for (const [k, v] of Object.entries((entry ?? {}) as Record<string, unknown>)) {
        if (typeof v !== 'string') throw bad(`metadata '${k}' is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const { dtype, shape, data_offsets: offsets } = e ?? {};
    if (typeof dtype !== 'string' || !Array.isArray(shape) || !Array.isArray(offsets) || offsets.length !== 2) {
      throw bad(`entry '${name}' lacks dtype, shape or data_offsets`);
    }
    if (!shape.every((d) => Number.isInteger(d) && d >= 0))
      throw bad(`entry '${name}' has shape ${JSON.stringify(shape)}`);
    const [begin, end] = offsets as number[];
    if (!(Number.isInteger(begin) && Number.isInteger(end) && 0 <= begin && begin <= end)) {
      throw bad(`entry '${name}' has data_offsets ${JSON.stringify(offsets)}`);
    }
    if (end > dataLen) throw bad(`truncated: tensor '${name}' ends at byte ${end} of ${dataLen} data bytes`);
    const width = dtypeWidth(dtype);
    if (width === undefined) {
      throw new Error(
        `${source}: tensor '${name}' has dtype ${dtype}; supported are F32, I64, I32, U8 (F64, F16, BF16 are widened to F32)`,
      );
    }
    const n = sizeOf(shape as number[]);
    if (end - begin !== n * width) {
      throw bad(`tensor '${name}' has ${end - begin} bytes, but ${dtype} ${JSON.stringify(shape)} needs ${n * width}`);
    }
    const decoded = decodeTensorBytes(dtype, bytes.subarray(dataStart + begin, dataStart + end))!;
    tensors[name] = { ...decoded, shape: shape as number[] };
  }
  return { tensors, metadata };
}

/** Reads a whole safetensors file (see parseSafetensors for the errors). */
export function readSafetensors(file: string): SafetensorsContent {
  if (!fs.existsSync(file)) throw new Error(`no such file: ${file}`);
  return parseSafetensors(fs.readFileSync(file), file);
}

/**
 * Only the header: tensor names, dtypes and shapes plus metadata, without reading the data.
 * Nothing is verified (the checksum needs every byte): use readSafetensors for anything trusted.
 */
export function readSafetensorsHeader(file: string): {
  entries: Record<string, { dtype: string; shape: number[] }>;
  metadata: Record<string, string>;
} {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(8);
    if (fs.readSync(fd, head, 0, 8, 0) < 8)
      throw new Error(`${file} is not a valid safetensors file: shorter than 8 bytes`);
    const len = Number(head.readBigUInt64LE(0));
    const size = fs.fstatSync(fd).size;
    if (len > MAX_HEADER || 8 + len > size) {
      throw new Error(`${file} is not a valid safetensors file: header length ${len} exceeds the file (${size} bytes)`);
    }
    const json = Buffer.alloc(len);
    fs.readSync(fd, json, 0, len, 8);
    let header: Record<string, { dtype: string; shape: number[] } | Record<string, string>>;
    try {
      header = JSON.parse(json.toString('utf8'));
    } catch (err) {
      throw new Error(`${file} is not a valid safetensors file: corrupt JSON header (${(err as Error).message})`);
    }
    const { __metadata__: raw = {}, ...rest } = header;
    const { [FILE_CHECKSUM_KEY]: _digest, ...metadata } = raw as Record<string, string>;
    const entries: Record<string, { dtype: string; shape: number[] }> = {};
    for (const [k, v] of Object.entries(rest))
      entries[k] = { dtype: String(v.dtype), shape: v.shape as unknown as number[] };
    return { entries, metadata };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Serialises tensors (sorted by name, like the Python library) and metadata to bytes, with the
 * whole-file checksum `file_sha256` (any `file_sha256` given is replaced: it would be stale).
 */
export function serializeSafetensors(
  tensors: Record<string, TensorRecord>,
  metadata: Record<string, string> = {},
): Buffer {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new Error(`safetensors metadata must be strings; '${k}' is ${typeof v}`);
  }
  const { [FILE_CHECKSUM_KEY]: _stale, ...rest } = metadata;
  header.__metadata__ = { ...rest, [FILE_CHECKSUM_KEY]: PLACEHOLDER };
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__') throw new Error(`'__metadata__' is reserved and cannot name a tensor`);
    const t = tensors[name];
    if (!(t.dtype in BYTES)) throw new Error(`tensor '${name}': unsupported dtype ${t.dtype}`);
    const n = sizeOf(t.shape);
    if (t.data.length !== n) {
      throw new Error(`tensor '${name}': shape [${t.shape}] needs ${n} values but data has ${t.data.length}`);
    }
    const expected = { F32: Float32Array, I64: BigInt64Array, I32: Int32Array, U8: Uint8Array }[t.dtype];
    if (!(t.data instanceof expected)) throw new Error(`tensor '${name}': dtype ${t.dtype} needs a ${expected.name}`);
    const bytes = n * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad the header with spaces so the data starts 8-byte aligned (as the Python writer does).
  const pad = (8 - ((8 + json.length) % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = Buffer.alloc(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  let pos = 8 + json.length;
  for (const name of names) {
    const d = tensors[name].data;
    const src = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    out.set(src, pos);
    pos += d.byteLength;
  }
  const at = out.indexOf(checksumField(PLACEHOLDER), 8);
  const valueAt = at + checksumField(PLACEHOLDER).length - 65;
  out.write(digestWithPlaceholder(out, valueAt), valueAt, 'latin1');
  return out;
}

/**
 * Writes a safetensors file atomically (lib/formats/atomic-file: a temporary name in the same folder,
 * fsync, rename), with its whole-file checksum. A failure (a full disk included) names the file
 * and leaves any earlier file untouched. Creates the folder. `io` replaces the fs calls (tests).
 */
export function writeSafetensors(
  file: string,
  tensors: Record<string, TensorRecord>,
  metadata: Record<string, string> = {},
  io?: WriteIo,
): void {
  const bytes = serializeSafetensors(tensors, metadata);
  writeFileAtomic(file, bytes, io);
}

// ---- tf.Tensor ↔ TensorRecord -------------------------------------------------------------

/**
 * A record as a tf.Tensor of the same shape (no layout change). I64 becomes int32 (TF.js has
 * no int64); values outside int32 are an error. U8 becomes int32 too.
 */
export function recordToTensor(r: TensorRecord, name = 'tensor'): tf.Tensor {
  switch (r.dtype) {
    case 'F32':
      return tf.tensor(r.data as Float32Array, r.shape, 'float32');
    case 'I32':
      return tf.tensor(r.data as Int32Array, r.shape, 'int32');
    case 'U8':
      return tf.tensor(Int32Array.from(r.data as Uint8Array), r.shape, 'int32');
    case 'I64': {
      const src = r.data as BigInt64Array;
      const out = new Int32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        if (src[i] > 2147483647n || src[i] < -2147483648n)
          throw new Error(`${name}: I64 value ${src[i]} does not fit int32`);
        out[i] = Number(src[i]);
      }
      return tf.tensor(out, r.shape, 'int32');
    }
  }
}

/**
 * A tf.Tensor as a record (reads its data synchronously). float32 → F32; int32 → I32, or I64
 * when `int64` is true (PyTorch's dtype for counters such as num_batches_tracked).
 */
export function tensorToRecord(t: tf.Tensor, opts: { int64?: boolean } = {}): TensorRecord {
  const shape = t.shape.slice();
  if (t.dtype === 'float32') return { dtype: 'F32', shape, data: Float32Array.from(t.dataSync() as Float32Array) };
  if (t.dtype === 'int32' || t.dtype === 'bool') {
    const v = t.dataSync() as Int32Array | Uint8Array;
    if (opts.int64) return { dtype: 'I64', shape, data: BigInt64Array.from(Array.from(v, (x) => BigInt(x))) };
    return { dtype: 'I32', shape, data: Int32Array.from(v) };
  }
  throw new Error(`cannot store a ${t.dtype} tensor in safetensors`);
}

/** Records for every tensor in a map; names listed in `int64` are stored as I64. */
export function tensorsToRecords(
  tensors: Record<string, tf.Tensor>,
  int64: (name: string) => boolean = () => false,
): Record<string, TensorRecord> {
  const out: Record<string, TensorRecord> = {};
  for (const [k, t] of Object.entries(tensors)) out[k] = tensorToRecord(t, { int64: int64(k) });
  return out;
}

/** tf.Tensors for every record (the caller disposes them). */
export function recordsToTensors(records: Record<string, TensorRecord>): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [k, r] of Object.entries(records)) out[k] = recordToTensor(r, k);
  return out;
}
