/**
 * The run store: a run's folder, results/runs/<run>/, which one training session at a time opens,
 * appends finished epochs to, and closes.
 *
 *   config.json          the TrainConfig of the latest session that saved an epoch
 *   best.safetensors     checkpoint of the best epoch so far (lib/train/checkpoint)
 *   last.safetensors     checkpoint of the latest finished epoch
 *   metrics/             Parquet parts, two per finished epoch (lib/train/metrics)
 *
 * Beside it, in the runs folder, only hidden names of the same run:
 *
 *   .<run>.lock          who is training it (lib/train/run-lock)
 *   .<run>.fresh/        a --fresh restart being staged: the old run stays untouched until the new
 *                        one has saved its first epoch; then the old folder is moved aside
 *                        (.<run>.old-<pid>), the staged one renamed into place and the old deleted.
 *
 * openRun() takes the lock and brings the folder to a state a session can continue from. It
 * repairs what a crash or a hand edit left, or refuses saying what to do; it never passes over:
 *  - an interrupted --fresh: finished when it had saved its first epoch, else discarded;
 *  - a crash between the best and last saves of an epoch (last behind best, or missing): last is
 *    rewritten from best. A missing best is rewritten from last when last is the best epoch, and
 *    refused otherwise, like a best that is not the one last records or another run's checkpoint;
 *  - a damaged latest metrics block: set aside (*.damaged) and its epoch trained again; an epoch
 *    without rows (a deleted part): trained again from an earlier checkpoint, or refused naming it;
 *  - a path of the wrong kind (a folder for a file, a file for a folder), a folder it cannot write
 *    to, a full disk: refused before any training, naming the path.
 * Repairs are written only once every check has passed; evalOnly writes nothing.
 */
import * as fs from 'fs';
import * as path from 'path';
import { removeStaleTempFiles, writeFileAtomic } from '../formats/index';
import type { Net } from '../model/index';
import { PATHS } from '../config';
import type { Adam } from './adam';
import { CHECKPOINT_KINDS, checkpointPath, copyCheckpoint, readCheckpoint, readCheckpointMeta } from './checkpoint';
import { saveCheckpoint } from './checkpoint';
import type { CheckpointContent, CheckpointKind, CheckpointMeta } from './checkpoint';
import type { EvalResult } from './evaluate';
import type { ProgressCallback } from './events';
import { InterruptRequest } from './interrupt';
import { appendEpoch as appendMetrics, metricsDir, nextSession, readRunEpochs, readStepRows, recordedEpochs } from './metrics';
import { writeTensorboard } from './tensorboard';
import type { EpochRow, StepRow } from './metrics';
import { describeHolder, RunLock } from './run-lock';
import { checkRunName, configConflicts, validateConfig, type TrainConfig } from './train-config';

const errnoCode = (err: unknown) => (err as NodeJS.ErrnoException)?.code;
const other = (kind: CheckpointKind): CheckpointKind => (kind === 'best' ? 'last' : 'best');
const percent = (x: number) => `${(x * 100).toFixed(2)}%`;

/** A run's folder and the names beside it; reading it changes nothing. */
export class RunDir {
  readonly dir: string;
  /** Where a --fresh restart is staged until its first epoch is saved. */
  readonly staging: string;
  private readonly lock: RunLock;

  constructor(
    readonly runsDir: string,
    readonly run: string,
  ) {
    checkRunName(run);
    this.dir = path.join(runsDir, run);
    this.staging = path.join(runsDir, `.${run}.fresh`);
    this.lock = new RunLock(path.join(runsDir, `.${run}.lock`), run);
  }

  checkpoint(kind: CheckpointKind, dir = this.dir): string {
    return checkpointPath(dir, kind);
  }

  configFile(dir = this.dir): string {
    return path.join(dir, 'config.json');
  }

