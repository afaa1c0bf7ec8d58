// The run store repairs or refuses what a crash or a hand edit leaves, never passes it over
// (issue #24): a crash between the best and last saves, a deleted best, a deleted metrics part,
// another run's checkpoint, the interrupt line after resuming from best, a path of the wrong kind
// and a full disk. Real training on small slices (256 train / 128 test images, four steps an
// epoch) where the state comes from a crash; run folders written by the real writers otherwise.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCifar10, type Cifar10Split } from '../lib/data/cifar10';
import { runExperiments, type Experiment } from '../lib/experiments/experiments';
import { createNet, type Net } from '../lib/model/model';
import { Adam } from '../lib/train/adam';
import { readCheckpointMeta, saveCheckpoint } from '../lib/train/checkpoint';
import type { TrainEvent } from '../lib/train/events';
import { TrainingInterrupted } from '../lib/train/interrupt';
import { appendEpoch, readRunEpochs, type EpochRow } from '../lib/train/metrics';
import { formatResult } from '../lib/train/progress';
import { openRun, RunDir, type SavedEpoch } from '../lib/train/run';
import { train } from '../lib/train/train';
import { trainConfig, type TrainConfig } from '../lib/train/train-config';
import { fileDigests } from './helpers/files';

let runsDir: string;
let data: { train: Cifar10Split; test: Cifar10Split };
let net: Net;
let adam: Adam;
beforeAll(() => {
  runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'run-repair-'));
  data = { train: loadCifar10('train', { limit: 256 }), test: loadCifar10('test', { limit: 128 }) };
  net = createNet('static', { seed: 0, pretrained: false }); // its state is what the synthetic checkpoints hold
  adam = new Adam(net.trainable(), { lr: 1e-3 });
});
afterAll(() => {
  adam.dispose();
  net.dispose();
  fs.rmSync(runsDir, { recursive: true, force: true });
});

const small = (run: string, over: Partial<TrainConfig> = {}) =>
  trainConfig({
    run,
    variant: 'static',
    epochs: 2,
    batchSize: 64,
    limitTrain: 256,
    limitTest: 128,
    logEvery: 1,
    ...over,
  });
const ckpt = (run: string, kind: 'best' | 'last') => path.join(runsDir, run, `${kind}.safetensors`);
const epochsOf = (run: string) =>
  readRunEpochs(path.join(runsDir, run)).map((r) => `${r.epoch}:${r.split}:${r.session}`);
const open = (config: TrainConfig, over: { resume?: 'best' | 'last'; evalOnly?: boolean } = {}) =>
  openRun(config, { runsDir, backend: 'test', ...over });

/**
 * A run folder as a session of training leaves it, written by the real writers: epochs
 * 1..acc.length of metrics (test accuracy acc[e-1]), `last` of the latest epoch and `best` of the
 * best one, with the metadata training gives them.
 */
function writeRun(config: TrainConfig, acc: number[]): void {
  const dir = path.join(runsDir, config.run);
  const row = (epoch: number, split: 'train' | 'test'): EpochRow => ({
    run: config.run,
    session: 1,
    resumedFrom: 0,
    variant: config.variant,
    seed: config.seed,
    backend: 'test',
    epoch,
    split,
    step: epoch * 4,
    images: 128,
    loss: 1,
    accuracy: acc[epoch - 1],
    perClassAccuracy: Array(10).fill(0.5),
    lr: 1e-3,
    imagesPerSecond: 1,
    wallSeconds: 1,
    time: new Date(),
  });
  for (let e = 1; e <= acc.length; e++) appendEpoch(dir, [row(e, 'test'), row(e, 'train')], []);
  new RunDir(runsDir, config.run).writeConfig(config);
  const bestEpoch = acc.indexOf(Math.max(...acc)) + 1;
  const meta = (epoch: number) => ({
    epoch,
    accuracy: acc[epoch - 1],
    bestAccuracy: acc[bestEpoch - 1],
    bestEpoch,
    session: 1,
    config: { ...config },
    backend: 'test',
  });
  saveCheckpoint(ckpt(config.run, 'best'), net, adam, { ...meta(bestEpoch), kind: 'best' });
  saveCheckpoint(ckpt(config.run, 'last'), net, adam, { ...meta(acc.length), kind: 'last' });
}

