import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  parseSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  recordToTensor,
  serializeSafetensors,
  tensorToRecord,
  writeSafetensors,
  type TensorRecord,
} from '../lib/formats/safetensors';
import { PRETRAINED_FILES } from '../lib/config';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-st-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const sample: Record<string, TensorRecord> = {
  'conv.weight': { dtype: 'F32', shape: [2, 1, 1, 3], data: new Float32Array([1, -2, 3.5, 0, 1e-7, -1e7]) },
  'bn.num_batches_tracked': { dtype: 'I64', shape: [], data: new BigInt64Array([123456789012n]) },
  labels: { dtype: 'I32', shape: [3], data: new Int32Array([0, 9, -1]) },
  pixels: { dtype: 'U8', shape: [5], data: new Uint8Array([0, 1, 2, 254, 255]) },
  empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
};

describe('safetensors', () => {
  it('round-trips every dtype, shape and metadata through a file', () => {
    const file = path.join(dir, 'a.safetensors');
    writeSafetensors(file, sample, { variant: 'dynamic', config: '{"lr":0.001}' });
    const { tensors, metadata } = readSafetensors(file);
    expect(metadata).toEqual({ variant: 'dynamic', config: '{"lr":0.001}' });
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(sample).sort());
    for (const [k, r] of Object.entries(sample)) {
      expect(tensors[k].dtype).toBe(r.dtype);
      expect(tensors[k].shape).toEqual(r.shape);
      expect(Array.from(tensors[k].data as ArrayLike<number | bigint>)).toEqual(
        Array.from(r.data as ArrayLike<number | bigint>),
      );
    }
    // The data section starts 8-byte aligned, as the Python writer lays it out.
    const bytes = fs.readFileSync(file);
    expect((8 + Number(bytes.readBigUInt64LE(0))) % 8).toBe(0);
    expect(readSafetensorsHeader(file).entries['conv.weight']).toEqual({ dtype: 'F32', shape: [2, 1, 1, 3] });
  });

  it('reads a file written by the Python safetensors library (F16 widened to F32)', () => {
    const { tensors, metadata } = readSafetensors(path.join(__dirname, 'fixtures', 'python-written.safetensors'));
    expect(metadata.format).toBe('pt');
    expect(tensors.f32.shape).toEqual([2, 3]);
    expect(Array.from(tensors.f32.data as Float32Array)).toEqual([-0.5, -0.25, 0, 0.25, 0.5, 0.75]);
    expect(Array.from(tensors.i64.data as BigInt64Array)).toEqual([0n, -3n, 2n ** 40n]);
    expect(Array.from(tensors.i32.data as Int32Array)).toEqual([7, -8]);
    expect(tensors.i32.shape).toEqual([2, 1]);
    expect(Array.from(tensors.u8.data as Uint8Array)).toEqual([0, 1, 255]);
    expect(tensors.f16.dtype).toBe('F32');
    expect(Array.from(tensors.f16.data as Float32Array)).toEqual([1.5, -0.25, 65504]);
    expect(tensors.scalar.shape).toEqual([]);
    expect((tensors.scalar.data as Float32Array)[0]).toBe(3.25);
  });

  it('reads the shared pretrained file with its documented keys and shapes', () => {
    const { tensors } = readSafetensors(PRETRAINED_FILES.folded);
    expect(tensors['conv1.weight'].shape).toEqual([64, 3, 7, 7]);
    expect(tensors['layer1.1.conv2.bias'].shape).toEqual([64]);
    const count = (suffix: string) =>
      Object.entries(tensors)
        .filter(([k]) => k.endsWith(suffix))
        .reduce((n, [, t]) => n + t.data.length, 0);
    // 156,864 conv weights (no bias in torchvision) + 5 × 64 folded BatchNorm biases = 157,184.
    expect(count('.weight')).toBe(156_864);
    expect(count('.bias')).toBe(320);
  });

  it('refuses truncated and corrupt files with a message saying what is wrong', () => {
    const good = serializeSafetensors(sample);
    expect(() => parseSafetensors(good.subarray(0, 5), 'x')).toThrow(/fewer than the 8-byte header length/);
    expect(() => parseSafetensors(good.subarray(0, 20), 'x')).toThrow(/truncated: header says/);
    expect(() => parseSafetensors(good.subarray(0, good.length - 3), 'x')).toThrow(
      /truncated: tensor '.*' ends at byte/,
    );
    const corrupt = Buffer.from(good);
    corrupt[8] = 0x5b; // '{' → '['... breaks the JSON object
    corrupt[9] = 0x7d;
    expect(() => parseSafetensors(corrupt, 'x')).toThrow(/corrupt JSON header/);
    const huge = Buffer.from(good);
    huge.writeBigUInt64LE(1n << 50n, 0);
    expect(() => parseSafetensors(huge, 'x')).toThrow(/implausible/);
    const file = path.join(dir, 'trunc.safetensors');
    fs.writeFileSync(file, good.subarray(0, good.length - 1));
    expect(() => readSafetensors(file)).toThrow(new RegExp(`${file} is not a valid safetensors file`));
    expect(() => readSafetensors(path.join(dir, 'missing.safetensors'))).toThrow(/no such file/);
  });

  it('refuses a header whose offsets do not match the shape', () => {
    const header = JSON.stringify({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } });
    const buf = Buffer.alloc(8 + header.length + 8);
    buf.writeBigUInt64LE(BigInt(header.length), 0);
    buf.write(header, 8);
    expect(() => parseSafetensors(buf, 'x')).toThrow(/tensor 'w' has 8 bytes, but F32 \[3\] needs 12/);
  });

  it('writes atomically: a failed write leaves the earlier file and no temporary file', () => {
    const file = path.join(dir, 'keep.safetensors');
    writeSafetensors(file, sample);
    const before = fs.readFileSync(file);
    const broken = { w: { dtype: 'F32', shape: [4], data: new Float32Array(3) } } as Record<string, TensorRecord>;
    expect(() => writeSafetensors(file, broken)).toThrow(/shape \[4\] needs 4 values but data has 3/);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('converts records to tf.Tensors and back (I64 counters as int32 inside)', () => {
    const t = recordToTensor(sample['conv.weight']);
    expect(t.shape).toEqual([2, 1, 1, 3]);
    expect(Array.from(t.dataSync())).toEqual(Array.from(sample['conv.weight'].data as Float32Array));
    const back = tensorToRecord(t);
    expect(back.dtype).toBe('F32');
    const counter = recordToTensor({ dtype: 'I64', shape: [], data: new BigInt64Array([42n]) });
    expect(counter.dtype).toBe('int32');
    expect(tensorToRecord(counter, { int64: true })).toEqual({
      dtype: 'I64',
      shape: [],
      data: new BigInt64Array([42n]),
    });
    expect(() => recordToTensor(sample['bn.num_batches_tracked'], 'n')).toThrow(/does not fit int32/);
    tf.dispose([t, counter]);
  });

  it('carries a whole-file checksum: any changed byte, header or data, is refused naming the file', () => {
    const file = path.join(dir, 'sum.safetensors');
    writeSafetensors(file, sample, { epoch: '3' });
    const bytes = fs.readFileSync(file);
    const n = 8 + Number(bytes.readBigUInt64LE(0));
    expect(JSON.parse(bytes.subarray(8, n).toString()).__metadata__.file_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(readSafetensors(file).checksummed).toBe(true);
    // One flipped bit in the data, one edited metadata character: both caught.
    const data = Buffer.from(bytes);
    data[n + 2] ^= 0x01;
    expect(() => parseSafetensors(data, 'data.safetensors')).toThrow(
      /^data\.safetensors is damaged: its bytes do not match the file_sha256 checksum it was written with/,
    );
    const meta = Buffer.from(bytes.toString('latin1').replace('"epoch":"3"', '"epoch":"9"'), 'latin1');
    expect(() => parseSafetensors(meta, 'meta.safetensors')).toThrow(
      /meta\.safetensors is damaged: its bytes do not match/,
    );
    // A file from elsewhere (Python) has none and reads as it is.
    expect(readSafetensors(path.join(__dirname, 'fixtures', 'python-written.safetensors')).checksummed).toBe(false);
  });
});
