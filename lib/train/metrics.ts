/**
 * Training metrics as Parquet (nodejs-polars), one folder per run:
 *
 *   results/runs/<run>/metrics/epochs-e0003-s002.parquet   rows of epoch 3 (one per split), session 2
 *   results/runs/<run>/metrics/steps-e0003-s002.parquet    that epoch's step rows (every k steps)
 *
 * Each finished epoch adds two new files (temporary name, fsync, rename); nothing already written
 * is ever rewritten, so a crash loses at most the unfinished epoch. An epoch counts as finished
 * when its `epochs-…` part exists (the steps part is written first).
 *
 * A *session* is one invocation of training on the run (1, 2, … in order). A session that
 * resumes from a checkpoint of epoch r (`resumedFrom`) supersedes the rows of earlier sessions
 * for epochs after r: those epochs are being retrained from another state. The loaders apply
 * that rule (files stay on disk; `includeSuperseded` shows them), so a run's rows always
 * describe the history of the weights it has now.
 *
 * Column names are the same as the fields of EpochRow and StepRow below (camelCase).
 */
import * as fs from 'fs';
import * as path from 'path';
import pl, { type DataType } from 'nodejs-polars';
import { writeFileAtomic } from '../formats/index';
import { PATHS, type Variant } from '../config';

export type Split = 'train' | 'val' | 'test';

/** What every metrics row says about where it comes from. */
export interface RowOrigin {
  run: string;
  /** Which invocation of training wrote the row (1, 2, …). */
  session: number;
  /** The epoch of the checkpoint this session started from (0: from scratch). */
  resumedFrom: number;
  variant: Variant;
  seed: number;
  /** describeBackend() of the process that wrote the row. */
  backend: string;
  /** 1-based epoch number. */
  epoch: number;
}

/** One split evaluated at the end of one epoch. */
export interface EpochRow extends RowOrigin {
  /** `train`: running averages over the epoch's training batches (augmented, BatchNorm in training
   *  mode); `test` / `val`: a full evaluation pass after the epoch. */
  split: Split;
  /** Optimizer steps taken when the epoch ended (global, over all sessions). */
  step: number;
  /** Images in this pass. */
  images: number;
  /** Mean cross-entropy (with label smoothing for `train` when configured). */
  loss: number;
  /** Fraction correct in [0, 1]. */
  accuracy: number;
  /** [10] fraction correct per class, in CLASS_NAMES order (NaN for a class with no images). */
  perClassAccuracy: number[];
  /** Learning rate of the epoch's last step. */
  lr: number;
  /** Throughput of this pass (training step images/s, or evaluation images/s). */
  imagesPerSecond: number;
  /** Wall-clock seconds of this pass. */
  wallSeconds: number;
  /** When the pass ended. */
  time: Date;
}

/** Training progress every k steps: averages over the steps since the previous row. */
export interface StepRow extends RowOrigin {
  /** Global optimizer step at the end of the window. */
  step: number;
  /** 1-based batch index within the epoch at the end of the window. */
  batch: number;
  /** Images in the window. */
  images: number;
  /** Mean training loss over the window's batches. */
  loss: number;
  /** Fraction of the window's images classified correctly (training mode). */
  accuracy: number;
  lr: number;
  imagesPerSecond: number;
  time: Date;
}

type Columns<T> = { [K in keyof T]-?: DataType };

const IDENTITY = {
  run: pl.Utf8,
  session: pl.Int32,
  resumedFrom: pl.Int32,
  variant: pl.Utf8,
  seed: pl.Int64,
  backend: pl.Utf8,
  epoch: pl.Int32,
};

/** Parquet schema of the epoch rows, in column order. */
export const EPOCH_SCHEMA: Columns<EpochRow> = {
  ...IDENTITY,
  split: pl.Utf8,
  step: pl.Int64,
  images: pl.Int64,
  loss: pl.Float64,
  accuracy: pl.Float64,
  perClassAccuracy: pl.List(pl.Float64),
  lr: pl.Float64,
  imagesPerSecond: pl.Float64,
  wallSeconds: pl.Float64,
  time: pl.Datetime('ms'),
};

/** Parquet schema of the step rows, in column order. */
export const STEP_SCHEMA: Columns<StepRow> = {
  ...IDENTITY,
  step: pl.Int64,
  batch: pl.Int32,
  images: pl.Int64,
  loss: pl.Float64,
  accuracy: pl.Float64,
  lr: pl.Float64,
  imagesPerSecond: pl.Float64,
  time: pl.Datetime('ms'),
};

// The run store's bookkeeping (lib/train/run): part files, appended and checked. Loaders follow.
type MetricsKind = 'epochs' | 'steps';
const SCHEMAS = { epochs: EPOCH_SCHEMA, steps: STEP_SCHEMA } as Record<MetricsKind, Record<string, DataType>>;
const PART = /^(epochs|steps)-e(\d{4,})-s(\d{3,})\.parquet$/;
type Part = { kind: MetricsKind; epoch: number; session: number; file: string };
export const metricsDir = (runDir: string): string => path.join(runDir, 'metrics');

