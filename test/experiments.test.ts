// The experiment table and its runner on tiny real slices of CIFAR-10 (128 train / 64 test
// images): the table has every experiment of the issue; the runner skips finished runs, resumes
// partial ones from their last checkpoint, records diverged ones, refuses mismatched configs
// without touching anything; the Parquet tables read back.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCifar10, type Cifar10Split } from '../lib/data/cifar10';
import { PATHS } from '../lib/config';
import { EXPERIMENTS_FILE, readExperimentTable, writeExperimentTable } from '../lib/experiments/experiment-table';
import {
  DIVERGED_FILE,
  EXPERIMENT_GROUPS,
  EXPERIMENTS,
  experimentConflicts,
  experimentDirs,
  experimentStatus,
  findExperiment,
  LAB_EXPERIMENTS,
  labRunConfig,
  BASE_SEEDS,
  PAIRED_COMPARISONS,
  PAIRED_EXPERIMENTS,
  PAIRED_SEEDS,
  quickExperiment,
  SUITES,
  runExperiments,
  selectExperiments,
  VALIDATION_IMAGES,
  type ArmName,
  type Experiment,
  type ExperimentEvent,
  type LabRunName,
} from '../lib/experiments/experiments';
import {
  measurementFrame,
  parameterRows,
  readMeasurements,
  timeSteps,
  writeMeasurements,
} from '../lib/experiments/measurements';
import { readRunEpochs } from '../lib/train/metrics';
import { describeState } from '../lib/model/model';
import { train } from '../lib/train/train';
import { resolvePrecision } from '../lib/runtime/precision';
import { LAB_RECIPE, trainConfig, validateConfig, type TrainConfig } from '../lib/train/train-config';
import { fileDigests } from './helpers/files';

let resultsDir: string;
let runsDir: string;
let data: { train: Cifar10Split; test: Cifar10Split };
beforeAll(() => {
  resultsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-experiments-'));
  runsDir = path.join(resultsDir, 'runs');
  data = { train: loadCifar10('train', { limit: 128 }), test: loadCifar10('test', { limit: 64 }) };
});
afterAll(() => fs.rmSync(resultsDir, { recursive: true, force: true }));

const tiny = (name: string, over: Partial<TrainConfig> = {}): Experiment => ({
  name,
  arm: name,
  group: 'compare',
  purpose: 'test',
  relativeEpochCost: 1,
  config: trainConfig({ run: name, epochs: 1, limitTrain: 128, limitTest: 64, logEvery: 1, ...over }),
});