  /** The saved config.json (of currentDir() by default), or undefined when the run has none. */
  readConfig(dir = this.currentDir()): TrainConfig | undefined {
    this.checkLayout();
    const file = this.configFile(dir);
    if (!fs.existsSync(file)) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`${file} is not valid JSON (${(err as Error).message}); fix it or start over with --fresh`);
    }
    return validateConfig(json, file);
  }

  writeConfig(config: TrainConfig, dir = this.dir): void {
    writeFileAtomic(this.configFile(dir), `${JSON.stringify(config, null, 2)}\n`);
  }

  /** Who trains the run right now ("process 1234", "process 1234 on host n7"), other than this process. */
  lockedBy(): string | undefined {
    const holder = this.lock.heldBy();
    return holder && describeHolder(holder);
  }

  /**
   * The folder that holds the run's current state: the staged --fresh run once it has saved its
   * first epoch (its commit was interrupted; recover() finishes it), else the run's own folder.
   */
  currentDir(): string {
    return fs.existsSync(this.checkpoint('last', this.staging)) ? this.staging : this.dir;
  }

  /** `npm run train` on this run with `flag`. */
  command(flag: string): string {
    const folder = path.resolve(this.runsDir) === path.resolve(PATHS.runs) ? '' : ` --runs-dir ${this.runsDir}`;
    return `npm run train -- --run ${this.run}${folder} ${flag}`;
  }

  /** How to start the run over, from `npm run train` or `npm run experiments`. */
  startOver(): string {
    const experiments = `a run of npm run experiments: delete ${this.dir}, then rerun them`;
    return `start over with ${this.command('--fresh')} (${experiments})`;
  }

  /** Refuses, naming it, a path of the wrong kind: a file where a folder belongs, or the reverse. */
  checkLayout(): void {
    let existing = path.resolve(this.runsDir);
    while (!fs.existsSync(existing)) existing = path.dirname(existing);
    for (const folder of [existing, this.runsDir, this.dir, metricsDir(this.dir)]) {
      if (fs.statSync(folder, { throwIfNoEntry: false })?.isFile()) {
        throw new Error(
          `${folder} is a file, where run '${this.run}' needs a folder: move it away, or use another --runs-dir. ` +
            'Nothing was changed.',
        );
      }
    }
    for (const file of [this.configFile(), this.checkpoint('best'), this.checkpoint('last'), this.lock.file]) {
      if (fs.statSync(file, { throwIfNoEntry: false })?.isDirectory()) {
        throw new Error(
          `${file} is a folder, where run '${this.run}' keeps a file: move it away. Nothing was changed.`,
        );
      }
    }
  }

  /**
   * Takes the run's lock (RunLockedError while another training holds it) and fails now, before any
   * training, when the folders a session writes cannot be written. Returns notes on what it took over.
   */
  async takeLock(fresh = false): Promise<string[]> {
    let folder = this.runsDir;
    try {
      fs.mkdirSync(this.runsDir, { recursive: true });
      const notes = await this.lock.acquire(); // its file is the first write, into the runs folder
      for (folder of fresh ? [] : [this.dir, metricsDir(this.dir)].filter((f) => fs.existsSync(f))) {
        const probe = path.join(folder, `.write-check.${process.pid}.tmp`);
        fs.writeFileSync(probe, 'x'); // a byte: a full disk refuses it, an empty file it may not
        fs.rmSync(probe);
      }
      return notes;
    } catch (err) {
      const code = errnoCode(err);
      if (!code) throw err;
      this.lock.release();
      const fix =
        code === 'ENOSPC' || code === 'EDQUOT' ? 'The disk is full: free some space' : 'Make the folder writable';
      throw new Error(
        `cannot write to ${folder} (${code}): run '${this.run}' could not save its epochs. Nothing was trained. ` +
          `${fix}, or train into another folder with --runs-dir.`,
      );
    }
  }

  releaseLock(): void {
    this.lock.release();
  }

  /**
   * Finishes or discards what an interrupted --fresh left (call with the lock held): a staged run
   * that saved its first epoch replaces the old run; an unfinished one is deleted. Removes temporary
   * files of dead writers. Returns a note on what it did.
   */
  recover(): string | undefined {
    const prefix = `.${this.run}.old-`;
    for (const name of fs.existsSync(this.runsDir) ? fs.readdirSync(this.runsDir) : []) {
      if (name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length))) {
        fs.rmSync(path.join(this.runsDir, name), { recursive: true });
      }
    }
    for (const d of [this.dir, metricsDir(this.dir)]) removeStaleTempFiles(d);
    if (!fs.existsSync(this.staging)) return undefined;
    if (fs.existsSync(this.checkpoint('last', this.staging))) {
      this.commitFresh();
      const restart = 'an interrupted --fresh restart';
      return `${restart} had saved its first epoch: finished it, the restarted run replaced the old one`;
    }
    fs.rmSync(this.staging, { recursive: true, force: true });
    return 'an interrupted --fresh restart had saved no epoch: discarded it, the run is as it was before';
  }

  /** Starts a --fresh restart: an empty staging folder (the run itself stays as it is). */
  beginFresh(): string {
    fs.rmSync(this.staging, { recursive: true, force: true });
    fs.mkdirSync(this.staging, { recursive: true });
    return this.staging;
  }

  /** Replaces the run by the staged one: old folder renamed aside, staged renamed in, old deleted. */
  commitFresh(): void {
    const aside = path.join(this.runsDir, `.${this.run}.old-${process.pid}`);
    if (fs.existsSync(this.dir)) fs.renameSync(this.dir, aside);
    fs.renameSync(this.staging, this.dir);
    fs.rmSync(aside, { recursive: true, force: true });
  }
}

