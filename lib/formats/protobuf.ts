/**
 * A minimal Protocol Buffers writer: just what lib/runtime/graph needs to write a TensorFlow GraphDef
 * inside a SavedModel (varints, 32-bit floats, length-delimited fields, packed repeated fields), and
 * TensorBoard's event files (doubles; `readProto` reads such messages back field by field).
 * Wire format: https://protobuf.dev/programming-guides/encoding/
 */

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

export class ProtoWriter {
  private readonly bytes: number[] = [];

  /** An int32/int64/enum/bool field; negative values take ten bytes, as protobuf's int64 does. */
  varint(field: number, value: number | bigint | boolean): this {
    this.tag(field, VARINT);
    this.rawVarint(value);
    return this;
  }

  /** A `float` field (IEEE-754 single precision, little-endian). */
  float(field: number, value: number): this {
    this.tag(field, FIXED32);
    this.rawFloat(value);
    return this;
  }

  /** A `double` field (IEEE-754 double precision, little-endian). */
  double(field: number, value: number): this {
    this.tag(field, FIXED64);
    const buf = new DataView(new ArrayBuffer(8));
    buf.setFloat64(0, value, true);
    for (let i = 0; i < 8; i++) this.bytes.push(buf.getUint8(i));
    return this;
  }

  /** A `bytes` field. */
  bytesField(field: number, data: Uint8Array): this {
    this.tag(field, LENGTH_DELIMITED);
    this.rawVarint(data.length);
    for (const b of data) this.bytes.push(b);
    return this;
  }

  /** A `string` field (UTF-8). */
  string(field: number, s: string): this {
    return this.bytesField(field, new TextEncoder().encode(s));
  }

  /** An embedded message field (written even when empty: presence matters, e.g. an empty list). */
  message(field: number, body: ProtoWriter): this {
    return this.bytesField(field, body.finish());
  }

  /** A packed repeated int32/int64/enum/bool field. */
  packedVarints(field: number, values: ReadonlyArray<number | bigint | boolean>): this {
    const body = new ProtoWriter();
    for (const v of values) body.rawVarint(v);
    return this.bytesField(field, body.finish());
  }

  /** A packed repeated float field. */
  packedFloats(field: number, values: ReadonlyArray<number>): this {
    const body = new ProtoWriter();
    for (const v of values) body.rawFloat(v);
    return this.bytesField(field, body.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }

  private tag(field: number, wireType: number): void {
    if (!Number.isInteger(field) || field < 1) throw new Error(`protobuf: bad field number ${field}`);
    this.rawVarint(field * 8 + wireType);
  }

  private rawVarint(value: number | bigint | boolean): void {
    if (typeof value === 'number' && !Number.isSafeInteger(value))
      throw new Error(`protobuf: varint must be an integer; got ${value}`);
    let v = BigInt.asUintN(64, BigInt(value)); // two's complement for negatives
    do {
      const low = Number(v & 0x7fn);
      v >>= 7n;
      this.bytes.push(v > 0n ? low | 0x80 : low);
    } while (v > 0n);
  }

  private rawFloat(value: number): void {
    const buf = new DataView(new ArrayBuffer(4));
    buf.setFloat32(0, value, true);
    for (let i = 0; i < 4; i++) this.bytes.push(buf.getUint8(i));
  }
}

/** One field of a message as read: a varint's value, or the bytes of a fixed32/fixed64/length-delimited field. */
export type ProtoField =
  | { field: number; wire: 'varint'; value: bigint }
  | { field: number; wire: 'fixed32' | 'fixed64' | 'bytes'; value: Uint8Array };

/** The fields of one message in file order (no schema: the caller knows what each number means). */
export function readProto(bytes: Uint8Array): ProtoField[] {
  const fields: ProtoField[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= bytes.length) throw new Error('protobuf: message ends inside a varint');
      const b = bytes[pos++];
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
  };
  const take = (n: number): Uint8Array => {
    if (pos + n > bytes.length) throw new Error('protobuf: message ends inside a field');
    return bytes.subarray(pos, (pos += n));
  };
  while (pos < bytes.length) {
    const key = Number(varint());
    const field = key >>> 3;
    switch (key & 7) {
      case VARINT:
        fields.push({ field, wire: 'varint', value: varint() });
        break;
      case FIXED64:
        fields.push({ field, wire: 'fixed64', value: take(8) });
        break;
      case LENGTH_DELIMITED:
        fields.push({ field, wire: 'bytes', value: take(Number(varint())) });
        break;
      case FIXED32:
        fields.push({ field, wire: 'fixed32', value: take(4) });
        break;
      default:
        throw new Error(`protobuf: unsupported wire type ${key & 7} (field ${field})`);
    }
  }
  return fields;
}
