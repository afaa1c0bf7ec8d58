// The answers quote results/experiments.parquet, results/measurements.parquet and the runs' curves:
// synthetic run folders and tables in a temp dir, real Parquet round trips, and checks that every
// number quoted is the one in the files, that missing runs are named with the command to run them,
// and that a diverged run is reported as a result.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerQuestions, experimentBars, experimentTableHtml, loadEvidence, type Answer } from '../lib/answers';
import { EXPERIMENTS } from '../lib/experiments';
import { experimentFrame, experimentRows, EXPERIMENTS_FILE, type ExperimentRow } from '../lib/experiment-table';
import { parameterRows, writeMeasurements, type MeasurementRow } from '../lib/measurements';
import { appendEpoch, type EpochRow } from '../lib/metrics';
import { loadLabResults } from '../lib/results';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-answers-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** A run folder named after an experiment, with its config and `acc.length` epochs of test accuracy acc[e]. */
function makeRun(resultsDir: string, name: string, acc: number[]): void {
  const e = EXPERIMENTS.find((x) => x.name === name)!;
  const dir = path.join(resultsDir, 'runs', name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(e.config));
  acc.forEach((a, i) => {
    const base = { run: name, session: 1, resumedFrom: 0, variant: e.config.variant, seed: e.config.seed, backend: 'test', epoch: i + 1, step: 10 * (i + 1), lr: 1e-3, time: new Date(0) };
    const row = (split: 'train' | 'test', accuracy: number): EpochRow => ({
      ...base, split, images: 100, loss: 2 - accuracy, accuracy, perClassAccuracy: new Array(10).fill(accuracy), imagesPerSecond: 100, wallSeconds: split === 'train' ? 100 : 5,
    });
    appendEpoch(dir, [row('train', a + 0.05), row('test', a)], []);
  });
}

/** The table's rows for the runs above (as lib/experiment-table computes them), with overrides per name. */
function writeTable(resultsDir: string, overrides: Record<string, Partial<ExperimentRow>>): ExperimentRow[] {
  const rows = experimentRows({ resultsDir }).map((r) => {
    const runDir = path.join(resultsDir, 'runs', r.name);
    // No checkpoints in these synthetic runs: a run with metrics counts as done.
    const done = fs.existsSync(runDir) && r.bestTestAccuracy !== null ? { status: 'done' as const, epochsDone: r.epochs } : {};
    return { ...r, ...done, ...overrides[r.name] };
  });
  fs.writeFileSync(path.join(resultsDir, EXPERIMENTS_FILE), experimentFrame(rows).writeParquet());
  return rows;
}

function times(load1: number, othersShare: number | null = null): MeasurementRow[] {
  const base = { backend: 'test', cpus: 2, load1, othersShare, time: new Date(0) };
  const t = (measure: MeasurementRow['measure'], variant: string, value: number, batch = 64): MeasurementRow => ({ ...base, measure, setting: 'lab', variant, part: '', batch, value, unit: 'ms', spread: 1, n: 12 });
  return [
    ...parameterRows(base),
    t('train-step', 'dynamic', 120), t('train-step', 'static', 100),
    t('inference-step', 'dynamic', 31), t('inference-step', 'static', 30),
    t('inference-step-precomputed-filters', 'dynamic', 30.5),
    t('filter-generation', 'dynamic', 0.5, 10),
  ];
}

const byId = (answers: Answer[]) => Object.fromEntries(answers.map((a) => [a.id, a]));
const text = (a: Answer) => a.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

