/**
 * Measurements the questions need that do not need training, in results/measurements.parquet:
 *
 *  - parameter counts per head and part (pure: lib/model's describeState), and
 *  - time per step of each distinct net the experiments train (variant × freezing ×
 *    architecture): a training step (forward, backward, Adam) and an inference step, and for the
 *    dynamic head the generator alone and inference with its filters computed once
 *    (headFilters(), reused: the filters depend on the class only, never on the image).
 *
 * Long format, one row per number (MEASUREMENT_SCHEMA):
 *   measure   'parameters' | 'trainable-parameters' | 'train-step' | 'inference-step'
 *             | 'inference-step-precomputed-filters' | 'filter-generation'
 *   setting   which net: 'lab' or how it differs ('freeze=all', 'freeze=all, upsample ×2', …)
 *   variant, part ('' for times; a part or 'total' for parameters), batch (0 for parameters)
 *   value     the count, or the median milliseconds per step
 *   unit      'count' | 'ms'
 *   spread    for times: half the spread between the 10th and 90th percentile (ms); 0 otherwise
 *   n         timed steps (1 for counts)
 *   backend, cpus, load1 (the load average when timed), othersShare (share of all CPUs that
 *   other processes took during the timing, 0–1; null for counts or without /proc: the figures
 *   are only as quiet as the machine), time.
 * Timing rounds alternate between the nets, so every net sees the same background load.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import pl, { type DataType } from 'nodejs-polars';
import { Adam, EvalForward, type TrainConfig, TrainStep } from '../train/index';
import {
  type Architecture,
  architectureOf,
  createNet,
  describeArchitecture,
  describeState,
  LAB_ARCHITECTURE,
} from '../model/index';
import { writeFileAtomic } from '../formats/index';
import {
  activeBackend,
  cpuSnapshot,
  deriveSeed,
  describeBackend,
  GraphFunction,
  graphsEnabled,
  initBackend,
  mulberry32,
  othersShare,
  randomNormal,
} from '../runtime/index';
import { NUM_CLASSES, PATHS, VARIANTS, type Freeze, type Variant } from '../config';

export const MEASUREMENTS_FILE = 'measurements.parquet';

export type Measure =
  | 'parameters'
  | 'trainable-parameters'
  | 'train-step'
  | 'inference-step'
  | 'inference-step-precomputed-filters'
  | 'filter-generation';

export interface MeasurementRow {
  measure: Measure;
  setting: string;
  variant: string;
  part: string;
  batch: number;
  value: number;
  unit: 'count' | 'ms';
  spread: number;
  n: number;
  backend: string;
  cpus: number;
  load1: number;
  othersShare: number | null;
  time: Date;
}

const MEASUREMENT_SCHEMA: { [K in keyof MeasurementRow]-?: DataType } = {
  measure: pl.Utf8,
  setting: pl.Utf8,
  variant: pl.Utf8,
  part: pl.Utf8,
  batch: pl.Int32,
  value: pl.Float64,
  unit: pl.Utf8,
  spread: pl.Float64,
  n: pl.Int32,
  backend: pl.Utf8,
  cpus: pl.Int32,
  load1: pl.Float64,
  othersShare: pl.Float64,
  time: pl.Datetime('ms'),
};

/** A net the experiments train: head, freezing and architecture. */
export interface NetSetting {
  variant: Variant;
  freeze: Freeze;
  architecture: Architecture;
}

/** 'lab' for the lab's net, else how it differs: 'freeze=all, upsample ×2'. */
export function settingName(s: Pick<NetSetting, 'freeze' | 'architecture'>): string {
  const parts = [...(s.freeze !== 'none' ? [`freeze=${s.freeze}`] : []), ...describeArchitecture(s.architecture)];
  return parts.join(', ') || 'lab';
}

/** The distinct nets among training configs (same variant, freezing and architecture once). */
export function distinctSettings(
  configs: readonly Pick<TrainConfig, 'variant' | 'freeze' | 'filterNorm' | 'responseScale' | 'upsample' | 'adapter'>[],
): NetSetting[] {
  const seen = new Map<string, NetSetting>();
  for (const c of configs) {
    const s: NetSetting = { variant: c.variant, freeze: c.freeze, architecture: architectureOf(c) };
    seen.set(`${s.variant} ${settingName(s)}`, s);
  }
  return [...seen.values()];
}