/** A run's parts, sorted by session, then epoch. */
function listParts(runDir: string): Part[] {
  const dir = metricsDir(runDir);
  const parts: Part[] = [];
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    const [, kind, epoch, session] = PART.exec(name) ?? [];
    if (kind) parts.push({ kind: kind as MetricsKind, epoch: +epoch, session: +session, file: path.join(dir, name) });
  }
  return parts.sort((a, b) => a.session - b.session || a.epoch - b.epoch);
}

/** The session number a new training invocation on this run should use. */
export const nextSession = (runDir: string): number => Math.max(0, ...listParts(runDir).map((p) => p.session)) + 1;

/**
 * Appends one finished epoch (rows of one epoch and session): its steps part, then its epochs part
 * that marks it finished. A part that exists already is an error: finished data is never rewritten.
 */
export function appendEpoch(runDir: string, epochRows: readonly EpochRow[], stepRows: readonly StepRow[]): void {
  if (epochRows.length === 0) throw new Error('appendEpoch: no epoch rows');
  const { epoch, session } = epochRows[0];
  const odd = [...epochRows, ...stepRows].find((r) => r.epoch !== epoch || r.session !== session);
  if (odd) throw new Error(`appendEpoch: epoch ${odd.epoch}, session ${odd.session} mixed with ${epoch}, ${session}`);
  const name = `e${String(epoch).padStart(4, '0')}-s${String(session).padStart(3, '0')}.parquet`;
  const file = (kind: MetricsKind) => path.join(metricsDir(runDir), `${kind}-${name}`);
  const existing = [file('steps'), file('epochs')].find((f) => fs.existsSync(f));
  if (existing) throw new Error(`metrics part ${existing} already exists; finished epochs are never rewritten`);
  for (const [kind, rows] of Object.entries({ steps: stepRows, epochs: epochRows }) as [MetricsKind, object[]][]) {
    if (rows.length === 0) continue;
    const frame = pl.DataFrame(Object.entries(SCHEMAS[kind]).map(([name, dtype]) => column(rows, name, dtype)));
    writeFileAtomic(file(kind), frame.writeParquet({ compression: 'zstd' }));
  }
}

function column(rows: readonly object[], name: string, dtype: DataType): pl.Series {
  const values = rows.map((r) => (r as Record<string, unknown>)[name]);
  if (values.includes(undefined)) throw new Error(`metrics row lacks '${name}'`);
  return pl.Series(name, values, dtype);
}

/** A run's latest finished epoch whose parts (`files`) cannot all be read back; `reason`: the first failure. */
export type DamagedEpoch = { epoch: number; files: string[]; reason: string };

/**
 * The epochs whose rows the metrics hold (as the loaders show them), and the latest block (the newest session's
 * newest epoch) if it cannot be read: only that tail is read, as a rerun can train it again; the loaders name the rest.
 */
export function recordedEpochs(runDir: string): { epochs: Set<number>; damaged?: DamagedEpoch } {
  const parts = listParts(runDir);
  const tail = parts.filter((p) => p.kind === 'epochs').pop();
  const block = parts.filter((p) => p.epoch === tail?.epoch && p.session === tail.session);
  let damaged: DamagedEpoch | undefined;
  for (const p of block) {
    try {
      readPart(p.file, p.kind);
    } catch (err) {
      damaged ??= { epoch: tail!.epoch, files: block.map((b) => b.file), reason: (err as Error).message };
    }
  }
  const readable = parts.filter((p) => !damaged?.files.includes(p.file));
  return { epochs: new Set(visibleParts(readable, 'epochs', false).map((p) => p.epoch)), damaged };
}

/** A part read back in the schema's columns, order and types: parts from any version concatenate. */
function readPart(file: string, kind: MetricsKind): pl.DataFrame {
  let df: pl.DataFrame;
  try {
    df = pl.readParquet(file);
  } catch (err) {
    const why = (err as Error).message;
    throw new Error(`cannot read metrics part ${file}: ${why}. Move the file away to load the rest.`);
  }
  const missing = Object.keys(SCHEMAS[kind]).filter((c) => !df.columns.includes(c));
  if (missing.length) throw new Error(`metrics part ${file} lacks column(s) ${missing.join(', ')}`);
  return df.select(...Object.entries(SCHEMAS[kind]).map(([name, dtype]) => pl.col(name).cast(dtype)));
}

export interface LoadOptions {
  /** Folder holding the runs (default PATHS.runs). */
  runsDir?: string;
  /** Only these runs (default: every run folder with metrics). An unknown name is an error. */
  runs?: readonly string[];
  /** Keep rows of epochs that a later session retrained (default false). */
  includeSuperseded?: boolean;
}