describe('the experiment table', () => {
  it('names every experiment once per suite, each its own run, and covers every group of the issue', () => {
    const all = Object.values(SUITES).flat();
    for (const suite of Object.values(SUITES)) {
      const names = suite.map((e) => e.name);
      expect(new Set(names).size).toBe(names.length);
    }
    for (const e of all) {
      expect(e.config.run).toBe(e.name);
      expect(validateConfig(e.config)).toEqual(e.config);
      expect(e.relativeEpochCost).toBeGreaterThan(0);
    }
    expect(new Set(all.map((e) => e.group))).toEqual(new Set(EXPERIMENT_GROUPS));
    // The lab suite: the lab's recipe for both heads, seed 0, nothing else changed.
    for (const variant of ['dynamic', 'static'] as const) {
      const [e] = LAB_EXPERIMENTS.filter((x) => x.group === 'compare' && x.config.variant === variant);
      expect({ ...e.config, run: '' }).toEqual({ ...LAB_RECIPE, run: '', variant });
    }
    // Its freezing runs: both semantics of "frozen" and two fixes, on the dynamic net with the lab's recipe otherwise.
    const freeze = Object.fromEntries(
      LAB_EXPERIMENTS.filter((e) => e.group === 'freeze').map((e) => [e.name, e.config]),
    );
    expect(freeze['frozen-requires-grad']).toMatchObject({ freeze: 'requires-grad', adapter: false });
    expect(freeze['frozen-eval']).toMatchObject({ freeze: 'all', upsample: 1, adapter: false });
    expect(freeze['fix-bn-only']).toMatchObject({ freeze: 'keep-bn' });
    expect(freeze['fix-adapter']).toMatchObject({ freeze: 'all', adapter: true });
    for (const c of Object.values(freeze))
      expect(c).toMatchObject({ variant: 'dynamic', seed: 0, epochs: 5, lr: 1e-3, norm: 'half', augment: false });
    // The paired suite's controls, one factor each.
    const arm = (name: ArmName) => findExperiment(`${name}-s0`, PAIRED_EXPERIMENTS).config;
    expect(arm('static-l2')).toMatchObject({ variant: 'static', staticNorm: true });
    expect(arm('frozen-eval-imagenet')).toMatchObject({ freeze: 'all', norm: 'imagenet' });
    expect(arm('fix-stem-frozen')).toMatchObject({ freeze: 'stem' });
    expect(arm('dynamic-folded')).toMatchObject({ weights: 'folded', variant: 'dynamic' });
    expect(arm('ablate-no-norm')).toMatchObject({ filterNorm: false, responseScale: true });
    expect(arm('ablate-no-scale')).toMatchObject({ filterNorm: true, responseScale: false });
    // the recipe beyond the lab.
    const best = all.find((e) => e.group === 'recipe')!.config;
    expect(best).toMatchObject({ variant: 'dynamic', norm: 'imagenet', augment: true, schedule: 'cosine' });
    expect(best.labelSmoothing).toBeGreaterThan(0);
    expect(best.epochs).toBeGreaterThanOrEqual(15);
  });

  it('refuses a run saved before the weights setting, saying how to convert it', () => {
    // config.json as `npm run train -- --run lab-dynamic-s0 …` wrote it before `weights` and the architecture options existed.
    const old = {
      run: 'lab-dynamic-s0',
      variant: 'dynamic',
      epochs: 5,
      batchSize: 64,
      lr: 0.001,
      seed: 0,
      norm: 'half',
      augment: false,
      freeze: 'none',
      pretrained: true,
      limitTrain: 0,
      limitTest: 0,
      val: 0,
      labelSmoothing: 0,
      schedule: 'constant',
      weightDecay: 0,
      selectBy: 'test',
      logEvery: 10,
      evalBatchSize: 500,
    };
    const dir = path.join(resultsDir, 'old-runs', 'lab-dynamic-s0');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(old));
    const status = experimentStatus(findExperiment('lab-dynamic-s0'), path.dirname(dir));
    expect(status.state).toBe('unreadable');
    expect(status.detail[0]).toContain(`${path.join(dir, 'config.json')}: weights is missing`);
    expect(status.detail[0]).toContain('retrain it, or add "weights": "folded" to its config.json');
    // Converted as the message says, it is the lab run that started from the folded file.
    const saved = validateConfig({ ...old, weights: 'folded' });
    // Its fp32 is a conflict only where the lab suite's 'auto' means bf16 (an AMX machine).
    const autoIsBf16 = resolvePrecision('auto').precision === 'bf16';
    expect(experimentConflicts(saved, findExperiment('lab-dynamic-s0').config)).toEqual([
      'weights: the run has "folded", the experiment wants "torchvision"',
      ...(autoIsBf16 ? ['precision: the run has "fp32", the experiment wants "auto"'] : []),
    ]);
    // An explicit precision against another always conflicts; 'auto' against what it resolves to here never does.
    const lab = findExperiment('lab-dynamic-s0').config;
    expect(experimentConflicts({ ...lab, precision: 'bf16' }, { ...lab, precision: 'fp32' })).toEqual([
      'precision: the run has "bf16", the experiment wants "fp32"',
    ]);
    expect(
      experimentConflicts({ ...lab, precision: resolvePrecision('auto').precision }, { ...lab, precision: 'auto' }),
    ).toEqual([]);
  });

  it('the recorded suites are fp32: their runs, saved before precision existed, are still their experiments', () => {
    for (const e of LAB_EXPERIMENTS) expect(e.config.precision, e.name).toBe('auto');
    for (const suite of ['paired', 'recipe'] as const) {
      // Every arm but the precision comparison's own bf16 arm.
      for (const e of SUITES[suite])
        expect(e.config.precision, e.name).toBe(e.arm === 'dynamic-bf16' ? 'bf16' : 'fp32');
      // configs.json: the recorded runs' configs as saved, the first batch's without precision (read as fp32).
      const file = path.join(PATHS.recorded, suite, 'configs.json');
      const recorded = Object.entries(JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, TrainConfig>);
      expect(recorded.filter(([, c]) => c.precision === undefined).length).toBeGreaterThan(0);
      for (const [name, saved] of recorded) {
        const wanted = findExperiment<Experiment>(name, SUITES[suite]).config;
        expect(experimentConflicts(validateConfig(saved), wanted), name).toEqual([]);
      }
    }
  });

  it('quick mode: the same settings on a slice, one epoch, in results/quick — never results/runs', () => {
    for (const e of EXPERIMENTS) {
      const q = quickExperiment(e);
      expect(q.config).toEqual({ ...e.config, epochs: 1, limitTrain: 256, limitTest: 128 });
    }
    expect(experimentDirs({ quick: true }).runsDir).toBe(path.join(PATHS.quick, 'runs'));
    expect(experimentDirs({ quick: true }).runsDir).not.toBe(PATHS.runs);
    expect(experimentDirs({}).runsDir).toBe(PATHS.runs);
    expect(() => selectExperiments(['lab-dynamic-s0', 'nope'])).toThrow(
      /no experiment named 'nope'; experiments: lab-dynamic-s0, /,
    );
  });
});

