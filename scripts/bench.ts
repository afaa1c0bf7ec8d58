/**
 * npm run bench — the lab's network on the active backend against the same network in PyTorch
 * (python/bench_torch.py, CPU, same thread count), side by side in one run.
 *
 *   npm run bench -- [--batch-sizes 64,128,256] [--variants dynamic,static] [--modes train,infer]
 *                    [--precisions fp32,bf16] [--torch-settings fp32,bf16-cl] [--e2e]
 *                    [--steps 12] [--warmup 3] [--rounds 4] [--no-torch] [--torch-passive]
 *                    [--full-epoch] [--profile] [--eager] [--quick] [--no-save] [--out results/bench.parquet]
 *
 * Per variant (head), batch size and mode:
 *   train  one optimisation step: forward in training mode, cross-entropy, backward, Adam update
 *   infer  one forward pass in evaluation mode (logits)
 * as lib/train runs them: TrainStep and EvalForward, each one TensorFlow graph (lib/runtime/graph), or
 * op by op with --eager (or DCF_GRAPH=0); ours in each of `--precisions` (lib/runtime/precision),
 * PyTorch in each of `--torch-settings` (fp32; bf16 autocast; bf16-cl: autocast + channels_last,
 * its usual fastest CPU setting). The ratios compare ours at the precision `auto` picks on this CPU
 * with PyTorch fp32 and with PyTorch's fastest setting.
 *
 * --e2e adds the end-to-end figure: the real loop (lib/train train(): data, steps, bookkeeping,
 * test evaluation, checkpoints) on the first `--e2e-images` training images for `--e2e-epochs`
 * epochs, against python/bench_torch.py's run_e2e, the same recipe as a plain PyTorch loop; the
 * figure is the last epoch's training pass (the first one also builds the graphs), and beside
 * it our end-to-end throughput as a share of our bare step's (the goal: at least 90%).
 * timed for `--steps` steps after `--warmup` untimed ones; images/s = batch / median step time.
 * The machine is shared, so the two frameworks take turns: each of `--rounds` rounds runs a
 * block of PyTorch steps, then a block of ours, so both see the same load. Also reported: CPU
 * time per step (each process's own), which load disturbs less than wall time, and the ratio of
 * the fastest steps (each side's best step is the one least disturbed by other processes), and
 * the share of the CPUs other processes took meanwhile. PyTorch's OpenMP threads spin-wait,
 * which costs it dearly on a busy machine: --torch-passive sets OMP_WAIT_POLICY=PASSIVE.
 *
 * Also: the time of one epoch of 50,000 images estimated from the median step; with
 * --full-epoch, one real epoch of the lab's training (lib/train: data, augmentation off, test
 * evaluation, checkpoints) measured end to end; the peak resident memory of this process
 * (maxRSS); the live tensor count before and after each measurement (it must not grow; the
 * exit code is 1 if it did). Rows are appended to results/bench.parquet (read, append, temporary file, rename).
 * With --profile, also where our training step's time goes, per TensorFlow op (lib/runtime/op-profile);
 * `python/bench_torch.py --profile` prints PyTorch's own breakdown for comparison.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import { parseArgs } from 'util';
import * as tf from '@tensorflow/tfjs-core';
import pl, { type DataType } from 'nodejs-polars';
import { Adam, EvalForward, LAB_RECIPE, train, TrainStep } from '../lib/train';
import {
  cpuSnapshot,
  describeBackend,
  formatOpProfile,
  fusedKernelsActive,
  graphsEnabled,
  initBackend,
  mulberry32,
  othersShare,
  profileOps,
  randomNormal,
  bf16Hardware,
  resolvePrecision,
  type Precision,
} from '../lib/runtime';
import { writeFileAtomic } from '../lib/formats';
import {
  commandLinePath,
  PATHS,
  VARIANTS,
  parseChoice,
  pretrainedFile,
  readEnv,
  setEnv,
  type Variant,
} from '../lib/config';
import { createNet } from '../lib/model';

const TRAIN_IMAGES = 50_000;
type Mode = 'train' | 'infer';
/** python/bench_torch.py's SETTINGS. */
const TORCH_SETTINGS = ['fp32', 'bf16', 'bf16-cl'] as const;
type TorchSetting = (typeof TORCH_SETTINGS)[number];
/** The end-to-end goal: the real loop at this share of the bare step's throughput or more. */
const E2E_GOAL = 0.9;