/** train()'s progress, crashing the process-to-be (as a power cut would) after the best save of `epoch`. */
const crashAfterBest =
  (epoch: number, events: TrainEvent[] = []) =>
  (e: TrainEvent) => {
    events.push(e);
    if (e.type === 'checkpoint' && e.kind === 'best' && e.epoch === epoch) throw new Error('power cut');
  };
const notesOf = (events: TrainEvent[]) =>
  (events.find((e) => e.type === 'start') as Extract<TrainEvent, { type: 'start' }> | undefined)?.notes;

describe('a crash between the best and last saves', () => {
  it('of a first epoch (no last yet): npm run experiments resumes, last rewritten from best', async () => {
    const e: Experiment = {
      name: 'first',
      arm: 'first',
      group: 'compare',
      purpose: 'test',
      relativeEpochCost: 1,
      config: small('first'),
    };
    await expect(train(e.config, { runsDir, data, onProgress: crashAfterBest(1) })).rejects.toThrow('power cut');
    expect(fs.existsSync(ckpt('first', 'last'))).toBe(false);
    expect(readCheckpointMeta(ckpt('first', 'best')).epoch).toBe(1);

    // The runner finds the run partial (it has no --resume) and continues it from best; last is repaired too.
    const events: TrainEvent[] = [];
    const [outcome] = await runExperiments({
      experiments: [e],
      runsDir,
      data,
      onEvent: (x) => x.type === 'train' && events.push(x.event),
    });
    expect(outcome.error).toBeUndefined();
    expect(outcome).toMatchObject({ result: 'trained', status: { state: 'done', epochsDone: 2 } });
    expect(notesOf(events)).toEqual([
      'last.safetensors was missing (best: epoch 1), as a crash between the two saves of an epoch leaves it: ' +
        'rewritten from best',
    ]);
    expect(events.find((x) => x.type === 'start')).toMatchObject({ startEpoch: 1, resumedFrom: 'best' });
    expect(epochsOf('first')).toEqual(['1:test:1', '1:train:1', '2:test:2', '2:train:2']);
  });

  it('of the final epoch: the rerun finds the run finished and brings last up to best', async () => {
    // Which epoch is best depends on the numbers: with seed 1 this slice improves in epoch 2 (checked).
    const final = small('final', { seed: 1 });
    const events: TrainEvent[] = [];
    await expect(train(final, { runsDir, data, onProgress: crashAfterBest(2, events) })).rejects.toThrow('power cut');
    expect(
      events.some((e) => e.type === 'checkpoint' && e.kind === 'best' && e.epoch === 2),
      'this slice must improve in epoch 2',
    ).toBe(true);
    expect(readCheckpointMeta(ckpt('final', 'last')).epoch).toBe(1);

    const evaluated = await train(final, { runsDir, data, evalOnly: true, resume: 'last' });
    expect(evaluated).toMatchObject({ status: 'evaluated', epoch: 2 }); // read from best; nothing written
    expect(readCheckpointMeta(ckpt('final', 'last')).epoch).toBe(1);

    const again = await train(final, { runsDir, data });
    expect(again).toMatchObject({ status: 'complete', epoch: 2 });
    const [said, note] = formatResult(again).split('\n  note: ');
    expect(said).toMatch(/^run final had already finished 2 of 2 epochs: /);
    expect(note).toBe(
      'last.safetensors was at epoch 1, behind best (epoch 2), ' +
        'as a crash between the two saves of an epoch leaves it: rewritten from best',
    );
    expect(readCheckpointMeta(ckpt('final', 'last'))).toMatchObject({ kind: 'last', epoch: 2, bestEpoch: 2 });
    expect(readCheckpointMeta(ckpt('final', 'best'))).toMatchObject({ kind: 'best', epoch: 2 });
    const rerun = await train(final, { runsDir, data, resume: 'last' });
    expect(rerun).toMatchObject({ status: 'complete', startEpoch: 2 });
  });
});

