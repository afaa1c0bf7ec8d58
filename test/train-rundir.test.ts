// Run folders: interrupted --fresh restarts, stale temporary files, locks, saved configs (lib/train/run).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { beforeEach, describe, expect, it } from 'vitest';
import { RunDir } from '../lib/train/run';
import { configConflicts, trainConfig, validateConfig } from '../lib/train/train-config';
import { learningRate } from '../lib/train/adam';

let runsDir: string;
beforeEach(() => {
  runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rundir-'));
});

const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

function fill(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
}

const list = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

describe('RunDir', () => {
  it('discards a fresh restart that never saved an epoch, keeping the old run', () => {
    const store = new RunDir(runsDir, 'a');
    fill(store.dir, { 'best.safetensors': 'old', 'last.safetensors': 'old' });
    fill(store.staging, { 'metrics/epochs-e0001-s001.parquet': 'new' });
    expect(store.recover()).toMatch(/saved no epoch: discarded it/);
    expect(list(runsDir)).toEqual(['a']);
    expect(fs.readFileSync(store.checkpoint('best'), 'utf8')).toBe('old');
  });

  it('completes a fresh restart interrupted between its renames', () => {
    const store = new RunDir(runsDir, 'a');
    // The crash came after the old run was moved aside and before the staged one moved in.
    fill(path.join(runsDir, `.a.old-${deadPid()}`), { 'best.safetensors': 'old' });
    fill(store.staging, { 'best.safetensors': 'new', 'last.safetensors': 'new', 'config.json': '{}' });
    fill(path.join(runsDir, 'b'), { 'best.safetensors': 'other run' });
    expect(store.recover()).toMatch(/saved its first epoch: finished it/);
    expect(list(runsDir)).toEqual(['a', 'b']);
    expect(fs.readFileSync(store.checkpoint('last'), 'utf8')).toBe('new');
    expect(fs.readFileSync(path.join(runsDir, 'b', 'best.safetensors'), 'utf8')).toBe('other run');
  });

  it('removes temporary files of dead processes only', () => {
    const store = new RunDir(runsDir, 'a');
    const dead = deadPid();
    fill(store.dir, {
      [`best.safetensors.${dead}.tmp`]: 'half',
      [`metrics/.epochs-e0002-s001.parquet.${dead}.tmp`]: 'half',
      [`last.safetensors.${process.ppid}.tmp`]: 'being written by a live process',
      'last.safetensors': 'ok',
    });
    expect(store.recover()).toBeUndefined();
    expect(list(store.dir)).toEqual(['last.safetensors', `last.safetensors.${process.ppid}.tmp`, 'metrics']);
    expect(list(path.join(store.dir, 'metrics'))).toEqual([]);
  });

  it('locks a run against a second live trainer, and says who trains it', async () => {
    const store = new RunDir(runsDir, 'a');
    expect(await store.takeLock()).toEqual([]);
    const lock = JSON.parse(fs.readFileSync(path.join(runsDir, '.a.lock'), 'utf8'));
    expect(lock).toMatchObject({ host: os.hostname(), pid: process.pid });
    expect(store.lockedBy()).toBeUndefined(); // this process: not another trainer
    store.releaseLock();
    expect(list(runsDir)).toEqual([]);
    fs.writeFileSync(path.join(runsDir, '.a.lock'), String(process.ppid)); // a lock of the earlier format: a bare pid
    expect(store.lockedBy()).toBe(`process ${process.ppid}`);
    await expect(store.takeLock()).rejects.toThrow(new RegExp(`run 'a' is being trained by process ${process.ppid}`));
    store.releaseLock(); // not ours: stays
    expect(list(runsDir)).toEqual(['.a.lock']);
    await expect(new RunDir(runsDir, 'a').takeLock()).rejects.toThrow(/being trained/);
    const b = new RunDir(runsDir, 'b');
    await b.takeLock(); // another run's lock is independent
    b.releaseLock();
  });

  it('rejects run names that would leave the runs folder or hide it', () => {
    for (const bad of ['../x', 'a/b', '.hidden', '', 'x y'])
      expect(() => new RunDir(runsDir, bad)).toThrow(/run name must be/);
  });

  it('reads back the config it writes, and names a broken one', () => {
    const store = new RunDir(runsDir, 'a');
    expect(store.readConfig()).toBeUndefined();
    const cfg = trainConfig({ run: 'a', epochs: 3, augment: true });
    store.writeConfig(cfg);
    expect(store.readConfig()).toEqual(cfg);
    fs.writeFileSync(store.configFile(), '{"run": "a"');
    expect(() => store.readConfig()).toThrow(/config.json is not valid JSON/);
  });
});

describe('TrainConfig', () => {
  it('defaults to the lab recipe and names every bad field', () => {
    expect(trainConfig({ run: 'r' })).toMatchObject({
      variant: 'dynamic',
      epochs: 5,
      batchSize: 64,
      lr: 1e-3,
      norm: 'half',
      augment: false,
      freeze: 'none',
      pretrained: true,
    });
    expect(() =>
      validateConfig({ ...trainConfig({ run: 'r' }), epochs: 0, lr: -1, norm: 'x', selectBy: 'val', extra: 1 }),
    ).toThrow(
      /epochs must be a whole number ≥ 1; got 0\n.*lr must be a number > 0; got -1\n.*norm must be one of half, imagenet; got "x"\n.*selectBy val needs a validation split \(val > 0\)\n.*unknown field\(s\) extra/s,
    );
  });

  it('lets a resume change only epochs, lr, logEvery and evalBatchSize', () => {
    const a = trainConfig({ run: 'r' });
    expect(configConflicts(a, { ...a, epochs: 9, lr: 1e-4, logEvery: 1, evalBatchSize: 100 })).toEqual([]);
    expect(configConflicts(a, { ...a, augment: true, seed: 2 })).toEqual([
      'seed: the run has 0, asked for 2',
      'augment: the run has false, asked for true',
    ]);
  });

  it('computes constant and cosine learning rates', () => {
    expect(learningRate({ lr: 0.1, schedule: 'constant' }, 50, 100)).toBe(0.1);
    expect(learningRate({ lr: 0.1, schedule: 'cosine' }, 0, 100)).toBe(0.1);
    expect(learningRate({ lr: 0.1, schedule: 'cosine' }, 50, 100)).toBeCloseTo(0.05, 12);
    expect(learningRate({ lr: 0.1, schedule: 'cosine' }, 100, 100)).toBeCloseTo(0, 12);
  });
});