const USAGE = `usage: npm run bench -- [options]
  --batch-sizes LIST   batch sizes (default 64,128,256; --quick: 64,128)
  --variants LIST      dynamic,static (default both; --quick: dynamic)
  --modes LIST         train,infer (default both)
  --precisions LIST    ours: fp32,bf16 (default both where the CPU has bf16 instructions, else fp32;
                       lib/runtime/precision)
  --torch-settings LIST  PyTorch: fp32,bf16,bf16-cl (default fp32,bf16-cl; bf16 = autocast,
                       bf16-cl = autocast + channels_last)
  --e2e                also the end-to-end loop, ours (lib/train) against PyTorch's, per batch size,
                       precision and setting: --e2e-images N (default 5000; --quick 1280) training
                       images, --e2e-test N (default 1000; --quick 500) test images, --e2e-epochs N
                       (default 2; the figure is the last epoch)
  --steps N            timed steps per figure and framework (default 12; --quick 6)
  --warmup N           untimed steps first (default 3; --quick 2)
  --rounds N           alternations PyTorch/ours the steps are split into (default 4; --quick 2)
  --no-torch           ours only (no ratios)
  --torch-passive      run PyTorch with OMP_WAIT_POLICY=PASSIVE: on a busy machine its OpenMP
                       threads otherwise spin for CPU the others need (default: as shipped)
  --full-epoch         also train one real epoch of the lab (lib/train, batch 64 unless one
                       --batch-sizes value is given) and report its time and peak memory
  --profile            also print our training step's time per TensorFlow op, per variant and
                       batch size (PyTorch's: .venv/bin/python python/bench_torch.py --profile)
  --eager              run our steps eagerly, op by op, instead of as one TensorFlow graph each
                       (lib/runtime/graph, the default; its first two calls per batch size also record
                       the step, so the warm-up is then at least 2)
  --quick              the smaller defaults above
  --no-save            do not append to the Parquet file
  --out FILE           Parquet file to append to (default results/bench.parquet)`;

interface Options {
  batchSizes: number[];
  variants: Variant[];
  modes: Mode[];
  steps: number;
  warmup: number;
  rounds: number;
  torch: boolean;
  torchPassive: boolean;
  fullEpoch: boolean;
  profile: boolean;
  precisions: Precision[];
  torchSettings: TorchSetting[];
  e2e: { images: number; test: number; epochs: number } | undefined;
  /** Our steps as TensorFlow graphs (lib/runtime/graph); false with --eager. */
  graph: boolean;
  save: boolean;
  out: string;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options | 'help' {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      'batch-sizes': { type: 'string' },
      variants: { type: 'string' },
      modes: { type: 'string' },
      precisions: { type: 'string' },
      'torch-settings': { type: 'string' },
      e2e: { type: 'boolean' },
      'e2e-images': { type: 'string' },
      'e2e-test': { type: 'string' },
      'e2e-epochs': { type: 'string' },
      steps: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      'no-torch': { type: 'boolean' },
      'torch-passive': { type: 'boolean' },
      'full-epoch': { type: 'boolean' },
      profile: { type: 'boolean' },
      eager: { type: 'boolean' },
      quick: { type: 'boolean' },
      'no-save': { type: 'boolean' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (v.help) return 'help';
  const quick = Boolean(v.quick);
  const int = (name: string, s: string | undefined, dflt: number, min: number) => {
    if (s === undefined) return dflt;
    const n = Number(s);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}; got '${s}'`);
    return n;
  };
  const list = (s: string | undefined, dflt: string) =>
    (s ?? dflt)
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  const batchSizes = list(v['batch-sizes'], quick ? '64,128' : '64,128,256').map((s) => int('batch-sizes', s, 0, 2));
  let variants: Variant[];
  let modes: Mode[];
  let precisions: Precision[];
  let torchSettings: TorchSetting[];
  try {
    variants = list(v.variants, quick ? 'dynamic' : 'dynamic,static').map((s) =>
      parseChoice('--variants', s, VARIANTS),
    );
    modes = list(v.modes, 'train,infer').map((s) => parseChoice('--modes', s, ['train', 'infer'] as const));
    // bf16 only where the CPU has it (elsewhere it is refused: lib/runtime/precision requireBf16Hardware).
    precisions = list(v.precisions, bf16Hardware() ? 'fp32,bf16' : 'fp32').map((s) =>
      parseChoice('--precisions', s, ['fp32', 'bf16'] as const),
    );
    torchSettings = list(v['torch-settings'], 'fp32,bf16-cl').map((s) =>
      parseChoice('--torch-settings', s, TORCH_SETTINGS),
    );
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const steps = int('steps', v.steps, quick ? 6 : 12, 1);
  const rounds = Math.min(steps, int('rounds', v.rounds, quick ? 2 : 4, 1));
  return {
    batchSizes,
    variants,
    modes,
    steps,
    warmup: Math.max(v.eager ? 0 : 2, int('warmup', v.warmup, quick ? 2 : 3, 0)),
    rounds,
    torch: !v['no-torch'],
    torchPassive: Boolean(v['torch-passive']),
    fullEpoch: Boolean(v['full-epoch']),
    profile: Boolean(v.profile),
    precisions,
    torchSettings,
    e2e: v.e2e
      ? {
          images: int('e2e-images', v['e2e-images'], quick ? 1280 : 5000, 2),
          test: int('e2e-test', v['e2e-test'], quick ? 500 : 1000, 1),
          epochs: int('e2e-epochs', v['e2e-epochs'], 2, 1),
        }
      : undefined,
    graph: !v.eager,
    save: !v['no-save'],
    out: v.out === undefined ? path.join(PATHS.results, 'bench.parquet') : commandLinePath(v.out),
  };
}

// ---- PyTorch, in a child process that takes turns with us ------------------------------------

interface Timings {
  wall: number[];
  cpu: number[];
}

/** One end-to-end epoch: the training pass's throughput and time, the test evaluation's time. */
interface E2eEpoch {
  imagesPerSecond: number;
  trainSeconds: number;
  evalSeconds: number;
  accuracy: number;
}

class TorchBench {
  private readonly proc: ChildProcessWithoutNullStreams;
  get pid(): number | undefined {
    return this.proc.pid;
  }
  private readonly lines: AsyncIterator<string>;
  version = '';
  threads = 0;

  constructor(threads: number, passive: boolean) {
    const python = path.join(PATHS.root, '.venv', 'bin', 'python');
    if (!fs.existsSync(python)) throw new Error(`${python} is missing: run \`npm run setup\` (or pass --no-torch)`);
    this.proc = spawn(
      python,
      [path.join(PATHS.root, 'python', 'bench_torch.py'), '--serve', '--threads', String(threads)],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: passive ? { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } : process.env,
      },
    );
    let stderr = '';
    this.proc.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    this.proc.on('exit', (code) => {
      if (code) process.stderr.write(`python/bench_torch.py exited with ${code}:\n${stderr}\n`);
    });
    this.lines = readline.createInterface({ input: this.proc.stdout })[Symbol.asyncIterator]();
  }

  private async next(): Promise<Record<string, unknown>> {
    const r = await this.lines.next();
    if (r.done) throw new Error('python/bench_torch.py stopped answering (see its error above)');
    return JSON.parse(r.value) as Record<string, unknown>;
  }

  async ready(): Promise<void> {
    const hello = await this.next();
    this.version = String(hello.torch);
    this.threads = Number(hello.threads);
  }

  async run(
    variant: Variant,
    batch: number,
    mode: Mode,
    steps: number,
    warmup: number,
    setting: TorchSetting,
  ): Promise<Timings> {
    this.proc.stdin.write(`${JSON.stringify({ variant, batch, mode, steps, warmup, setting })}\n`);
    const r = await this.next();
    if (r.error) throw new Error(`python/bench_torch.py: ${r.error}`);
    return { wall: r.times_ms as number[], cpu: r.cpu_ms as number[] };
  }

  /** python/bench_torch.py's run_e2e: the last epoch's training pass and evaluation. */
  async e2e(
    variant: Variant,
    setting: TorchSetting,
    batch: number,
    e2e: NonNullable<Options['e2e']>,
  ): Promise<E2eEpoch> {
    const job = { variant, setting, batch, train_images: e2e.images, test_images: e2e.test, epochs: e2e.epochs };
    this.proc.stdin.write(`${JSON.stringify({ e2e: job })}\n`);
    const r = await this.next();
    if (r.error) throw new Error(`python/bench_torch.py: ${r.error}`);
    const last = (r.epochs as Array<Record<string, number>>).at(-1)!;
    return {
      imagesPerSecond: last.train_images_per_s,
      trainSeconds: last.train_seconds,
      evalSeconds: last.eval_seconds,
      accuracy: last.test_accuracy,
    };
  }

  close(): void {
    this.proc.stdin.end();
  }
}