describe('runExperiments', () => {
  const a = tiny('a');
  const b = tiny('b', { epochs: 2, variant: 'static' });
  const table = [a, b];

  it('runs what is not started, resumes a partial run from its last checkpoint, and then skips both', async () => {
    // b stops after its first epoch, as if the machine had been switched off.
    await expect(
      train(b.config, {
        runsDir,
        data,
        onProgress: (e) => {
          if (e.type === 'checkpoint' && e.kind === 'last') throw new Error('power cut');
        },
      }),
    ).rejects.toThrow('power cut');
    expect(experimentStatus(b, runsDir)).toMatchObject({ state: 'partial', epochsDone: 1, epochs: 2 });
    expect(experimentStatus(a, runsDir)).toMatchObject({ state: 'not-started', epochsDone: 0, bestAccuracy: null });

    const events: ExperimentEvent[] = [];
    const outcomes = await runExperiments({ experiments: table, runsDir, data, onEvent: (e) => events.push(e) });
    expect(outcomes.map((o) => [o.name, o.result])).toEqual([
      ['a', 'trained'],
      ['b', 'trained'],
    ]);
    expect(outcomes[0].train).toMatchObject({ startEpoch: 0, epoch: 1 });
    expect(outcomes[1].train).toMatchObject({ startEpoch: 1, epoch: 2 }); // resumed, not restarted
    const startOfB = events.find((e) => e.type === 'train' && e.experiment.name === 'b' && e.event.type === 'start');
    expect(startOfB?.type === 'train' && startOfB.event.type === 'start' && startOfB.event.resumedFrom).toBe('last');
    expect(
      readRunEpochs(path.join(runsDir, 'b'))
        .filter((r) => r.split === 'test')
        .map((r) => [r.epoch, r.session]),
    ).toEqual([
      [1, 1],
      [2, 2],
    ]);
    for (const e of table)
      expect(experimentStatus(e, runsDir)).toMatchObject({ state: 'done', epochsDone: e.config.epochs });
    expect(experimentStatus(b, runsDir).bestAccuracy).toBeGreaterThanOrEqual(0);

    // Again: nothing to do, nothing written.
    const before = fileDigests(runsDir);
    const again = await runExperiments({ experiments: table, runsDir, data });
    expect(again.map((o) => o.result)).toEqual(['skipped', 'skipped']);
    expect(fileDigests(runsDir)).toEqual(before);
  });

  it('refuses to start when a run of the same name has another config, says what differs, and changes nothing', async () => {
    const c = tiny('c');
    await train({ ...c.config, lr: 5e-4, augment: true }, { runsDir, data });
    const d = tiny('d');
    const before = fileDigests(runsDir);
    await expect(runExperiments({ experiments: [c, d], runsDir, data })).rejects.toThrow(
      /refusing to run.*c \(mismatch\):\s+lr: the run has 0\.0005, the experiment wants 0\.001\s+augment: the run has true, the experiment wants false/s,
    );
    expect(fileDigests(runsDir)).toEqual(before); // d was not trained either
    expect(experimentStatus(d, runsDir).state).toBe('not-started');
    // Bookkeeping fields are not a mismatch.
    expect(experimentStatus({ ...c, config: { ...c.config, logEvery: 5, evalBatchSize: 32 } }, runsDir).state).toBe(
      'mismatch',
    );
    expect(
      experimentStatus(
        { ...c, config: { ...c.config, lr: 5e-4, augment: true, logEvery: 5, evalBatchSize: 32 } },
        runsDir,
      ).state,
    ).toBe('done');
  });

  it('records a diverged run, goes on with the next one, and skips it on a rerun unless asked', async () => {
    const boom = tiny('boom', { lr: 1e30, epochs: 2 });
    const after = tiny('after');
    const outcomes = await runExperiments({ experiments: [boom, after], runsDir, data });
    expect(outcomes.map((o) => o.result)).toEqual(['diverged', 'trained']);
    expect(outcomes[0].error).toMatch(/training diverged/);
    const record = JSON.parse(fs.readFileSync(path.join(runsDir, 'boom', DIVERGED_FILE), 'utf8'));
    expect(record).toMatchObject({ config: boom.config });
    expect(experimentStatus(boom, runsDir)).toMatchObject({ state: 'diverged' });
    const again = await runExperiments({ experiments: [boom, after], runsDir, data });
    expect(again.map((o) => o.result)).toEqual(['skipped', 'skipped']);
  });
});