describe('a deleted best.safetensors', () => {
  it('is rewritten from last when last is the best epoch, and the run resumes from it', async () => {
    writeRun(small('best-is-last', { epochs: 3 }), [0.3, 0.4]);
    fs.rmSync(ckpt('best-is-last', 'best'));
    const run = await open(small('best-is-last', { epochs: 3 }));
    run.close();
    expect(run.notes).toEqual(['best.safetensors was missing; last (epoch 2) is the best epoch: rewritten from it']);
    expect(run.start).toMatchObject({ kind: 'best', complete: false });
    expect(readCheckpointMeta(ckpt('best-is-last', 'best'))).toMatchObject({
      kind: 'best',
      epoch: 2,
      bestEpoch: 2,
      accuracy: 0.4,
    });
  });

  it('is refused, with the fix, when the best epoch was an earlier one: no stale best number', async () => {
    writeRun(small('best-lost', { epochs: 4 }), [0.3, 0.5, 0.4]);
    fs.rmSync(ckpt('best-lost', 'best'));
    const before = fileDigests(runsDir);
    for (const resume of [undefined, 'last'] as const) {
      await expect(train(small('best-lost', { epochs: 4 }), { runsDir, data, resume })).rejects.toThrow(
        "run 'best-lost' has no best.safetensors (deleted?), and its last checkpoint (epoch 3) records the best as " +
          'epoch 2 (50.00%), whose weights are gone. Nothing was changed. Put best.safetensors back, ' +
          'or start over with ' +
          `npm run train -- --run best-lost --runs-dir ${runsDir} --fresh ` +
          `(a run of npm run experiments: delete ${path.join(runsDir, 'best-lost')}, then rerun them).`,
      );
    }
    expect(fileDigests(runsDir)).toEqual(before);
    // A best that is not the one last records (an older copy put back) is refused too.
    writeRun(small('best-old', { epochs: 4 }), [0.3, 0.5, 0.4]);
    saveCheckpoint(ckpt('best-old', 'best'), net, adam, {
      kind: 'best',
      epoch: 1,
      accuracy: 0.3,
      bestAccuracy: 0.3,
      bestEpoch: 1,
      session: 1,
      config: { ...small('best-old', { epochs: 4 }) },
      backend: 'test',
    });
    await expect(open(small('best-old', { epochs: 4 }))).rejects.toThrow(
      "run 'best-old': best.safetensors (epoch 1, 30.00%) is not the best that last.safetensors records " +
        '(epoch 2, 50.00%): replaced or copied by hand? Nothing was changed.',
    );
  });
});

describe('a deleted metrics part (epochs 1, 2, 4)', () => {
  const gap = (run: string) => fs.rmSync(path.join(runsDir, run, 'metrics', 'epochs-e0003-s001.parquet'));

  it('is trained again from the best checkpoint before it, and said', async () => {
    writeRun(small('gap', { epochs: 4 }), [0.3, 0.5, 0.4, 0.45]);
    gap('gap');
    expect(epochsOf('gap')).toEqual(['1:test:1', '1:train:1', '2:test:1', '2:train:1', '4:test:1', '4:train:1']);
    const events: TrainEvent[] = [];
    // The hook for derived views of the metrics (TensorBoard) sees each epoch once it is saved.
    const views: string[] = [];
    const onEpochSaved = (e: SavedEpoch) =>
      views.push(`${e.epoch}:${e.rows.length}:${readCheckpointMeta(path.join(e.dir, 'last.safetensors')).epoch}`);
    const r = await train(small('gap', { epochs: 4 }), {
      runsDir,
      data,
      onProgress: (e) => events.push(e),
      onEpochSaved,
    });
    expect(r).toMatchObject({ status: 'trained', startEpoch: 2, epoch: 4 });
    expect(views).toEqual(['3:2:3', '4:2:4']);
    expect(notesOf(events)).toEqual([
      'the metrics of epoch 3 were missing (a deleted part?): resuming from epoch 2 trains them again',
    ]);
    expect(epochsOf('gap')).toEqual(
      [1, 2]
        .flatMap((e) => [`${e}:test:1`, `${e}:train:1`])
        .concat([3, 4].flatMap((e) => [`${e}:test:2`, `${e}:train:2`])),
    );
  });

  it('is refused, naming the epoch and the fix, when no checkpoint is from before it', async () => {
    writeRun(small('gap-late', { epochs: 5 }), [0.3, 0.4, 0.45, 0.5]);
    gap('gap-late');
    await expect(open(small('gap-late', { epochs: 5 }))).rejects.toThrow(
      "run 'gap-late': the metrics of epoch 3 are missing (a deleted metrics part?), and both checkpoints are " +
        'from epoch 3 or later: resuming would leave epoch 3 without its rows. Nothing was changed. ' +
        'Put the part back, or start over with',
    );
    // Asked for last when best is before the gap: the other checkpoint is named, with its command.
    writeRun(small('gap-last', { epochs: 5 }), [0.3, 0.5, 0.45, 0.4]);
    gap('gap-last');
    await expect(open(small('gap-last', { epochs: 5 }), { resume: 'last' })).rejects.toThrow(
      'its last checkpoint is from epoch 3 or later: resuming would leave epoch 3 without its rows. ' +
        'Nothing was changed. ' +
        `Resume from the other checkpoint (npm run train -- --run gap-last --runs-dir ${runsDir} --resume best), ` +
        'or start over',
    );
  });
});

