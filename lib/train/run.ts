/**
 * The run store: a run's folder, results/runs/<run>/ (config.json, best.safetensors, last.safetensors, metrics/),
 * that one training session at a time opens, appends finished epochs to, and closes. Beside it, hidden: its lock,
 * and .<run>.fresh/, a --fresh restart staged until its first epoch is saved, when it replaces the old folder.
 *
 * openRun() repairs what a crash or a hand edit left, or refuses saying what to do; it never passes over:
 *  - an interrupted --fresh: finished when it had saved its first epoch, else discarded;
 *  - last behind best or missing (a crash between the two saves of an epoch): rewritten from best. A missing best:
 *    rewritten from last when last is the best epoch, else refused, like a best that last does not record or
 *    another run's checkpoint;
 *  - a damaged latest metrics block: set aside (*.damaged) and trained again; an epoch without rows (a deleted
 *    part): trained again from an earlier checkpoint, or refused naming it;
 *  - a path of the wrong kind, a folder it cannot write to, a full disk: refused before training.
 * Repairs are written once every check has passed; evalOnly writes nothing.
 */
import * as fs from 'fs';
import * as path from 'path';
import { removeStaleTempFiles, writeFileAtomic } from '../formats/index';
import type { Net } from '../model/index';
import { PATHS } from '../config';
import type { Adam } from './adam';
import { CHECKPOINT_KINDS, checkpointPath, copyCheckpoint, readCheckpoint, saveCheckpoint } from './checkpoint';
import type { CheckpointContent, CheckpointKind, CheckpointMeta } from './checkpoint';
import type { EvalResult } from './evaluate';
import type { ProgressCallback } from './events';
import { InterruptRequest } from './interrupt';
import { appendEpoch, metricsDir, nextSession, readRunEpochs, readStepRows, recordedEpochs } from './metrics';
import type { EpochRow, StepRow } from './metrics';
import { RunLock } from './run-lock';
import { writeTensorboard } from './tensorboard';
import { checkRunName, configConflicts, validateConfig, type TrainConfig } from './train-config';

const other = (kind: CheckpointKind): CheckpointKind => (kind === 'best' ? 'last' : 'best');
const percent = (x: number) => `${(x * 100).toFixed(2)}%`;
const stat = (p: string) => fs.statSync(p, { throwIfNoEntry: false });

/** A run's folder and the names beside it; reading it changes nothing. */
export class RunDir {
  readonly dir: string;
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

  readonly checkpoint = (kind: CheckpointKind, dir = this.dir): string => checkpointPath(dir, kind);
  readonly configFile = (dir = this.dir): string => path.join(dir, 'config.json');
  readonly lockedBy = (): string | undefined => this.lock.heldBy();
  readonly releaseLock = (): void => this.lock.release();
  readonly writeConfig = (config: TrainConfig, dir = this.dir): void =>
    writeFileAtomic(this.configFile(dir), `${JSON.stringify(config, null, 2)}\n`);

  /** The saved config; by default a staged --fresh run's once it has saved an epoch (recover() finishes it). */
  readConfig(dir = fs.existsSync(this.checkpoint('last', this.staging)) ? this.staging : this.dir) {
    this.checkLayout();
    const file = this.configFile(dir);
    if (!fs.existsSync(file)) return undefined;
    try {
      return validateConfig(JSON.parse(fs.readFileSync(file, 'utf8')), file);
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      throw new Error(`${file} is not valid JSON (${err.message}); fix it or start over with --fresh`);
    }
  }

  command(flag: string): string {
    const folder = path.resolve(this.runsDir) === path.resolve(PATHS.runs) ? '' : ` --runs-dir ${this.runsDir}`;
    return `npm run train -- --run ${this.run}${folder} ${flag}`;
  }

  refuse(what: string, fix: string): Error {
    return new Error(
      `${what} Nothing was changed. ${fix}, or start over with ${this.command('--fresh')} ` +
        `(a run of npm run experiments: delete ${this.dir}, then rerun them).`,
    );
  }