/** Parameter counts per part and in total, both heads of the lab's net plus the adapter (no tensors). */
export function parameterRows(
  base: Omit<MeasurementRow, 'measure' | 'setting' | 'variant' | 'part' | 'batch' | 'value' | 'unit' | 'spread' | 'n'>,
): MeasurementRow[] {
  const rows: MeasurementRow[] = [];
  const settings: NetSetting[] = VARIANTS.map((variant) => ({
    variant,
    freeze: 'none' as Freeze,
    architecture: { ...LAB_ARCHITECTURE },
  }));
  settings.push({ variant: 'dynamic', freeze: 'all', architecture: { ...LAB_ARCHITECTURE, adapter: true } });
  for (const s of settings) {
    const info = describeState(s.variant, s.architecture, s.freeze).filter((p) => p.kind === 'parameter');
    const parts = [...new Set(info.map((p) => p.part)), 'total'];
    for (const part of parts) {
      const mine = part === 'total' ? info : info.filter((p) => p.part === part);
      const row = {
        ...base,
        setting: settingName(s),
        variant: s.variant,
        part,
        batch: 0,
        unit: 'count' as const,
        spread: 0,
        n: 1,
      };
      rows.push({ ...row, measure: 'parameters', value: mine.reduce((a, p) => a + p.size, 0) });
      rows.push({
        ...row,
        measure: 'trainable-parameters',
        value: mine.filter((p) => p.trainable).reduce((a, p) => a + p.size, 0),
      });
    }
  }
  return rows;
}

function percentile(sorted: readonly number[], q: number): number {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}

function summarise(ms: number[]): { value: number; spread: number; n: number } {
  const s = [...ms].sort((a, b) => a - b);
  return { value: percentile(s, 0.5), spread: (percentile(s, 0.9) - percentile(s, 0.1)) / 2, n: s.length };
}

/** A fixed pseudo-random batch: images [b, 32, 32, 3] ~ N(0, 1) and labels [b]. */
function makeBatch(batch: number, seed: number): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const rng = mulberry32(deriveSeed(seed, 0xbe7c));
  const data = new Float32Array(batch * 32 * 32 * 3);
  for (let i = 0; i < data.length; i++) data[i] = randomNormal(rng);
  const labels = Int32Array.from({ length: batch }, (_, i) => i % NUM_CLASSES);
  return { x: tf.tensor4d(data, [batch, 32, 32, 3]), y: tf.tensor1d(labels, 'int32') };
}

export interface TimingOptions {
  /** Images per step (default 64: the lab's batch). */
  batch?: number;
  /** Timed steps per net and measure, split over `rounds` alternating rounds (default 12, 3). */
  steps?: number;
  rounds?: number;
  /** Untimed steps first (default 2). */
  warmup?: number;
  onProgress?: (message: string) => void;
}

/**
 * Times training and inference steps of each net in `settings` on one fixed random batch. The
 * nets are built without pretrained weights (the time does not depend on the values).
 */
