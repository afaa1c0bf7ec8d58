// Recorded results: the selection rule per run, and a tiny suite recorded and read back.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCifar10 } from '../lib/data/cifar10';
import { runExperiments, type Experiment } from '../lib/experiments/experiments';
import {
  armsBySeed,
  readRecorded,
  readRecordedEpochs,
  recordConfusions,
  recordedConfusion,
  recordSuite,
  summarizeRun,
} from '../lib/experiments/recorded';
import { README, RESULTS_DOC, withBlock, withReadmeBlocks, withResultsBlocks } from '../lib/experiments/results-doc';
import { trainConfig } from '../lib/train/train-config';
import { recipeMarkdown } from '../lib/experiments/recipe';

// Epoch 3's training pass was slow and its rate odd (a paused epoch, say): medians ignore it.
const row = (epoch: number, split: string, accuracy: number) => ({
  epoch,
  split,
  accuracy,
  imagesPerSecond: split === 'train' ? [0, 100, 200, 900][epoch] : 0,
  wallSeconds: split === 'train' ? [0, 10, 10, 40][epoch] : 1,
});

describe('summarizeRun', () => {
  const rows = [
    row(1, 'train', 0.5),
    row(1, 'val', 0.6),
    row(1, 'test', 0.58),
    row(2, 'train', 0.6),
    row(2, 'val', 0.66),
    row(2, 'test', 0.61),
    row(3, 'train', 0.7),
    row(3, 'val', 0.64),
    row(3, 'test', 0.63),
  ];
  it('reports test at the epoch the validation split chose, not the best test epoch', () => {
    const s = summarizeRun(rows, 'val');
    expect(s.selected_epoch).toBe(2);
    expect(s.selected_test_acc).toBe(0.61);
    expect(s.best_test_acc).toBe(0.63);
    expect(s.final_test_acc).toBe(0.63);
    expect(s.best_val_acc).toBe(0.66);
    expect(s.train_images_per_s).toBe(200); // the mean would be 400
    expect(s.train_seconds_per_epoch).toBe(10); // the mean would be 20
  });
  it("selects on test under the lab's rule", () => {
    const s = summarizeRun(rows, 'test');
    expect(s.selected_epoch).toBe(3);
    expect(s.selected_test_acc).toBe(0.63);
  });
  it('is empty before the first epoch', () => {
    expect(summarizeRun([], 'val')).toMatchObject({
      selected_epoch: null,
      selected_test_acc: null,
      best_val_acc: null,
      train_images_per_s: null,
    });
  });
});