it("another run's checkpoint copied into a run is refused", async () => {
  writeRun(small('mine'), [0.3, 0.4]);
  writeRun(small('theirs'), [0.3, 0.4]);
  fs.copyFileSync(ckpt('theirs', 'last'), ckpt('mine', 'last'));
  await expect(open(small('mine'))).rejects.toThrow(
    `${ckpt('mine', 'last')} is a checkpoint of run 'theirs', not of 'mine' (copied from another run?). ` +
      'Nothing was changed.',
  );
});

it('the interrupt line after resuming from best names the last checkpoint on disk', async () => {
  writeRun(small('int-best', { epochs: 4 }), [0.3, 0.5, 0.4]); // best: epoch 2; last: epoch 3
  const err = await train(small('int-best', { epochs: 4 }), {
    runsDir,
    data,
    onProgress: (e) => e.type === 'step' && e.epoch === 3 && e.batch === 1 && process.kill(process.pid, 'SIGINT'),
  }).catch((e: Error) => e);
  expect(err).toBeInstanceOf(TrainingInterrupted);
  const [where, saved] = (err as Error).message.split(': epoch 3 was not saved. ');
  expect(where).toMatch(/^run int-best interrupted \(SIGINT\) in epoch 3\/4 at batch [1-4]\/4, step \d+$/);
  expect(saved).toBe(
    `Saved: epochs 1–3 (last checkpoint: epoch 3; best: epoch 2, 50.00%) in ${path.join(runsDir, 'int-best')}. ` +
      "Rerun to resume from the best checkpoint (resume 'last' / --resume last: from epoch 3).",
  );
});

describe('paths of the wrong kind, and a full disk, are refused before training, naming the path', () => {
  it('a folder where a checkpoint belongs (EISDIR), a file where a folder belongs (EEXIST, ENOTDIR)', async () => {
    writeRun(small('kinds'), [0.3, 0.4]);
    fs.rmSync(ckpt('kinds', 'best'));
    fs.mkdirSync(ckpt('kinds', 'best'));
    await expect(train(small('kinds'), { runsDir, data })).rejects.toThrow(
      `${ckpt('kinds', 'best')} is a folder, where run 'kinds' keeps a file: move it away. Nothing was changed.`,
    );
    fs.writeFileSync(path.join(runsDir, 'plain'), 'a file');
    await expect(train(small('plain'), { runsDir, data })).rejects.toThrow(
      `${path.join(runsDir, 'plain')} is a file, where run 'plain' needs a folder: move it away, ` +
        'or use another --runs-dir. Nothing was changed.',
    );
    fs.mkdirSync(path.join(runsDir, 'nometrics'));
    fs.writeFileSync(path.join(runsDir, 'nometrics', 'metrics'), '');
    await expect(train(small('nometrics'), { runsDir, data })).rejects.toThrow(
      /nometrics\/metrics is a file, where run 'nometrics' needs a folder/,
    );
    const below = path.join(runsDir, 'plain', 'runs');
    await expect(train(small('x'), { runsDir: below, data })).rejects.toThrow(
      `${path.join(runsDir, 'plain')} is a file, where run 'x' needs a folder`,
    );
  });

  it.skipIf(!fs.existsSync('/dev/full'))(
    'a full disk (ENOSPC at the first write: /dev/full in place of the lock file)',
    async () => {
      const full = fs.mkdtempSync(path.join(os.tmpdir(), 'run-full-'));
      // Writing the lock's temporary file fails there as on a full disk.
      fs.symlinkSync('/dev/full', path.join(full, `.f.lock.${process.pid}.tmp`));
      await expect(train(small('f'), { runsDir: full, data })).rejects.toThrow(
        `cannot write to ${full} (ENOSPC): run 'f' could not save its epochs. Nothing was trained. ` +
          'The disk is full: free some space, or train into another folder with --runs-dir.',
      );
      fs.rmSync(full, { recursive: true, force: true });
    },
  );
});