/** The checkpoint a run continues from. */
export interface RunStart {
  content: CheckpointContent;
  file: string;
  kind: CheckpointKind;
  /** Its last checkpoint finished every epoch asked: evaluate, train nothing. */
  complete: boolean;
}

/** What a derived view of the metrics (a TensorBoard event file, say) gets after each saved epoch. */
export interface SavedEpoch {
  dir: string;
  epoch: number;
  rows: readonly EpochRow[];
  steps: readonly StepRow[];
}

export interface OpenOptions {
  runsDir: string;
  /** Which checkpoint an existing run continues from (default: best). */
  resume?: CheckpointKind;
  /** Read the start checkpoint only: no lock, no repair, nothing written. */
  evalOnly?: boolean;
  /** Start over; the old run is replaced once the new one has saved its first epoch. */
  fresh?: boolean;
  /** describeBackend() of this process, saved with each checkpoint. */
  backend: string;
  /** Called after each appended epoch, once its metrics and checkpoints are saved. */
  onEpochSaved?: (epoch: SavedEpoch) => void;
}

/**
 * Opens run `config.run` for a session: takes its lock (unless evalOnly), repairs or refuses what
 * it finds (see the module comment) and picks the checkpoint it continues from. `notes` of the
 * session say what was repaired. Close the session in a finally block.
 */
export async function openRun(config: TrainConfig, opts: OpenOptions): Promise<RunSession> {
  if (opts.fresh && opts.evalOnly)
    throw new Error('evalOnly and fresh contradict each other: there is nothing to evaluate after starting over');
  const folder = new RunDir(opts.runsDir, config.run);
  folder.checkLayout();
  // A rerun right after ■ finds the interrupted call finishing its step: it waits for it.
  await InterruptRequest.settled(folder.dir);
  const notes = opts.evalOnly ? [] : await folder.takeLock(opts.fresh);
  try {
    const recovered = opts.evalOnly ? undefined : folder.recover();
    if (recovered) notes.push(recovered);
    const { start, last }: ReturnType<typeof chooseStart> = opts.fresh ? {} : chooseStart(folder, config, opts, notes);
    if (opts.evalOnly && !start)
      throw new Error(`run '${config.run}' has no checkpoint to evaluate under ${opts.runsDir}`);
    return new RunSession(folder, config, opts, notes, start, last);
  } catch (err) {
    folder.releaseLock();
    throw err;
  }
}

/**
 * Reads both checkpoints and the metrics, repairs or refuses (module comment), and picks the
 * checkpoint the run continues from: its best (default) or its last, or none (a new run).
 * Returns it with the last checkpoint's metadata (after repair).
 */
