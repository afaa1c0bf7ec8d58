// The report builds from whatever results/ holds: real numbers where runs exist, "no run yet"
// where they do not, an unreadable run listed rather than fatal; HTML, PDF and figure files.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerQuestions, loadEvidence } from '../lib/report/answers';
import { launchChromium } from '../lib/report/chromium';
import { saveFigureJson } from '../lib/report/figures-export';
import { appendEpoch, type EpochRow } from '../lib/train/metrics';
import { meanStdBars } from '../lib/report/plots';
import { buildReport } from '../lib/report/report';
import { labRecipeRuns, loadLabResults, recipeChanges } from '../lib/experiments/results';
import { findExperiment } from '../lib/experiments/experiments';
import { trainConfig, type TrainConfig } from '../lib/train/train-config';

let browser: Browser;
let root: string;
beforeAll(async () => {
  browser = await launchChromium();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-report-'));
});
afterAll(async () => {
  await browser?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

/** A run folder with config.json and `acc.length` finished epochs (test accuracy acc[e]). */
function makeRun(resultsDir: string, config: TrainConfig, acc: number[]): void {
  const dir = path.join(resultsDir, 'runs', config.run);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  acc.forEach((a, i) => {
    const base = { run: config.run, session: 1, resumedFrom: 0, variant: config.variant, seed: config.seed, backend: 'tensorflow (test)', epoch: i + 1, step: 100 * (i + 1), lr: 1e-3, time: new Date(0) };
    const row = (split: 'train' | 'test', accuracy: number): EpochRow => ({
      ...base, split, images: 1000, loss: 2 - accuracy, accuracy, perClassAccuracy: new Array(10).fill(accuracy), imagesPerSecond: 500, wallSeconds: split === 'train' ? 60 : 5,
    });
    appendEpoch(dir, [row('train', a + 0.05), row('test', a)], []);
  });
}

describe('report', () => {
  it('assembles runs, comparison, saved figures and answers, and writes HTML, PDF and figures', { timeout: 180_000 }, async () => {
    const results = path.join(root, 'full');
    makeRun(results, trainConfig({ run: 'dyn-s0', variant: 'dynamic', seed: 0 }), [0.7, 0.8]);
    makeRun(results, trainConfig({ run: 'dyn-s1', variant: 'dynamic', seed: 1 }), [0.72, 0.78]);
    makeRun(results, trainConfig({ run: 'sta-s0', variant: 'static', seed: 0 }), [0.6, 0.7]);
    makeRun(results, trainConfig({ run: 'sta-s1', variant: 'static', seed: 1 }), [0.62, 0.66]);
    makeRun(results, findExperiment('frozen-all').config, [0.4]);
    // A damaged run: listed as unreadable, the rest still reported.
    makeRun(results, trainConfig({ run: 'broken', variant: 'dynamic' }), [0.5]);
    const part = path.join(results, 'runs', 'broken', 'metrics', fs.readdirSync(path.join(results, 'runs', 'broken', 'metrics'))[0]);
    fs.writeFileSync(part, 'not parquet');
    saveFigureJson('response-map-test-7', meanStdBars([{ name: 'x', mean: 0.5, std: 0, n: 1 }]), path.join(results, 'figures'));
    saveFigureJson('report-curves-gone', meanStdBars([]), path.join(results, 'figures')); // from a deleted run

    const loaded = loadLabResults({ resultsDir: results });
    expect(loaded.runs.map((r) => r.name)).toEqual(['broken', 'dyn-s0', 'dyn-s1', 'frozen-all', 'sta-s0', 'sta-s1']);
    expect(loaded.runs.find((r) => r.name === 'broken')!.problem).toMatch(/cannot read metrics part/);
    expect(loaded.runs.find((r) => r.name === 'frozen-all')!.changes).toEqual(['freeze=all']);
    expect(labRecipeRuns(loaded).runs.map((r) => r.name)).toEqual(['dyn-s0', 'dyn-s1', 'sta-s0', 'sta-s1']);

    // Nothing recorded here (the checkout's results/recorded is not read): the answers rest on these runs alone.
    const recordedDir = path.join(root, 'no-recorded');
    const answers = Object.fromEntries(answerQuestions(loaded, loadEvidence(results, { recordedDir })).map((a) => [a.id, a]));
    expect(answers.compare.status).toBe('no-run-yet'); // no lab-suite run (lab-dynamic-s0, lab-static-s0)
    expect(answers.compare.html).toContain('npm run experiments -- --only lab-dynamic-s0,lab-static-s0');
    expect(answers.freeze.status).toBe('no-run-yet'); // no experiment table yet: the report builds it
    expect(answers.stability.status).toBe('no-run-yet');

    const report = await buildReport({ resultsDir: results, browser, quick: false, recordedDir });
    const html = fs.readFileSync(report.html, 'utf8');
    // The experiment table is rebuilt from the runs: frozen-all is the only experiment run here.
    expect(fs.existsSync(path.join(results, 'experiments.parquet'))).toBe(true);
    expect(html).toContain('Every experiment (results/experiments.parquet)');
    expect(html).toMatch(/<code>frozen-all<\/code><\/td>.*?40.00% \(1\)/); // its row: best 40.00% at epoch 1
    expect(html).toContain('<code>npm run experiments -- --only lab-dynamic-s0,frozen-requires-grad,frozen-keep-bn,frozen-adapter</code>'); // the named lab run too
    expect(html).toContain('The recorded paired suite is missing');
    expect(report.answers.find((a) => a.id === 'freeze')!.status).toBe('partial');
    expect(report.html).toBe(path.join(results, 'report', 'report.html'));
    expect(html).toContain('unreadable: cannot read metrics part');
    expect(html).toContain('79.00 ± 1.41%');
    expect(html).toContain('<strong>No run yet.</strong>');
    expect(html).toContain('id="fig-response-map-test-7"');
    expect((html.match(/<img alt=/g) ?? []).length).toBe(report.figures.length);
    expect(fs.readFileSync(report.pdf!).subarray(0, 5).toString()).toBe('%PDF-');
    const figures = fs.readdirSync(path.join(results, 'figures'));
    for (const name of ['report-compare-curves', 'report-compare-best', 'report-curves-dyn-s0', 'response-map-test-7', 'report-experiments-best']) {
      expect(figures).toContain(`${name}.png`);
      expect(figures).toContain(`${name}.svg`);
    }
    expect(figures.filter((f) => f.startsWith('report-curves-gone'))).toEqual([]);
    expect(fs.readdirSync(path.join(results, 'report')).sort()).toEqual(['report.html', 'report.pdf']);
  });

  it('builds from an empty results folder, every question saying "no run yet"', { timeout: 120_000 }, async () => {
    const results = path.join(root, 'empty');
    const report = await buildReport({ resultsDir: results, browser, pdf: false, recordedDir: path.join(root, 'no-recorded') });
    expect(report.runs).toBe(0);
    expect(report.answers.every((a) => a.status === 'no-run-yet')).toBe(true);
    expect(fs.readFileSync(report.html, 'utf8')).toContain('No runs yet: train one with <code>npm run train</code>');
    expect(report.pdf).toBeUndefined();
  });

  it('names recipe changes and nothing for the recipe itself', () => {
    expect(recipeChanges(trainConfig({ run: 'x', variant: 'static', seed: 3, logEvery: 5 }))).toEqual([]);
    expect(recipeChanges(trainConfig({ run: 'x', norm: 'imagenet', epochs: 30, augment: true }))).toEqual(['epochs=30', 'norm=imagenet', 'augment=true']);
  });
});