/** Names of the runs under `runsDir` that have a config (sorted). Hidden folders are staging areas. */
export function listRuns(runsDir: string = PATHS.runs): string[] {
  if (!fs.existsSync(runsDir)) return [];
  return fs
    .readdirSync(runsDir, { withFileTypes: true })
    .filter(
      (d) => d.isDirectory() && !d.name.startsWith('.') && fs.existsSync(path.join(runsDir, d.name, 'config.json')),
    )
    .map((d) => d.name)
    .sort();
}

function emptyFrame(kind: MetricsKind): pl.DataFrame {
  // nodejs-polars cannot build an empty List series directly: build one row, keep none.
  const schema = SCHEMAS[kind];
  const sample: Record<string, unknown> = {
    run: '',
    session: 0,
    resumedFrom: 0,
    variant: 'dynamic',
    seed: 0,
    backend: '',
    epoch: 0,
    split: 'train',
    step: 0,
    batch: 0,
    images: 0,
    loss: 0,
    accuracy: 0,
    perClassAccuracy: [0],
    lr: 0,
    imagesPerSecond: 0,
    wallSeconds: 0,
    time: new Date(0),
  };
  return pl.DataFrame(Object.entries(schema).map(([name, dtype]) => pl.Series(name, [sample[name]], dtype))).head(0);
}

/** The parts (of one run) that describe its current weights (see the module comment). */
function visibleParts(parts: Part[], kind: MetricsKind, includeSuperseded: boolean): Part[] {
  const finished = new Set(parts.filter((p) => p.kind === 'epochs').map((p) => `${p.session}:${p.epoch}`));
  const wanted = parts.filter((p) => p.kind === kind && finished.has(`${p.session}:${p.epoch}`));
  if (includeSuperseded) return wanted;
  // resumedFrom of every session, read from its first epoch part.
  const resumedFrom = new Map<number, number>();
  for (const p of parts) {
    if (p.kind !== 'epochs' || resumedFrom.has(p.session)) continue;
    const r = readPart(p.file, 'epochs').getColumn('resumedFrom').toArray()[0] as number;
    resumedFrom.set(p.session, r);
  }
  const sessions = [...resumedFrom.keys()].sort((a, b) => a - b);
  // cut(s): epochs after the earliest resume point of any later session are superseded.
  const cut = new Map<number, number>();
  let later = Infinity;
  for (let i = sessions.length - 1; i >= 0; i--) {
    cut.set(sessions[i], later);
    later = Math.min(later, resumedFrom.get(sessions[i])!);
  }
  return wanted.filter((p) => p.epoch <= (cut.get(p.session) ?? Infinity));
}

function load(kind: MetricsKind, opts: LoadOptions): pl.DataFrame {
  const runsDir = opts.runsDir ?? PATHS.runs;
  const all = listRuns(runsDir);
  const runs = opts.runs ?? all;
  const unknown = runs.filter((r) => !all.includes(r));
  if (unknown.length) {
    throw new Error(`no run named ${unknown.join(', ')} under ${runsDir}; runs there: ${all.join(', ') || 'none'}`);
  }
  const frames = [emptyFrame(kind)];
  for (const run of runs) {
    const parts = visibleParts(listParts(path.join(runsDir, run)), kind, opts.includeSuperseded ?? false);
    for (const p of parts) frames.push(readPart(p.file, kind));
  }
  const df = pl.concat(frames, { how: 'vertical' });
  return kind === 'epochs' ? df.sort(['run', 'epoch', 'session', 'split']) : df.sort(['run', 'step', 'session']);
}

/** Every run's epoch rows as one DataFrame (columns: EPOCH_SCHEMA), sorted by run, epoch, session, split. */
export function loadEpochMetrics(opts: LoadOptions = {}): pl.DataFrame {
  return load('epochs', opts);
}

/** Every run's step rows as one DataFrame (columns: STEP_SCHEMA), sorted by run, step, session. */
export function loadStepMetrics(opts: LoadOptions = {}): pl.DataFrame {
  return load('steps', opts);
}

/** Typed epoch rows (for plots): loadEpochMetrics as objects. */
export function readEpochRows(opts: LoadOptions = {}): EpochRow[] {
  return loadEpochMetrics(opts).toRecords() as unknown as EpochRow[];
}

/** Typed step rows (for plots): loadStepMetrics as objects. */
export function readStepRows(opts: LoadOptions = {}): StepRow[] {
  return loadStepMetrics(opts).toRecords() as unknown as StepRow[];
}

/** The epoch rows of one run directory (e.g. a run in progress, or outside PATHS.runs). */
export function readRunEpochs(runDir: string, opts: { includeSuperseded?: boolean } = {}): EpochRow[] {
  const parts = visibleParts(listParts(runDir), 'epochs', opts.includeSuperseded ?? false);
  const frames = [emptyFrame('epochs'), ...parts.map((p) => readPart(p.file, 'epochs'))];
  return pl
    .concat(frames, { how: 'vertical' })
    .sort(['epoch', 'session', 'split'])
    .toRecords() as unknown as EpochRow[];
}
