// The experiment runner as a batch system drives it (issue #25): --count and --index N (the N-th
// experiment in --list's order, one run per array task), and interruption: SIGINT or SIGTERM stops
// the run in progress at its next step, keeps what it saved (not FAILED), starts nothing after it,
// and the command exits 128 + the signal's number; a rerun resumes. Small real slices of CIFAR-10.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../lib/config';
import { loadCifar10, type Cifar10Split } from '../lib/data/cifar10';
import {
  experimentAt,
  experimentStatus,
  LAB_EXPERIMENTS,
  PAIRED_EXPERIMENTS,
  runExperiments,
  type Experiment,
  type ExperimentEvent,
} from '../lib/experiments/experiments';
import { readCheckpointMeta } from '../lib/train/checkpoint';
import type { TrainEvent } from '../lib/train/events';
import { readRunEpochs, type EpochRow } from '../lib/train/metrics';
import { train } from '../lib/train/train';
import { trainConfig, type TrainConfig } from '../lib/train/train-config';

let dir: string;
let data: { train: Cifar10Split; test: Cifar10Split };
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-runner-'));
  data = { train: loadCifar10('train', { limit: 128 }), test: loadCifar10('test', { limit: 64 }) };
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const tiny = (name: string, over: Partial<TrainConfig> = {}): Experiment => ({
  name,
  arm: name,
  group: 'compare',
  purpose: 'test',
  relativeEpochCost: 1,
  config: trainConfig({ run: name, epochs: 2, batchSize: 32, limitTrain: 128, limitTest: 64, logEvery: 1, ...over }),
});
/** `epoch:split` of every epoch row, superseded ones included: an epoch trained twice shows twice. */
const epochsOf = (runDir: string) =>
  readRunEpochs(runDir, { includeSuperseded: true }).map((r) => `${r.epoch}:${r.split}`);
const ONCE = (n: number) => Array.from({ length: n }, (_, i) => [`${i + 1}:test`, `${i + 1}:train`]).flat();
const sessions = (rows: EpochRow[]) => [...new Map(rows.map((r) => [r.session, r.resumedFrom]))];
const listeners = () => ['SIGINT', 'SIGTERM'].map((s) => process.listenerCount(s));

/** npm run experiments as package.json runs it (node with tsx as a loader), to the end. */
const CLI = ['--import', 'tsx', 'scripts/experiments.ts'];
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [...CLI, ...args], { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 120_000 });

describe('experimentAt', () => {
  it('is the N-th experiment, 0-based; out of range names the range', () => {
    const list = [tiny('a'), tiny('b'), tiny('c')];
    expect([0, 1, 2].map((i) => experimentAt(list, i).name)).toEqual(['a', 'b', 'c']);
    for (const bad of [3, -1, 1.5]) {
      const message = `index ${bad} is out of range: the x suite has 3 experiment(s), indices 0–2`;
      expect(() => experimentAt(list, bad, 'the x suite')).toThrow(message);
    }
    expect(() => experimentAt([], 0)).toThrow('the list has 0 experiment(s), no index is valid');
  });
});

describe('npm run experiments -- --count / --index', () => {
  it('--count is the number of experiments --list shows, with --quick and --only too', () => {
    expect(cli('--suite', 'lab', '--count').stdout).toBe(`${LAB_EXPERIMENTS.length}\n`);
    expect(cli('--suite', 'paired', '--quick', '--count').stdout).toBe(`${PAIRED_EXPERIMENTS.length}\n`);
    expect(cli('--suite', 'lab', '--only', 'frozen-eval,lab-static-s0', '--count').stdout).toBe('2\n');
  });

  it('refuses an index out of range naming the range, and flags it does not go with; --help says 0-based', () => {
    const n = LAB_EXPERIMENTS.length;
    const out = cli('--suite', 'lab', '--index', String(n));
    expect(out.status).toBe(2);
    const range = `the lab suite has ${n} experiment(s), indices 0–${n - 1}`;
    expect(out.stderr).toContain(`--index ${n} is out of range: ${range} (npm run experiments -- --suite lab --count)`);
    expect(cli('--index=-1').stderr).toContain("--index must be a whole number ≥ 0; got '-1'");
    const record = cli('--index', '0', '--record').stderr;
    expect(record).toContain('--index selects a run to train; it does not go with --record');
    const help = cli('--help').stdout;
    expect(help).toMatch(/--index N +only the N-th experiment, 0-based in the order --list prints/);
    expect(help).toContain("a Slurm array task's SLURM_ARRAY_TASK_ID");
  });

  it('--index N trains the run --list prints N-th, and only it; it writes no experiment table', () => {
    const resultsDir = path.join(dir, 'index');
    const args = ['--suite', 'lab', '--quick', '--only', 'lab-static-s0,frozen-eval', '--results-dir', resultsDir];
    const listed = cli(...args, '--list')
      .stdout.split('\n')
      .slice(2, 4)
      .map((line) => line.split(/\s+/)[0]);
    expect(listed).toEqual(['lab-static-s0', 'frozen-eval']);
    const out = cli(...args, '--index', '1', '--progress', 'none');
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^frozen-eval: trained, done/m);
    expect(fs.readdirSync(path.join(resultsDir, 'runs')).filter((f) => !f.startsWith('.'))).toEqual(['frozen-eval']);
    expect(fs.existsSync(path.join(resultsDir, 'experiments.parquet'))).toBe(false);
    // Once done, skipped.
    expect(cli(...args, '--index', '1', '--progress', 'none').stdout).toMatch(/^frozen-eval: skipped, done/m);
  });
});