  /** Refuses a path of the wrong kind: a file where a folder belongs, or the reverse. */
  checkLayout(): void {
    let existing = path.resolve(this.runsDir);
    while (!fs.existsSync(existing)) existing = path.dirname(existing);
    const where = `where run '${this.run}'`;
    const file = [existing, this.runsDir, this.dir, metricsDir(this.dir)].find((f) => stat(f)?.isFile());
    const fix = 'move it away, or use another --runs-dir. Nothing was changed.';
    if (file) throw new Error(`${file} is a file, ${where} needs a folder: ${fix}`);
    const files = [this.configFile(), this.checkpoint('best'), this.checkpoint('last'), this.lock.file];
    const folder = files.find((f) => stat(f)?.isDirectory());
    if (folder) throw new Error(`${folder} is a folder, ${where} keeps a file: move it away. Nothing was changed.`);
  }

  /** Takes the lock, then fails now, before any training, if the folders a session writes cannot be written. */
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
      const code = (err as NodeJS.ErrnoException)?.code;
      if (!code) throw err;
      this.lock.release();
      const full = code === 'ENOSPC' || code === 'EDQUOT';
      const fix = full ? 'The disk is full: free some space' : 'Make the folder writable';
      throw new Error(
        `cannot write to ${folder} (${code}): run '${this.run}' could not save its epochs. Nothing was trained. ` +
          `${fix}, or train into another folder with --runs-dir.`,
      );
    }
  }

  /** With the lock held: finishes or discards an interrupted --fresh, removes what dead writers left. */
  recover(): string | undefined {
    const aside = `.${this.run}.old-`;
    for (const name of fs.existsSync(this.runsDir) ? fs.readdirSync(this.runsDir) : []) {
      const dead = name.startsWith(aside) && /^\d+$/.test(name.slice(aside.length));
      if (dead) fs.rmSync(path.join(this.runsDir, name), { recursive: true });
    }
    for (const d of [this.dir, metricsDir(this.dir)]) removeStaleTempFiles(d);
    if (!fs.existsSync(this.staging)) return undefined;
    const restart = 'an interrupted --fresh restart';
    if (fs.existsSync(this.checkpoint('last', this.staging))) {
      this.commitFresh();
      return `${restart} had saved its first epoch: finished it, the restarted run replaced the old one`;
    }
    fs.rmSync(this.staging, { recursive: true, force: true });
    return `${restart} had saved no epoch: discarded it, the run is as it was before`;
  }

  commitFresh(): void {
    const aside = path.join(this.runsDir, `.${this.run}.old-${process.pid}`);
    if (fs.existsSync(this.dir)) fs.renameSync(this.dir, aside);
    fs.renameSync(this.staging, this.dir);
    fs.rmSync(aside, { recursive: true, force: true });
  }
}

/** The checkpoint a run continues from; `complete`: it finished every epoch asked (evaluate, train nothing). */
export type RunStart = { content: CheckpointContent; file: string; kind: CheckpointKind; complete: boolean };
/** What a derived view of the metrics (TensorBoard's event files, say) gets after each saved epoch. */
export type SavedEpoch = { dir: string; epoch: number; rows: readonly EpochRow[]; steps: readonly StepRow[] };
type FinishedEpoch = { epoch: number; rows: EpochRow[]; steps: StepRow[]; test: EvalResult; val?: EvalResult };

/** train()'s options for the run (TrainOptions says what they do); backend: describeBackend(), saved in checkpoints. */
export interface OpenOptions {
  runsDir: string;
  resume?: CheckpointKind;
  evalOnly?: boolean;
  fresh?: boolean;
  backend: string;
  onEpochSaved?: (epoch: SavedEpoch) => void;
}

