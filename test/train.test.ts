// The training loop on small real slices of CIFAR-10 (256 train / 128 test images, batches of
// 64: four steps an epoch): checkpoints, metrics, resume, determinism, faults, isolation.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCifar10, type Cifar10Split } from '../lib/data/cifar10';
import { readCheckpoint, readCheckpointMeta } from '../lib/train/checkpoint';
import { PATHS } from '../lib/config';
import { readRunEpochs, readStepRows, type EpochRow } from '../lib/train/metrics';
import { train } from '../lib/train/train';
import { DivergedError } from '../lib/train/divergence';
import type { TrainEvent } from '../lib/train/events';
import { trainConfig, type TrainConfig } from '../lib/train/train-config';
import { fileDigests } from './helpers/files';

let runsDir: string;
let data: { train: Cifar10Split; test: Cifar10Split };
beforeAll(() => {
  runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'train-'));
  data = { train: loadCifar10('train', { limit: 256 }), test: loadCifar10('test', { limit: 128 }) };
});

const small = (run: string, over: Partial<TrainConfig> = {}) =>
  trainConfig({ run, epochs: 2, batchSize: 64, limitTrain: 256, limitTest: 128, logEvery: 1, ...over });

/** Every file under `dir` (recursively) with its SHA-256: "nothing changed" means equal maps. */
const numbers = (r: EpochRow) => ({
  split: r.split,
  loss: r.loss,
  accuracy: r.accuracy,
  perClassAccuracy: r.perClassAccuracy,
});
const epochOf = (rows: EpochRow[], e: number) => rows.filter((r) => r.epoch === e).map(numbers);