describe('interrupting the runner', () => {
  it('SIGINT at a step: the run keeps its epochs, not FAILED, nothing after it starts; no listener stays', async () => {
    const before = listeners();
    const [a, b] = [tiny('int-a'), tiny('int-b')];
    const events: ExperimentEvent[] = [];
    const outcomes = await runExperiments({
      experiments: [a, b],
      runsDir: dir,
      data,
      onEvent: (e) => {
        events.push(e);
        const { event } = e.type === 'train' ? e : { event: undefined };
        if (event?.type === 'step' && event.epoch === 2 && event.batch === 2) process.kill(process.pid, 'SIGINT');
      },
    });
    expect(outcomes.map((o) => [o.name, o.result, o.signal])).toEqual([['int-a', 'interrupted', 'SIGINT']]);
    expect(outcomes[0].error).toMatch(/^run int-a interrupted \(SIGINT\) in epoch 2\/2 at batch [2-4]\/4/);
    expect(experimentStatus(a, dir)).toMatchObject({ state: 'partial', epochsDone: 1 });
    expect(fs.existsSync(path.join(dir, 'int-b'))).toBe(false);
    expect(events.some((e) => e.type === 'begin' && e.experiment.name === 'int-b')).toBe(false);
    expect(listeners()).toEqual(before);

    const again = await runExperiments({ experiments: [a, b], runsDir: dir, data });
    expect(again.map((o) => o.result)).toEqual(['trained', 'trained']);
    expect(again[0].train).toMatchObject({ startEpoch: 1, epoch: 2 });
    expect(epochsOf(path.join(dir, 'int-a'))).toEqual(ONCE(2));
  });

  it('a signal before train() listens still stops the run at its first step', async () => {
    const [a, b] = [tiny('early-a'), tiny('early-b')];
    // At 'begin' the runner calls train() next, which starts listening a macrotask later.
    const outcomes = await runExperiments({
      experiments: [a, b],
      runsDir: dir,
      data,
      onEvent: (e) => e.type === 'begin' && e.experiment.name === 'early-a' && process.kill(process.pid, 'SIGTERM'),
    });
    expect(outcomes.map((o) => [o.name, o.result, o.signal])).toEqual([['early-a', 'interrupted', 'SIGTERM']]);
    expect(outcomes[0].error).toMatch(/^run early-a interrupted \(SIGTERM\) in epoch 1\/2 at batch 1\/4, step 1: /);
    expect(experimentStatus(a, dir).epochsDone).toBe(0);
  });

  it('a run killed between its first two checkpoints (best saved, last not) resumes from best', async () => {
    const e = tiny('cut');
    const killedAfterEpoch = (ev: TrainEvent) => {
      if (ev.type === 'epoch') throw new Error('killed');
    };
    await expect(train(e.config, { runsDir: dir, data, onProgress: killedAfterEpoch })).rejects.toThrow('killed');
    fs.rmSync(path.join(dir, 'cut', 'last.safetensors'));
    expect(experimentStatus(e, dir)).toMatchObject({ state: 'partial', epochsDone: 1 });
    const [o] = await runExperiments({ experiments: [e], runsDir: dir, data });
    expect([o.result, o.error]).toEqual(['trained', undefined]);
    expect(o.train).toMatchObject({ startEpoch: 1, epoch: 2 });
    expect(epochsOf(path.join(dir, 'cut'))).toEqual(ONCE(2));
  });

  it('npm run experiments: SIGTERM exits 143 saying what is kept, later ones not begun; a rerun resumes', async () => {
    const resultsDir = path.join(dir, 'cli');
    const args = [
      ...CLI,
      '--suite',
      'lab',
      '--quick',
      '--epochs',
      '2',
      '--only',
      'lab-static-s0,frozen-eval',
      '--results-dir',
      resultsDir,
      '--progress',
      'lines',
    ];
    // As Slurm's scancel / scontrol requeue do: SIGTERM to the process.
    const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    let sent = false;
    child.stderr.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (!sent && /^epoch 2\/2 .* 1\/4 /m.test(log)) {
        sent = true;
        child.kill('SIGTERM');
      }
    });
    child.stdout.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, log).toBe(143);
    expect(log).toMatch(/^run lab-static-s0 interrupted \(SIGTERM\) in epoch 2\/2 at batch [1-4]\/4/m);
    expect(log).toContain('stopped by SIGTERM: lab-static-s0 keeps epochs 1–1 of 2 and resumes from there.');
    expect(log).toContain(' 1 later experiment(s) not started.');
    expect(log).not.toMatch(/FAILED/);
    const runDir = path.join(resultsDir, 'runs', 'lab-static-s0');
    expect(readCheckpointMeta(path.join(runDir, 'last.safetensors')).epoch).toBe(1);
    // No lock left, frozen-eval not started.
    expect(fs.readdirSync(path.join(resultsDir, 'runs'))).toEqual(['lab-static-s0']);

    const rerun = spawnSync(process.execPath, args, { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(rerun.status, rerun.stderr).toBe(0);
    expect(sessions(readRunEpochs(runDir))).toEqual([
      [1, 0],
      [2, 1],
    ]);
    expect(epochsOf(runDir)).toEqual(ONCE(2));
    expect(epochsOf(path.join(resultsDir, 'runs', 'frozen-eval'))).toEqual(ONCE(2));
  });
});
