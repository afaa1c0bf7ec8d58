// Interrupting and rerunning training (issue #14): SIGINT stops train() at a step boundary with
// one line saying what is saved; a rerun resumes and reproduces the uninterrupted run; one
// training per run at a time; and the probe's findings: a --fresh killed between its renames, a
// read-only run folder, a damaged last metrics block. Small real slices: 256 train / 128 test
// images, batches of 64 (four steps an epoch).
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpointMeta } from '../lib/train/checkpoint';
import { loadCifar10, type Cifar10Split } from '../lib/data/cifar10';
import { PROJECT_ROOT } from '../lib/config';
import { readRunEpochs, type EpochRow } from '../lib/train/metrics';
import { formatEpochLine, notebookProgress } from '../lib/train/progress';
import { train } from '../lib/train/train';
import { TrainingInterrupted } from '../lib/train/interrupt';
import { RunLockedError } from '../lib/train/run-lock';
import type { TrainEvent } from '../lib/train/events';
import { resolveTrainConfig } from '../lib/train/train-cli';
import { trainConfig, type TrainConfig } from '../lib/train/train-config';

let runsDir: string;
let data: { train: Cifar10Split; test: Cifar10Split };
beforeAll(() => {
  runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'interrupt-'));
  data = { train: loadCifar10('train', { limit: 256 }), test: loadCifar10('test', { limit: 128 }) };
});

const small = (run: string, over: Partial<TrainConfig> = {}) =>
  trainConfig({ run, epochs: 3, batchSize: 64, limitTrain: 256, limitTest: 128, logEvery: 1, ...over });
/** Everything of an epoch row except timing and bookkeeping columns. */
const numbers = (r: EpochRow) => ({
  epoch: r.epoch,
  split: r.split,
  step: r.step,
  loss: r.loss,
  accuracy: r.accuracy,
  perClassAccuracy: r.perClassAccuracy,
});
const epochsOf = (rows: EpochRow[]) => rows.map((r) => `${r.epoch}:${r.split}`);
const ONCE = (n: number) => Array.from({ length: n }, (_, i) => [`${i + 1}:test`, `${i + 1}:train`]).flat();
const metricsFiles = (dir: string) => fs.readdirSync(path.join(dir, 'metrics')).sort();

/** Sends this process SIGINT (as ■ / Ctrl-C would) at the given step of the given epoch. */
const interruptAt =
  (epoch: number, batch: number, events: TrainEvent[] = []) =>
  (e: TrainEvent) => {
    events.push(e);
    if (e.type === 'step' && e.epoch === epoch && e.batch === batch) process.kill(process.pid, 'SIGINT');
  };

