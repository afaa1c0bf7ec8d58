// A run's TensorBoard event files (lib/train/tensorboard) read back with TensorBoard's own reader
// (EventAccumulator, from .venv) and checked against the run's Parquet rows: a real tiny training
// run (256 train / 128 test images, four steps an epoch), extended by a resume, then rolled back
// by a resume from an earlier epoch with another learning rate.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCifar10, type Cifar10Split } from '../lib/data/cifar10';
import { PATHS } from '../lib/config';
import { crc32c, decodeEvent, encodeEvent, encodeRecord, maskedCrc32c, readRecords } from '../lib/formats/tfevents';
import { readRunEpochs, readStepRows, type EpochRow, type StepRow } from '../lib/train/metrics';
import { tensorboardDir, writeTensorboard } from '../lib/train/tensorboard';
import { train } from '../lib/train/train';
import { trainConfig, type TrainConfig } from '../lib/train/train-config';

const PYTHON = path.join(PATHS.root, '.venv', 'bin', 'python');

/** {split: {tag: [[step, value], ...]}} as TensorBoard's EventAccumulator reads the run's folder. */
function readWithTensorboard(runDir: string): Record<string, Record<string, [number, number][]>> {
  const script = `
import json, os, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator, SCALARS
root = sys.argv[1]
out = {}
for split in sorted(os.listdir(root)):
    acc = EventAccumulator(os.path.join(root, split), size_guidance={SCALARS: 0})
    acc.Reload()
    out[split] = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()['scalars']}
print(json.dumps(out))`;
  const r = spawnSync(PYTHON, ['-c', script, tensorboardDir(runDir)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`EventAccumulator failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** The same, from the Parquet rows: what TensorBoard must show. */
function expectedFromRows(epochs: EpochRow[], steps: StepRow[]): Record<string, Record<string, [number, number][]>> {
  const out: Record<string, Record<string, [number, number][]>> = {};
  const put = (split: string, tag: string, step: number, value: number) =>
    ((out[split] ??= {})[tag] ??= []).push([step, Math.fround(value)]);
  for (const s of [...steps].sort((a, b) => a.step - b.step)) {
    put('train', 'batch_loss', s.step, s.loss);
    put('train', 'batch_accuracy', s.step, s.accuracy);
    put('train', 'batch_learning_rate', s.step, s.lr);
    put('train', 'batch_images_per_second', s.step, s.imagesPerSecond);
  }
  for (const e of [...epochs].sort((a, b) => a.step - b.step)) {
    put(e.split, 'epoch_loss', e.step, e.loss);
    put(e.split, 'epoch_accuracy', e.step, e.accuracy);
    put(e.split, 'epoch_images_per_second', e.step, e.imagesPerSecond);
    if (e.split === 'train') put(e.split, 'epoch_learning_rate', e.step, e.lr);
  }
  return out;
}

const bytesOf = (runDir: string) =>
  Object.fromEntries(
    fs
      .readdirSync(tensorboardDir(runDir))
      .flatMap((split) =>
        fs
          .readdirSync(path.join(tensorboardDir(runDir), split))
          .map((f) => [`${split}/${f}`, fs.readFileSync(path.join(tensorboardDir(runDir), split, f))]),
      ),
  ) as Record<string, Buffer>;

describe('TensorBoard event files (TFRecord framing)', () => {
  it('computes CRC-32C and its mask as TFRecord does', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283); // the standard check value
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
    const c = 0xe3069283;
    expect(maskedCrc32c(new TextEncoder().encode('123456789'))).toBe((((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0);
  });

  it('reads back whole records and stops at a cut one', () => {
    const a = encodeRecord(
      encodeEvent({ kind: 'summary', wallTime: 1.5, step: 3, images: [], scalars: [{ tag: 'x', value: 0.25 }] }),
    );
    const b = encodeRecord(encodeEvent({ kind: 'session_start', wallTime: 2, step: 2 }));
    const both = new Uint8Array([...a, ...b]);
    expect(readRecords(both).records).toHaveLength(2);
    expect(readRecords(both.subarray(0, both.length - 1))).toMatchObject({
      validBytes: a.length,
      records: [expect.anything()],
    });
    expect(decodeEvent(readRecords(both).records[0])).toEqual({
      kind: 'summary',
      wallTime: 1.5,
      step: 3,
      images: [],
      scalars: [{ tag: 'x', value: 0.25 }],
    });
    expect(decodeEvent(readRecords(both).records[1])).toEqual({ kind: 'session_start', wallTime: 2, step: 2 });
  });
});

describe('writeTensorboard on a real tiny run', () => {
  let runsDir: string;
  let data: { train: Cifar10Split; test: Cifar10Split };
  const dir = () => path.join(runsDir, 'tb');
  const rows = () => [readRunEpochs(dir()), readStepRows({ runsDir, runs: ['tb'] })] as const;
  const config = (over: Partial<TrainConfig>) =>
    trainConfig({ run: 'tb', epochs: 1, batchSize: 64, limitTrain: 256, limitTest: 128, logEvery: 1, ...over });

  beforeAll(async () => {
    runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensorboard-'));
    data = { train: loadCifar10('train', { limit: 256 }), test: loadCifar10('test', { limit: 128 }) };
    await train(config({ epochs: 1 }), { runsDir, data });
    fs.copyFileSync(path.join(dir(), 'last.safetensors'), path.join(runsDir, 'epoch1.safetensors'));
  });

  // train() writes the event files after each saved epoch (lib/train/run): a later call has nothing to add.
  it("training writes every step and epoch row, which TensorBoard reads back with the rows' tags, steps and values", () => {
    const [epochs, steps] = rows();
    expect(epochs.length).toBe(2);
    expect(readWithTensorboard(dir())).toEqual(expectedFromRows(epochs, steps));
    expect(
      writeTensorboard(dir(), epochs, steps).map((u) => [path.basename(path.dirname(u.file)), u.appended]),
    ).toEqual([
      ['train', 0],
      ['test', 0],
    ]);
  });

  it('another epoch appends only its rows to the files; called again, writes nothing', async () => {
    const before = bytesOf(dir());
    await train(config({ epochs: 2 }), { runsDir, data });
    const [epochs, steps] = rows();
    expect(epochs.map((r) => `${r.epoch}:${r.session}`)).toEqual(['1:1', '1:1', '2:2', '2:2']);
    const after = bytesOf(dir());
    for (const [name, bytes] of Object.entries(before)) {
      expect(after[name].length).toBeGreaterThan(bytes.length);
      expect(after[name].subarray(0, bytes.length).equals(bytes)).toBe(true);
    }
    expect(readWithTensorboard(dir())).toEqual(expectedFromRows(epochs, steps));
    expect(writeTensorboard(dir(), epochs, steps).map((u) => u.appended)).toEqual([0, 0]);
    expect(bytesOf(dir())).toEqual(after);
  });

  it('after a resume from epoch 1 (epoch 2 retrained with another learning rate) shows no step twice', async () => {
    const before = bytesOf(dir());
    fs.copyFileSync(path.join(runsDir, 'epoch1.safetensors'), path.join(dir(), 'last.safetensors'));
    await train(config({ epochs: 3, lr: 5e-4 }), { runsDir, data, resume: 'last' });
    const [epochs, steps] = rows();
    expect(epochs.map((r) => `${r.epoch}:${r.session}:${r.resumedFrom}`)).toEqual([
      '1:1:0',
      '1:1:0',
      '2:3:1',
      '2:3:1',
      '3:3:1',
      '3:3:1',
    ]);
    // Append-only: what was written stays; the rolled-back steps are purged by a SessionLog START, not overwritten.
    const after = bytesOf(dir());
    for (const [name, bytes] of Object.entries(before))
      expect(after[name].subarray(0, bytes.length).equals(bytes)).toBe(true);

    const shown = readWithTensorboard(dir());
    expect(shown).toEqual(expectedFromRows(epochs, steps));
    expect(shown.train.batch_learning_rate.map(([s, v]) => [s, v])).toEqual(
      [1, 2, 3, 4]
        .map((s) => [s, Math.fround(1e-3)])
        .concat([5, 6, 7, 8, 9, 10, 11, 12].map((s) => [s, Math.fround(5e-4)])),
    );
    expect(writeTensorboard(dir(), epochs, steps).map((u) => u.appended)).toEqual([0, 0]);
  });

  it('cuts off the record an interrupted append left half-written, and goes on', () => {
    const [epochs, steps] = rows();
    const trainFile = writeTensorboard(dir(), epochs, steps)[0].file;
    const whole = fs.readFileSync(trainFile);
    fs.appendFileSync(
      trainFile,
      encodeRecord(encodeEvent({ kind: 'session_start', wallTime: 0, step: 1 })).subarray(0, 10),
    );
    expect(writeTensorboard(dir(), epochs, steps)[0].appended).toBe(0);
    expect(fs.readFileSync(trainFile).equals(whole)).toBe(true);
    expect(readWithTensorboard(dir())).toEqual(expectedFromRows(epochs, steps));
  });
});
