// Progress renderers (terminal bar / lines, notebook display) and the CLIs' argument errors.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../lib/config';
import { formatDuration, formatStep, notebookProgress, progressBar, terminalProgress } from '../lib/train/progress';
import { RunDir } from '../lib/train/run';
import type { EpochSummary, TrainEvent } from '../lib/train/events';
import { parseTrainArgs, resolveTrainConfig, UsageError } from '../lib/train/train-cli';
import { trainConfig } from '../lib/train/train-config';

const config = trainConfig({ run: 'demo', epochs: 2 });
const start: TrainEvent = {
  type: 'start',
  run: 'demo',
  dir: '/x/demo',
  config,
  startEpoch: 0,
  resumedFrom: null,
  session: 1,
  batchesPerEpoch: 4,
  trainImages: 256,
  testImages: 128,
  valImages: 0,
  backend: 'tensorflow (test)',
};
const step = (batch: number): TrainEvent => ({
  type: 'step',
  epoch: 1,
  epochs: 2,
  batch,
  batches: 4,
  step: batch,
  loss: 2.5 / batch,
  accuracy: batch / 10,
  lr: 1e-3,
  imagesPerSecond: 123.4,
  epochEtaSeconds: 75,
  etaSeconds: 3725,
});
const pass = {
  loss: 1.5,
  accuracy: 0.4,
  perClassAccuracy: new Array(10).fill(0.4),
  images: 256,
  seconds: 2,
  imagesPerSecond: 128,
};
const summary: EpochSummary = {
  epoch: 1,
  epochs: 2,
  step: 4,
  lr: 1e-3,
  train: pass,
  test: { ...pass, accuracy: 0.45, confusion: [] },
  selection: 0.45,
  improved: true,
  bestAccuracy: 0.45,
  bestEpoch: 1,
  seconds: 3,
};

function fakeStream(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, stream: { isTTY, columns: 200, write: (s: string) => chunks.push(s) } };
}

describe('progress', () => {
  it('formats durations, bars and step lines', () => {
    expect(formatDuration(75)).toBe('1:15');
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(NaN)).toBe('--:--');
    expect(progressBar(0.5, 10)).toBe('█████░░░░░');
    expect(formatStep(step(2) as Extract<TrainEvent, { type: 'step' }>, 4)).toBe(
      'epoch 1/2 ██░░ 2/4 loss 1.2500 acc 20.00% 123 img/s ETA 1:15 (run 1:02:05)',
    );
  });

  it('redraws one line on a terminal and prints a line per epoch', () => {
    const { chunks, stream } = fakeStream(true);
    const cb = terminalProgress(stream);
    cb(start);
    for (const b of [1, 2, 3, 4]) cb(step(b));
    cb({ type: 'epoch', summary });
    const out = chunks.join('');
    expect(out.split('\n')[0]).toMatch(
      /^run demo: dynamic net, from scratch, epochs 1–2; 256 train \/ 128 test images, 4 batches of 64/,
    );
    // Redraws start with a carriage return and never add lines; the epoch line replaces the bar.
    expect(chunks.filter((c) => c.startsWith('\r') && c.includes('epoch 1/2 █'))).not.toHaveLength(0);
    expect(out.match(/\n/g)).toHaveLength(2);
    expect(out).toMatch(
      /\r\x1b\[Kepoch 1\/2 {2}train loss 1.5000 acc 40.00% {2}test loss 1.5000 acc 45.00% {2}★ best \(saved\)/,
    );
  });

  it('prints plain lines when not on a terminal', () => {
    const { chunks, stream } = fakeStream(false);
    const cb = terminalProgress(stream, { lineSeconds: 3600 });
    cb(start);
    for (const b of [1, 2, 3, 4]) cb(step(b));
    cb({ type: 'epoch', summary });
    expect(chunks.join('')).not.toMatch(/\r/);
    expect(chunks).toHaveLength(3); // start, the epoch's first step, the epoch line
    expect(chunks[1]).toMatch(/^epoch 1\/2 .* 1\/4 loss 2.5000/);
  });

  it('updates one notebook display in place, throttled, with a row per finished epoch', () => {
    const html: string[] = [];
    const cb = notebookProgress({ html: (h) => html.push(h) }, { minIntervalMs: 60_000 });
    cb(start);
    for (const b of [1, 2, 3, 4]) cb(step(b));
    cb({ type: 'eval', epoch: 1, split: 'test', images: 128, total: 128 });
    expect(html).toHaveLength(1); // steps within the interval do not redraw
    cb({ type: 'epoch', summary });
    expect(html).toHaveLength(2);
    expect(html[1]).toMatch(
      /<tr><td>1<\/td><td>1.5000<\/td><td>40.00%<\/td><td>1.5000<\/td><td>45.00%<\/td><td>★ saved<\/td>/,
    );
    const fast: string[] = [];
    const every = notebookProgress({ html: (h) => fast.push(h) }, { minIntervalMs: 0 });
    every(start);
    every(step(3));
    expect(fast[1]).toMatch(/epoch 1\/2 · batch 3\/4 · loss 0.8333 · acc 30.00% · 123 img\/s · ETA 1:15/);
  });
});