describe('Parquet tables', () => {
  it('experiments.parquet: one row per experiment with status, accuracies, times and parameter counts; reads back', () => {
    const table = [
      tiny('a'),
      tiny('b', { epochs: 2, variant: 'static' }),
      tiny('never', { freeze: 'all', adapter: true }),
    ];
    const { file, rows } = writeExperimentTable({ resultsDir, experiments: table });
    expect(file).toBe(path.join(resultsDir, EXPERIMENTS_FILE));
    const back = readExperimentTable(file);
    expect(back.map((r) => r.name)).toEqual(['a', 'b', 'never']);
    expect(back.map((r) => r.status)).toEqual(['done', 'done', 'not-started']);
    expect(back[1]).toMatchObject({
      variant: 'static',
      epochs: 2,
      epochsDone: 2,
      subset: true,
      run: path.join('runs', 'b'),
    });
    expect(back.map((r) => r.precision)).toEqual(['auto', 'auto', 'auto']);
    const status = experimentStatus(table[1], runsDir);
    expect(back[1].bestTestAccuracy).toBeCloseTo(status.bestAccuracy!, 12);
    expect(back[1].finalTestAccuracy).toBeCloseTo(status.finalAccuracy!, 12);
    expect(back[1].secondsPerEpoch).toBeGreaterThan(0);
    expect(back[2]).toMatchObject({
      bestTestAccuracy: null,
      finalTestAccuracy: null,
      bestEpoch: null,
      adapter: true,
      freeze: 'all',
    });
    // Parameter counts: every parameter, and only the trained ones under the experiment's freezing.
    const adapterNet = describeState('dynamic', { adapter: true }, 'all').filter((p) => p.kind === 'parameter');
    expect(Number(back[2].parameters)).toBe(adapterNet.reduce((s, p) => s + p.size, 0));
    expect(Number(back[2].trainableParameters)).toBe(
      adapterNet.filter((p) => !p.name.startsWith('backbone.')).reduce((s, p) => s + p.size, 0),
    );
    expect(Number(back[2].trainableParameters)).toBeLessThan(Number(back[2].parameters));
    expect(rows.length).toBe(3);
  });

  it('measurements.parquet: parameters per head and part, and step times, read back', async () => {
    const base = { backend: 'test', cpus: 2, load1: 0, othersShare: null, time: new Date() };
    const params = parameterRows(base);
    const count = (variant: string, part: string, measure = 'parameters') =>
      params.find((r) => r.variant === variant && r.setting === 'lab' && r.part === part && r.measure === measure)!
        .value;
    // The heads differ only in how the ten filters come about: embeddings + generator vs ten learned filters.
    expect(count('dynamic', 'total') - count('dynamic', 'head.embed') - count('dynamic', 'head.gen')).toBe(
      count('static', 'total') - count('static', 'head.dc'),
    );
    expect(count('static', 'head.dc')).toBe(640);
    expect(count('dynamic', 'head.embed')).toBe(1280);
    expect(count('dynamic', 'head.gen')).toBe(128 * 256 + 256 + 256 * 64 + 64);
    const times = await timeSteps(
      [
        {
          variant: 'dynamic',
          freeze: 'none',
          architecture: { filterNorm: true, staticNorm: false, responseScale: true, upsample: 1, adapter: false },
        },
      ],
      { batch: 8, steps: 2, rounds: 1, warmup: 1 },
    );
    expect(times.map((t) => t.measure).sort()).toEqual([
      'filter-generation',
      'inference-step',
      'inference-step-precomputed-filters',
      'train-step',
    ]);
    for (const t of times) expect(t).toMatchObject({ unit: 'ms', n: 2, setting: 'lab' });
    for (const t of times) expect(t.value).toBeGreaterThan(0);
    // How quiet the timing was: a share of all CPUs (Linux /proc is there on these machines).
    for (const t of times) expect(t.othersShare).toBeGreaterThanOrEqual(0);
    for (const t of times) expect(t.othersShare).toBeLessThanOrEqual(1);
    const file = writeMeasurements(resultsDir, [...params, ...times]);
    const back = readMeasurements(file);
    expect(back.length).toBe(params.length + times.length);
    expect(measurementFrame(back).columns).toEqual(measurementFrame(params).columns);
    expect(back.find((r) => r.measure === 'train-step')!.value).toBeCloseTo(
      times.find((t) => t.measure === 'train-step')!.value,
      9,
    );
    expect(back.find((r) => r.measure === 'train-step')!.othersShare).toBeCloseTo(
      times.find((t) => t.measure === 'train-step')!.othersShare!,
      9,
    );
    expect(back.find((r) => r.measure === 'parameters')!.othersShare).toBeNull();
    // A file from before the othersShare column still reads, as unknown quietness.
    const old = path.join(resultsDir, 'old-measurements.parquet');
    fs.writeFileSync(old, measurementFrame(back).drop('othersShare').writeParquet());
    const oldBack = readMeasurements(old);
    expect(oldBack.length).toBe(back.length);
    expect(oldBack.every((r) => r.othersShare === null)).toBe(true);
  });
});