describe('interrupt and rerun', () => {
  let reference: EpochRow[];

  it('an uninterrupted reference run of 3 epochs', async () => {
    await train(small('ref'), { runsDir, data });
    reference = readRunEpochs(path.join(runsDir, 'ref'));
    expect(epochsOf(reference)).toEqual(ONCE(3));
  });

  it('SIGINT stops at the next step with one line; no listener or lock outlives the call; a rerun resumes and matches the reference', async () => {
    const listeners = process.listenerCount('SIGINT');
    const exitListeners = process.listenerCount('exit');
    const events: TrainEvent[] = [];
    const err = await train(small('int'), { runsDir, data, onProgress: interruptAt(2, 1, events) }).catch(
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(TrainingInterrupted);
    const message = (err as Error).message;
    expect(message).toMatch(
      /^run int interrupted \(SIGINT\) in epoch 2\/3 at batch [1-4]\/4, step [5-8]: epoch 2 was not saved\. Saved: epochs 1–1 \(last checkpoint: epoch 1; best: epoch 1, \d+\.\d\d%\)/,
    );
    expect(message).toMatch(/Rerun to resume from the best checkpoint/);
    expect(events.filter((e) => e.type === 'interrupted')).toEqual([
      { type: 'interrupted', message, epoch: 2, step: (err as TrainingInterrupted).step },
    ]);
    // Stopped within a step or two of the signal, not at the end of the epoch.
    expect(events.filter((e) => e.type === 'step' && e.epoch === 2).length).toBeLessThan(4);
    expect(process.listenerCount('SIGINT')).toBe(listeners);
    expect(process.listenerCount('exit')).toBe(exitListeners);
    expect(fs.existsSync(path.join(runsDir, '.int.lock'))).toBe(false);
    const dir = path.join(runsDir, 'int');
    expect(metricsFiles(dir)).toEqual(['epochs-e0001-s001.parquet', 'steps-e0001-s001.parquet']);
    expect(readCheckpointMeta(path.join(dir, 'last.safetensors')).epoch).toBe(1);

    // Rerun from the epoch where it stopped: epochs 2 and 3 equal the uninterrupted run's.
    const resumed = await train(small('int'), { runsDir, data, resume: 'last' });
    expect(resumed).toMatchObject({ status: 'trained', startEpoch: 1, epoch: 3 });
    const rows = readRunEpochs(dir);
    expect(epochsOf(rows)).toEqual(ONCE(3));
    expect(rows.map(numbers)).toEqual(reference.map(numbers));
  });

  it('a second train() of a run that is training, in the same process, is refused and starts no loop', async () => {
    const second: TrainEvent[] = [];
    let refusal: unknown;
    const first = train(small('twice', { epochs: 2 }), {
      runsDir,
      data,
      onProgress: (e) => {
        if (e.type === 'step' && e.epoch === 1 && e.batch === 2 && !refusal) {
          refusal = 'pending';
          train(small('twice', { epochs: 2 }), { runsDir, data, onProgress: (x) => second.push(x) }).then(
            () => (refusal = 'started'),
            (err: Error) => (refusal = err),
          );
        }
      },
    });
    await expect(first).resolves.toMatchObject({ status: 'trained', epoch: 2 });
    expect(refusal).toBeInstanceOf(RunLockedError);
    expect((refusal as Error).message).toMatch(
      new RegExp(
        `run 'twice' is already being trained in this process \\(pid ${process.pid}, since .+\\): a second training would run next to it`,
      ),
    );
    expect(second).toEqual([]);
    expect(epochsOf(readRunEpochs(path.join(runsDir, 'twice')))).toEqual(ONCE(2));
  });
});

describe('the SIGINT listener and tslab', () => {
  it("is added only after the caller's synchronous code has returned (outside tslab's breakOnSigint window)", async () => {
    const before = process.listenerCount('SIGINT');
    let during: number | undefined;
    const pending = train(small('listener', { epochs: 1 }), {
      runsDir,
      data,
      onProgress: (e) => (during ??= e.type === 'start' ? process.listenerCount('SIGINT') : undefined),
    });
    // A cell's code runs inside vm.runInThisContext({ breakOnSigint: true }): a listener added
    // here would lose its native handler when the cell's synchronous part returns (■ killed the kernel).
    expect(process.listenerCount('SIGINT')).toBe(before);
    await pending;
    expect(during).toBe(before + 1);
    expect(process.listenerCount('SIGINT')).toBe(before);
  });
});

describe('probe findings', () => {
  it('a --fresh killed between its renames (or before them) is finished on the next run, with a note, and no seed conflict', async () => {
    // Old run: seed 0. A --fresh with seed 1 saved its first epoch, then was killed.
    await train(small('f', { epochs: 1 }), { runsDir, data });
    const staged = fs.mkdtempSync(path.join(os.tmpdir(), 'staged-'));
    await train(small('f', { epochs: 1, seed: 1 }), { runsDir: staged, data });
    const old = path.join(runsDir, 'f');
    const deadPid = spawnSync(process.execPath, ['-e', '0']).pid!;
    fs.renameSync(old, path.join(runsDir, `.f.old-${deadPid}`)); // first rename done …
    fs.renameSync(path.join(staged, 'f'), path.join(runsDir, '.f.fresh')); // … the second not

    // What `npm run train -- --run f --epochs 1` does: the saved settings, then train().
    const config = resolveTrainConfig({
      run: 'f',
      given: { epochs: 1, limitTrain: 256, limitTest: 128 },
      fresh: false,
      runsDir,
    });
    expect(config.seed).toBe(1);
    const events: TrainEvent[] = [];
    const r = await train({ ...config, epochs: 2 }, { runsDir, data, onProgress: (e) => events.push(e) });
    expect(r).toMatchObject({ status: 'trained', startEpoch: 1, epoch: 2 });
    const start = events.find((e) => e.type === 'start') as Extract<TrainEvent, { type: 'start' }>;
    expect(start.notes).toEqual([
      'an interrupted --fresh restart had saved its first epoch: finished it, the restarted run replaced the old one',
    ]);
    expect(fs.readdirSync(runsDir).filter((n) => n.startsWith('.f'))).toEqual([]);
    expect(readRunEpochs(old).map((row) => row.seed)).toEqual([1, 1, 1, 1]);

    // Killed before the first rename: the old run still in place, the staged one complete.
    await train(small('g', { epochs: 1 }), { runsDir, data });
    await train(small('g', { epochs: 1, seed: 1 }), { runsDir: staged, data });
    fs.renameSync(path.join(staged, 'g'), path.join(runsDir, '.g.fresh'));
    const configG = resolveTrainConfig({ run: 'g', given: { epochs: 1 }, fresh: false, runsDir });
    expect(configG.seed).toBe(1);
    await expect(train(configG, { runsDir, data })).resolves.toMatchObject({ status: 'complete', epoch: 1 });
  });

  it('a read-only run folder is refused before any training', async (ctx) => {
    // As root the check runs the command line as user nobody, who must be able to reach the
    // project: a clone inside a folder only root may enter (/root, a 0700 mktemp folder) cannot say.
    const asRoot = process.getuid?.() === 0;
    if (
      asRoot &&
      spawnSync('test', ['-r', path.join(PROJECT_ROOT, 'package.json')], { uid: 65534, gid: 65534 }).status !== 0
    ) {
      ctx.skip(
        `user nobody cannot enter ${PROJECT_ROOT} (a parent folder is closed to others): cannot test a read-only folder as root here`,
      );
    }
    await train(small('ro', { epochs: 1 }), { runsDir, data });
    const dir = path.join(runsDir, 'ro');
    fs.chmodSync(runsDir, 0o777);
    // root may write anywhere: run the command line as user nobody, for whom the folder is read-only.
    for (const d of [dir, path.join(dir, 'metrics')]) fs.chmodSync(d, 0o555);
    const asNobody = asRoot ? { uid: 65534, gid: 65534 } : {};
    const child = spawnSync(
      path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx'),
      ['scripts/train.ts', '--run', 'ro', '--epochs', '2', '--runs-dir', runsDir, '--progress', 'lines'],
      {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
        timeout: 120_000,
        ...asNobody,
        env: { ...process.env, HOME: os.tmpdir() },
      },
    );
    expect(child.status, child.stderr).toBe(1);
    expect(child.stderr).toContain(
      `error: cannot write to ${dir} (EACCES): run 'ro' could not save its epochs. Nothing was trained.`,
    );
    expect(child.stderr).not.toMatch(/^epoch 2\/2/m);
    expect(metricsFiles(dir)).toEqual(['epochs-e0001-s001.parquet', 'steps-e0001-s001.parquet']);
  });

  it('a damaged last metrics block is set aside on a plain rerun, and its epoch retrained from an earlier checkpoint', async () => {
    await train(small('dmg', { epochs: 2 }), { runsDir, data });
    const dir = path.join(runsDir, 'dmg');
    const best = readCheckpointMeta(path.join(dir, 'best.safetensors')).epoch;
    const last = path.join(dir, 'metrics', 'epochs-e0002-s001.parquet');
    fs.truncateSync(last, 100); // a block cut short
    const r = await train(small('dmg', { epochs: 2 }), { runsDir, data });
    if (best === 1) {
      expect(r).toMatchObject({ status: 'trained', startEpoch: 1, epoch: 2 });
      expect(epochsOf(readRunEpochs(dir))).toEqual(ONCE(2));
      expect(fs.existsSync(`${last}.damaged`)).toBe(true);
    } else {
      throw new Error(`this slice's best epoch is ${best}: pick one whose best is epoch 1`);
    }
  });
});

describe('progress when headless', () => {
  it('notebookProgress prints one line per epoch and draws only at start and epoch ends', async () => {
    const printed: string[] = [];
    let draws = 0;
    const progress = notebookProgress(
      { html: () => draws++ },
      { lines: true, print: (l) => printed.push(l), minIntervalMs: 0 },
    );
    const r = await train(small('lines', { epochs: 2 }), { runsDir, data, onProgress: progress });
    expect(printed).toEqual(r.history.map((s) => formatEpochLine('lines', s)));
    expect(printed[0]).toMatch(/^lines epoch 1\/2 · test acc \d+\.\d\d% · \d+ img\/s · \d+:\d\d left$/);
    expect(printed[1]).toMatch(/^lines epoch 2\/2 · test acc \d+\.\d\d% · \d+ img\/s · done$/);
    expect(draws).toBe(3); // start, epoch 1, epoch 2
  });
});

describe('npm run train and Ctrl-C', () => {
  it('exits 130 with the line, keeps what was saved, and a rerun resumes', async () => {
    const args = [
      'scripts/train.ts',
      '--run',
      'cli',
      '--epochs',
      '2',
      '--limit-train',
      '512',
      '--limit-test',
      '128',
      '--log-every',
      '1',
      '--progress',
      'lines',
      '--runs-dir',
      runsDir,
    ];
    // As `npm run train` runs it (node with tsx as a loader: one process, no relaying parent that
    // would SIGKILL a child busy in a step), in its own process group, signalled as a terminal's
    // Ctrl-C signals the foreground group.
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
      cwd: PROJECT_ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    let sent = false; // one Ctrl-C (a second one, once training has stopped, ends the process as usual)
    child.stderr.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (!sent && /^epoch 2\/2 .* 1\/8 /m.test(log)) {
        sent = true;
        process.kill(-child.pid!, 'SIGINT');
      }
    });
    child.stdout.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, log).toBe(130);
    expect(log).toMatch(
      /^run cli interrupted \(SIGINT\) in epoch 2\/2 at batch \d\/8, step \d+: epoch 2 was not saved\. Saved: epochs 1–1/m,
    );
    const dir = path.join(runsDir, 'cli');
    expect(readCheckpointMeta(path.join(dir, 'last.safetensors')).epoch).toBe(1);
    expect(fs.existsSync(path.join(runsDir, '.cli.lock'))).toBe(false);

    const rerun = spawnSync(process.execPath, ['--import', 'tsx', ...args], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(rerun.status, rerun.stderr).toBe(0);
    expect(rerun.stderr).toMatch(/resuming from its best checkpoint \(epoch 1\), epochs 2–2/);
    expect(epochsOf(readRunEpochs(dir))).toEqual(ONCE(2));
  });
});
