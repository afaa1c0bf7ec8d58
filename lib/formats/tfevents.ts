/**
 * TensorBoard's event files (`events.out.tfevents.*`): a TFRecord stream of `Event` protobufs.
 *
 * TFRecord framing, per record: uint64 length, uint32 masked CRC-32C of those 8 bytes, the data,
 * uint32 masked CRC-32C of the data (all little-endian). The messages used here, from TensorFlow's
 * event.proto and summary.proto:
 *
 *   Event      { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
 *                SessionLog session_log = 7; }
 *   SessionLog { SessionStatus status = 1; }               START = 1
 *   Summary    { repeated Value value = 1; }
 *   Value      { string tag = 1; float simple_value = 2; Image image = 4; }
 *   Image      { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
 */
import { ProtoWriter, readProto } from './protobuf';

// ---- TFRecord -----------------------------------------------------------------------------------

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1; // Castagnoli, reflected
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli) of `data`. */
export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC32C_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotated right by 15 bits plus a constant, so a CRC of CRCs is not trivial. */
export function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord: header, data, footer. */
export function encodeRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/**
 * The records of a TFRecord stream, up to the first one that is cut short or fails its CRC (what a
 * crash in the middle of an append leaves), and the bytes they span.
 */
export function readRecords(buf: Uint8Array): { records: Uint8Array[]; validBytes: number } {
  const records: Uint8Array[] = [];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  while (pos + 12 <= buf.length) {
    if (view.getUint32(pos + 8, true) !== maskedCrc32c(buf.subarray(pos, pos + 8))) break;
    const length = Number(view.getBigUint64(pos, true));
    const end = pos + 12 + length + 4;
    if (end > buf.length) break;
    const data = buf.subarray(pos + 12, pos + 12 + length);
    if (view.getUint32(pos + 12 + length, true) !== maskedCrc32c(data)) break;
    records.push(data);
    pos = end;
  }
  return { records, validBytes: pos };
}

// ---- Event --------------------------------------------------------------------------------------

/** The version string every event file starts with: TensorBoard reads SessionLog purges only from 2 on. */
export const EVENT_FILE_VERSION = 'brain.Event:2';

/** A PNG shown in TensorBoard's Images tab. */
export interface ImageValue {
  tag: string;
  png: Uint8Array;
  height: number;
  width: number;
  /** 1 grey, 3 RGB, 4 RGBA. */
  channels: 1 | 3 | 4;
}

/** The events written and read here. `wallTime`: seconds since 1970. */
export type TfEvent =
  | { kind: 'file_version'; wallTime: number; step: number; version: string }
  /** Scalars (float32: TensorBoard's simple_value) and images at one step. */
  | { kind: 'summary'; wallTime: number; step: number; scalars: { tag: string; value: number }[]; images: ImageValue[] }
  /** SessionLog START: a reader drops every event of this file's run at `step` or later (a restart from there). */
  | { kind: 'session_start'; wallTime: number; step: number }
  | { kind: 'other'; wallTime: number; step: number };

export function encodeEvent(e: TfEvent): Uint8Array {
  const w = new ProtoWriter().double(1, e.wallTime);
  if (e.step !== 0) w.varint(2, e.step);
  if (e.kind === 'file_version') w.string(3, e.version);
  else if (e.kind === 'session_start') w.message(7, new ProtoWriter().varint(1, 1));
  else if (e.kind === 'summary') {
    const summary = new ProtoWriter();
    for (const s of e.scalars) summary.message(1, new ProtoWriter().string(1, s.tag).float(2, s.value));
    for (const im of e.images) {
      const image = new ProtoWriter()
        .varint(1, im.height)
        .varint(2, im.width)
        .varint(3, im.channels)
        .bytesField(4, im.png);
      summary.message(1, new ProtoWriter().string(1, im.tag).message(4, image));
    }
    w.message(5, summary);
  } else throw new Error("encodeEvent: an 'other' event has nothing to write");
  return w.finish();
}

const f64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
const f32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Reads an Event back (the kinds above; anything else is 'other'). */
export function decodeEvent(data: Uint8Array): TfEvent {
  let wallTime = 0;
  let step = 0;
  let event: TfEvent | undefined;
  const scalars: { tag: string; value: number }[] = [];
  const images: ImageValue[] = [];
  for (const f of readProto(data)) {
    if (f.field === 1 && f.wire === 'fixed64') wallTime = f64(f.value);
    else if (f.field === 2 && f.wire === 'varint') step = Number(BigInt.asIntN(64, f.value));
    else if (f.field === 3 && f.wire === 'bytes')
      event = { kind: 'file_version', wallTime, step, version: text(f.value) };
    else if (f.field === 7 && f.wire === 'bytes') {
      const status = readProto(f.value).find((s) => s.field === 1);
      event =
        status?.wire === 'varint' && status.value === 1n
          ? { kind: 'session_start', wallTime, step }
          : { kind: 'other', wallTime, step };
    } else if (f.field === 5 && f.wire === 'bytes') {
      event = { kind: 'summary', wallTime, step, scalars, images };
      for (const v of readProto(f.value)) {
        if (v.field !== 1 || v.wire !== 'bytes') continue;
        let tag = '';
        for (const x of readProto(v.value)) {
          if (x.field === 1 && x.wire === 'bytes') tag = text(x.value);
          else if (x.field === 2 && x.wire === 'fixed32') scalars.push({ tag, value: f32(x.value) });
          else if (x.field === 4 && x.wire === 'bytes') {
            const im = Object.fromEntries(readProto(x.value).map((y) => [y.field, y.value]));
            images.push({
              tag,
              height: Number(im[1]),
              width: Number(im[2]),
              channels: Number(im[3]) as 1 | 3 | 4,
              png: im[4] as Uint8Array,
            });
          }
        }
      }
    } else if (f.field !== 1 && f.field !== 2) event = { kind: 'other', wallTime, step };
  }
  // wall_time and step may come after the payload field: set them last.
  return { ...(event ?? { kind: 'other', wallTime, step }), wallTime, step } as TfEvent;
}