function chooseStart(
  folder: RunDir,
  config: TrainConfig,
  opts: OpenOptions,
  notes: string[],
): { start?: RunStart; last?: CheckpointMeta } {
  const { run } = config;
  const file = (kind: CheckpointKind) => folder.checkpoint(kind);
  const metas: Partial<Record<CheckpointKind, CheckpointMeta>> = {};
  for (const kind of CHECKPOINT_KINDS) {
    if (!fs.existsSync(file(kind))) continue;
    try {
      metas[kind] = readCheckpointMeta(file(kind));
    } catch (err) {
      if (opts.resume !== other(kind)) throw err; // its message offers the other checkpoint
      notes.push(`${file(kind)} is damaged; resuming from ${opts.resume} as asked`);
      continue;
    }
    const owner = metas[kind]!.config.run;
    if (owner !== run) {
      throw new Error(
        `${file(kind)} is a checkpoint of run '${owner}', not of '${run}' (copied from another run?). ` +
          `Nothing was changed. Put this run's own ${kind}.safetensors back, move this one away ` +
          `(the run continues from its other checkpoint), or ${folder.startOver()}.`,
      );
    }
  }

  // best and last agree, or one is rewritten from the other (`repairs`, written once all checks pass).
  const { best, last } = metas;
  const source = { best: file('best'), last: file('last') };
  const repairs: [CheckpointKind, string][] = [];
  const newer = (a: CheckpointMeta, b: CheckpointMeta) =>
    a.session > b.session || (a.session === b.session && a.epoch > b.epoch);
  if (best && (!last || newer(best, last))) {
    // A crash between the two saves of an epoch: best holds that epoch's state, last is behind.
    source.last = source.best;
    metas.last = { ...best, kind: 'last' };
    const was = last
      ? `at epoch ${last.epoch}, behind best (epoch ${best.epoch})`
      : `missing (best: epoch ${best.epoch})`;
    repairs.push([
      'last',
      `last.safetensors was ${was}, as a crash between the two saves of an epoch leaves it: rewritten from best`,
    ]);
  } else if (last && !fs.existsSync(file('best'))) {
    if (last.bestEpoch !== last.epoch) {
      throw new Error(
        `run '${run}' has no best.safetensors (deleted?), and its last checkpoint (epoch ${last.epoch}) ` +
          `records the best as epoch ${last.bestEpoch} (${percent(last.bestAccuracy)}), whose weights are gone. ` +
          'Nothing was changed. ' +
          `Put best.safetensors back, or ${folder.startOver()}.`,
      );
    }
    source.best = source.last;
    metas.best = { ...last, kind: 'best' };
    repairs.push([
      'best',
      `best.safetensors was missing; last (epoch ${last.epoch}) is the best epoch: rewritten from it`,
    ]);
  } else if (best && last && (best.epoch !== last.bestEpoch || best.accuracy !== last.bestAccuracy)) {
    throw new Error(
      `run '${run}': best.safetensors (epoch ${best.epoch}, ${percent(best.accuracy)}) is not the best that ` +
        `last.safetensors records (epoch ${last.bestEpoch}, ${percent(last.bestAccuracy)}): ` +
        'replaced or copied by hand? Nothing was changed. ' +
        `Put the run's own best.safetensors back, or ${folder.startOver()}.`,
    );
  }
  if (!CHECKPOINT_KINDS.some((k) => fs.existsSync(file(k)))) return {}; // a new run

  // Every epoch up to the start must keep its rows: a missing or unreadable one is trained again.
  const { epochs: recorded, damaged } = recordedEpochs(folder.dir);
  if (damaged) recorded.delete(damaged.epoch);
  const newest = Math.max(metas.best?.epoch ?? 0, metas.last?.epoch ?? 0);
  const missing = Array.from({ length: newest }, (_, i) => i + 1).filter((e) => !recorded.has(e));
  const usable = (kind: CheckpointKind) =>
    metas[kind] !== undefined && (!!opts.evalOnly || metas[kind]!.epoch < (missing[0] ?? Infinity));
  const complete = !opts.resume && usable('last') && metas.last!.epoch >= config.epochs;
  let kind: CheckpointKind = opts.resume ?? (metas.best ? 'best' : 'last');
  if (!metas[kind]) {
    throw new Error(`run '${run}' has no ${kind} checkpoint (${file(kind)}); use --resume ${other(kind)}`);
  }
  if (!usable(kind)) {
    const alt = other(kind);
    if (opts.resume || !usable(alt)) {
      const e = missing[0];
      const why = damaged?.epoch === e ? `cannot be read (${damaged.reason})` : 'are missing (a deleted metrics part?)';
      const resumeOther = `Resume from the other checkpoint (${folder.command(`--resume ${alt}`)})`;
      const fix = opts.resume && usable(alt) ? resumeOther : 'Put the part back';
      throw new Error(
        `run '${run}': the metrics of epoch ${missing.join(', ')} ${why}, and ` +
          `${opts.resume ? `its ${kind} checkpoint is` : 'both checkpoints are'} from epoch ${e} or later: ` +
          `resuming would leave epoch ${e} without its rows. Nothing was changed. ${fix}, or ${folder.startOver()}.`,
      );
    }
    kind = alt;
  }

  const content = readCheckpoint(source[kind]);
  const saved = validateConfig(content.meta.config, `the config saved in ${source[kind]}`);
  const conflicts = configConflicts(saved, config);
  if (conflicts.length) {
    throw new Error(
      `run '${run}' was trained with other settings; a resumed run can only change ` +
        `epochs, lr, logEvery and evalBatchSize:\n  ${conflicts.join('\n  ')}\n` +
        'Use another --run name for a new experiment, or --fresh to start this run over.',
    );
  }
  if (opts.evalOnly) return { start: { content, file: source[kind], kind, complete } };
  for (const [k, note] of repairs) {
    copyCheckpoint(source[k], file(k), k);
    notes.push(note);
  }
  if (damaged) {
    for (const f of damaged.files) fs.renameSync(f, `${f}.damaged`);
    const e = damaged.epoch;
    notes.push(`the metrics of epoch ${e} could not be read: set aside as *.damaged; epoch ${e} is trained again`);
  }
  const gaps = missing.filter((e) => e !== damaged?.epoch).join(', ');
  if (gaps) {
    const from = `resuming from epoch ${content.meta.epoch} trains them again`;
    notes.push(`the metrics of epoch ${gaps} were missing (a deleted part?): ${from}`);
  }
  return { start: { content, file: source[kind], kind, complete }, last: metas.last };
}

