import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  appendEpoch,
  EPOCH_SCHEMA,
  listRuns,
  loadEpochMetrics,
  loadStepMetrics,
  metricsDir,
  nextSession,
  readEpochRows,
  readRunEpochs,
  readStepRows,
  STEP_SCHEMA,
  type EpochRow,
  type Split,
  type StepRow,
} from '../lib/train/metrics';

let runsDir: string;
beforeEach(() => {
  runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'metrics-'));
});

function makeRun(name: string): string {
  const dir = path.join(runsDir, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), '{}');
  return dir;
}

const base = { variant: 'dynamic' as const, seed: 3, backend: 'test-backend' };

function epochRows(run: string, epoch: number, session: number, resumedFrom: number, acc: number): EpochRow[] {
  return (['train', 'test'] as Split[]).map((split, i) => ({
    ...base,
    run,
    session,
    resumedFrom,
    epoch,
    split,
    step: epoch * 10,
    images: split === 'train' ? 640 : 128,
    loss: 2 - acc - i / 10,
    accuracy: acc + i / 100,
    perClassAccuracy: Array.from({ length: 10 }, (_, c) => c / 10 + acc),
    lr: 1e-3,
    imagesPerSecond: 100 + i,
    wallSeconds: 6.4,
    time: new Date(Date.UTC(2025, 0, epoch, session)),
  }));
}

function stepRows(run: string, epoch: number, session: number, resumedFrom: number): StepRow[] {
  return [5, 10].map((batch) => ({
    ...base,
    run,
    session,
    resumedFrom,
    epoch,
    step: (epoch - 1) * 10 + batch,
    batch,
    images: 320,
    loss: 1 / batch,
    accuracy: batch / 20,
    lr: 1e-3,
    imagesPerSecond: 99,
    time: new Date(Date.UTC(2025, 0, epoch)),
  }));
}

describe('metrics Parquet parts', () => {
  it('round-trips epoch and step rows with their types, one file per finished epoch', () => {
    const dir = makeRun('a');
    expect(nextSession(dir)).toBe(1);
    appendEpoch(dir, epochRows('a', 1, 1, 0, 0.3), stepRows('a', 1, 1, 0));
    appendEpoch(dir, epochRows('a', 2, 1, 0, 0.5), stepRows('a', 2, 1, 0));
    expect(fs.readdirSync(metricsDir(dir)).sort()).toEqual([
      'epochs-e0001-s001.parquet',
      'epochs-e0002-s001.parquet',
      'steps-e0001-s001.parquet',
      'steps-e0002-s001.parquet',
    ]);
    expect(nextSession(dir)).toBe(2);

    const df = loadEpochMetrics({ runsDir });
    expect(df.columns).toEqual(Object.keys(EPOCH_SCHEMA));
    expect(df.height).toBe(4);
    const rows = readEpochRows({ runsDir });
    expect(rows.map((r) => [r.epoch, r.split, r.accuracy])).toEqual([
      [1, 'test', 0.31],
      [1, 'train', 0.3],
      [2, 'test', 0.51],
      [2, 'train', 0.5],
    ]);
    expect(rows[0]).toEqual(epochRows('a', 1, 1, 0, 0.3)[1]);
    expect(rows[0].time).toBeInstanceOf(Date);
    expect(rows[0].perClassAccuracy).toHaveLength(10);

    const steps = readStepRows({ runsDir });
    expect(loadStepMetrics({ runsDir }).columns).toEqual(Object.keys(STEP_SCHEMA));
    expect(steps.map((s) => s.step)).toEqual([5, 10, 15, 20]);
    expect(steps[3]).toEqual(stepRows('a', 2, 1, 0)[1]);
  });

  it('never rewrites a finished part, and ignores unfinished or temporary files', () => {
    const dir = makeRun('a');
    appendEpoch(dir, epochRows('a', 1, 1, 0, 0.3), stepRows('a', 1, 1, 0));
    const file = path.join(metricsDir(dir), 'epochs-e0001-s001.parquet');
    const before = fs.readFileSync(file);
    expect(() => appendEpoch(dir, epochRows('a', 1, 1, 0, 0.9), [])).toThrow(
      /already exists; finished epochs are never rewritten/,
    );
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(() => appendEpoch(dir, [...epochRows('a', 2, 1, 0, 0.3), ...epochRows('a', 3, 1, 0, 0.3)], [])).toThrow(
      /mixed/,
    );

    // A crash between the steps part and the epochs part of epoch 2, and a half-written temp file.
    fs.copyFileSync(
      path.join(metricsDir(dir), 'steps-e0001-s001.parquet'),
      path.join(metricsDir(dir), 'steps-e0002-s001.parquet'),
    );
    fs.writeFileSync(path.join(metricsDir(dir), '.epochs-e0002-s001.parquet.123.tmp'), 'garbage');
    expect(readEpochRows({ runsDir }).map((r) => r.epoch)).toEqual([1, 1]);
    expect(readStepRows({ runsDir })).toHaveLength(2);
  });

  it('hides epochs that a later session retrained from an earlier checkpoint', () => {
    const dir = makeRun('a');
    for (const e of [1, 2, 3]) appendEpoch(dir, epochRows('a', e, 1, 0, e / 10), stepRows('a', e, 1, 0));
    // Session 2 crashed before finishing an epoch: it wrote nothing. Session 3 resumed from the
    // best checkpoint (epoch 1) and finished epoch 2 again.
    appendEpoch(dir, epochRows('a', 2, 3, 1, 0.7), stepRows('a', 2, 3, 1));
    const rows = readRunEpochs(dir).filter((r) => r.split === 'test');
    expect(rows.map((r) => [r.epoch, r.session, r.accuracy])).toEqual([
      [1, 1, 0.11],
      [2, 3, 0.71],
    ]);
    expect(readStepRows({ runsDir }).map((s) => [s.step, s.session])).toEqual([
      [5, 1],
      [10, 1],
      [15, 3],
      [20, 3],
    ]);
    expect(readRunEpochs(dir, { includeSuperseded: true })).toHaveLength(8);
    expect(nextSession(dir)).toBe(4);
  });

  it('concatenates runs, selects runs by name, and names unknown ones', () => {
    appendEpoch(makeRun('b'), epochRows('b', 1, 1, 0, 0.4), []);
    appendEpoch(makeRun('a'), epochRows('a', 1, 1, 0, 0.2), []);
    makeRun('empty');
    fs.mkdirSync(path.join(runsDir, '.a.fresh'));
    expect(listRuns(runsDir)).toEqual(['a', 'b', 'empty']);
    expect(loadEpochMetrics({ runsDir }).getColumn('run').toArray()).toEqual(['a', 'a', 'b', 'b']);
    expect(readEpochRows({ runsDir, runs: ['b'] }).map((r) => r.run)).toEqual(['b', 'b']);
    expect(() => loadEpochMetrics({ runsDir, runs: ['nope'] })).toThrow(/no run named nope .*runs there: a, b, empty/);
    const empty = loadStepMetrics({ runsDir: path.join(runsDir, 'none') });
    expect(empty.height).toBe(0);
    expect(empty.columns).toEqual(Object.keys(STEP_SCHEMA));
  });
});
