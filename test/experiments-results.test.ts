// Reading results/ for the notebooks (lib/experiments/results): every run listed, a damaged one
// as unreadable rather than fatal, the lab-recipe runs picked out, recipe changes named.
// (Moved here from the report's tests when the report became the rendered notebooks.)
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEpoch, type EpochRow } from '../lib/train/metrics';
import { labRecipeRuns, loadLabResults, recipeChanges } from '../lib/experiments/results';
import { findExperiment } from '../lib/experiments/experiments';
import { trainConfig, type TrainConfig } from '../lib/train/train-config';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-results-'));
});
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

/** A run folder with config.json and `acc.length` finished epochs (test accuracy acc[e]). */
function makeRun(resultsDir: string, config: TrainConfig, acc: number[]): void {
  const dir = path.join(resultsDir, 'runs', config.run);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  acc.forEach((a, i) => {
    const base = {
      run: config.run,
      session: 1,
      resumedFrom: 0,
      variant: config.variant,
      seed: config.seed,
      backend: 'tensorflow (test)',
      epoch: i + 1,
      step: 100 * (i + 1),
      lr: 1e-3,
      time: new Date(0),
    };
    const row = (split: 'train' | 'test', accuracy: number): EpochRow => ({
      ...base,
      split,
      images: 1000,
      loss: 2 - accuracy,
      accuracy,
      perClassAccuracy: new Array(10).fill(accuracy),
      imagesPerSecond: 500,
      wallSeconds: split === 'train' ? 60 : 5,
    });
    appendEpoch(dir, [row('train', a + 0.05), row('test', a)], []);
  });
}

describe('lab results', () => {
  it('lists every run, a damaged one as unreadable, and picks out the lab-recipe runs', () => {
    const results = path.join(root, 'full');
    makeRun(results, trainConfig({ run: 'dyn-s0', variant: 'dynamic', seed: 0 }), [0.7, 0.8]);
    makeRun(results, trainConfig({ run: 'dyn-s1', variant: 'dynamic', seed: 1 }), [0.72, 0.78]);
    makeRun(results, trainConfig({ run: 'sta-s0', variant: 'static', seed: 0 }), [0.6, 0.7]);
    makeRun(results, trainConfig({ run: 'sta-s1', variant: 'static', seed: 1 }), [0.62, 0.66]);
    makeRun(results, findExperiment('frozen-eval').config, [0.4]);
    makeRun(results, trainConfig({ run: 'broken', variant: 'dynamic' }), [0.5]);
    const part = path.join(
      results,
      'runs',
      'broken',
      'metrics',
      fs.readdirSync(path.join(results, 'runs', 'broken', 'metrics'))[0],
    );
    fs.writeFileSync(part, 'not parquet');

    const loaded = loadLabResults({ resultsDir: results });
    expect(loaded.runs.map((r) => r.name)).toEqual(['broken', 'dyn-s0', 'dyn-s1', 'frozen-eval', 'sta-s0', 'sta-s1']);
    expect(loaded.runs.find((r) => r.name === 'broken')!.problem).toMatch(/cannot read metrics part/);
    expect(loaded.runs.find((r) => r.name === 'frozen-eval')!.changes).toEqual(['freeze=all']);
    expect(labRecipeRuns(loaded).runs.map((r) => r.name)).toEqual(['dyn-s0', 'dyn-s1', 'sta-s0', 'sta-s1']);
  });

  it('names recipe changes and nothing for the recipe itself', () => {
    expect(recipeChanges(trainConfig({ run: 'x', variant: 'static', seed: 3, logEvery: 5 }))).toEqual([]);
    expect(recipeChanges(trainConfig({ run: 'x', norm: 'imagenet', epochs: 30, augment: true }))).toEqual([
      'epochs=30',
      'norm=imagenet',
      'augment=true',
    ]);
  });
});