describe('recordSuite', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-recorded-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes one row per experiment, the epochs, the configs and the provenance, and reads them back', async () => {
    const data = { train: loadCifar10('train', { limit: 160 }), test: loadCifar10('test', { limit: 40 }) };
    const tiny = (arm: string, seed: number): Experiment => {
      const name = `${arm}-s${seed}`;
      return {
        name,
        arm,
        group: 'compare',
        purpose: 'test',
        relativeEpochCost: 1,
        config: trainConfig({
          run: name,
          seed,
          epochs: 2,
          limitTrain: 160,
          limitTest: 40,
          val: 40,
          selectBy: 'val',
          logEvery: 1,
          variant: arm === 'static' ? 'static' : 'dynamic',
        }),
      };
    };
    const experiments = [tiny('dynamic', 0), tiny('static', 0), tiny('dynamic', 1)];
    const runsDir = path.join(dir, 'runs');
    await runExperiments({ experiments: experiments.slice(0, 2), runsDir, data });
    const out = path.join(dir, 'recorded');
    const { rows } = recordSuite('paired', { runsDir, outDir: out, experiments, command: 'test', commit: 'abc' });
    expect(rows.map((r) => [r.name, r.status, r.epochs_done])).toEqual([
      ['dynamic-s0', 'done', 2],
      ['static-s0', 'done', 2],
      ['dynamic-s1', 'not-started', 0],
    ]);
    const confusions = await recordConfusions('paired', { runsDir, outDir: out, experiments });
    expect(fs.readdirSync(out).sort()).toEqual([
      'configs.json',
      'confusion.parquet',
      'epochs.parquet',
      'experiments.parquet',
      'provenance.json',
    ]);
    // Two finished runs, 100 cells each, every test image counted once.
    expect(confusions).toHaveLength(200);
    expect(confusions.filter((c) => c.run === 'static-s0').reduce((n, c) => n + c.count, 0)).toBe(40);
    const matrix = recordedConfusion('paired', 'dynamic', out)!;
    expect(matrix.flat().reduce((a, b) => a + b, 0)).toBe(40);
    expect(recordedConfusion('paired', 'no-such-arm', out)).toBeUndefined();
    const back = readRecorded('paired', out);
    expect(back.rows.map((r) => r.name)).toEqual(['dynamic-s0', 'static-s0', 'dynamic-s1']);
    const done = back.rows[0];
    expect(done.select_by).toBe('val');
    expect(done.selected_epoch === 1 || done.selected_epoch === 2).toBe(true);
    expect(done.best_val_acc).toBeGreaterThan(0);
    expect(done.train_images_per_s).toBeGreaterThan(0);
    expect(back.provenance.suite).toBe('paired');
    expect(back.provenance.batches).toHaveLength(1);
    expect(back.provenance.batches[0]).toMatchObject({
      runs: ['dynamic-s0', 'static-s0'],
      commit: 'abc',
      command: 'test',
    });
    expect(back.provenance.batches[0].backend).toMatch(/TensorFlow/);
    expect(back.provenance.batches[0].machine.cores).toBeGreaterThan(0);
    expect(Object.keys(JSON.parse(fs.readFileSync(path.join(out, 'configs.json'), 'utf8')))).toEqual([
      'dynamic-s0',
      'static-s0',
    ]);
    const arms = armsBySeed(back.rows);
    expect([...arms.keys()].sort()).toEqual(['dynamic', 'static']);
    expect(arms.get('dynamic')!.get(0)).toBe(done.selected_test_acc);

    // Later, elsewhere: dynamic-s1 trained into another runs folder is merged in as a second batch;
    // the first two runs keep their rows, epochs, confusion matrices and batch.
    const later = path.join(dir, 'later-runs');
    await runExperiments({ experiments: [experiments[2]], runsDir: later, data });
    const merged = recordSuite('paired', { runsDir: later, outDir: out, experiments, command: 'later', commit: 'def' });
    expect(merged.recorded).toEqual(['dynamic-s1']);
    expect(merged.rows.map((r) => [r.name, r.status])).toEqual([
      ['dynamic-s0', 'done'],
      ['static-s0', 'done'],
      ['dynamic-s1', 'done'],
    ]);
    expect(merged.rows[0]).toEqual(back.rows[0]);
    expect(merged.provenance.batches.map((b) => [b.commit, b.runs])).toEqual([
      ['abc', ['dynamic-s0', 'static-s0']],
      ['def', ['dynamic-s1']],
    ]);
    const runsWithEpochs = new Set(readRecordedEpochs('paired', out).map((e) => e.run));
    expect([...runsWithEpochs].sort()).toEqual(['dynamic-s0', 'dynamic-s1', 'static-s0']);
    expect(Object.keys(JSON.parse(fs.readFileSync(path.join(out, 'configs.json'), 'utf8'))).sort()).toEqual([
      'dynamic-s0',
      'dynamic-s1',
      'static-s0',
    ]);
    const allConfusions = await recordConfusions('paired', {
      runsDir: later,
      outDir: out,
      experiments,
      runs: merged.recorded,
    });
    expect(new Set(allConfusions.map((c) => c.run))).toEqual(new Set(['dynamic-s0', 'static-s0', 'dynamic-s1']));
    expect(allConfusions).toHaveLength(300);
    // Recording a run again replaces its record and moves it to the new batch.
    const again = recordSuite('paired', {
      runsDir,
      outDir: out,
      experiments: experiments.slice(0, 1),
      command: 'again',
      commit: 'ghi',
    });
    expect(again.provenance.batches.map((b) => [b.commit, b.runs])).toEqual([
      ['abc', ['static-s0']],
      ['def', ['dynamic-s1']],
      ['ghi', ['dynamic-s0']],
    ]);
  });

  it('says what to do when a suite was never recorded', () => {
    expect(() => readRecorded('paired', path.join(dir, 'nothing'))).toThrow(
      /no recorded results for the paired suite: .*experiments.parquet is missing/,
    );
  });
});