/** One training session on an open run: it appends finished epochs, then closes. */
export class RunSession {
  readonly dir: string;
  /** Finished epochs of the start checkpoint (0: from scratch). */
  readonly startEpoch: number;
  /** Nothing to train: the run had finished (or its start has every epoch asked). */
  readonly complete: boolean;
  /** Best selection accuracy so far and its epoch (0: none yet). */
  bestAccuracy: number;
  bestEpoch: number;
  /** The epoch of the last checkpoint on disk (0: none). */
  private lastEpoch: number;
  /** Where this session writes: the run's folder, or a --fresh restart's staging folder until its first epoch. */
  private writeDir: string;
  private session = 0;
  private saved = 0;

  constructor(
    private readonly folder: RunDir,
    private readonly config: TrainConfig,
    private readonly opts: OpenOptions,
    /** What openRun repaired. */
    readonly notes: string[],
    /** The checkpoint it continues from; none for a new run. */
    readonly start?: RunStart,
    last?: Pick<CheckpointMeta, 'epoch'>,
  ) {
    this.dir = this.writeDir = folder.dir;
    this.startEpoch = start?.content.meta.epoch ?? 0;
    this.complete = !!start?.complete || this.startEpoch >= config.epochs;
    this.bestAccuracy = start?.content.meta.bestAccuracy ?? -Infinity;
    this.bestEpoch = start?.content.meta.bestEpoch ?? 0;
    this.lastEpoch = last?.epoch ?? 0;
  }

  /** From here on the session writes (into a --fresh restart's staging folder at first). Returns its session number. */
  begin(): number {
    if (this.opts.fresh) this.writeDir = this.folder.beginFresh();
    return (this.session = nextSession(this.writeDir));
  }