/** Opens run `config.run` for a session (see the module comment). Close the session in a finally block. */
export async function openRun(config: TrainConfig, opts: OpenOptions): Promise<RunSession> {
  if (opts.fresh && opts.evalOnly) {
    throw new Error('evalOnly and fresh contradict each other: there is nothing to evaluate after starting over');
  }
  const folder = new RunDir(opts.runsDir, config.run);
  folder.checkLayout();
  // A rerun right after ■ finds the interrupted call finishing its step: it waits for it.
  await InterruptRequest.settled(folder.dir);
  const notes = opts.evalOnly ? [] : await folder.takeLock(opts.fresh);
  try {
    const recovered = opts.evalOnly ? undefined : folder.recover();
    if (recovered) notes.push(recovered);
    const { start, lastEpoch }: Chosen = opts.fresh ? {} : chooseStart(folder, config, opts, notes);
    if (opts.evalOnly && !start) throw new Error(`run '${config.run}' has no checkpoint to evaluate in ${folder.dir}`);
    return new RunSession(folder, config, opts, notes, start, lastEpoch);
  } catch (err) {
    folder.releaseLock();
    throw err;
  }
}

/** The checkpoint a run continues from (none: a new run), and the epoch of its last checkpoint after repair. */
type Chosen = { start?: RunStart; lastEpoch?: number };

/** Reads both checkpoints and the metrics, repairs or refuses (module comment), and picks best or last. */
function chooseStart(folder: RunDir, config: TrainConfig, opts: OpenOptions, notes: string[]): Chosen {
  const { run } = config;
  const file = (kind: CheckpointKind) => folder.checkpoint(kind);
  const metas: Partial<Record<CheckpointKind, CheckpointMeta>> = {};
  for (const kind of CHECKPOINT_KINDS.filter((k) => fs.existsSync(file(k)))) {
    try {
      metas[kind] = readCheckpoint(file(kind)).meta;
    } catch (err) {
      if (opts.resume !== other(kind)) throw err; // its message offers the other checkpoint
      notes.push(`${file(kind)} is damaged; resuming from ${opts.resume} as asked`);
      continue;
    }
    const owner = metas[kind]!.config.run;
    const what = `${file(kind)} is a checkpoint of run '${owner}', not of '${run}' (copied from another run?).`;
    const fix = `Put this run's own ${kind}.safetensors back, move this one away (the run goes on from the other one)`;
    if (owner !== run) throw folder.refuse(what, fix);
  }
  if (!CHECKPOINT_KINDS.some((k) => fs.existsSync(file(k)))) return {}; // a new run

  // best and last agree, or one is rewritten from the other (once every check has passed).
  const { best, last } = metas;
  const source = { best: file('best'), last: file('last') };
  let repair: { to: CheckpointKind; note: string } | undefined;
  const rewrite = (to: CheckpointKind, note: string) => {
    [source[to], metas[to], repair] = [source[other(to)], { ...metas[other(to)]!, kind: to }, { to, note }];
  };
  const [bestAt, lastAt] = [best && `epoch ${best.epoch}`, last && `epoch ${last.epoch}`];
  if (best && (!last || last.session < best.session || (last.session === best.session && last.epoch < best.epoch))) {
    const was = last ? `at ${lastAt}, behind best (${bestAt})` : `missing (best: ${bestAt})`;
    const why = 'as a crash between the two saves of an epoch leaves it';
    rewrite('last', `last.safetensors was ${was}, ${why}: rewritten from best`);
  } else if (last && !fs.existsSync(file('best'))) {
    const lost = `records the best as epoch ${last.bestEpoch} (${percent(last.bestAccuracy)}), whose weights are gone.`;
    const what = `run '${run}' has no best.safetensors (deleted?), and its last checkpoint (${lastAt}) ${lost}`;
    if (last.bestEpoch !== last.epoch) throw folder.refuse(what, 'Put best.safetensors back');
    rewrite('best', `best.safetensors was missing; last (${lastAt}) is the best epoch: rewritten from it`);
  } else if (best && last && (best.epoch !== last.bestEpoch || best.accuracy !== last.bestAccuracy)) {
    const what =
      `run '${run}': best.safetensors (${bestAt}, ${percent(best.accuracy)}) is not the best that last.safetensors ` +
      `records (epoch ${last.bestEpoch}, ${percent(last.bestAccuracy)}): replaced or copied by hand?`;
    throw folder.refuse(what, "Put the run's own best.safetensors back");
  }

  // Every epoch up to the start must keep its rows: a missing or unreadable one is trained again.
  const { epochs: recorded, damaged } = recordedEpochs(folder.dir);
  if (damaged) recorded.delete(damaged.epoch);
  const newest = Math.max(metas.best?.epoch ?? 0, metas.last?.epoch ?? 0);
  const missing = Array.from({ length: newest }, (_, i) => i + 1).filter((e) => !recorded.has(e));
  const usable = (k: CheckpointKind) => !!metas[k] && (!!opts.evalOnly || metas[k]!.epoch < (missing[0] ?? Infinity));
  let kind: CheckpointKind = opts.resume ?? (metas.best ? 'best' : 'last');
  if (!metas[kind]) throw new Error(`run '${run}' has no ${file(kind)}; use --resume ${other(kind)}`);
  if (!usable(kind) && (opts.resume || !usable(other(kind)))) {
    const [alt, e] = [other(kind), missing[0]];
    const why = damaged?.epoch === e ? `cannot be read (${damaged.reason})` : 'are missing (a deleted metrics part?)';
    const which = opts.resume ? `its ${kind} checkpoint is` : 'both checkpoints are';
    const what =
      `run '${run}': the metrics of epoch ${missing.join(', ')} ${why}, and ${which} from epoch ${e} or later: ` +
      `resuming would leave epoch ${e} without its rows.`;
    const resumeAlt = `Resume from the other checkpoint (${folder.command(`--resume ${alt}`)})`;
    throw folder.refuse(what, opts.resume && usable(alt) ? resumeAlt : 'Put the part back');
  }
  if (!usable(kind)) kind = other(kind);

  const content = readCheckpoint(source[kind]);
  const conflicts = configConflicts(validateConfig(content.meta.config, `the config saved in ${source[kind]}`), config);
  if (conflicts.length) {
    throw new Error(
      `run '${run}' was trained with other settings; a resumed run can only change ` +
        `epochs, lr, logEvery and evalBatchSize:\n  ${conflicts.join('\n  ')}\n` +
        'Use another --run name for a new experiment, or --fresh to start this run over.',
    );
  }
  const complete = !opts.resume && usable('last') && metas.last!.epoch >= config.epochs;
  const start = { content, file: source[kind], kind, complete };
  if (opts.evalOnly) return { start };
  if (repair) {
    copyCheckpoint(source[repair.to], file(repair.to), repair.to);
    notes.push(repair.note);
  }
  for (const f of damaged?.files ?? []) fs.renameSync(f, `${f}.damaged`);
  const e = damaged?.epoch;
  if (damaged) notes.push(`the metrics of epoch ${e} could not be read: set aside as *.damaged, trained again`);
  const gaps = missing.filter((m) => m !== e).join(', ');
  const again = `resuming from epoch ${content.meta.epoch} trains them again`;
  if (gaps) notes.push(`the metrics of epoch ${gaps} were missing (a deleted part?): ${again}`);
  return { start, lastEpoch: metas.last?.epoch };
}