// ---- ours ---------------------------------------------------------------------------------------

/** Seeded inputs like PyTorch's: normal images (already normalised) and uniform labels. */
function makeBatch(batch: number, seed: number): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const rng = mulberry32(seed);
  const x = new Float32Array(batch * 32 * 32 * 3);
  for (let i = 0; i < x.length; i++) x[i] = randomNormal(rng);
  const y = Int32Array.from({ length: batch }, () => Math.floor(rng() * 10));
  return { x: tf.tensor4d(x, [batch, 32, 32, 3]), y: tf.tensor1d(y, 'int32') };
}

/** Our training step alone on a fixed batch (what the step figures time), for the end-to-end share. */
class BareStep {
  private readonly net;
  private readonly adam;
  private readonly step;
  private readonly batch;
  private readonly wall: number[] = [];

  constructor(
    variant: Variant,
    private readonly size: number,
    precision: Precision,
    warmup: number,
  ) {
    this.net = createNet(variant, { pretrained: false, seed: 0 });
    this.adam = new Adam(this.net.trainable(), { lr: 1e-3 });
    this.step = new TrainStep(this.net, this.adam, 0, { precision });
    this.batch = makeBatch(size, 1234 + size);
    timeOurs(() => this.run(), Math.max(warmup, 2));
  }

  private run(): void {
    tf.dispose(this.step.run(this.batch.x, this.batch.y, 1e-3));
  }

  /** Times `steps` more steps; returns images/s at the median step of all timed so far. */
  time(steps: number): number {
    this.wall.push(...timeOurs(() => this.run(), steps).wall);
    return imagesPerSecond(this.size, { wall: this.wall, cpu: [] });
  }

  dispose(): void {
    this.step.dispose();
    this.adam.dispose();
    this.net.dispose();
    tf.dispose([this.batch.x, this.batch.y]);
  }
}