export async function timeSteps(settings: readonly NetSetting[], opts: TimingOptions = {}): Promise<MeasurementRow[]> {
  const batch = opts.batch ?? 64;
  const steps = opts.steps ?? 12;
  const rounds = Math.max(1, Math.min(opts.rounds ?? 3, steps));
  const warmup = opts.warmup ?? 2;
  const info = activeBackend() ?? initBackend();
  const { x, y } = makeBatch(batch, 1);
  const timers = new Map<string, { setting: NetSetting; measure: Measure; ms: number[]; run: () => void }>();
  const nets: { dispose(): void }[] = [];
  try {
    for (const s of settings) {
      const net = createNet(s.variant, { pretrained: false, seed: 0, freeze: s.freeze, architecture: s.architecture });
      nets.push(net);
      const trainable = net.trainable();
      const adam = new Adam(trainable, { lr: 1e-4 });
      nets.push(adam);
      const step = new TrainStep(net, adam);
      nets.push(step);
      const add = (measure: Measure, run: () => void) =>
        timers.set(`${s.variant} ${settingName(s)} ${measure}`, { setting: s, measure, ms: [], run });
      add('train-step', () => tf.dispose(step.run(x, y, 1e-4)));
      const forward = new EvalForward(net);
      nets.push(forward);
      add('inference-step', () => tf.dispose(forward.run(x)));
      if (settingName(s) === 'lab') {
        if (s.variant === 'dynamic') {
          // Filters made once (as an evaluation pass over many batches can) and reused.
          const filters = net.headFilters();
          nets.push(filters);
          add('inference-step-precomputed-filters', () => tf.dispose(forward.run(x, { filters })));
        }
        // As a graph too, like the steps it is compared with (where it runs inside the graph).
        const generate = graphsEnabled() ? new GraphFunction(() => [net.headFilters()], net.variables()) : undefined;
        if (generate) nets.push(generate);
        add('filter-generation', () => tf.dispose(generate ? generate.call([]) : net.headFilters()));
      }
    }
    for (const t of timers.values()) for (let i = 0; i < warmup; i++) t.run();
    const cpuBefore = cpuSnapshot();
    const perRound = Array.from(
      { length: rounds },
      (_, r) => Math.floor(steps / rounds) + (r < steps % rounds ? 1 : 0),
    );
    for (const [r, n] of perRound.entries()) {
      opts.onProgress?.(`timing round ${r + 1}/${rounds}: ${timers.size} measures × ${n} steps`);
      for (const t of timers.values()) {
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          t.run();
          // Every op ran synchronously on the native backend; reading one value makes sure of it.
          tf.tidy(() => tf.zeros([1]).dataSync());
          t.ms.push(performance.now() - t0);
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    const base = {
      backend: describeBackend(info),
      cpus: os.cpus().length,
      load1: os.loadavg()[0],
      othersShare: othersShare(cpuBefore, cpuSnapshot()),
      time: new Date(),
    };
    return [...timers.values()].map((t) => ({
      ...base,
      measure: t.measure,
      setting: settingName(t.setting),
      variant: t.setting.variant,
      part: '',
      batch: t.measure === 'filter-generation' ? NUM_CLASSES : batch,
      unit: 'ms' as const,
      ...summarise(t.ms),
    }));
  } finally {
    tf.dispose([x, y]);
    for (const n of nets) n.dispose();
  }
}

/** Rows → DataFrame with MEASUREMENT_SCHEMA's columns and types. */
export function measurementFrame(rows: readonly MeasurementRow[]): pl.DataFrame {
  return pl.DataFrame(
    (Object.keys(MEASUREMENT_SCHEMA) as (keyof MeasurementRow)[]).map((k) =>
      pl.Series(k, rows.map((r) => r[k]) as unknown[], MEASUREMENT_SCHEMA[k]),
    ),
  );
}

/** Writes `<resultsDir>/measurements.parquet` atomically (replacing the previous measurements). */
export function writeMeasurements(resultsDir: string, rows: readonly MeasurementRow[]): string {
  const file = path.join(resultsDir, MEASUREMENTS_FILE);
  writeFileAtomic(file, measurementFrame(rows).writeParquet({ compression: 'zstd' }));
  return file;
}

/** The recorded step-time measurements (results/recorded/paired/measurements.parquet; [] when not recorded). */
export function recordedMeasurements(recordedDir: string = PATHS.recorded): MeasurementRow[] {
  const file = path.join(recordedDir, 'paired', MEASUREMENTS_FILE);
  return fs.existsSync(file) ? readMeasurements(file) : [];
}

export function readMeasurements(file: string): MeasurementRow[] {
  const df = pl.readParquet(file);
  // othersShare came later: files without it still read (as unknown quietness).
  const missing = Object.keys(MEASUREMENT_SCHEMA).filter((c) => c !== 'othersShare' && !df.columns.includes(c));
  if (missing.length)
    throw new Error(`${file} lacks column(s) ${missing.join(', ')}: rebuild it with npm run experiments -- --measure`);
  const rows = df.toRecords() as unknown as MeasurementRow[];
  return df.columns.includes('othersShare') ? rows : rows.map((r) => ({ ...r, othersShare: null }));
}

/** Parameter counts and step times of every distinct net of `configs`, ready to write. */
export async function measure(configs: readonly TrainConfig[], opts: TimingOptions = {}): Promise<MeasurementRow[]> {
  const times = await timeSteps(distinctSettings(configs), opts);
  const base = {
    backend: times[0]?.backend ?? '',
    cpus: os.cpus().length,
    load1: os.loadavg()[0],
    othersShare: null,
    time: new Date(),
  };
  return [...parameterRows(base), ...times];
}

/**
 * The measurements of `resultsDir`, measured first when the file is missing (a minute on two
 * cores; trains nothing): npm start needs them for the pros-and-cons answer. `quick` times a few
 * steps only, to check the path.
 */
export async function ensureMeasurements(
  resultsDir: string,
  configs: readonly TrainConfig[],
  opts: { quick?: boolean; onProgress?: (message: string) => void } = {},
): Promise<{ file: string; rows: MeasurementRow[]; measured: boolean }> {
  const file = path.join(resultsDir, MEASUREMENTS_FILE);
  if (fs.existsSync(file)) return { file, rows: readMeasurements(file), measured: false };
  const rows = await measure(configs, {
    steps: opts.quick ? 3 : 12,
    rounds: opts.quick ? 1 : 3,
    warmup: opts.quick ? 1 : 2,
    onProgress: opts.onProgress,
  });
  return { file: writeMeasurements(resultsDir, rows), rows, measured: true };
}