/** One training session on an open run: it appends finished epochs, then closes. */
export class RunSession {
  readonly dir: string;
  /** Finished epochs of the start checkpoint (0: from scratch); complete: it has every epoch asked, train nothing. */
  readonly startEpoch: number;
  readonly complete: boolean;
  /** Best selection accuracy so far and its epoch (0: none yet). */
  bestAccuracy: number;
  bestEpoch: number;
  /** Where the session writes: a --fresh restart's staging folder until its first epoch, else the run's. */
  private writeDir: string;
  private session = 0;

  constructor(
    private readonly folder: RunDir,
    private readonly config: TrainConfig,
    private readonly opts: OpenOptions,
    /** What openRun repaired. */
    readonly notes: string[],
    readonly start: RunStart | undefined,
    /** The epoch of the last checkpoint on disk (0: none). */
    private lastEpoch = 0,
  ) {
    this.dir = this.writeDir = folder.dir;
    this.startEpoch = start?.content.meta.epoch ?? 0;
    this.complete = !!start?.complete || this.startEpoch >= config.epochs;
    this.bestAccuracy = start?.content.meta.bestAccuracy ?? -Infinity;
    this.bestEpoch = start?.content.meta.bestEpoch ?? 0;
  }

  /** From here on the session writes (a --fresh restart into an empty staging folder). Returns its number. */
  begin(): number {
    if (this.opts.fresh) {
      this.writeDir = this.folder.staging;
      fs.rmSync(this.writeDir, { recursive: true, force: true });
      fs.mkdirSync(this.writeDir, { recursive: true });
    }
    return (this.session = nextSession(this.writeDir));
  }

