/**
 * npm run bench — the lab's network on the active backend against the same network in PyTorch
 * (python/bench_torch.py, CPU, same thread count), side by side in one run.
 *
 *   npm run bench -- [--batch-sizes 64,128,256] [--variants dynamic,static] [--modes train,infer]
 *                    [--steps 12] [--warmup 3] [--rounds 4] [--no-torch] [--torch-passive]
 *                    [--full-epoch] [--profile] [--eager] [--quick] [--no-save] [--out results/bench.parquet]
 *
 * Per variant (head), batch size and mode:
 *   train  one optimisation step: forward in training mode, cross-entropy, backward, Adam update
 *   infer  one forward pass in evaluation mode (logits)
 * as lib/train runs them: TrainStep and EvalForward, each one TensorFlow graph (lib/runtime/graph), or
 * op by op with --eager (or DCF_GRAPH=0).
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
import { cpuSnapshot, describeBackend, formatOpProfile, fusedKernelsActive, graphsEnabled, initBackend, mulberry32, othersShare, profileOps, randomNormal } from '../lib/runtime';
import { writeFileAtomic } from '../lib/formats';
import { commandLinePath, PATHS, VARIANTS, parseChoice, readEnv, setEnv, type Variant } from '../lib/config';
import { createNet } from '../lib/model';

const TRAIN_IMAGES = 50_000;
type Mode = 'train' | 'infer';

const USAGE = `usage: npm run bench -- [options]
  --batch-sizes LIST   batch sizes (default 64,128,256; --quick: 64,128)
  --variants LIST      dynamic,static (default both; --quick: dynamic)
  --modes LIST         train,infer (default both)
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
  const list = (s: string | undefined, dflt: string) => (s ?? dflt).split(',').map((x) => x.trim()).filter(Boolean);
  const batchSizes = list(v['batch-sizes'], quick ? '64,128' : '64,128,256').map((s) => int('batch-sizes', s, 0, 2));
  let variants: Variant[];
  let modes: Mode[];
  try {
    variants = list(v.variants, quick ? 'dynamic' : 'dynamic,static').map((s) => parseChoice('--variants', s, VARIANTS));
    modes = list(v.modes, 'train,infer').map((s) => parseChoice('--modes', s, ['train', 'infer'] as const));
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
    this.proc = spawn(python, [path.join(PATHS.root, 'python', 'bench_torch.py'), '--serve', '--threads', String(threads)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: passive ? { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } : process.env,
    });
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

  async run(variant: Variant, batch: number, mode: Mode, steps: number, warmup: number): Promise<Timings> {
    this.proc.stdin.write(`${JSON.stringify({ variant, batch, mode, steps, warmup })}\n`);
    const r = await this.next();
    if (r.error) throw new Error(`python/bench_torch.py: ${r.error}`);
    return { wall: r.times_ms as number[], cpu: r.cpu_ms as number[] };
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
  return Array.from({ length: rounds }, (_, r) => Math.floor((steps * (r + 1)) / rounds) - Math.floor((steps * r) / rounds));
}

// ---- run identity ------------------------------------------------------------------------------

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PATHS.root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
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
  machineBusy: pl.Float64,
  maxRssMb: pl.Float64,
  tensorsBefore: pl.Int64,
  tensorsAfter: pl.Int64,
};

function appendRows(file: string, rows: Row[]): number {
  const columns = (Object.keys(SCHEMA) as (keyof Row)[]).map((k) => pl.Series(k, rows.map((r) => r[k]) as unknown[], SCHEMA[k]));
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
  console.log(`machine   ${os.cpus()[0]?.model ?? '?'} × ${os.cpus().length}, ${threads} threads each side; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  let torch: TorchBench | undefined;
  if (opts.torch) {
    torch = new TorchBench(threads, opts.torchPassive);
    await torch.ready();
    console.log(`PyTorch   ${torch.version}, ${torch.threads} threads (python/bench_torch.py)${opts.torchPassive ? ', OMP_WAIT_POLICY=PASSIVE' : ''}`);
  }
  console.log(`timing    ${opts.steps} steps after ${opts.warmup} warm-up, in ${opts.rounds} alternating rounds; median`);

  const rows: Row[] = [];
  const base = {
    time: new Date(), commit: gitCommit(), host: os.hostname(), cpus: os.cpus().length, threads, load1,
    backend: describeBackend(backend), fused: fusedKernelsActive(), graph: graphsEnabled(), onednn,
    torch: torch ? `${torch.version}${opts.torchPassive ? ' OMP_WAIT_POLICY=PASSIVE' : ''}` : '',
  };
  const tensorsAtStart = tf.memory().numTensors;
  const profiles: string[] = [];
  // PyTorch's process counts as measured, not as "other" load.
  const torchPids = torch?.pid ? [torch.pid] : [];

  for (const variant of opts.variants) {
    const net = createNet(variant, { pretrained: false, seed: 0 });
    const trainable = net.trainable();
    const adam = new Adam(trainable, { lr: 1e-3 });
    const trainStep = new TrainStep(net, adam);
    const eagerStep = new TrainStep(net, adam, 0, { graph: false }); // for --profile: one binding call per op
    const evalForward = new EvalForward(net);
    for (const batch of opts.batchSizes) {
      const { x, y } = makeBatch(batch, 1234 + batch);
      const steps: Record<Mode, () => void> = {
        train: () => tf.dispose(trainStep.run(x, y, 1e-3)),
        infer: () => tf.dispose(evalForward.run(x)),
      };
      for (const mode of opts.modes) {
        const tensorsBefore = tf.memory().numTensors;
        const cpuBefore = cpuSnapshot(torchPids);
        for (let i = 0; i < opts.warmup; i++) steps[mode]();
        if (torch && opts.warmup > 0) await torch.run(variant, batch, mode, 0, opts.warmup);
        const ours: Timings = { wall: [], cpu: [] };
        const theirs: Timings = { wall: [], cpu: [] };
        for (const n of splitSteps(opts.steps, opts.rounds)) {
          if (torch) {
            const t = await torch.run(variant, batch, mode, n, 0);
            theirs.wall.push(...t.wall);
            theirs.cpu.push(...t.cpu);
            // Let the other side's worker threads go idle before we start.
            await new Promise((r) => setTimeout(r, 50));
          }
          const o = timeOurs(steps[mode], n);
          ours.wall.push(...o.wall);
          ours.cpu.push(...o.cpu);
        }
        const cpuAfter = cpuSnapshot(torchPids);
        const oursMs = median(ours.wall);
        const torchMs = torch ? median(theirs.wall) : null;
        const perEpoch = Math.ceil(TRAIN_IMAGES / batch);
        rows.push({
          ...base, variant, batch, mode, steps: opts.steps,
          oursMs, oursImagesPerSecond: (batch * 1000) / oursMs, oursCpuMs: median(ours.cpu),
          torchMs, torchImagesPerSecond: torchMs ? (batch * 1000) / torchMs : null, torchCpuMs: torch ? median(theirs.cpu) : null,
          ratio: torchMs ? torchMs / oursMs : null,
          cpuRatio: torch ? median(theirs.cpu) / median(ours.cpu) : null,
          oursBestMs: Math.min(...ours.wall),
          torchBestMs: torch ? Math.min(...theirs.wall) : null,
          bestRatio: torch ? Math.min(...theirs.wall) / Math.min(...ours.wall) : null,
          epochSeconds: (oursMs * perEpoch) / 1000,
          torchEpochSeconds: torchMs ? (torchMs * perEpoch) / 1000 : null,
          machineBusy: othersShare(cpuBefore, cpuAfter),
          maxRssMb: rssMb(),
          tensorsBefore, tensorsAfter: tf.memory().numTensors,
        });
        const r = rows[rows.length - 1];
        process.stderr.write(`  ${variant} ${batch} ${mode}: ours ${fmt(r.oursImagesPerSecond)} img/s, PyTorch ${fmt(r.torchImagesPerSecond)} img/s\n`);
      }
      if (opts.profile) {
        const p = profileOps(() => tf.dispose(eagerStep.run(x, y, 1e-3)), { steps: opts.steps, warmup: 1 });
        profiles.push(`\n${variant} head, batch ${batch}, training step: ${p.stepMs.toFixed(1)} ms, of which ${p.opMs.toFixed(1)} ms in TensorFlow ops`, ...formatOpProfile(p));
      }
      tf.dispose([x, y]);
    }
    for (const s of [trainStep, eagerStep, evalForward]) s.dispose();
    adam.dispose();
    net.dispose();
  }
  torch?.close();

  if (opts.fullEpoch) {
    const batch = opts.batchSizes.length === 1 ? opts.batchSizes[0] : LAB_RECIPE.batchSize;
    const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-bench-'));
    const tensorsBefore = tf.memory().numTensors;
    const cpuBefore = cpuSnapshot();
    process.stderr.write(`  one real epoch of the lab's training (batch ${batch}, 50,000 images, then the test set)…\n`);
    try {
      const result = await train({ ...LAB_RECIPE, run: 'bench-epoch', epochs: 1, batchSize: batch, pretrained: fs.existsSync(PATHS.pretrained) }, { runsDir });
      const cpuAfter = cpuSnapshot();
      const e = result.history[0];
      rows.push({
        ...base, variant: LAB_RECIPE.variant, batch, mode: 'epoch', steps: Math.ceil(e.train.images / batch),
        oursMs: (e.train.seconds * 1000 * batch) / e.train.images, oursImagesPerSecond: e.train.imagesPerSecond, oursCpuMs: NaN,
        torchMs: null, torchImagesPerSecond: null, torchCpuMs: null, ratio: null, cpuRatio: null,
        oursBestMs: NaN, torchBestMs: null, bestRatio: null,
        epochSeconds: e.train.seconds, torchEpochSeconds: null,
        machineBusy: othersShare(cpuBefore, cpuAfter),
        maxRssMb: rssMb(), tensorsBefore, tensorsAfter: tf.memory().numTensors,
      });
      console.log(`\nfull epoch (lib/train, batch ${batch}): train ${e.train.seconds.toFixed(1)} s (${e.train.imagesPerSecond.toFixed(0)} img/s), ` +
        `test evaluation ${e.test.seconds.toFixed(1)} s, test accuracy ${(e.test.accuracy * 100).toFixed(1)} %`);
    } finally {
      fs.rmSync(runsDir, { recursive: true, force: true });
    }
  }

  // ---- report
  console.log('\n' + ['variant', 'batch', 'mode', 'ours img/s', 'PyTorch img/s', 'ratio', 'ours ms', 'PyTorch ms', 'CPU ms ours/PyTorch', 'CPU ratio', 'best ratio', 'epoch s (ours/PyTorch)', 'others', 'tensors'].join(' | '));
  for (const r of rows) {
    console.log([
      r.variant.padEnd(7), String(r.batch).padStart(5), r.mode.padEnd(5),
      fmt(r.oursImagesPerSecond).padStart(10), fmt(r.torchImagesPerSecond).padStart(13),
      (r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`).padStart(5),
      fmt(r.oursMs, 1).padStart(7), fmt(r.torchMs, 1).padStart(10),
      `${fmt(r.oursCpuMs)} / ${fmt(r.torchCpuMs)}`.padStart(19),
      (r.cpuRatio === null ? '—' : `${r.cpuRatio.toFixed(2)}×`).padStart(9),
      (r.bestRatio === null ? '—' : `${r.bestRatio.toFixed(2)}×`).padStart(10),
      `${fmt(r.epochSeconds)} / ${fmt(r.torchEpochSeconds)}`.padStart(22),
      r.machineBusy === null ? '—' : `${(r.machineBusy * 100).toFixed(0)}%`,
      `${r.tensorsBefore}→${r.tensorsAfter}`,
    ].join(' | '));
  }
  const grew = rows.filter((r) => r.tensorsAfter > r.tensorsBefore);
  if (profiles.length) console.log(`\nwhere our training step's time goes (wall time per step, timed around each TensorFlow op):${profiles.join('\n')}`);
  console.log(`\nratio = ours images/s ÷ PyTorch images/s (median wall-clock step, > 1: we are faster); CPU ratio = PyTorch CPU time per step ÷ ours;`);
  console.log(`best ratio = PyTorch's fastest step ÷ ours (the steps least disturbed by other processes).`);
  console.log(`others = share of all ${os.cpus().length} CPUs taken by OTHER processes during the figure (0%: a quiet machine).`);
  const busy = rows.filter((r) => (r.machineBusy ?? 0) > 0.25);
  if (torch && !opts.torchPassive && busy.length) {
    console.log(
      `note: other processes took over 25% of the CPUs during ${busy.length} of ${rows.length} figures. PyTorch's OpenMP threads spin-wait ` +
        'and lose much more than TensorFlow on a busy machine; rerun with --torch-passive (OMP_WAIT_POLICY=PASSIVE) for the fairer comparison.',
    );
  }
  console.log(`peak memory (maxRSS) ${rssMb().toFixed(0)} MB; live tensors ${tensorsAtStart} at start, ${tf.memory().numTensors} at end` +
    (grew.length ? `; GREW during ${grew.map((r) => `${r.variant}/${r.batch}/${r.mode}`).join(', ')}` : ' (flat)'));
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