describe('answers from the experiment table, the measurements and the runs', () => {
  it('quotes the numbers in the files, names the runs used and the ones still missing', () => {
    const dir = path.join(root, 'partial');
    makeRun(dir, 'lab-dynamic-s0', [0.7, 0.8]);
    makeRun(dir, 'lab-dynamic-s1', [0.7, 0.78]);
    makeRun(dir, 'lab-static-s0', [0.6, 0.7]);
    makeRun(dir, 'lab-static-s1', [0.6, 0.66]);
    makeRun(dir, 'frozen-all', [0.5, 0.55]);
    makeRun(dir, 'frozen-keep-bn', [0.65]);
    makeRun(dir, 'ablate-no-scale', [0.72, 0.79]);
    writeTable(dir, {
      'frozen-keep-bn': { status: 'partial', epochsDone: 1 },
      'ablate-no-norm': { status: 'diverged', epochsDone: 1, detail: 'loss became NaN at step 412' },
    });
    writeMeasurements(dir, times(0.5));
    const sweepFile = path.join(dir, 'sweep.jsonl');
    fs.writeFileSync(sweepFile, `${JSON.stringify({ config: { name: 'best40', epochs: 40 }, epochs_done: 40, best_test_accuracy: 0.8553, final_test_accuracy: 0.8538, seconds: 300 })}\n`);

    const ev = loadEvidence(dir, { sweepFile });
    expect(ev.experiments.map((r) => r.name)).toEqual(EXPERIMENTS.map((e) => e.name));
    expect(typeof ev.experiments[0].parameters).toBe('number');
    const a = byId(answerQuestions(loadLabResults({ resultsDir: dir }), ev));

    // compare: best 0.80/0.78 → 79.00 ± 1.41 (n=2), static 0.70/0.66 → 68.00 ± 2.83 (n=2); seeds 2 missing
    expect(a.compare.status).toBe('partial');
    expect(text(a.compare)).toContain('79.00 ± 1.41% (n=2)');
    expect(text(a.compare)).toContain('68.00 ± 2.83% (n=2)');
    expect(text(a.compare)).toContain('n = 2 dynamic, 2 static');
    expect(a.compare.cites).toEqual(['lab-dynamic-s0', 'lab-dynamic-s1', 'lab-static-s0', 'lab-static-s1']);
    expect(a.compare.todo).toContain('--only lab-dynamic-s2,lab-static-s2');

    // freeze: 55.00% vs 80.00% → −25.00 points; keep-bn unfinished (1/5); the other two fixes not run yet
    expect(a.freeze.status).toBe('partial');
    const freeze = text(a.freeze);
    expect(freeze).toContain('frozen-all reaches 55.00% best test accuracy against 80.00%');
    expect(freeze).toContain('−25.00 points');
    expect(freeze).toContain('frozen-keep-bn — BatchNorm trainable');
    expect(freeze).toContain('65.00% (1/5 epochs so far), +10.00 points over frozen');
    expect(freeze).toContain('npm run experiments -- --only frozen-upsample');
    expect(freeze).toContain('varies by 1.41 points');
    expect(a.freeze.cites).toEqual(['lab-dynamic-s0', 'frozen-all', 'frozen-keep-bn']);
    expect(a.freeze.figures.map((f) => f.name)).toEqual(['report-freeze-curves']);
    const traces = a.freeze.figures[0].figure.data.map((t) => String(t.name));
    expect(new Set(traces)).toEqual(new Set(['lab-dynamic-s0 · train', 'lab-dynamic-s0 · test', 'frozen-all · train', 'frozen-all · test', 'frozen-keep-bn · train', 'frozen-keep-bn · test']));

    // pros and cons: counts per part and the step times, cached filters as cheap as static
    expect(a['dynamic-pros-cons'].status).toBe('answered');
    const pc = text(a['dynamic-pros-cons']);
    expect(pc).toContain('54,977 against 4,865'); // head parameters: embed + gen + score vs dc + score
    expect(pc).toContain('ratio 1.20');
    expect(pc).toContain('inference step with cached filters takes 30.5 ± 1.0 ms, against 30.0 ± 1.0 ms for the static head');
    expect(pc).not.toContain('load average');

    // stability: a diverged run is a result; the missing one named
    const st = text(a.stability);
    expect(a.stability.status).toBe('partial');
    expect(st).toContain('ablate-no-norm : diverged after 1 finished epoch(s) — loss became NaN at step 412');
    expect(st).toContain('ablate-no-scale : best 79.00% (epoch 2), final 79.00%, −1.00 points against lab-dynamic-s0');
    expect(st).toContain('npm run experiments -- --only ablate-no-norm-no-scale');
    expect(a.stability.cites).toEqual(['lab-dynamic-s0', 'ablate-no-norm', 'ablate-no-scale']);
    expect(a.stability.figures[0].name).toBe('report-ablation-curves');

    // beyond: not run; an estimate from lab-dynamic-s0's 100 s per epoch, labelled as such; the sweep cited
    expect(a.beyond.status).toBe('no-run-yet');
    expect(text(a.beyond)).toContain('40 epochs at lab-dynamic-s0 \'s 100 s per training pass would take about 1.1 h');
    expect(text(a.beyond)).toContain('best40 40');
    expect(text(a.beyond)).toContain('85.53%');

    // the table and the bars: one bar per experiment with a result, unfinished ones starred
    const bars = experimentBars(ev)!;
    expect(bars.figure.data[0].x).toEqual(['lab-dynamic-s0', 'lab-static-s0', 'lab-dynamic-s1', 'lab-static-s1', 'frozen-all', 'frozen-keep-bn*', 'ablate-no-scale']);
    expect(bars.figure.data[0].y).toEqual([0.8, 0.7, 0.78, 0.66, 0.55, 0.65, 0.79]);
    expect(experimentTableHtml(ev)).toContain('7 of 14 finished'); // 6 done + 1 diverged
  });

  it('reads each fix and ablation against the seed spread, and says which cause weighs most, once all have finished', () => {
    const dir = path.join(root, 'finished');
    // Three seeds: best 80/79/81% → std 1.00 point.
    makeRun(dir, 'lab-dynamic-s0', [0.8]);
    makeRun(dir, 'lab-dynamic-s1', [0.79]);
    makeRun(dir, 'lab-dynamic-s2', [0.81]);
    makeRun(dir, 'frozen-all', [0.55]);
    makeRun(dir, 'frozen-keep-bn', [0.6]); // +5 points: 5 stds
    makeRun(dir, 'frozen-upsample', [0.555]); // +0.5 points: within 2 stds
    makeRun(dir, 'frozen-adapter', [0.75]); // +20 points
    makeRun(dir, 'ablate-no-norm', [0.795]); // −0.5: within
    makeRun(dir, 'ablate-no-scale', [0.77]); // −3: a loss
    makeRun(dir, 'ablate-no-norm-no-scale', [0.76]); // −4: a loss
    writeTable(dir, {});
    const a = byId(answerQuestions(loadLabResults({ resultsDir: dir }), loadEvidence(dir, { sweepFile: path.join(dir, 'none.jsonl') })));
    const freeze = text(a.freeze);
    expect(freeze).toContain('+5.00 points over frozen (5.0 times the seed std: a real gain, though from one seed)');
    expect(freeze).toContain('+0.50 points over frozen (within twice the seed spread: no measurable effect)');
    expect(freeze).toContain('Freezing costs 25.00 points; of those, each fix on its own wins back: frozen-adapter (3) 80%, frozen-keep-bn (2) 20%, frozen-upsample (1) 2%');
    expect(freeze).toContain('cause (3), a head that cannot re-mix the frozen features, weighs most');
    expect(freeze).toContain('frozen-upsample on its own gives nothing measurable');
    const st = text(a.stability);
    expect(st).toContain('−0.50 points against lab-dynamic-s0 (80.00%) (within twice the seed spread: no measurable effect)');
    expect(st).toContain('nothing diverged');
    expect(st).toContain('no measurable change for ablate-no-norm (no filter norm)');
    expect(st).toContain('a loss of 3.0 points for ablate-no-scale (no /√64) and 4.0 points for ablate-no-norm-no-scale');
    expect(st).toContain('the devices buy a little accuracy');
  });

  it('warns when step times were taken under load, and answers the recipe when best-dynamic reached 85%', () => {
    const dir = path.join(root, 'loaded');
    makeRun(dir, 'lab-dynamic-s0', [0.76]);
    makeRun(dir, 'best-dynamic', [0.8, 0.86]);
    writeTable(dir, {});
    writeMeasurements(dir, times(6.5));
    const a = byId(answerQuestions(loadLabResults({ resultsDir: dir }), loadEvidence(dir, { sweepFile: path.join(dir, 'none.jsonl') })));
    expect(text(a['dynamic-pros-cons'])).toContain('load average of 6.5 on 2 cores');
    // What other processes took during the timing decides when it is known: the load average
    // trails by a minute, so a quiet timing right after training must not be flagged ...
    writeMeasurements(dir, times(6.5, 0.02));
    const quiet = text(byId(answerQuestions(loadLabResults({ resultsDir: dir }), loadEvidence(dir, { sweepFile: path.join(dir, 'none.jsonl') })))['dynamic-pros-cons']);
    expect(quiet).not.toContain('load average');
    expect(quiet).not.toContain('Re-measure');
    // ... and a busy one is, whatever the load average says.
    writeMeasurements(dir, times(0.1, 0.6));
    const busy = text(byId(answerQuestions(loadLabResults({ resultsDir: dir }), loadEvidence(dir, { sweepFile: path.join(dir, 'none.jsonl') })))['dynamic-pros-cons']);
    expect(busy).toContain('other processes took 60% of the 2 CPUs');
    expect(a.beyond.status).toBe('answered'); // the synthetic table marks it done
    expect(text(a.beyond)).toContain('best test accuracy 86.00% at epoch 2');
    expect(text(a.beyond)).toContain('That meets the 85% target');
    expect(a.beyond.cites).toEqual(['best-dynamic']);
    expect(a.beyond.figures.map((f) => f.name)).toEqual(['report-best-curves']);
  });

  it('says "no run yet" with the command for every question when results/ is empty', () => {
    const dir = path.join(root, 'empty');
    fs.mkdirSync(dir);
    const ev = loadEvidence(dir, { sweepFile: path.join(dir, 'none.jsonl') });
    expect(ev).toEqual({ experiments: [], measurements: [], sweep: [] });
    const answers = answerQuestions(loadLabResults({ resultsDir: dir }), ev);
    expect(answers.map((a) => a.status)).toEqual(new Array(6).fill('no-run-yet'));
    expect(byId(answers)['dynamic-pros-cons'].html).toContain('npm run experiments -- --measure');
    expect(byId(answers).freeze.html).toContain('npm run experiments -- --only lab-dynamic-s0,frozen-all');
    expect(experimentBars(ev)).toBeUndefined();
    expect(experimentTableHtml(ev)).toContain('No experiment table yet');
  });
});
