import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Adam } from '../lib/train/adam';
import { batches } from '../lib/data/batches';
import { loadCifar10, type Cifar10Split } from '../lib/data/cifar10';
import { CHECKPOINT_FORMAT, readCheckpoint, readCheckpointMeta, restoreCheckpoint } from '../lib/train/checkpoint';
import { saveCheckpoint } from '../lib/train/checkpoint';
import { assertWritableOutput, exportModelState, protectedOutputProblem } from '../lib/train/export';
import { PROJECT_ROOT, type Freeze, type Variant } from '../lib/config';
import { createNet, type Net } from '../lib/model/model';
import { FILE_CHECKSUM_KEY, readSafetensors, serializeSafetensors, writeSafetensors } from '../lib/formats/safetensors';
import { tensorDigest } from '../lib/formats/safetensors';
import { loadNetFromStateFile } from '../lib/train/predict';
import { MODEL_STATE_FORMAT, readModelState } from '../lib/model/weights';
import { crossEntropy } from '../lib/train/loss';
import { trainConfig } from '../lib/train/train-config';

let images: Cifar10Split;
let dir: string;
beforeAll(() => {
  images = loadCifar10('train', { limit: 64 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkpoint-'));
});

function make(variant: Variant = 'dynamic', freeze: Freeze = 'none') {
  const net = createNet(variant, { seed: 1, pretrained: false, freeze });
  return { net, adam: new Adam(net.trainable(), { lr: 1e-3 }) };
}

/** `steps` real training steps on 32-image batches. */
function trainSteps(net: Net, adam: Adam, steps: number, epoch = 1): void {
  const vars = [...net.trainable()];
  const byId = new Map(vars.map(([name, v]) => [v.name, name]));
  let done = 0;
  for (const b of batches(images, { batchSize: 32, norm: 'half', shuffle: true, seed: 5, epoch })) {
    if (done++ === steps) {
      tf.dispose([b.x, b.y]);
      continue;
    }
    const { value, grads } = tf.variableGrads(
      () => crossEntropy(net.forward(b.x, true), b.y),
      vars.map(([, v]) => v),
    );
    adam.step(Object.fromEntries(Object.entries(grads).map(([id, g]) => [byId.get(id)!, g])));
    tf.dispose([value, grads, b.x, b.y]);
  }
}

const config = trainConfig({ run: 'ckpt' });
const meta = (epoch: number) => ({
  kind: 'best' as const,
  epoch,
  accuracy: 0.5,
  bestAccuracy: 0.5,
  bestEpoch: epoch,
  session: 1,
  config: { ...config },
  backend: 'test',
});

function stateValues(net: Net): Record<string, number[]> {
  const s = net.stateDict();
  const out = Object.fromEntries(Object.entries(s).map(([k, t]) => [k, Array.from(t.dataSync())]));
  tf.dispose(Object.values(s));
  return out;
}

/** The file's bytes with its stored epoch changed in place (same length), as a hand edit would. */
function editedEpoch(bytes: Buffer, from: string, to: string): Buffer {
  const field = Buffer.from(`"epoch":"${from}"`);
  const at = bytes.indexOf(field);
  expect(at).toBeGreaterThan(0);
  const out = Buffer.from(bytes);
  out.write(`"epoch":"${to}"`, at);
  return out;
}

/** The format of earlier versions: a checksum over the tensors only. */
const CHECKPOINT_FORMAT_V1 = 'dcf-checkpoint/1';

/** A file as the dcf-checkpoint/1 writer laid it out: no file_sha256, a tensor-only `sha256`. */
function legacyV1Bytes(file: string): Buffer {
  const { tensors, metadata } = readSafetensors(file);
  const bytes = serializeSafetensors(tensors, {
    ...metadata,
    format: CHECKPOINT_FORMAT_V1,
    sha256: tensorDigest(tensors),
  });
  const n = 8 + Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, n).toString());
  delete header.__metadata__[FILE_CHECKSUM_KEY];
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - ((8 + json.length) % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, bytes.subarray(n)]);
}