describe('train()', () => {
  let firstRun: Awaited<ReturnType<typeof train>>;

  it('trains a run: checkpoints, Parquet metrics, and the same number of live tensors at every step', async () => {
    // A lock left by a process that no longer exists is taken over.
    const deadPid = spawnSync(process.execPath, ['-e', '0']).pid!;
    fs.writeFileSync(path.join(runsDir, '.x.lock'), String(deadPid));
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    const events: TrainEvent['type'][] = [];
    firstRun = await train(small('x'), {
      runsDir,
      data,
      onProgress: (e) => {
        events.push(e.type);
        if (e.type === 'step') counts.push(tf.memory().numTensors);
      },
    });
    expect(counts).toHaveLength(8);
    expect(new Set(counts).size).toBe(1);
    expect(tf.memory().numTensors).toBe(before); // net, optimizer and accumulators all freed

    expect(firstRun).toMatchObject({ status: 'trained', startEpoch: 0, epoch: 2 });
    expect(events[0]).toBe('start');
    expect(events.filter((t) => t === 'epoch')).toHaveLength(2);
    const dir = path.join(runsDir, 'x');
    expect(fs.readdirSync(dir).sort()).toEqual([
      'best.safetensors',
      'config.json',
      'last.safetensors',
      'metrics',
      'tensorboard',
    ]);
    expect(fs.readdirSync(path.join(dir, 'metrics')).sort()).toEqual([
      'epochs-e0001-s001.parquet',
      'epochs-e0002-s001.parquet',
      'steps-e0001-s001.parquet',
      'steps-e0002-s001.parquet',
    ]);
    expect(fs.existsSync(path.join(runsDir, '.x.lock'))).toBe(false);

    const rows = readRunEpochs(dir);
    expect(rows.map((r) => `${r.epoch}:${r.split}`)).toEqual(['1:test', '1:train', '2:test', '2:train']);
    const test2 = rows.find((r) => r.epoch === 2 && r.split === 'test')!;
    expect(test2.accuracy).toBe(firstRun.history[1].test.accuracy);
    expect(test2).toMatchObject({
      run: 'x',
      session: 1,
      resumedFrom: 0,
      variant: 'dynamic',
      seed: 0,
      step: 8,
      images: 128,
      lr: 1e-3,
    });
    expect(test2.backend).toMatch(/tensorflow/);
    expect(test2.perClassAccuracy).toHaveLength(10);
    expect(rows.find((r) => r.epoch === 1 && r.split === 'train')!.images).toBe(256);
    const steps = readStepRows({ runsDir, runs: ['x'] });
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(steps.every((s) => Number.isFinite(s.loss) && s.images === 64)).toBe(true);

    const last = readCheckpointMeta(path.join(dir, 'last.safetensors'));
    expect(last).toMatchObject({
      kind: 'last',
      epoch: 2,
      step: 8,
      bestEpoch: firstRun.bestEpoch,
      bestAccuracy: firstRun.bestAccuracy,
    });
    expect(readCheckpointMeta(path.join(dir, 'best.safetensors')).epoch).toBe(firstRun.bestEpoch);
  });

  it('same seed gives the same first epoch; resuming after epoch 1 reproduces epoch 2 exactly; other runs untouched', async () => {
    const x = fileDigests(path.join(runsDir, 'x'));
    const one = await train(small('y', { epochs: 1 }), { runsDir, data });
    expect(one).toMatchObject({ status: 'trained', epoch: 1 });
    const xRows = readRunEpochs(path.join(runsDir, 'x'));
    expect(epochOf(readRunEpochs(path.join(runsDir, 'y')), 1)).toEqual(epochOf(xRows, 1));

    const resumed = await train(small('y'), { runsDir, data });
    expect(resumed).toMatchObject({ status: 'trained', startEpoch: 1, epoch: 2 });
    const yRows = readRunEpochs(path.join(runsDir, 'y'));
    expect(yRows.map((r) => `${r.epoch}:${r.session}:${r.resumedFrom}`)).toEqual(['1:1:0', '1:1:0', '2:2:1', '2:2:1']);
    expect(epochOf(yRows, 2)).toEqual(epochOf(xRows, 2));
    expect(fileDigests(path.join(runsDir, 'x'))).toEqual(x);
  });

  it('rerunning a finished run evaluates its best checkpoint; evalOnly evaluates; neither writes', async () => {
    const x = fileDigests(runsDir);
    const again = await train(small('x'), { runsDir, data });
    expect(again).toMatchObject({ status: 'complete', epoch: firstRun.bestEpoch, history: [] });
    expect(again.test.accuracy).toBe(firstRun.bestAccuracy);
    const last = await train(small('x'), { runsDir, data, evalOnly: true, resume: 'last' });
    expect(last).toMatchObject({ status: 'evaluated', epoch: 2 });
    expect(last.test.accuracy).toBe(firstRun.history[1].test.accuracy);
    expect(fileDigests(runsDir)).toEqual(x);
    await expect(train(small('nothing'), { runsDir, data, evalOnly: true })).rejects.toThrow(
      /has no checkpoint to evaluate/,
    );
  });

  it('a NaN/Inf loss stops the run with a clear error and keeps every saved file', async () => {
    const before = fileDigests(runsDir);
    const err = await train(small('y', { epochs: 3, lr: 1e30 }), { runsDir, data }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(DivergedError);
    // It resumes from the best checkpoint (epoch 1 or 2 of this tiny run, depending on the numbers), so it diverges in epoch 2 or 3.
    expect((err as Error).message).toMatch(
      /training diverged: the (loss became (NaN|-?Infinity)|gradients became NaN or infinite) in epoch [23] .*lr 1e\+30.*best checkpoint \(epoch \d.*is kept/s,
    );
    expect(fileDigests(runsDir)).toEqual(before);
  });

  it('refuses corrupt checkpoints, other settings and a live lock, changing nothing', async () => {
    fs.cpSync(path.join(runsDir, 'y'), path.join(runsDir, 'z'), { recursive: true });
    const best = path.join(runsDir, 'z', 'best.safetensors');
    const bytes = fs.readFileSync(best);
    fs.writeFileSync(best, bytes.subarray(0, bytes.length / 2));
    const before = fileDigests(runsDir);
    await expect(train(small('z', { epochs: 3 }), { runsDir, data })).rejects.toThrow(
      /checkpoint .*z\/best.safetensors is damaged.*Nothing was changed/s,
    );
    await expect(train(small('y', { epochs: 3, variant: 'static' }), { runsDir, data })).rejects.toThrow(
      /variant: the run has "dynamic", asked for "static"/,
    );
    await expect(train(small('y', { epochs: 3, norm: 'imagenet', seed: 4 }), { runsDir, data })).rejects.toThrow(
      /seed: the run has 0, asked for 4.*norm/s,
    );
    fs.writeFileSync(path.join(runsDir, '.y.lock'), String(process.ppid));
    await expect(train(small('y', { epochs: 3 }), { runsDir, data })).rejects.toThrow(
      /run 'y' is being trained by process/,
    );
    fs.rmSync(path.join(runsDir, '.y.lock'));
    expect(fileDigests(runsDir)).toEqual(before);
  });

  it('fresh keeps the old run intact until the new one has saved its first epoch', async () => {
    const dir = path.join(runsDir, 'x');
    const old = fileDigests(dir);
    // A fresh start that fails leaves the old run as it was.
    await expect(train(small('x', { lr: 1e30 }), { runsDir, data, fresh: true })).rejects.toThrow(DivergedError);
    expect(fileDigests(dir)).toEqual(old);

    let seenDuringTraining: Record<string, string> | undefined;
    const res = await train(small('x', { epochs: 1, seed: 9 }), {
      runsDir,
      data,
      fresh: true,
      onProgress: (e) => {
        if (e.type === 'step' && e.batch === 2) seenDuringTraining = fileDigests(dir);
      },
    });
    expect(seenDuringTraining).toEqual(old);
    expect(res).toMatchObject({ status: 'trained', startEpoch: 0, epoch: 1 });
    expect(readRunEpochs(dir).map((r) => `${r.epoch}:${r.session}:${r.seed}`)).toEqual(['1:1:9', '1:1:9']);
    expect(readCheckpoint(path.join(dir, 'last.safetensors')).meta.config.seed).toBe(9);
    expect(fs.readdirSync(runsDir).filter((n) => n.startsWith('.x'))).toEqual([]);
  });

  it('validation split, augmentation, cosine schedule, label smoothing, keep-bn and selection by val', async () => {
    const cfg = small('w', {
      epochs: 1,
      val: 64,
      augment: true,
      schedule: 'cosine',
      labelSmoothing: 0.1,
      freeze: 'keep-bn',
      selectBy: 'val',
    });
    const res = await train(cfg, { runsDir, data });
    expect(res.val?.images).toBe(64);
    const rows = readRunEpochs(path.join(runsDir, 'w'));
    expect(rows.map((r) => `${r.split}:${r.images}`)).toEqual(['test:128', 'train:192', 'val:64']);
    const steps = readStepRows({ runsDir, runs: ['w'] });
    // Cosine over 3 steps: lr · (1 + cos(π·t/3)) / 2 for t = 0, 1, 2.
    expect(steps.map((s) => s.lr)).toEqual([0, 1, 2].map((t) => (1e-3 * (1 + Math.cos((Math.PI * t) / 3))) / 2));
    const ckpt = readCheckpoint(path.join(runsDir, 'w', 'best.safetensors'));
    expect(ckpt.meta.accuracy).toBe(res.val!.accuracy);
    expect(Object.keys(ckpt.adam)).toContain('backbone.bn1.weight.exp_avg');
    expect(Object.keys(ckpt.adam)).not.toContain('backbone.conv1.weight.exp_avg');
    expect(PATHS.runs).not.toBe(runsDir); // the tests never touch the project's results/runs
  });
});