function timeOurs(fn: () => void, steps: number): Timings {
  const out: Timings = { wall: [], cpu: [] };
  for (let i = 0; i < steps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    out.wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    out.cpu.push((c.user + c.system) / 1000);
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function splitSteps(steps: number, rounds: number): number[] {
  return Array.from(
    { length: rounds },
    (_, r) => Math.floor((steps * (r + 1)) / rounds) - Math.floor((steps * r) / rounds),
  );
}

// ---- run identity ------------------------------------------------------------------------------

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: PATHS.root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return 'unknown';
  }
}

// ---- results ----------------------------------------------------------------------------------------

interface Row {
  time: Date;
  commit: string;
  host: string;
  cpus: number;
  threads: number;
  load1: number;
  backend: string;
  fused: boolean;
  /** Steps run as TensorFlow graphs (lib/runtime/graph), not op by op. */
  graph: boolean;
  onednn: string;
  torch: string;
  variant: string;
  batch: number;
  mode: string;
  /** Ours: fp32 or bf16 (lib/runtime/precision). */
  precision: string;
  /** PyTorch's setting: fp32, bf16 (autocast) or bf16-cl (autocast + channels_last). */
  torchSetting: string | null;
  steps: number;
  oursMs: number;
  oursImagesPerSecond: number;
  oursCpuMs: number;
  torchMs: number | null;
  torchImagesPerSecond: number | null;
  torchCpuMs: number | null;
  /** ours images/s ÷ PyTorch images/s (> 1: we are faster). */
  ratio: number | null;
  /** PyTorch CPU ms per step ÷ ours (> 1: we need less CPU). */
  cpuRatio: number | null;
  oursBestMs: number;
  torchBestMs: number | null;
  /** PyTorch's fastest step ÷ ours (> 1: we are faster). */
  bestRatio: number | null;
  /** Seconds for 50,000 images at the median step time (train); measured for mode 'epoch'. */
  epochSeconds: number;
  torchEpochSeconds: number | null;
  /** Mode 'e2e': our bare training step's images/s at this batch and precision, measured in this run. */
  bareImagesPerSecond: number | null;
  /** Share of the machine's CPU time that OTHER processes used during the measurement. */
  machineBusy: number | null;
  maxRssMb: number;
  tensorsBefore: number;
  tensorsAfter: number;
}

const SCHEMA: Record<keyof Row, DataType> = {
  time: pl.Datetime('ms'),
  commit: pl.Utf8,
  host: pl.Utf8,
  cpus: pl.Int32,
  threads: pl.Int32,
  load1: pl.Float64,
  backend: pl.Utf8,
  fused: pl.Bool,
  graph: pl.Bool,
  onednn: pl.Utf8,
  torch: pl.Utf8,
  variant: pl.Utf8,
  batch: pl.Int32,
  mode: pl.Utf8,
  precision: pl.Utf8,
  torchSetting: pl.Utf8,
  steps: pl.Int32,
  oursMs: pl.Float64,
  oursImagesPerSecond: pl.Float64,
  oursCpuMs: pl.Float64,
  torchMs: pl.Float64,
  torchImagesPerSecond: pl.Float64,
  torchCpuMs: pl.Float64,
  ratio: pl.Float64,
  cpuRatio: pl.Float64,
  oursBestMs: pl.Float64,
  torchBestMs: pl.Float64,
  bestRatio: pl.Float64,
  epochSeconds: pl.Float64,
  torchEpochSeconds: pl.Float64,
  bareImagesPerSecond: pl.Float64,
  machineBusy: pl.Float64,
  maxRssMb: pl.Float64,
  tensorsBefore: pl.Int64,
  tensorsAfter: pl.Int64,
};

function appendRows(file: string, rows: Row[]): number {
  const columns = (Object.keys(SCHEMA) as (keyof Row)[]).map((k) =>
    pl.Series(k, rows.map((r) => r[k]) as unknown[], SCHEMA[k]),
  );
  let df = pl.DataFrame(columns);
  if (fs.existsSync(file)) {
    const old = pl.readParquet(file);
    // Older files may lack newer columns: "diagonal" fills them with nulls.
    df = pl.concat([old, df], { how: 'diagonal' });
  }
  writeFileAtomic(file, df.writeParquet({ compression: 'zstd' }));
  return df.height;
}

const rssMb = () => process.resourceUsage().maxRSS / 1024;

function fmt(n: number | null | undefined, digits = 0): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits);
}

const imagesPerSecond = (batch: number, t: Timings) => (batch * 1000) / median(t.wall);

/** One (variant, batch, mode) measured: each of our precisions and PyTorch's settings, in alternating rounds. */
interface Figure {
  variant: Variant;
  batch: number;
  mode: Mode;
  ours: Map<Precision, Timings>;
  theirs: Map<TorchSetting, Timings>;
  machineBusy: number | null;
  maxRssMb: number;
  tensorsBefore: number;
  tensorsAfter: number;
}

/** The end-to-end loop at one batch size: each precision and setting's last epoch, and our bare steps. */
interface E2eFigure {
  batch: number;
  ours: Map<Precision, E2eEpoch>;
  theirs: Map<TorchSetting, E2eEpoch>;
  bare: Map<Precision, number | null>;
  machineBusy: number | null;
  maxRssMb: number;
  tensorsBefore: number;
  tensorsAfter: number;
}