  /**
   * Appends a finished epoch: its metrics rows, the config on the session's first epoch, `best`
   * when the selection accuracy (test, or val with selectBy 'val') improved, then `last`. Metrics
   * first: a saved epoch always has its rows; best before last: a crash between them is repaired
   * from best. A --fresh restart replaces the old run after its first epoch.
   */
  appendEpoch(
    e: { epoch: number; rows: EpochRow[]; steps: StepRow[]; test: EvalResult; val?: EvalResult },
    net: Net,
    adam: Adam,
    emit: ProgressCallback,
  ): { selection: number; improved: boolean } {
    const selection = this.config.selectBy === 'val' ? e.val!.accuracy : e.test.accuracy;
    const improved = selection > this.bestAccuracy;
    if (improved) [this.bestAccuracy, this.bestEpoch] = [selection, e.epoch];
    appendMetrics(this.writeDir, e.rows, e.steps);
    if (this.saved === 0) this.folder.writeConfig(this.config, this.writeDir);
    const meta = {
      accuracy: selection,
      bestAccuracy: this.bestAccuracy,
      bestEpoch: this.bestEpoch,
      epoch: e.epoch,
      session: this.session,
      config: { ...this.config },
      backend: this.opts.backend,
    };
    for (const kind of improved ? CHECKPOINT_KINDS : (['last'] as const)) {
      saveCheckpoint(this.folder.checkpoint(kind, this.writeDir), net, adam, { ...meta, kind });
      emit({ type: 'checkpoint', kind, file: this.folder.checkpoint(kind), epoch: e.epoch });
    }
    if (this.writeDir !== this.folder.dir) {
      this.folder.commitFresh();
      this.writeDir = this.folder.dir;
    }
    this.saved++;
    this.lastEpoch = e.epoch;
    // The one place for derived views of the metrics, once the epoch is saved: TensorBoard's event
    // files (tensorboard --logdir results/runs). A view that cannot be written costs a warning, not the run.
    try {
      const dir = this.folder.dir;
      writeTensorboard(dir, readRunEpochs(dir), readStepRows({ runsDir: path.dirname(dir), runs: [path.basename(dir)] }));
    } catch (err) {
      console.warn(`warning: run ${this.config.run}: TensorBoard event files not updated: ${(err as Error).message}`);
    }
    this.opts.onEpochSaved?.({ dir: this.folder.dir, epoch: e.epoch, rows: e.rows, steps: e.steps });
    return { selection, improved };
  }

  /** The line an interrupted call ends with: where it stopped (`where`: 'at batch 3/10') and what is saved. */
  describeInterrupt(signal: string, epoch: number, where: string, step: number): string {
    const { run, epochs } = this.config;
    if (epoch <= this.startEpoch) {
      return `run ${run}: evaluation of its checkpoint interrupted (${signal}); nothing was written.`;
    }
    const stopped = `run ${run} interrupted (${signal}) in epoch ${epoch}/${epochs} ${where}, step ${step}`;
    return `${stopped}: epoch ${epoch} was not saved. ${this.describeSaved()}`;
  }

  /** What an interrupted call leaves, in one sentence, and how to go on. */
  describeSaved(): string {
    if (this.opts.fresh && this.saved === 0) {
      return `The --fresh restart saved nothing; run '${this.config.run}' is as it was before. Rerun to restart it.`;
    }
    if (this.lastEpoch === 0) return 'No checkpoint had been saved yet; a rerun starts from scratch.';
    const [last, best] = [this.lastEpoch, `epoch ${this.bestEpoch}, ${percent(this.bestAccuracy)}`];
    return (
      `Saved: epochs 1–${last} (last checkpoint: epoch ${last}; best: ${best}) in ${this.folder.dir}. ` +
      `Rerun to resume from the best checkpoint (resume 'last' / --resume last: from epoch ${last}).`
    );
  }

  /** What a diverged run keeps, in one sentence. */
  readonly describeKept = (): string => {
    const best = `the best checkpoint (epoch ${this.bestEpoch}, ${percent(this.bestAccuracy)})`;
    if (this.bestEpoch === 0) return 'no checkpoint had been saved yet.';
    return `${best} is kept in ${this.folder.checkpoint('best')}.`;
  };

  /** Releases the run (its lock); what was saved stays. */
  close(): void {
    this.folder.releaseLock();
  }
}
