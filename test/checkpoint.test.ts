import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Adam } from '../lib/adam';
import { batches } from '../lib/batches';
import { loadCifar10, type Cifar10Split } from '../lib/cifar10';
import {
  CHECKPOINT_FORMAT, exportModelState, readCheckpoint, readCheckpointMeta, restoreCheckpoint, saveCheckpoint, tensorDigest,
} from '../lib/checkpoint';
import { PROJECT_ROOT, type Freeze, type Variant } from '../lib/config';
import { createNet, type Net } from '../lib/model';
import { readSafetensors, writeSafetensors } from '../lib/safetensors';
import { MODEL_STATE_FORMAT, readModelState } from '../lib/weights';
import { crossEntropy } from '../lib/train';
import { trainConfig } from '../lib/train-config';

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
    const { value, grads } = tf.variableGrads(() => crossEntropy(net.forward(b.x, true), b.y), vars.map(([, v]) => v));
    adam.step(Object.fromEntries(Object.entries(grads).map(([id, g]) => [byId.get(id)!, g])));
    tf.dispose([value, grads, b.x, b.y]);
  }
}

const config = trainConfig({ run: 'ckpt' });
const meta = (epoch: number) => ({ kind: 'best' as const, epoch, accuracy: 0.5, bestAccuracy: 0.5, bestEpoch: epoch, session: 1, config: { ...config }, backend: 'test' });

function stateValues(net: Net): Record<string, number[]> {
  const s = net.stateDict();
  const out = Object.fromEntries(Object.entries(s).map(([k, t]) => [k, Array.from(t.dataSync())]));
  tf.dispose(Object.values(s));
  return out;
}

describe('checkpoints', () => {
  it('save → restore gives the same model and optimizer: the next step is bit-identical', () => {
    const a = make();
    trainSteps(a.net, a.adam, 2);
    const file = path.join(dir, 'a.safetensors');
    saveCheckpoint(file, a.net, a.adam, meta(1));

    const content = readCheckpoint(file);
    expect(content.meta).toMatchObject({ format: CHECKPOINT_FORMAT, kind: 'best', variant: 'dynamic', epoch: 1, step: 2, bestEpoch: 1 });
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
    expect(() => restoreCheckpoint(content, file, s.net, s.adam)).toThrow(/holds a dynamic net, but this run trains the static net/);
    const frozen = make('dynamic', 'all');
    expect(() => restoreCheckpoint(content, file, frozen.net, frozen.adam)).toThrow(/optimizer state for parameters this run does not train.*freeze 'none'.*'all'/s);
    expect(frozen.adam.stepCount).toBe(0);

    // A consistent file (valid checksum) with one misshapen tensor.
    const raw = readSafetensors(file);
    const bad = { ...raw.tensors, 'score.0.bias': { dtype: 'F32' as const, shape: [32], data: new Float32Array(32) } };
    const badFile = path.join(dir, 'shape.safetensors');
    writeSafetensors(badFile, bad, { ...raw.metadata, sha256: tensorDigest(bad) });
    const fresh = make();
    const freshBefore = stateValues(fresh.net);
    expect(() => restoreCheckpoint(readCheckpoint(badFile), badFile, fresh.net, fresh.adam)).toThrow(/'score.0.bias' has shape \[32\], expected \[64\]/);
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
    expect(() => readCheckpoint(flippedFile)).toThrow(/is damaged: its tensors do not match the checksum/);
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

  it('exports the model state only, readable by lib/weights and refused as a checkpoint', () => {
    const a = make('static');
    trainSteps(a.net, a.adam, 1);
    const file = path.join(dir, 'c.safetensors');
    saveCheckpoint(file, a.net, a.adam, { ...meta(2), config: { ...config, variant: 'static', norm: 'imagenet' } });
    const out = path.join(dir, 'exported.safetensors');
    expect(() => exportModelState(file, path.join(dir, 'x.bin'))).toThrow(/must end in .safetensors/);
    expect(() => exportModelState(file, file)).toThrow(/onto itself/);
    exportModelState(file, out);
    const exported = readSafetensors(out);
    expect(Object.keys(exported.tensors).some((k) => k.startsWith('adam.'))).toBe(false);
    expect(Object.keys(exported.tensors).sort()).toEqual(Object.keys(readCheckpoint(file).model).sort());
    expect(exported.metadata).toMatchObject({ format: MODEL_STATE_FORMAT, variant: 'static', norm: 'imagenet', epoch: '2' });
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
});