describe('docs/results.md', () => {
  it('quotes exactly what the committed recorded suites give: the arms, every comparison and the recipe', () => {
    const doc = fs.readFileSync(RESULTS_DOC, 'utf8');
    expect(
      doc === withResultsBlocks(doc),
      'docs/results.md is stale: run npm run experiments -- --suite paired --record, or rebuild its blocks',
    ).toBe(true);
    const readme = fs.readFileSync(README, 'utf8');
    expect(readme === withReadmeBlocks(readme), "README.md's line on the recorded suites is stale").toBe(true);
    expect(readme).toMatch(
      /The recorded suites hold \d+ runs, \d+\.\d h of training and evaluation in all, trained from 20\d\d-\d\d-\d\d to 20\d\d-\d\d-\d\d on /,
    );
  });

  it("words the recipe's choice from the numbers: the choice and the validation gap's verdict follow them", () => {
    const row = (arm: string, seed: number, val: number, test: number) => ({
      name: `${arm}-s${seed}`,
      arm,
      settings: '',
      seed,
      status: 'done',
      epochs: 40,
      epochsDone: 40,
      selectBy: 'val',
      selectedEpoch: 40,
      valAccuracy: val,
      testAccuracy: test,
      finalTestAccuracy: test,
      trainSeconds: 600,
      wallSeconds: 700,
      cores: 2,
      meetsAccuracy: false,
      meetsTime: true,
      meetsCores: true,
      meetsTarget: false,
      chosen: false,
    });
    const close = [
      row('a', 0, 0.86, 0.85),
      row('a', 1, 0.861, 0.851),
      row('a', 2, 0.859, 0.849),
      row('b', 0, 0.862, 0.852),
      row('b', 1, 0.863, 0.853),
      row('b', 2, 0.861, 0.851),
    ];
    expect(recipeMarkdown(close)).toContain('**`b`**');
    expect(recipeMarkdown(close)).toContain('equivalent within ±1 point');
    expect(recipeMarkdown(close)).toContain('does not reach 87 % and fits in 20 minutes');
    // The fastest run says whether the recipe fits: one run slowed by other work does not decide it; all slow do.
    const oneSlow = close.map((r) => (r.arm === 'b' && r.seed === 1 ? { ...r, wallSeconds: 1900 } : r));
    expect(recipeMarkdown(oneSlow)).toContain('its fastest run 11.7 min of recorded wall time (the slowest 31.7 min)');
    expect(recipeMarkdown(oneSlow)).toContain('fits in 20 minutes');
    expect(recipeMarkdown(close.map((r) => ({ ...r, wallSeconds: 1300 })))).toContain('does not fit in 20 minutes');
    const apart = close.map((r) =>
      r.arm === 'a' ? { ...r, valAccuracy: r.valAccuracy + 0.03 + r.seed / 1000, testAccuracy: 0.88 } : r,
    );
    expect(recipeMarkdown(apart)).toContain('**`a`**');
    expect(recipeMarkdown(apart)).toMatch(/\+2\.\d\d points of validation accuracy over `b`.*: better/);
    expect(recipeMarkdown(apart)).toContain('It reaches 87 %');
    expect(recipeMarkdown(close.map((r) => (r.seed === 2 ? { ...r, status: 'partial' } : r)))).toContain(
      'none is chosen',
    );
  });

  it('fails loudly when the markers are gone', () => {
    expect(() => withBlock('# no markers', 'recorded', 'x')).toThrow(/lacks the recorded markers/);
  });
});