describe('the suites', () => {
  it('pairs every arm of the paired suite over the same seeds, selected on the fixed validation split', () => {
    const arms = new Map<string, number[]>();
    for (const e of PAIRED_EXPERIMENTS) {
      if (e.group === 'recipe') continue;
      expect(e.name).toBe(`${e.arm}-s${e.config.seed}`);
      arms.set(e.arm, [...(arms.get(e.arm) ?? []), e.config.seed]);
    }
    // The main comparison has ten paired seeds, every other arm the first five of them.
    // bf16 takes seeds 5–7, whose fp32 runs share its machine and code.
    const seedsOf = (arm: string) =>
      ['dynamic', 'static', 'static-l2'].includes(arm)
        ? [...PAIRED_SEEDS]
        : arm === 'dynamic-bf16'
          ? [5, 6, 7]
          : [...BASE_SEEDS];
    for (const [arm, seeds] of arms) expect(seeds, arm).toEqual(seedsOf(arm));
    expect(PAIRED_SEEDS.length).toBeGreaterThanOrEqual(10);
    expect(PAIRED_SEEDS.slice(0, BASE_SEEDS.length)).toEqual([...BASE_SEEDS]);
    // The lab's protocol arms train on all 50k and select on test; every other arm on the validation split.
    for (const e of PAIRED_EXPERIMENTS) {
      expect([e.config.val, e.config.selectBy], e.name).toEqual(
        e.group === 'protocol' ? [0, 'test'] : [VALIDATION_IMAGES, 'val'],
      );
    }
    // Seed k of two arms differs only in what the arms change (and never in the seed).
    const a = findExperiment('dynamic-s3', PAIRED_EXPERIMENTS).config;
    const b = findExperiment('static-l2-s3', PAIRED_EXPERIMENTS).config;
    expect(
      experimentConflicts(a, { ...b, run: a.run })
        .map((l) => l.split(':')[0])
        .sort(),
    ).toEqual(['staticNorm', 'variant']);
  });

  it('compares only arms that exist, and keeps the lab suite on the lab rule', () => {
    const arms = new Set(PAIRED_EXPERIMENTS.map((e) => e.arm));
    for (const c of PAIRED_COMPARISONS) {
      expect(arms.has(c.a), c.a).toBe(true);
      expect(arms.has(c.b), c.b).toBe(true);
    }
    for (const e of LAB_EXPERIMENTS) {
      expect([e.config.seed, e.config.val, e.config.selectBy], e.name).toEqual([0, 0, 'test']);
      expect(labRunConfig(e.name as LabRunName)).toEqual(e.config);
    }
    expect(() => labRunConfig('nope' as LabRunName)).toThrow(/no experiment named 'nope'/);
  });
});