type RowBase = Pick<
  Row,
  'time' | 'commit' | 'host' | 'cpus' | 'threads' | 'load1' | 'backend' | 'fused' | 'graph' | 'onednn' | 'torch'
>;

/** The Parquet rows of a figure: one per pair of our precision and PyTorch's setting (one per precision without PyTorch). */
function figureRows(base: RowBase, f: Figure, steps: number): Row[] {
  const perEpoch = Math.ceil(TRAIN_IMAGES / f.batch);
  const settings: Array<TorchSetting | null> = f.theirs.size ? [...f.theirs.keys()] : [null];
  return [...f.ours].flatMap(([precision, ours]) =>
    settings.map((setting): Row => {
      const theirs = setting ? f.theirs.get(setting)! : undefined;
      const oursMs = median(ours.wall);
      const torchMs = theirs ? median(theirs.wall) : null;
      return {
        ...base,
        variant: f.variant,
        batch: f.batch,
        mode: f.mode,
        precision,
        torchSetting: setting,
        steps,
        oursMs,
        oursImagesPerSecond: (f.batch * 1000) / oursMs,
        oursCpuMs: median(ours.cpu),
        torchMs,
        torchImagesPerSecond: torchMs ? (f.batch * 1000) / torchMs : null,
        torchCpuMs: theirs ? median(theirs.cpu) : null,
        ratio: torchMs ? torchMs / oursMs : null,
        cpuRatio: theirs ? median(theirs.cpu) / median(ours.cpu) : null,
        oursBestMs: Math.min(...ours.wall),
        torchBestMs: theirs ? Math.min(...theirs.wall) : null,
        bestRatio: theirs ? Math.min(...theirs.wall) / Math.min(...ours.wall) : null,
        epochSeconds: (oursMs * perEpoch) / 1000,
        torchEpochSeconds: torchMs ? (torchMs * perEpoch) / 1000 : null,
        bareImagesPerSecond: null,
        machineBusy: f.machineBusy,
        maxRssMb: f.maxRssMb,
        tensorsBefore: f.tensorsBefore,
        tensorsAfter: f.tensorsAfter,
      };
    }),
  );
}

