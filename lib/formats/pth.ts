/**
 * Reads a PyTorch `.pth` state_dict (torch.save's zip format, PyTorch ≥ 1.6) without Python,
 * e.g. torchvision's `resnet18-f37072fd.pth`.
 *
 * The file is a zip archive `<name>/data.pkl` (a pickle of the state_dict) plus one entry
 * `<name>/data/<key>` of raw little-endian bytes per storage. The pickle is run by a small,
 * restricted pickle machine: it knows the opcodes torch.save emits (protocols 2–5) and only the
 * globals a state_dict needs (OrderedDict, tensor rebuild functions, storage types). Anything
 * else is refused, so loading a `.pth` never runs code.
 */
import * as fs from 'fs';
import * as zlib from 'zlib';
import { decodeTensorBytes, type TensorRecord } from './safetensors';

// ---- zip --------------------------------------------------------------------------------

interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

function zipEntries(buf: Buffer, source: string): ZipEntry[] {
  const bad = (what: string) => new Error(`${source} is not a readable PyTorch zip file: ${what}`);
  // The end-of-central-directory record: last 22 bytes plus up to 64 KiB of comment.
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad('no end-of-central-directory record (truncated download?)');
  let count = buf.readUInt16LE(eocd + 10);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdOffset === 0xffffffff) {
    // zip64: the locator sits just before the classic record.
    const loc = eocd - 20;
    if (loc < 0 || buf.readUInt32LE(loc) !== 0x07064b50) throw bad('zip64 locator missing');
    const rec = Number(buf.readBigUInt64LE(loc + 8));
    if (buf.readUInt32LE(rec) !== 0x06064b50) throw bad('zip64 end record missing');
    count = Number(buf.readBigUInt64LE(rec + 32));
    cdOffset = Number(buf.readBigUInt64LE(rec + 48));
  }
  const entries: ZipEntry[] = [];
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) throw bad(`central directory entry ${i} is corrupt`);
    const method = buf.readUInt16LE(p + 10);
    let compressedSize = buf.readUInt32LE(p + 20);
    let size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    let localHeaderOffset = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    // zip64 extra field (id 1): the 8-byte values of the fields that read 0xffffffff, in order.
    let e = p + 46 + nameLen;
    const end = e + extraLen;
    while (e + 4 <= end) {
      const id = buf.readUInt16LE(e);
      const len = buf.readUInt16LE(e + 2);
      if (id === 1) {
        let q = e + 4;
        if (size === 0xffffffff) ((size = Number(buf.readBigUInt64LE(q))), (q += 8));
        if (compressedSize === 0xffffffff) ((compressedSize = Number(buf.readBigUInt64LE(q))), (q += 8));
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = Number(buf.readBigUInt64LE(q));
      }
      e += 4 + len;
    }
    entries.push({ name, method, compressedSize, size, localHeaderOffset });
    p = end + commentLen;
  }
  return entries;
}

function zipRead(buf: Buffer, entry: ZipEntry, source: string): Buffer {
  const h = entry.localHeaderOffset;
  if (h + 30 > buf.length || buf.readUInt32LE(h) !== 0x04034b50) {
    throw new Error(`${source}: zip entry ${entry.name} has no local header (truncated or corrupt file)`);
  }
  const start = h + 30 + buf.readUInt16LE(h + 26) + buf.readUInt16LE(h + 28);
  if (start + entry.compressedSize > buf.length) throw new Error(`${source}: zip entry ${entry.name} is truncated`);
  const raw = buf.subarray(start, start + entry.compressedSize);
  if (entry.method === 0) return raw;
  if (entry.method === 8) return zlib.inflateRawSync(raw);
  throw new Error(
    `${source}: zip entry ${entry.name} uses compression method ${entry.method}; only stored and deflate are supported`,
  );
}

// ---- pickle -----------------------------------------------------------------------------

