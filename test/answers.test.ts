// The answers quote two sources kept apart: your runs (the lab suite: results/experiments.parquet,
// results/measurements.parquet, the runs' curves) and the recorded paired suite
// (results/recorded/paired). Synthetic run folders and tables in a temp dir, real Parquet round
// trips; checks that every number and verdict quoted is computed from the files, that missing
// runs are named with the command that runs them, and that a diverged run is reported.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import pl from 'nodejs-polars';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerQuestions, experimentBars, experimentTableHtml, loadEvidence, type Answer } from '../lib/report/answers';
import { LAB_EXPERIMENTS } from '../lib/experiments/experiments';
import { experimentFrame, experimentRows, EXPERIMENTS_FILE, type ExperimentRow } from '../lib/experiments/experiment-table';
import { saveFigureJson } from '../lib/report/figures-export';
import { parameterRows, writeMeasurements, type MeasurementRow } from '../lib/experiments/measurements';
import { appendEpoch, type EpochRow } from '../lib/train/metrics';
import { meanStdBars } from '../lib/report/plots';
import { RECORDED_SCHEMA, type Provenance, type RecordedRow } from '../lib/experiments/recorded';
import { loadLabResults } from '../lib/experiments/results';
import { trainConfig, type TrainConfig } from '../lib/train/train-config';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-answers-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** A run folder with its config and `acc.length` epochs of test accuracy acc[e] (a lab-suite name, or a config). */
function makeRun(resultsDir: string, nameOrConfig: string | TrainConfig, acc: number[]): void {
  const config = typeof nameOrConfig === 'string' ? LAB_EXPERIMENTS.find((x) => x.name === nameOrConfig)!.config : nameOrConfig;
  const name = config.run;
  const dir = path.join(resultsDir, 'runs', name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  acc.forEach((a, i) => {
    const base = { run: name, session: 1, resumedFrom: 0, variant: config.variant, seed: config.seed, backend: 'test', epoch: i + 1, step: 10 * (i + 1), lr: 1e-3, time: new Date(0) };
    const row = (split: 'train' | 'test', accuracy: number): EpochRow => ({
      ...base, split, images: 100, loss: 2 - accuracy, accuracy, perClassAccuracy: new Array(10).fill(accuracy), imagesPerSecond: 100, wallSeconds: split === 'train' ? 100 : 5,
    });
    appendEpoch(dir, [row('train', a + 0.05), row('test', a)], []);
  });
}

/** The lab suite's table for the runs above (as lib/experiment-table computes it), with overrides per name. */
function writeTable(resultsDir: string, overrides: Record<string, Partial<ExperimentRow>> = {}): ExperimentRow[] {
  const rows = experimentRows({ resultsDir }).map((r) => {
    const runDir = path.join(resultsDir, 'runs', r.name);
    // No checkpoints in these synthetic runs: a run with metrics counts as done.
    const done = fs.existsSync(runDir) && r.bestTestAccuracy !== null ? { status: 'done' as const, epochsDone: r.epochs } : {};
    return { ...r, ...done, ...overrides[r.name] };
  });
  fs.writeFileSync(path.join(resultsDir, EXPERIMENTS_FILE), experimentFrame(rows).writeParquet());
  return rows;
}

/**
 * A recorded paired suite in `dir`: arm → selected test accuracy per seed (null: not finished);
 * `status` overrides a run's status by name (e.g. diverged).
 */
function writeRecorded(dir: string, arms: Record<string, (number | null)[]>, status: Record<string, string> = {}): void {
  const rows: RecordedRow[] = Object.entries(arms).flatMap(([arm, accs]) =>
    accs.map((acc, seed) => {
      const name = arm === 'best-dynamic' ? arm : `${arm}-s${seed}`;
      return {
        name, suite: 'paired', group: 'test', arm, purpose: 'test', settings: arm === 'best-dynamic' ? 'norm=imagenet, epochs=40' : arm, variant: 'dynamic', seed,
        status: status[name] ?? (acc === null ? 'not-started' : 'done'), epochs: arm === 'best-dynamic' ? 40 : 5, epochs_done: acc === null ? 0 : arm === 'best-dynamic' ? 40 : 5,
        select_by: 'val', selected_epoch: acc === null ? null : 4, selected_test_acc: acc, best_test_acc: acc, final_test_acc: acc, best_val_acc: acc === null ? null : acc + 0.01,
        train_images_per_s: 200, train_seconds_per_epoch: acc === null ? null : 225,
      };
    }),
  );
  fs.mkdirSync(dir, { recursive: true });
  const df = pl.DataFrame((Object.keys(RECORDED_SCHEMA) as (keyof RecordedRow)[]).map((k) => pl.Series(k, rows.map((r) => r[k]) as unknown[], RECORDED_SCHEMA[k])));
  fs.writeFileSync(path.join(dir, 'experiments.parquet'), df.writeParquet());
  const provenance: Provenance = {
    suite: 'paired', commit: 'abcdef1234567890-dirty', machine: { cpu: 'Test CPU 9000', cores: 2, flags: ['avx2'], memoryGiB: 8 }, backend: 'tensorflow 2.21.0 (test)',
    recordedAt: '2025-03-04T10:00:00.000Z', firstEpochAt: '2025-03-01T08:00:00.000Z', lastEpochAt: '2025-03-03T20:00:00.000Z', runSeconds: 1000, command: 'test', note: '',
  };
  fs.writeFileSync(path.join(dir, 'provenance.json'), JSON.stringify(provenance));
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
/** An answer's text: tags dropped, entities decoded, spaces collapsed (none before punctuation). */
const text = (a: Answer) =>
  a.html.replace(/<[^>]+>/g, ' ').replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&').replace(/\s+/g, ' ').replace(/ ([.,;:)'])/g, '$1').replace(/\( /g, '(');
const plus = (xs: readonly number[], ds: readonly number[]) => xs.map((x, i) => x + ds[i]);

// Recorded accuracies per seed. dynamic beats static on every seed by 1–3 points (mean 2, sd 1);
// static-l2 against static flips sign; the fixes are built on their controls.
const DYNAMIC = [0.8, 0.81, 0.79, 0.82, 0.8];
const STATIC = plus(DYNAMIC, [-0.02, -0.03, -0.01, -0.03, -0.01]);
const FROZEN_RG = plus(DYNAMIC, [-0.2, -0.21, -0.19, -0.2, -0.2]);
const FROZEN_EVAL = plus(DYNAMIC, [-0.25, -0.26, -0.24, -0.25, -0.25]);
const RECORDED = {
  dynamic: DYNAMIC,
  static: STATIC,
  'static-l2': plus(STATIC, [0.01, -0.01, 0.02, -0.02, 0.005]),
  'frozen-requires-grad': FROZEN_RG,
  'frozen-eval': FROZEN_EVAL,
  'frozen-eval-imagenet': plus(FROZEN_EVAL, [0.01, -0.01, 0.005, -0.005, 0]), // nothing measurable
  'fix-bn-only': plus(FROZEN_RG, [0.05, 0.06, 0.04, 0.05, 0.05]),
  'fix-stem-frozen': plus(FROZEN_RG, [0.15, 0.16, 0.14, 0.15, 0.15]), // wins back 75% of the 20 points
  'dynamic-folded': plus(DYNAMIC, [0.004, -0.003, 0.002, -0.004, 0.001]),
  'ablate-no-norm': [...plus(DYNAMIC.slice(0, 4), [-0.03, -0.04, -0.02, -0.03]), null], // seed 4 diverged
  'ablate-no-scale': plus(DYNAMIC, [0.003, -0.002, 0.001, -0.003, 0.002]),
  'best-dynamic': [0.86],
};

describe('answers from your runs and the recorded paired suite', () => {
  it('answers every question from a finished lab suite and the recorded suite, the two kept apart, every verdict computed', () => {
    const dir = path.join(root, 'finished');
    makeRun(dir, 'lab-dynamic-s0', [0.7, 0.8]);
    makeRun(dir, 'lab-static-s0', [0.6, 0.7]);
    makeRun(dir, 'frozen-requires-grad', [0.6]);
    makeRun(dir, 'frozen-all', [0.55]);
    makeRun(dir, 'frozen-keep-bn', [0.65]);
    makeRun(dir, 'frozen-adapter', [0.75]);
    writeTable(dir);
    writeMeasurements(dir, times(0.5));
    saveFigureJson('response-map-test-1', meanStdBars([{ name: 'x', mean: 0.5, std: 0, n: 1 }]), path.join(dir, 'figures'));
    const recordedDir = path.join(dir, 'recorded');
    writeRecorded(recordedDir, RECORDED, { 'ablate-no-norm-s4': 'diverged' });
    const sweepFile = path.join(dir, 'sweep.jsonl');
    fs.writeFileSync(sweepFile, `${JSON.stringify({ config: { name: 'best40', epochs: 40 }, epochs_done: 40, best_test_accuracy: 0.8553, final_test_accuracy: 0.8538, seconds: 300 })}\n`);

    const ev = loadEvidence(dir, { sweepFile, recordedDir });
    expect(ev.experiments.map((r) => r.name)).toEqual(LAB_EXPERIMENTS.map((e) => e.name));
    expect(ev.recorded!.rows.length).toBe(Object.values(RECORDED).flat().length);
    expect(typeof ev.recorded!.rows[0].seed).toBe('number');
    const answers = answerQuestions(loadLabResults({ resultsDir: dir }), ev);
    const a = byId(answers);

    // After the lab suite, nothing is missing and no answer says a run is missing.
    expect(answers.map((x) => [x.id, x.status])).toEqual(['compare', 'response-maps', 'freeze', 'dynamic-pros-cons', 'stability', 'beyond'].map((id) => [id, 'answered']));
    for (const x of answers) expect(x.html).not.toMatch(/no run yet|not run yet/i);

    // compare: your one pair stated without a verdict; the recorded ones computed.
    const cmp = text(a.compare);
    expect(cmp).toContain('Your runs');
    expect(cmp).toContain('dynamic − static = +10.00 points');
    expect(cmp).toContain('one pair');
    // Recorded: differences 2, 3, 1, 3, 1 points → mean 2, sd 1, t(0.975, 4) = 2.776 → ±1.24; all 5 positive → p = 2/32.
    expect(cmp).toContain('Recorded results');
    expect(cmp).toContain('Test CPU 9000');
    expect(cmp).toContain('abcdef123456 (with uncommitted changes)');
    expect(cmp).toContain('from 2025-03-01 to 2025-03-03');
    expect(cmp).toContain("dynamic vs static (the lab's comparison: generator and L2 normalisation together): +2.00 points (95% interval +0.76 to +3.24), permutation p = 0.063, 5 win(s) and 0 loss(es) over 5 paired seed(s): better.");
    expect(cmp).toContain('static-l2 vs static (the L2 normalisation alone): +0.10 points');
    expect(cmp).toMatch(/static-l2 vs static \(the L2 normalisation alone\): [^:]*3 win\(s\) and 2 loss\(es\)[^:]*: no detectable difference at this n\./);
    expect(cmp).not.toContain('Welch');
    expect(a.compare.cites).toEqual(['lab-dynamic-s0', 'lab-static-s0']);

    // freeze: the two freezes told apart; the receptive field computed; the ranking and verdicts computed.
    const fr = text(a.freeze);
    expect(fr).toContain("frozen-requires-grad — THE LAB'S FREEZE: requires_grad = False");
    expect(fr).toContain('best 60.00% (epoch 1), −20.00 points against lab-dynamic-s0');
    expect(fr).toContain('frozen-all — a different experiment: parameters frozen AND BatchNorm in evaluation mode');
    expect(fr).toContain('best 55.00% (epoch 1), −5.00 points against frozen-requires-grad, −25.00 points against lab-dynamic-s0');
    expect(fr).toContain('frozen-adapter — fix for cause (3)');
    expect(fr).toContain('+20.00 points against frozen-all');
    expect(fr).toContain('Of your runs, lab-dynamic-s0 is highest at 80.00%; the best with a frozen backbone, frozen-adapter, is −5.00 points against lab-dynamic-s0');
    expect(fr).toContain('43×43 input pixels (7 + 2·2 + 2·4 + 2·4 + 2·4 + 2·4 = 43');
    expect(fr).not.toContain('quarter');
    expect(fr).not.toContain('frozen-upsample');
    expect(fr).toMatch(/fix-stem-frozen \+15\.00 points over frozen-requires-grad \(75% of the 20\.00 points frozen-requires-grad is behind dynamic\), better/);
    expect(fr).toContain("So causes (1) and (3) weigh most here (fix-stem-frozen: layer1's filters trained (the stem stays frozen)).");
    expect(fr).toMatch(/frozen-eval-imagenet against frozen-eval: no detectable difference at this n \(5 pairs\) — on its own, that fix gives nothing measurable/);
    expect(fr).toMatch(/The best fix by mean test accuracy, fix-stem-frozen \(75\.40%\): fix-stem-frozen vs dynamic [^:]*: −5\.00 points[^:]*: worse\. Training the whole backbone stays ahead of the best single fix\./);
    expect(fr).toMatch(/dynamic-folded vs dynamic \([^)]*\): [^:]*: no detectable difference at this n/);
    expect(fr).not.toContain('still beats every single fix');
    expect(a.freeze.cites).toEqual(['lab-dynamic-s0', 'frozen-requires-grad', 'frozen-all', 'frozen-keep-bn', 'frozen-adapter']);
    expect(a.freeze.figures.map((f) => f.name)).toEqual(['report-freeze-curves']);

    // pros and cons: counts, step times, and the accuracy from the recorded paired verdict.
    const pc = text(a['dynamic-pros-cons']);
    expect(pc).toContain('54,977 against 4,865'); // head parameters: embed + gen + score vs dc + score
    expect(pc).toContain('ratio 1.20');
    expect(pc).toContain('inference step with cached filters takes 30.5 ± 1.0 ms, against 30.0 ± 1.0 ms for the static head');
    expect(pc).toMatch(/Accuracy — recorded: dynamic vs static \([^)]*\): \+2\.00 points[^:]*: better\. Your runs: lab-dynamic-s0 80\.00% against lab-static-s0 70\.00% \(one pair, no verdict\)/);
    expect(pc).not.toContain('load average');

    // stability: the diverged seed left out and named, verdicts computed, the corrected argument.
    const st = text(a.stability);
    expect(st).toMatch(/ablate-no-norm vs dynamic [^:]*: −3\.00 points[^:]*over 4 paired seed\(s\): worse\./);
    expect(st).toMatch(/ablate-no-scale vs dynamic \([^)]*\): [^:]*: no detectable difference at this n\./);
    expect(st).toContain('Diverged: ablate-no-norm-s4 (1 of 10 finished ablation runs)');
    expect(st).toContain('ablate-no-norm: seed 4 diverged');
    expect(st).toContain('⟨f, x⟩ = ‖x‖ cos θ');
    expect(st).toContain('no ablation run');
    expect(a.stability.figures).toEqual([]);

    // beyond: from the recorded table, against the lab recipe on the same seed.
    const by = text(a.beyond);
    expect(by).toContain('best-dynamic (norm=imagenet, epochs=40; seed 0): test accuracy 86.00% at epoch 4 of 40');
    expect(by).toContain('That meets the 85% target');
    expect(by).toContain('(dynamic-s0) reached 80.00%: +6.00 points (one pair, no verdict)');
    expect(by).toContain('Training passes took 2.5 h');
    expect(by).toContain('best40 40');

    // the table and bars of your runs
    const bars = experimentBars(ev)!;
    expect(bars.figure.data[0].x).toEqual(LAB_EXPERIMENTS.map((e) => e.name));
    expect(bars.figure.data[0].y).toEqual([0.8, 0.7, 0.6, 0.55, 0.65, 0.75]);
    expect(experimentTableHtml(ev)).toContain('6 of 6 finished');
  });

  it('says what is missing: runs not yet trained, the recorded suite absent, arms without pairs, best-dynamic not recorded', () => {
    const dir = path.join(root, 'partial');
    makeRun(dir, 'lab-dynamic-s0', [0.7, 0.8]);
    makeRun(dir, 'frozen-all', [0.55]);
    makeRun(dir, 'frozen-keep-bn', [0.65]);
    // An ablation you trained by hand, outside the lab suite: shown as your run.
    makeRun(dir, trainConfig({ run: 'my-no-scale', responseScale: false }), [0.72, 0.79]);
    writeTable(dir, { 'frozen-keep-bn': { status: 'partial', epochsDone: 1 } });
    const none = path.join(dir, 'no-recorded');
    const a = byId(answerQuestions(loadLabResults({ resultsDir: dir }), loadEvidence(dir, { sweepFile: path.join(dir, 'none.jsonl'), recordedDir: none })));

    expect(a.compare.status).toBe('partial');
    expect(text(a.compare)).toContain('The recorded paired suite is missing');
    expect(a.compare.todo).toContain('--only lab-static-s0');
    expect(a.compare.todo).toContain('git checkout -- results/recorded');
    expect(text(a.compare)).not.toContain('dynamic − static');

    const fr = text(a.freeze);
    expect(a.freeze.status).toBe('partial');
    expect(fr).toContain('frozen-requires-grad — THE LAB\'S FREEZE');
    expect(fr).toContain('npm run experiments -- --only frozen-requires-grad');
    expect(fr).toContain('65.00% (epoch 1) (1/5 epochs so far), −15.00 points against lab-dynamic-s0');
    expect(a.freeze.cites).toEqual(['lab-dynamic-s0', 'frozen-all', 'frozen-keep-bn']);

    const st = text(a.stability);
    expect(a.stability.status).toBe('partial');
    expect(st).toContain('my-no-scale (responseScale=false, seed 0): best 79.00% (epoch 2), −1.00 points against lab-dynamic-s0 (80.00%)');
    expect(a.stability.cites).toEqual(['lab-dynamic-s0', 'my-no-scale']);
    expect(a.stability.figures.map((f) => f.name)).toEqual(['report-ablation-curves']);

    // beyond without the recorded suite: an estimate from your run, labelled as such
    expect(a.beyond.status).toBe('partial');
    expect(text(a.beyond)).toContain('Your lab recipe run lab-dynamic-s0 reached 80.00%');

    // A recorded suite with one seed per arm and no best-dynamic: too few pairs, and the command named.
    const thin = path.join(dir, 'thin');
    writeRecorded(thin, { dynamic: [0.8], static: [0.7, null], 'ablate-no-norm': [0.75], 'ablate-no-scale': [0.79] });
    const b = byId(answerQuestions(loadLabResults({ resultsDir: dir }), loadEvidence(dir, { sweepFile: path.join(dir, 'none.jsonl'), recordedDir: thin })));
    expect(text(b.compare)).toMatch(/dynamic vs static \([^)]*\): \+10\.00 points \(one pair: no interval\)[^:]*: too few pairs\./);
    expect(text(b.compare)).toContain('static: seed 1 not-started');
    expect(text(b.compare)).toMatch(/dynamic vs static-l2 [^:]*: no finished pair in the recorded suite yet\./);
    expect(b.stability.status).toBe('partial');
    expect(text(b.beyond)).toContain('Not in the recorded suite yet: best-dynamic — npm run experiments -- --suite paired --only best-dynamic');
    expect(text(b.beyond)).toContain("40 epochs: at lab-dynamic-s0's 100 s per training pass that would take about 1.1 h");
    expect(b.beyond.todo).toContain('npm run experiments -- --suite paired --only best-dynamic');
    expect(text(b.freeze)).toContain('What weighs most: the recorded suite has no fix with its control over two seeds or more yet');
  });

  it('warns when step times were taken under load', () => {
    const dir = path.join(root, 'loaded');
    makeRun(dir, 'lab-dynamic-s0', [0.76]);
    writeTable(dir);
    const answer = () => text(byId(answerQuestions(loadLabResults({ resultsDir: dir }), loadEvidence(dir, { sweepFile: path.join(dir, 'none.jsonl'), recordedDir: path.join(dir, 'none') })))['dynamic-pros-cons']);
    writeMeasurements(dir, times(6.5));
    expect(answer()).toContain('load average of 6.5 on 2 cores');
    // What other processes took during the timing decides when it is known: the load average
    // trails by a minute, so a quiet timing right after training must not be flagged ...
    writeMeasurements(dir, times(6.5, 0.02));
    const quiet = answer();
    expect(quiet).not.toContain('load average');
    expect(quiet).not.toContain('Re-measure');
    // ... and a busy one is, whatever the load average says.
    writeMeasurements(dir, times(0.1, 0.6));
    expect(answer()).toContain('other processes took 60% of the 2 CPUs');
  });

  it('says "no run yet" with the command for every question when results/ is empty and nothing is recorded', () => {
    const dir = path.join(root, 'empty');
    fs.mkdirSync(dir);
    const ev = loadEvidence(dir, { sweepFile: path.join(dir, 'none.jsonl'), recordedDir: path.join(dir, 'none') });
    expect(ev).toEqual({ experiments: [], measurements: [], sweep: [] });
    const answers = answerQuestions(loadLabResults({ resultsDir: dir }), ev);
    expect(answers.map((a) => a.status)).toEqual(new Array(6).fill('no-run-yet'));
    expect(byId(answers)['dynamic-pros-cons'].html).toContain('npm run experiments -- --measure');
    expect(byId(answers).compare.html).toContain('npm run experiments -- --only lab-dynamic-s0,lab-static-s0');
    expect(byId(answers).freeze.html).toContain('npm run experiments -- --only lab-dynamic-s0,frozen-requires-grad,frozen-all,frozen-keep-bn,frozen-adapter');
    expect(byId(answers).stability.html).toContain('npm run experiments -- --suite paired');
    expect(byId(answers).beyond.html).toContain('npm run experiments -- --suite paired --only best-dynamic');
    expect(experimentBars(ev)).toBeUndefined();
    expect(experimentTableHtml(ev)).toContain('No experiment table yet');
  });
});