describe('checkpoints', () => {
  it('save → restore gives the same model and optimizer: the next step is bit-identical', () => {
    const a = make();
    trainSteps(a.net, a.adam, 2);
    const file = path.join(dir, 'a.safetensors');
    saveCheckpoint(file, a.net, a.adam, meta(1));

    const content = readCheckpoint(file);
    expect(content.meta).toMatchObject({
      format: CHECKPOINT_FORMAT,
      kind: 'best',
      variant: 'dynamic',
      epoch: 1,
      step: 2,
      bestEpoch: 1,
    });
    expect(content.meta.config).toEqual(config);
    expect(readCheckpointMeta(file)).toEqual(content.meta);
    // PyTorch names and layouts for the model and for the moments.
    expect(content.model['backbone.conv1.weight'].shape).toEqual([64, 3, 7, 7]);
    expect(content.model['backbone.bn1.num_batches_tracked'].dtype).toBe('I64');
    expect(content.adam['backbone.conv1.weight.exp_avg'].shape).toEqual([64, 3, 7, 7]);
    expect(Object.keys(content.adam)).toHaveLength(2 * a.net.trainable().size);

    const b = make();
    restoreCheckpoint(content, file, b.net, b.adam);
    expect(b.adam.stepCount).toBe(2);
    expect(stateValues(b.net)).toEqual(stateValues(a.net));
    trainSteps(a.net, a.adam, 1, 2);
    trainSteps(b.net, b.adam, 1, 2);
    expect(stateValues(b.net)).toEqual(stateValues(a.net));
    for (const x of [a, b]) {
      x.adam.dispose();
      x.net.dispose();
    }
  });

  it('refuses another variant, other trainable parameters, wrong shapes, corrupt files — changing nothing', () => {
    const a = make();
    const file = path.join(dir, 'b.safetensors');
    saveCheckpoint(file, a.net, a.adam, meta(3));
    const content = readCheckpoint(file);
    const s = make('static');
    const before = stateValues(s.net);
    expect(() => restoreCheckpoint(content, file, s.net, s.adam)).toThrow(
      /holds a dynamic net, but this run trains the static net/,
    );
    const frozen = make('dynamic', 'all');
    expect(() => restoreCheckpoint(content, file, frozen.net, frozen.adam)).toThrow(
      /optimizer state for parameters this run does not train.*freeze 'none'.*'all'/s,
    );
    expect(frozen.adam.stepCount).toBe(0);

    // A consistent file (valid checksum) with one misshapen tensor.
    const raw = readSafetensors(file);
    const bad = { ...raw.tensors, 'score.0.bias': { dtype: 'F32' as const, shape: [32], data: new Float32Array(32) } };
    const badFile = path.join(dir, 'shape.safetensors');
    writeSafetensors(badFile, bad, { ...raw.metadata, sha256: tensorDigest(bad) });
    const fresh = make();
    const freshBefore = stateValues(fresh.net);
    expect(() => restoreCheckpoint(readCheckpoint(badFile), badFile, fresh.net, fresh.adam)).toThrow(
      /'score.0.bias' has shape \[32\], expected \[64\]/,
    );
    expect(stateValues(fresh.net)).toEqual(freshBefore);
    expect(fresh.adam.stepCount).toBe(0);
    expect(stateValues(s.net)).toEqual(before);

    // Damaged files: truncated, a flipped data byte, garbage.
    const bytes = fs.readFileSync(file);
    const truncated = path.join(dir, 'truncated.safetensors');
    fs.writeFileSync(truncated, bytes.subarray(0, bytes.length - 100));
    expect(() => readCheckpoint(truncated)).toThrow(/is damaged: .*truncated.*--resume best\|last.*--fresh/s);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 7] ^= 0x40;
    const flippedFile = path.join(dir, 'flipped.safetensors');
    fs.writeFileSync(flippedFile, flipped);
    expect(() => readCheckpoint(flippedFile)).toThrow(/is damaged: its bytes do not match the file_sha256 checksum/);
    const garbage = path.join(dir, 'garbage.safetensors');
    fs.writeFileSync(garbage, 'not a checkpoint at all');
    expect(() => readCheckpoint(garbage)).toThrow(/is damaged/);
    expect(() => readCheckpointMeta(garbage)).toThrow(/is damaged/);
    expect(() => readCheckpoint(path.join(dir, 'missing.safetensors'))).toThrow(/no checkpoint at/);
    for (const x of [a, s, frozen, fresh]) {
      x.adam.dispose();
      x.net.dispose();
    }
  });

  it('exports the model state only, readable by lib/model/weights and refused as a checkpoint', () => {
    const a = make('static');
    trainSteps(a.net, a.adam, 1);
    const file = path.join(dir, 'c.safetensors');
    saveCheckpoint(file, a.net, a.adam, { ...meta(2), config: { ...config, variant: 'static', norm: 'imagenet' } });
    const out = path.join(dir, 'exported.safetensors');
    expect(() => exportModelState(file, path.join(dir, 'x.bin'))).toThrow(/must end in .safetensors/);
    expect(() => exportModelState(file, file)).toThrow(/refusing to write .*: it is the input file/);
    exportModelState(file, out);
    const exported = readSafetensors(out);
    expect(Object.keys(exported.tensors).some((k) => k.startsWith('adam.'))).toBe(false);
    expect(Object.keys(exported.tensors).sort()).toEqual(Object.keys(readCheckpoint(file).model).sort());
    expect(exported.metadata).toMatchObject({
      format: MODEL_STATE_FORMAT,
      variant: 'static',
      norm: 'imagenet',
      epoch: '2',
    });
    const state = readModelState(out);
    expect(state.variant).toBe('static');
    expect(state.norm).toBe('imagenet');
    expect(() => readCheckpoint(out)).toThrow(/not a training checkpoint of this project/);
    a.adam.dispose();
    a.net.dispose();
  });

  const python = path.join(PROJECT_ROOT, '.venv', 'bin', 'python');
  const hasPython = (() => {
    try {
      execFileSync(python, ['-c', 'import numpy, safetensors'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(!hasPython)('is read by Python safetensors with PyTorch shapes and dtypes', () => {
    const a = make();
    const file = path.join(dir, 'py.safetensors');
    saveCheckpoint(file, a.net, a.adam, meta(1));
    const script = `
import json, sys
from safetensors import safe_open
with safe_open(sys.argv[1], framework='numpy') as f:
    print(json.dumps({'meta': f.metadata(), 'shapes': {k: list(f.get_tensor(k).shape) for k in f.keys()},
                      'dtype': str(f.get_tensor('backbone.bn1.num_batches_tracked').dtype)}))`;
    const out = JSON.parse(execFileSync(python, ['-c', script, file]).toString());
    expect(out.meta.format).toBe(CHECKPOINT_FORMAT);
    expect(out.shapes['backbone.layer1.0.conv1.weight']).toEqual([64, 64, 3, 3]);
    expect(out.shapes['adam.gen.0.weight.exp_avg_sq']).toEqual([256, 128]);
    expect(out.dtype).toBe('int64');
    a.adam.dispose();
    a.net.dispose();
  });

  const anyPython = [python, 'python3'].find((p) => {
    try {
      execFileSync(p, ['-c', 'import hashlib, json'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });

  it.skipIf(!anyPython)(
    'its file_sha256 verifies by the recipe documented in lib/formats/safetensors (Python hashlib)',
    () => {
      const a = make();
      const file = path.join(dir, 'recipe.safetensors');
      saveCheckpoint(file, a.net, a.adam, meta(1));
      a.adam.dispose();
      a.net.dispose();
      const recipe = `
import hashlib, json, sys
b = open(sys.argv[1], 'rb').read(); n = 8 + int.from_bytes(b[:8], 'little')
d = json.loads(b[8:n])['__metadata__']['file_sha256']
print(hashlib.sha256(b[:n].replace(d.encode(), b'0' * 64, 1) + b[n:]).hexdigest() == d)`;
      expect(execFileSync(anyPython!, ['-c', recipe, file]).toString().trim()).toBe('True');
      const edited = path.join(dir, 'recipe-edited.safetensors');
      fs.writeFileSync(edited, editedEpoch(fs.readFileSync(file), '1', '7'));
      expect(execFileSync(anyPython!, ['-c', recipe, edited]).toString().trim()).toBe('False');
    },
  );

  describe('the whole-file checksum (issue #14)', () => {
    let file: string;
    let bytes: Buffer;
    beforeAll(() => {
      const a = make('static');
      file = path.join(dir, 'checksummed.safetensors');
      saveCheckpoint(file, a.net, a.adam, { ...meta(3), config: { ...config, variant: 'static' } });
      a.adam.dispose();
      a.net.dispose();
      bytes = fs.readFileSync(file);
    });

    it('a flipped tensor byte is refused by every reader: predict, export, resume, readModelState, readCheckpointMeta', () => {
      const flipped = path.join(dir, 'flipped-data.safetensors');
      const damaged = Buffer.from(bytes);
      damaged[damaged.length - 1001] ^= 0x40; // inside the tensor data (the header is a few KB)
      fs.writeFileSync(flipped, damaged);
      const why =
        /flipped-data\.safetensors is damaged: its bytes do not match the file_sha256 checksum it was written with/;
      expect(() => loadNetFromStateFile(flipped)).toThrow(why);
      expect(() => readModelState(flipped)).toThrow(why);
      expect(() => readCheckpoint(flipped)).toThrow(why);
      expect(() => readCheckpointMeta(flipped)).toThrow(why);
      const out = path.join(dir, 'from-flipped.safetensors');
      expect(() => exportModelState(flipped, out)).toThrow(why);
      expect(fs.existsSync(out)).toBe(false);
      // The intact file still loads.
      const ok = loadNetFromStateFile(file);
      expect(ok.checksum).toBe('file');
      ok.net.dispose();
    });

    it('covers the metadata: an edited epoch (3 → 9) is refused, a missing checksum too', () => {
      const edited = path.join(dir, 'edited-epoch.safetensors');
      fs.writeFileSync(edited, editedEpoch(bytes, '3', '9'));
      expect(readCheckpointMeta(file).epoch).toBe(3);
      expect(() => readCheckpointMeta(edited)).toThrow(
        /edited-epoch\.safetensors is damaged: its bytes do not match the file_sha256 checksum.*--resume best\|last.*--fresh/s,
      );
      expect(() => readCheckpoint(edited)).toThrow(/is damaged/);
      expect(() => readModelState(edited)).toThrow(/is damaged/);

      // A dcf-checkpoint/2 file whose checksum was taken out: refused, not read unverified.
      const stripped = path.join(dir, 'stripped.safetensors');
      const v1 = legacyV1Bytes(file);
      fs.writeFileSync(
        stripped,
        Buffer.from(v1.toString('latin1').replace(CHECKPOINT_FORMAT_V1, CHECKPOINT_FORMAT), 'latin1'),
      );
      expect(() => readCheckpoint(stripped)).toThrow(/says format dcf-checkpoint\/2 but has no file_sha256 checksum/);
      expect(() => readModelState(stripped)).toThrow(/says format dcf-checkpoint\/2 but has no file_sha256 checksum/);
    });

    it('refuses older dcf-checkpoint/1 files, saying how to convert the run or start it over', () => {
      const legacy = path.join(dir, 'legacy.safetensors');
      fs.writeFileSync(legacy, legacyV1Bytes(file));
      const refusal = (() => {
        try {
          readCheckpoint(legacy);
        } catch (err) {
          return (err as Error).message;
        }
      })();
      expect(refusal).toMatch(/legacy\.safetensors is a dcf-checkpoint\/1 file, .* no longer read/);
      expect(refusal).toMatch(/To convert the run, resume it once with commit 5af09a2 .*--resume last\), which writes/);
      expect(refusal).toMatch(/; or start it over with --fresh\.$/);
      const out = path.join(dir, 'legacy-out.safetensors');
      expect(() => exportModelState(legacy, out)).toThrow(/dcf-checkpoint\/1 .* no longer read/);
      // Model state files (lib/model) still read its tensor checksum.
      expect(readModelState(legacy).checksum).toBe('tensors');
    });
  });

  describe('outputs never overwrite inputs or checkpoints (issue #14)', () => {
    it("export refuses its own checkpoint (also through a symlink or hard link) and any run's best/last", () => {
      const runs = path.join(dir, 'runs');
      const a = make('static');
      const mine = path.join(runs, 'mine', 'best.safetensors');
      const other = path.join(runs, 'other', 'last.safetensors');
      fs.mkdirSync(path.dirname(mine), { recursive: true });
      saveCheckpoint(mine, a.net, a.adam, { ...meta(1), config: { ...config, variant: 'static' } });
      saveCheckpoint(other, a.net, a.adam, { ...meta(2), config: { ...config, variant: 'static' } });
      a.adam.dispose();
      a.net.dispose();
      const before = [fs.readFileSync(mine), fs.readFileSync(other)];

      const link = path.join(dir, 'link.safetensors');
      fs.symlinkSync(mine, link);
      const hard = path.join(dir, 'hard.safetensors');
      fs.linkSync(mine, hard);
      const opts = { runsDirs: [runs] };
      expect(() => exportModelState(mine, link, opts)).toThrow(
        /refusing to write .*link\.safetensors: it is the input file .*Choose another --out/,
      );
      expect(() => exportModelState(mine, hard, opts)).toThrow(/it is the input file/);
      expect(() => exportModelState(mine, other, opts)).toThrow(
        /refusing to write .*: the last checkpoint of run 'other'/,
      );
      // Through a symlinked folder, and onto a checkpoint that does not exist yet: still a checkpoint path.
      const runsLink = path.join(dir, 'runs-link');
      fs.symlinkSync(runs, runsLink);
      expect(() => exportModelState(mine, path.join(runsLink, 'other', 'last.safetensors'), opts)).toThrow(
        /the last checkpoint of run 'other'/,
      );
      expect(() => exportModelState(mine, path.join(runs, 'new', 'best.safetensors'), opts)).toThrow(
        /the best checkpoint of run 'new'/,
      );
      expect(fs.readFileSync(mine).equals(before[0]) && fs.readFileSync(other).equals(before[1])).toBe(true);

      // Anything else is fine, inside the runs folder too.
      expect(
        protectedOutputProblem(path.join(runs, 'mine', 'exported.safetensors'), { inputs: [mine], runsDirs: [runs] }),
      ).toBeUndefined();
      expect(() =>
        assertWritableOutput(path.join(dir, 'preds.json'), { inputs: [mine], runsDirs: [runs] }),
      ).not.toThrow();
      exportModelState(mine, path.join(dir, 'fine.safetensors'), opts);
      expect(readModelState(path.join(dir, 'fine.safetensors')).checksum).toBe('file');
    });
  });
});