/** A Python dict (insertion order kept; string, number or tuple keys). */
class PyDict {
  readonly map = new Map<unknown, unknown>();
  /** Attributes set by BUILD (e.g. a state_dict's `_metadata`); not used. */
  attrs: unknown;
}
class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}
/** A storage reference from BINPERSID: ('storage', StorageType, key, location, numel). */
class Storage {
  constructor(
    readonly dtype: string,
    readonly key: string,
    readonly numel: number,
  ) {}
}
const MARK = Symbol('mark');

/** torch.<X>Storage → safetensors dtype name of its elements. */
const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: 'F32',
  DoubleStorage: 'F64',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ByteStorage: 'U8',
  BoolStorage: 'U8',
};
const DTYPE_BYTES: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1 };

const ALLOWED_GLOBALS = new Set([
  'collections.OrderedDict',
  'builtins.dict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  ...Object.keys(STORAGE_DTYPES).map((s) => `torch.${s}`),
]);

interface TensorRef {
  storage: Storage;
  offset: number;
  size: number[];
  stride: number[];
}
function isTensorRef(v: unknown): v is TensorRef {
  return typeof v === 'object' && v !== null && (v as TensorRef).storage instanceof Storage;
}

/** Runs the pickle; tensors come back as TensorRefs (resolved against the storages later). */
function unpickle(data: Buffer, source: string): unknown {
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let p = 0;
  const fail = (what: string) =>
    new Error(
      `${source}: ${what}. This reader understands state_dicts saved with torch.save (e.g. torchvision's .pth files).`,
    );
  const popMark = (): unknown[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw fail('corrupt pickle (MARK missing)');
    const items = stack.splice(i);
    items.shift();
    return items;
  };
  const u8 = () => data[p++];
  const u16 = () => ((p += 2), data.readUInt16LE(p - 2));
  const u32 = () => ((p += 4), data.readUInt32LE(p - 4));
  const str = (n: number) => ((p += n), data.toString('utf8', p - n, p));
  const call = (fn: unknown, args: unknown[]): unknown => {
    if (!(fn instanceof PyGlobal)) throw fail('corrupt pickle (REDUCE of a non-callable)');
    switch (fn.qualified) {
      case 'collections.OrderedDict':
      case 'builtins.dict':
        return new PyDict();
      case 'torch._utils._rebuild_tensor_v2': {
        const [storage, offset, size, stride] = args as [Storage, number, number[], number[]];
        if (!(storage instanceof Storage)) throw fail('tensor without a storage');
        return { storage, offset, size: size.map(Number), stride: stride.map(Number) } satisfies TensorRef;
      }
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state':
        return args[0];
      default:
        throw fail(`refusing to call ${fn.qualified}`);
    }
  };
  const setItems = (target: unknown, items: unknown[]) => {
    if (!(target instanceof PyDict)) throw fail('SETITEMS on a non-dict');
    for (let i = 0; i + 1 < items.length; i += 2) target.map.set(items[i], items[i + 1]);
  };
  const asKey = (k: unknown): unknown => (Array.isArray(k) ? JSON.stringify(k) : k);

  for (;;) {
    if (p >= data.length) throw fail('pickle ended without STOP (truncated file?)');
    const op = data[p++];
    switch (op) {
      case 0x80: // PROTO
        p++;
        break;
      case 0x95: // FRAME
        p += 8;
        break;
      case 0x2e: // STOP
        return stack.pop();
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([stack.pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = stack.pop();
        stack.push([stack.pop(), b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = stack.pop();
        const b = stack.pop();
        stack.push([stack.pop(), b, c]);
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: {
        // APPEND
        const v = stack.pop();
        (stack[stack.length - 1] as unknown[]).push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        (stack[stack.length - 1] as unknown[]).push(...items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x64: {
        // DICT
        const d = new PyDict();
        setItems(
          d,
          popMark().map((v, i) => (i % 2 === 0 ? asKey(v) : v)),
        );
        stack.push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = stack.pop();
        const k = stack.pop();
        setItems(stack[stack.length - 1], [asKey(k), v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark().map((v, i) => (i % 2 === 0 ? asKey(v) : v));
        setItems(stack[stack.length - 1], items);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push([]);
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        (stack[stack.length - 1] as unknown[]).push(...items);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(popMark());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(((p += 4), data.readInt32LE(p - 4)));
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: {
        // LONG1: little-endian two's complement of n bytes
        const n = u8();
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[p + i]);
        if (n > 0 && data[p + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        p += n;
        stack.push(Number(v));
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        stack.push(((p += 8), data.readDoubleBE(p - 8)));
        break;
      case 0x58: // BINUNICODE
        stack.push(str(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(str(((p += 8), Number(data.readBigUInt64LE(p - 8)))));
        break;
      case 0x54: // BINSTRING
        stack.push(str(u32()));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(str(u8()));
        break;
      case 0x42: {
        // BINBYTES
        const n = u32();
        stack.push(data.subarray(p, (p += n)));
        break;
      }
      case 0x43: {
        // SHORT_BINBYTES
        const n = u8();
        stack.push(data.subarray(p, (p += n)));
        break;
      }
      case 0x63: {
        // GLOBAL "module\nname\n"
        const nl1 = data.indexOf(0x0a, p);
        const module = data.toString('utf8', p, nl1);
        const nl2 = data.indexOf(0x0a, nl1 + 1);
        const name = data.toString('utf8', nl1 + 1, nl2);
        p = nl2 + 1;
        const g = new PyGlobal(module, name);
        if (!ALLOWED_GLOBALS.has(g.qualified)) throw fail(`refusing pickle global ${g.qualified}`);
        stack.push(g);
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = stack.pop() as string;
        const g = new PyGlobal(stack.pop() as string, name);
        if (!ALLOWED_GLOBALS.has(g.qualified)) throw fail(`refusing pickle global ${g.qualified}`);
        stack.push(g);
        break;
      }
      case 0x52: {
        // REDUCE
        const args = stack.pop() as unknown[];
        stack.push(call(stack.pop(), args));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = stack.pop() as unknown[];
        stack.push(call(stack.pop(), args));
        break;
      }
      case 0x62: {
        // BUILD: obj.__setstate__(state); a dict's state (its _metadata) is kept aside.
        const state = stack.pop();
        const obj = stack[stack.length - 1];
        if (obj instanceof PyDict) obj.attrs = state;
        break;
      }
      case 0x51: {
        // BINPERSID: ('storage', StorageType, key, location, numel)
        const pid = stack.pop() as unknown[];
        const type = pid?.[1];
        if (!Array.isArray(pid) || pid[0] !== 'storage' || !(type instanceof PyGlobal))
          throw fail('unknown persistent id');
        stack.push(new Storage(STORAGE_DTYPES[type.name], String(pid[2]), Number(pid[4])));
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), stack[stack.length - 1]);
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), stack[stack.length - 1]);
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, stack[stack.length - 1]);
        break;
      case 0x68: // BINGET
        stack.push(memo.get(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memo.get(u32()));
        break;
      case 0x30: // POP
        stack.pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(stack[stack.length - 1]);
        break;
      default:
        throw fail(`unsupported pickle opcode 0x${op.toString(16)} at byte ${p - 1}`);
    }
  }
}

/** Copies a (possibly strided, offset) view of a storage into a contiguous record. */
function materialise(ref: TensorRef, storageBytes: Buffer, name: string, source: string): TensorRecord {
  const width = DTYPE_BYTES[ref.storage.dtype];
  if (storageBytes.length !== ref.storage.numel * width) {
    throw new Error(
      `${source}: storage ${ref.storage.key} of '${name}' has ${storageBytes.length} bytes, expected ${ref.storage.numel * width}`,
    );
  }
  const n = ref.size.reduce((a, b) => a * b, 1);
  // Contiguous row-major strides for this size.
  const contiguous = ref.size.map((_, i) => ref.size.slice(i + 1).reduce((a, b) => a * b, 1));
  const isContiguous = ref.size.every((s, i) => s === 1 || ref.stride[i] === contiguous[i]);
  let bytes: Uint8Array;
  if (isContiguous) {
    if ((ref.offset + n) * width > storageBytes.length && n > 0)
      throw new Error(`${source}: '${name}' reads past its storage`);
    bytes = storageBytes.subarray(ref.offset * width, (ref.offset + n) * width);
  } else {
    bytes = new Uint8Array(n * width);
    const index = new Array<number>(ref.size.length).fill(0);
    for (let i = 0; i < n; i++) {
      let src = ref.offset;
      for (let d = 0; d < index.length; d++) src += index[d] * ref.stride[d];
      if ((src + 1) * width > storageBytes.length) throw new Error(`${source}: '${name}' reads past its storage`);
      bytes.set(storageBytes.subarray(src * width, (src + 1) * width), i * width);
      for (let d = index.length - 1; d >= 0; d--) {
        if (++index[d] < ref.size[d]) break;
        index[d] = 0;
      }
    }
  }
  const decoded = decodeTensorBytes(ref.storage.dtype, bytes)!;
  return { ...decoded, shape: ref.size.slice() };
}

/** True when the file starts like a zip archive (torch.save's format). */
export function isZipFile(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(4);
    return fs.readSync(fd, head, 0, 4, 0) === 4 && head.readUInt32LE(0) === 0x04034b50;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The tensors of a state_dict saved with torch.save, by name, in PyTorch layout (row-major,
 * contiguous). Float64/half storages become F32. Non-tensor entries are skipped. A checkpoint
 * that wraps the weights as {'state_dict': …} or {'model': …} is unwrapped.
 */
export function readTorchStateDict(file: string): Record<string, TensorRecord> {
  if (!fs.existsSync(file)) throw new Error(`no such file: ${file}`);
  const buf = fs.readFileSync(file);
  if (buf.length >= 2 && buf[0] === 0x80 && buf.readUInt32LE(0) !== 0x04034b50) {
    throw new Error(
      `${file} uses PyTorch's legacy (pre-1.6) serialisation, which this reader does not support. ` +
        'Re-save it in the zip format: torch.save(torch.load(OLD), NEW).',
    );
  }
  const entries = zipEntries(buf, file);
  const pkl = entries.find((e) => e.name.endsWith('/data.pkl') || e.name === 'data.pkl');
  if (!pkl) throw new Error(`${file} is a zip file but has no data.pkl: not a torch.save file`);
  const prefix = pkl.name.slice(0, pkl.name.length - 'data.pkl'.length);
  const byName = new Map(entries.map((e) => [e.name, e]));
  const order = byName.get(`${prefix}byteorder`);
  if (order && zipRead(buf, order, file).toString('utf8').trim() !== 'little') {
    throw new Error(`${file} was saved on a big-endian machine; re-save it on a little-endian one`);
  }
  let root = unpickle(zipRead(buf, pkl, file), file);
  for (const wrapper of ['state_dict', 'model']) {
    if (root instanceof PyDict && root.map.get(wrapper) instanceof PyDict) root = root.map.get(wrapper);
  }
  if (!(root instanceof PyDict)) throw new Error(`${file} does not hold a state_dict (a dict of tensors)`);
  const storages = new Map<string, Buffer>();
  const out: Record<string, TensorRecord> = {};
  for (const [k, v] of root.map) {
    if (typeof k !== 'string' || !isTensorRef(v)) continue;
    const key = v.storage.key;
    if (!storages.has(key)) {
      const entry = byName.get(`${prefix}data/${key}`);
      if (!entry) throw new Error(`${file}: storage data/${key} of '${k}' is missing from the archive`);
      if (!v.storage.dtype) throw new Error(`${file}: '${k}' has an unsupported storage type`);
      storages.set(key, zipRead(buf, entry, file));
    }
    out[k] = materialise(v, storages.get(key)!, k, file);
  }
  return out;
}