describe('CLI arguments', () => {
  const parsed = (argv: string[]) => {
    const a = parseTrainArgs(argv);
    if (a.help) throw new Error('unexpected --help');
    return a;
  };
  it('npm run train: bad flags are usage errors that say what is wrong', () => {
    for (const [args, message] of [
      [['--run', 'r', '--bogus'], /Unknown option '--bogus'/],
      [['--run', 'r', '--variant', 'big'], /--variant must be one of dynamic, static; got 'big'/],
      [['--run', 'r', '--epochs', '2.5'], /--epochs needs a whole number; got '2.5'/],
      [['--run', 'r', '--lr', 'fast'], /--lr needs a number; got 'fast'/],
      [['--epochs', '2'], /--run NAME is required/],
      [['--run', 'r', '--fresh', '--eval-only'], /--fresh cannot be combined/],
      [['--run', 'r', 'extra'], /Unexpected argument 'extra'/],
    ] as const) {
      expect(() => parseTrainArgs([...args])).toThrow(UsageError);
      expect(() => parseTrainArgs([...args])).toThrow(message);
    }
    const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-'));
    expect(() => resolveTrainConfig(parsed(['--run', 'r', '--epochs', '0', '--runs-dir', runsDir]))).toThrow(
      /epochs must be a whole number ≥ 1/,
    );
    expect(() => resolveTrainConfig({ run: '../up', given: {}, fresh: false, runsDir })).toThrow(
      /--run: run name must be/,
    );
  });

  it("npm run train: flags override a run's saved settings, the recipe fills the rest", () => {
    const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-'));
    const args = parsed([
      '--run',
      'r',
      '--variant',
      'static',
      '--augment',
      '--freeze',
      'keep-bn',
      '--limit-train',
      '100',
      '--runs-dir',
      runsDir,
    ]);
    expect(args).toMatchObject({ help: false, run: 'r', evalOnly: false, fresh: false, runsDir });
    expect(args.given).toEqual({ variant: 'static', augment: true, freeze: 'keep-bn', limitTrain: 100 });
    expect(resolveTrainConfig(args)).toEqual(
      trainConfig({ run: 'r', variant: 'static', augment: true, freeze: 'keep-bn', limitTrain: 100 }),
    );
    new RunDir(runsDir, 'r').writeConfig(trainConfig({ run: 'r', variant: 'static', seed: 7, epochs: 3 }));
    const resumed = resolveTrainConfig(parsed(['--run', 'r', '--epochs', '6', '--runs-dir', runsDir]));
    expect(resumed).toMatchObject({ variant: 'static', seed: 7, epochs: 6 });
    const fresh = resolveTrainConfig(parsed(['--run', 'r', '--fresh', '--runs-dir', runsDir]));
    expect(fresh).toMatchObject({ variant: 'dynamic', seed: 0, epochs: 5 });
  });

  it('the scripts exit 2 with the usage on a bad flag, 1 on a failure', () => {
    const run = (script: string, args: string[]) =>
      spawnSync('npx', ['tsx', script, ...args], { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 60_000 });
    const bad = run('scripts/train.ts', ['--run', 'r', '--bogus']);
    expect(bad.status, bad.stderr).toBe(2);
    expect(bad.stderr).toMatch(/error: Unknown option '--bogus'\n\nusage: npm run train -- --run NAME/);
    const missing = run('scripts/export.ts', [
      '--run',
      'no-such-run',
      '--out',
      '/tmp/x.safetensors',
      '--runs-dir',
      '/tmp/no-runs-here',
    ]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no checkpoint at \/tmp\/no-runs-here\/no-such-run\/best.safetensors/);
  });
});