/** The Parquet rows of an end-to-end figure (mode 'e2e'; the ms columns are per batch of the pass). */
function e2eRows(base: RowBase, f: E2eFigure, variant: Variant, images: number): Row[] {
  const settings: Array<TorchSetting | null> = f.theirs.size ? [...f.theirs.keys()] : [null];
  const msPerBatch = (e: E2eEpoch) => (f.batch * 1000) / e.imagesPerSecond;
  return [...f.ours].flatMap(([precision, ours]) =>
    settings.map((setting): Row => {
      const theirs = setting ? f.theirs.get(setting)! : undefined;
      return {
        ...base,
        variant,
        batch: f.batch,
        mode: 'e2e',
        precision,
        torchSetting: setting,
        steps: Math.ceil(images / f.batch),
        oursMs: msPerBatch(ours),
        oursImagesPerSecond: ours.imagesPerSecond,
        oursCpuMs: NaN,
        torchMs: theirs ? msPerBatch(theirs) : null,
        torchImagesPerSecond: theirs?.imagesPerSecond ?? null,
        torchCpuMs: null,
        ratio: theirs ? ours.imagesPerSecond / theirs.imagesPerSecond : null,
        cpuRatio: null,
        oursBestMs: NaN,
        torchBestMs: null,
        bestRatio: null,
        epochSeconds: ours.trainSeconds,
        torchEpochSeconds: theirs?.trainSeconds ?? null,
        bareImagesPerSecond: f.bare.get(precision) ?? null,
        machineBusy: f.machineBusy,
        maxRssMb: f.maxRssMb,
        tensorsBefore: f.tensorsBefore,
        tensorsAfter: f.tensorsAfter,
      };
    }),
  );
}

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<number> {
  let opts: Options | 'help';
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // --eager: for everything run here, lib/train's full epoch included.
  if (!opts.graph) setEnv({ graph: false });
  const backend = initBackend();
  const threads = os.availableParallelism();
  const onednn = readEnv().oneDnn ? '1' : '0';
  const load1 = os.loadavg()[0];
  console.log(
    `backend   ${describeBackend(backend)}; fused kernels ${fusedKernelsActive() ? 'on' : 'off'}; ` +
      `${graphsEnabled() ? 'steps as TensorFlow graphs' : 'eager steps'}; TF_ENABLE_ONEDNN_OPTS=${onednn}`,
  );
  console.log(
    `machine   ${os.cpus()[0]?.model ?? '?'} × ${os.cpus().length}, ${threads} threads each side; load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );

  let torch: TorchBench | undefined;
  if (opts.torch) {
    torch = new TorchBench(threads, opts.torchPassive);
    await torch.ready();
    console.log(
      `PyTorch   ${torch.version}, ${torch.threads} threads (python/bench_torch.py)${opts.torchPassive ? ', OMP_WAIT_POLICY=PASSIVE' : ''}`,
    );
  }
  const auto = resolvePrecision('auto');
  // The precision the ratios are about: what `auto` picks here, if measured.
  const headline: Precision = opts.precisions.includes(auto.precision) ? auto.precision : opts.precisions[0];
  console.log(
    `timing    ${opts.steps} steps after ${opts.warmup} warm-up, in ${opts.rounds} alternating rounds; median`,
  );
  console.log(
    `precision ours ${opts.precisions.join(', ')}${torch ? `; PyTorch ${opts.torchSettings.join(', ')}` : ''}; auto here: ${auto.precision} (${auto.why})`,
  );

  const rows: Row[] = [];
  const base = {
    time: new Date(),
    commit: gitCommit(),
    host: os.hostname(),
    cpus: os.cpus().length,
    threads,
    load1,
    backend: describeBackend(backend),
    fused: fusedKernelsActive(),
    graph: graphsEnabled(),
    onednn,
    torch: torch ? `${torch.version}${opts.torchPassive ? ' OMP_WAIT_POLICY=PASSIVE' : ''}` : '',
  };
  const tensorsAtStart = tf.memory().numTensors;
  const profiles: string[] = [];
  const figures: Figure[] = [];
  // PyTorch's process counts as measured, not as "other" load.
  const torchPids = torch?.pid ? [torch.pid] : [];
  const settings = torch ? opts.torchSettings : [];

  for (const variant of opts.variants) {
    const net = createNet(variant, { pretrained: false, seed: 0 });
    const trainable = net.trainable();
    const adam = new Adam(trainable, { lr: 1e-3 });
    const trainSteps = new Map(opts.precisions.map((p) => [p, new TrainStep(net, adam, 0, { precision: p })]));
    const forwards = new Map(opts.precisions.map((p) => [p, new EvalForward(net, { precision: p })]));
    const eagerStep = new TrainStep(net, adam, 0, { graph: false }); // for --profile: one binding call per op
    for (const batch of opts.batchSizes) {
      const { x, y } = makeBatch(batch, 1234 + batch);
      const steps = (p: Precision): Record<Mode, () => void> => ({
        train: () => tf.dispose(trainSteps.get(p)!.run(x, y, 1e-3)),
        infer: () => tf.dispose(forwards.get(p)!.run(x)),
      });
      for (const mode of opts.modes) {
        const tensorsBefore = tf.memory().numTensors;
        const cpuBefore = cpuSnapshot(torchPids);
        for (const p of opts.precisions) for (let i = 0; i < opts.warmup; i++) steps(p)[mode]();
        for (const s of settings) if (opts.warmup > 0) await torch!.run(variant, batch, mode, 0, opts.warmup, s);
        const ours = new Map(opts.precisions.map((p): [Precision, Timings] => [p, { wall: [], cpu: [] }]));
        const theirs = new Map(settings.map((s): [TorchSetting, Timings] => [s, { wall: [], cpu: [] }]));
        // Each round: a block of every PyTorch setting, then of each of our precisions.
        for (const n of splitSteps(opts.steps, opts.rounds)) {
          for (const s of settings) {
            const t = await torch!.run(variant, batch, mode, n, 0, s);
            theirs.get(s)!.wall.push(...t.wall);
            theirs.get(s)!.cpu.push(...t.cpu);
            // Let the other side's worker threads go idle before we start.
            await new Promise((r) => setTimeout(r, 50));
          }
          for (const p of opts.precisions) {
            const o = timeOurs(steps(p)[mode], n);
            ours.get(p)!.wall.push(...o.wall);
            ours.get(p)!.cpu.push(...o.cpu);
          }
        }
        const figure: Figure = {
          variant,
          batch,
          mode,
          ours,
          theirs,
          machineBusy: othersShare(cpuBefore, cpuSnapshot(torchPids)),
          maxRssMb: rssMb(),
          tensorsBefore,
          tensorsAfter: tf.memory().numTensors,
        };
        figures.push(figure);
        rows.push(...figureRows(base, figure, opts.steps));
        const line = [...ours]
          .map(([p, t]) => `ours ${p} ${fmt(imagesPerSecond(batch, t))}`)
          .concat([...theirs].map(([s, t]) => `PyTorch ${s} ${fmt(imagesPerSecond(batch, t))}`));
        process.stderr.write(`  ${variant} ${batch} ${mode}: ${line.join(', ')} img/s\n`);
      }
      if (opts.profile) {
        const p = profileOps(() => tf.dispose(eagerStep.run(x, y, 1e-3)), { steps: opts.steps, warmup: 1 });
        profiles.push(
          `\n${variant} head, batch ${batch}, training step: ${p.stepMs.toFixed(1)} ms, of which ${p.opMs.toFixed(1)} ms in TensorFlow ops`,
          ...formatOpProfile(p),
        );
      }
      tf.dispose([x, y]);
    }
    for (const s of [...trainSteps.values(), ...forwards.values(), eagerStep]) s.dispose();
    adam.dispose();
    net.dispose();
  }

  // ---- end to end: lib/train's loop on a slice against PyTorch's loop of the same recipe
  const e2eFigures: E2eFigure[] = [];
  if (opts.e2e) {
    const e2e = opts.e2e;
    const variant = LAB_RECIPE.variant;
    const pretrained = fs.existsSync(pretrainedFile(LAB_RECIPE.weights));
    for (const batch of opts.batchSizes) {
      const tensorsBefore = tf.memory().numTensors;
      const cpuBefore = cpuSnapshot(torchPids);
      const theirs = new Map<TorchSetting, E2eEpoch>();
      for (const s of settings) {
        process.stderr.write(
          `  end to end, PyTorch ${s}, batch ${batch}: ${e2e.images} images × ${e2e.epochs} epochs…\n`,
        );
        theirs.set(s, await torch!.e2e(variant, s, batch, e2e));
        await new Promise((r) => setTimeout(r, 50));
      }
      const ours = new Map<Precision, E2eEpoch>();
      const bare = new Map<Precision, number | null>();
      for (const p of opts.precisions) {
        process.stderr.write(`  end to end, ours ${p}, batch ${batch}…\n`);
        // The bare step (a fixed batch, nothing else) right before and after the loop, so that both see the same load.
        const bareStep = new BareStep(variant, batch, p, opts.warmup);
        const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-bench-'));
        try {
          bareStep.time(Math.ceil(opts.steps / 2));
          const config = {
            ...LAB_RECIPE,
            run: 'bench-e2e',
            epochs: e2e.epochs,
            batchSize: batch,
            limitTrain: e2e.images,
            limitTest: e2e.test,
            pretrained,
            precision: p,
          };
          const last = (await train(config, { runsDir })).history.at(-1)!;
          ours.set(p, {
            imagesPerSecond: last.train.imagesPerSecond,
            trainSeconds: last.train.seconds,
            evalSeconds: last.test.seconds,
            accuracy: last.test.accuracy,
          });
          bare.set(p, bareStep.time(Math.ceil(opts.steps / 2)));
        } finally {
          bareStep.dispose();
          fs.rmSync(runsDir, { recursive: true, force: true });
        }
      }
      const figure: E2eFigure = {
        batch,
        ours,
        theirs,
        bare,
        machineBusy: othersShare(cpuBefore, cpuSnapshot(torchPids)),
        maxRssMb: rssMb(),
        tensorsBefore,
        tensorsAfter: tf.memory().numTensors,
      };
      e2eFigures.push(figure);
      rows.push(...e2eRows(base, figure, variant, e2e.images));
    }
  }
  torch?.close();

  if (opts.fullEpoch) {
    const batch = opts.batchSizes.length === 1 ? opts.batchSizes[0] : LAB_RECIPE.batchSize;
    const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-bench-'));
    const tensorsBefore = tf.memory().numTensors;
    const cpuBefore = cpuSnapshot();
    process.stderr.write(
      `  one real epoch of the lab's training (batch ${batch}, 50,000 images, then the test set)…\n`,
    );
    try {
      const config = {
        ...LAB_RECIPE,
        run: 'bench-epoch',
        epochs: 1,
        batchSize: batch,
        pretrained: fs.existsSync(PATHS.pretrained),
        precision: headline,
      };
      const result = await train(config, { runsDir });
      const cpuAfter = cpuSnapshot();
      const e = result.history[0];
      rows.push({
        ...base,
        variant: LAB_RECIPE.variant,
        batch,
        mode: 'epoch',
        precision: headline,
        torchSetting: null,
        bareImagesPerSecond: null,
        steps: Math.ceil(e.train.images / batch),
        oursMs: (e.train.seconds * 1000 * batch) / e.train.images,
        oursImagesPerSecond: e.train.imagesPerSecond,
        oursCpuMs: NaN,
        torchMs: null,
        torchImagesPerSecond: null,
        torchCpuMs: null,
        ratio: null,
        cpuRatio: null,
        oursBestMs: NaN,
        torchBestMs: null,
        bestRatio: null,
        epochSeconds: e.train.seconds,
        torchEpochSeconds: null,
        machineBusy: othersShare(cpuBefore, cpuAfter),
        maxRssMb: rssMb(),
        tensorsBefore,
        tensorsAfter: tf.memory().numTensors,
      });
      console.log(
        `\nfull epoch (lib/train, batch ${batch}): train ${e.train.seconds.toFixed(1)} s (${e.train.imagesPerSecond.toFixed(0)} img/s), ` +
          `test evaluation ${e.test.seconds.toFixed(1)} s, test accuracy ${(e.test.accuracy * 100).toFixed(1)} %`,
      );
    } finally {
      fs.rmSync(runsDir, { recursive: true, force: true });
    }
  }

  // ---- report
  const ratioHeads = settings.map((s) => `÷ PyTorch ${s}`);
  console.log(`\nimages/s (median step); ratios: ours ${headline} (what auto picks here: ${auto.precision}) ÷ PyTorch`);
  console.log(
    [
      'variant',
      'batch',
      'mode',
      ...opts.precisions.map((p) => `ours ${p}`),
      ...settings.map((s) => `PyTorch ${s}`),
      ...ratioHeads,
      'best ratio',
      'CPU ratio',
      'others',
      'tensors',
    ].join(' | '),
  );
  for (const f of figures) {
    const oursHead = f.ours.get(headline)!;
    console.log(
      [
        f.variant.padEnd(7),
        String(f.batch).padStart(5),
        f.mode.padEnd(5),
        ...opts.precisions.map((p) => fmt(imagesPerSecond(f.batch, f.ours.get(p)!)).padStart(5 + p.length)),
        ...settings.map((s) => fmt(imagesPerSecond(f.batch, f.theirs.get(s)!)).padStart(8 + s.length)),
        ...settings.map((s, k) =>
          `${(median(f.theirs.get(s)!.wall) / median(oursHead.wall)).toFixed(2)}×`.padStart(ratioHeads[k].length),
        ),
        (settings.length
          ? `${(Math.min(...f.theirs.get(settings[0])!.wall) / Math.min(...oursHead.wall)).toFixed(2)}×`
          : '—'
        ).padStart(10),
        (settings.length
          ? `${(median(f.theirs.get(settings[0])!.cpu) / median(oursHead.cpu)).toFixed(2)}×`
          : '—'
        ).padStart(9),
        f.machineBusy === null ? '—' : `${(f.machineBusy * 100).toFixed(0)}%`,
        `${f.tensorsBefore}→${f.tensorsAfter}`,
      ].join(' | '),
    );
  }
  if (e2eFigures.length) {
    console.log(
      `\nend to end (lib/train on ${opts.e2e!.images} training images, last of ${opts.e2e!.epochs} epochs; training pass images/s; test evaluation of ${opts.e2e!.test} images in s)`,
    );
    console.log(
      [
        'batch',
        ...opts.precisions.map((p) => `ours ${p}`),
        ...settings.map((s) => `PyTorch ${s}`),
        ...ratioHeads,
        `ours ${headline} ÷ its bare step`,
        'eval s ours / PyTorch',
        'others',
      ].join(' | '),
    );
    for (const f of e2eFigures) {
      const o = f.ours.get(headline)!;
      const bare = f.bare.get(headline) ?? null;
      const share = bare ? o.imagesPerSecond / bare : null;
      console.log(
        [
          String(f.batch).padStart(5),
          ...opts.precisions.map((p) => fmt(f.ours.get(p)!.imagesPerSecond).padStart(5 + p.length)),
          ...settings.map((s) => fmt(f.theirs.get(s)!.imagesPerSecond).padStart(8 + s.length)),
          ...settings.map((s, k) =>
            `${(o.imagesPerSecond / f.theirs.get(s)!.imagesPerSecond).toFixed(2)}×`.padStart(ratioHeads[k].length),
          ),
          (share === null
            ? '— (no bare step measured)'
            : `${(share * 100).toFixed(0)}% (${share >= E2E_GOAL ? 'meets' : 'MISSES'} the ${E2E_GOAL * 100}% goal)`
          ).padStart(20),
          `${o.evalSeconds.toFixed(2)} / ${settings.length ? f.theirs.get(settings[0])!.evalSeconds.toFixed(2) : '—'}`,
          f.machineBusy === null ? '—' : `${(f.machineBusy * 100).toFixed(0)}%`,
        ].join(' | '),
      );
    }
  }
  const grew = [...figures, ...e2eFigures].filter((f) => f.tensorsAfter > f.tensorsBefore);
  if (profiles.length)
    console.log(
      `\nwhere our training step's time goes (wall time per step, timed around each TensorFlow op):${profiles.join('\n')}`,
    );
  console.log(
    `\nratio = PyTorch's median step time ÷ ours (> 1: we are faster); best ratio = the same for the fastest steps (the least`,
  );
  console.log(
    `disturbed by other processes) and CPU ratio = PyTorch's CPU time per step ÷ ours, both against PyTorch ${settings[0] ?? '—'}.`,
  );
  console.log(
    `others = share of all ${os.cpus().length} CPUs taken by OTHER processes during the figure (0%: a quiet machine).`,
  );
  const busy = figures.filter((r) => (r.machineBusy ?? 0) > 0.25);
  if (torch && !opts.torchPassive && busy.length) {
    console.log(
      `note: other processes took over 25% of the CPUs during ${busy.length} of ${figures.length} figures. PyTorch's OpenMP threads spin-wait ` +
        'and lose much more than TensorFlow on a busy machine; rerun with --torch-passive (OMP_WAIT_POLICY=PASSIVE) for the fairer comparison.',
    );
  }
  console.log(
    `peak memory (maxRSS) ${rssMb().toFixed(0)} MB; live tensors ${tensorsAtStart} at start, ${tf.memory().numTensors} at end` +
      (grew.length
        ? `; GREW during ${grew.map((f) => ('variant' in f ? `${f.variant}/${f.batch}/${f.mode}` : `e2e/${f.batch}`)).join(', ')}`
        : ' (flat)'),
  );
  if (opts.save) {
    const total = appendRows(opts.out, rows);
    console.log(`appended ${rows.length} rows to ${path.relative(process.cwd(), opts.out)} (${total} rows)`);
  }
  return grew.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`\nerror: ${err.message}\n`);
    process.exit(1);
  },
);