  /**
   * Appends a finished epoch: its metrics, the config with the session's first epoch, `best` when the
   * selection accuracy improved, then `last`. Metrics first: a saved epoch always has its rows; best
   * before last: a crash between them is repaired from best. A --fresh restart then replaces the run.
   */
  appendEpoch(e: FinishedEpoch, net: Net, adam: Adam, emit: ProgressCallback) {
    const { config, folder, session } = this;
    const selection = config.selectBy === 'val' ? e.val!.accuracy : e.test.accuracy;
    const improved = selection > this.bestAccuracy;
    if (improved) [this.bestAccuracy, this.bestEpoch] = [selection, e.epoch];
    appendEpoch(this.writeDir, e.rows, e.steps);
    if (e.epoch === this.startEpoch + 1) folder.writeConfig(config, this.writeDir);
    const meta = { accuracy: selection, bestAccuracy: this.bestAccuracy, bestEpoch: this.bestEpoch, session };
    for (const kind of improved ? CHECKPOINT_KINDS : (['last'] as const)) {
      const saved = { ...meta, epoch: e.epoch, config: { ...config }, backend: this.opts.backend, kind };
      saveCheckpoint(folder.checkpoint(kind, this.writeDir), net, adam, saved);
      emit({ type: 'checkpoint', kind, file: folder.checkpoint(kind), epoch: e.epoch });
    }
    if (this.writeDir !== folder.dir) folder.commitFresh();
    [this.writeDir, this.lastEpoch] = [folder.dir, e.epoch];
    // Derived views of the metrics (TensorBoard's event files): one that fails costs a warning, not the run.
    try {
      const steps = readStepRows({ runsDir: folder.runsDir, runs: [config.run] });
      writeTensorboard(folder.dir, readRunEpochs(folder.dir), steps);
    } catch (err) {
      console.warn(`warning: run ${config.run}: TensorBoard event files not updated: ${(err as Error).message}`);
    }
    this.opts.onEpochSaved?.({ dir: folder.dir, epoch: e.epoch, rows: e.rows, steps: e.steps });
    return { selection, improved };
  }

  /** The line an interrupted call ends with: where it stopped (`where`: 'at batch 3/10'), what is saved. */
  describeInterrupt(signal: string, epoch: number, where: string, step: number): string {
    const { run, epochs } = this.config;
    if (epoch <= this.startEpoch)
      return `run ${run}: evaluation of its checkpoint interrupted (${signal}); nothing was written.`;
    const [last, best] = [this.lastEpoch, `epoch ${this.bestEpoch}, ${percent(this.bestAccuracy)}`];
    const saved =
      last > 0
        ? `Saved: epochs 1–${last} (last checkpoint: epoch ${last}; best: ${best}) in ${this.folder.dir}. ` +
          `Rerun to resume from the best checkpoint (resume 'last' / --resume last: from epoch ${last}).`
        : this.opts.fresh
          ? `The --fresh restart saved nothing; run '${run}' is as it was before. Rerun to restart it.`
          : 'No checkpoint had been saved yet; a rerun starts from scratch.';
    const stopped = `run ${run} interrupted (${signal}) in epoch ${epoch}/${epochs} ${where}, step ${step}`;
    return `${stopped}: epoch ${epoch} was not saved. ${saved}`;
  }

  /** What a diverged run keeps, in one sentence. */
  readonly describeKept = (): string => {
    const best = `the best checkpoint (epoch ${this.bestEpoch}, ${percent(this.bestAccuracy)})`;
    return this.bestEpoch
      ? `${best} is kept in ${this.folder.checkpoint('best')}.`
      : 'no checkpoint had been saved yet.';
  };

  readonly close = (): void => this.folder.releaseLock();
}
