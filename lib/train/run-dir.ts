/**
 * A run's folder, results/runs/<run>/:
 *
 *   config.json          the TrainConfig of the latest session that saved a checkpoint
 *   best.safetensors     checkpoint of the best epoch so far (lib/train/checkpoint)
 *   last.safetensors     checkpoint of the latest finished epoch
 *   metrics/             Parquet parts (lib/train/metrics)
 *
 * Beside it, in the runs folder, only hidden names of the same run:
 *
 *   .<run>.lock          the pid of the process training it (a second trainer is refused, in
 *                        another process or in this one; a lock of a dead process is taken
 *                        over). Created complete under its name in one step (a hard link of a
 *                        written temporary file); a stale one is first renamed to a private
 *                        claim name and checked there, so two takers cannot both win.
 *   .<run>.fresh/        a --fresh restart being staged: the old run stays untouched until the
 *                        new one has finished its first epoch (metrics, config and both
 *                        checkpoints); then the old folder is moved aside and deleted and the
 *                        staged one renamed into place. Until recover() has finished that,
 *                        the staged run is the run's state (currentDir, readConfig).
 *
 * Nothing here touches another run's names.
 */
import * as fs from 'fs';
import * as path from 'path';
import { isAlive, removeStaleTempFiles, writeFileAtomic } from '../formats/index';
import { checkpointPath, type CheckpointKind } from './checkpoint';
import { checkRunName, validateConfig, type TrainConfig } from './train-config';

/** Lock files this process holds (absolute paths): a second train() in one process is refused too. */
const HELD_HERE = new Map<string, { since: Date }>();

/** Who holds a run's lock when another trainer asks for it. */
export interface LockHolder {
  pid: number;
  /** The holder is this very process (a notebook kernel running a second training cell). */
  thisProcess: boolean;
  since?: Date;
}

/** The run is being trained right now by `holder`. */
export class RunLockedError extends Error {
  constructor(
    readonly run: string,
    readonly holder: LockHolder,
    lockFile: string,
  ) {
    super(
      holder.thisProcess
        ? `run '${run}' is already being trained in this process (pid ${holder.pid}, since ${holder.since?.toLocaleTimeString() ?? '?'}): ` +
            'a second training would run next to it. Interrupt it (■ in JupyterLab, Ctrl-C in a terminal) or wait for it to finish, then run again.'
        : `run '${run}' is being trained by process ${holder.pid} (${lockFile}); wait for it, stop it, or use another --run name`,
    );
    this.name = 'RunLockedError';
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException)?.code;
}

export class RunDir {
  /** The run's folder (results/runs/<run>). */
  readonly dir: string;
  /** Where a --fresh restart is staged until its first epoch is saved. */
  readonly staging: string;
  private readonly lockFile: string;
  private locked = false;

  constructor(
    readonly runsDir: string,
    readonly run: string,
  ) {
    checkRunName(run);
    this.dir = path.join(runsDir, run);
    this.staging = path.join(runsDir, `.${run}.fresh`);
    this.lockFile = path.join(runsDir, `.${run}.lock`);
  }

  checkpoint(kind: CheckpointKind, dir = this.dir): string {
    return checkpointPath(dir, kind);
  }

  hasCheckpoint(dir = this.dir): boolean {
    return fs.existsSync(this.checkpoint('best', dir)) || fs.existsSync(this.checkpoint('last', dir));
  }

  configFile(dir = this.dir): string {
    return path.join(dir, 'config.json');
  }

  /** The saved config.json (of currentDir() by default), or undefined when the run has none. */
  readConfig(dir = this.currentDir()): TrainConfig | undefined {
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

  /**
   * Takes the run's lock: refused (RunLockedError) while a live process holds it, this one
   * included. Call release() in a finally block; a SIGKILLed holder leaves a stale lock that the
   * next trainer takes over.
   */
  lock(): void {
    const key = path.resolve(this.lockFile);
    const here = HELD_HERE.get(key);
    if (here) throw new RunLockedError(this.run, { pid: process.pid, thisProcess: true, since: here.since }, this.lockFile);
    fs.mkdirSync(this.runsDir, { recursive: true });
    for (let attempt = 0; attempt < 5; attempt++) {
      if (this.createLock()) {
        HELD_HERE.set(key, { since: new Date() });
        this.locked = true;
        // A kernel shut down mid-training exits without unwinding train(): leave no lock behind.
        process.on('exit', this.releaseAtExit);
        return;
      }
      const holder = readPid(this.lockFile);
      if (holder && holder !== process.pid && isAlive(holder)) {
        throw new RunLockedError(this.run, { pid: holder, thisProcess: false }, this.lockFile);
      }
      this.removeStaleLock(holder);
    }
    throw new Error(`could not take the lock ${this.lockFile}; other processes keep taking it`);
  }

  /** Creates the lock file with our pid in one step (link of a complete temporary file); false if it exists. */
  private createLock(): boolean {
    const tmp = `${this.lockFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, String(process.pid));
    try {
      fs.linkSync(tmp, this.lockFile);
      return true;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      return false;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  /**
   * Removes the lock of `stalePid` (a process that is gone, or an unreadable lock) unless another
   * taker got there first: the lock is renamed to a private claim name (atomic: only one taker
   * gets the file) and checked there; a live lock taken by mistake is put back.
   */
  private removeStaleLock(stalePid: number | undefined): void {
    const claim = `${this.lockFile}.claim-${process.pid}`;
    try {
      fs.renameSync(this.lockFile, claim);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return; // another taker removed it: try to create ours
      throw err;
    }
    const moved = readPid(claim);
    if (moved !== stalePid && moved !== undefined && moved !== process.pid && isAlive(moved)) {
      // A new holder's lock, created after we read the stale one: give it back.
      try {
        fs.linkSync(claim, this.lockFile);
      } catch {
        // a third taker was faster; its lock stands
      }
    }
    fs.rmSync(claim, { force: true });
  }

  /** The pid of another live process holding the run's lock (training it right now), else undefined. */
  lockedBy(): number | undefined {
    const holder = readPid(this.lockFile);
    return holder && holder !== process.pid && isAlive(holder) ? holder : undefined;
  }

  private readonly releaseAtExit = () => this.release();

  release(): void {
    if (!this.locked) return;
    this.locked = false;
    process.off('exit', this.releaseAtExit);
    HELD_HERE.delete(path.resolve(this.lockFile));
    if (readPid(this.lockFile) === process.pid) fs.rmSync(this.lockFile, { force: true });
  }

  /**
   * Fails now, before any training, when the files a session writes cannot be written (a
   * read-only results folder would otherwise surface only when the first epoch is saved).
   */
  assertWritable(opts: { fresh?: boolean } = {}): void {
    const folders = [this.runsDir];
    if (!opts.fresh) folders.push(this.dir, path.join(this.dir, 'metrics'));
    for (const folder of folders) {
      if (!fs.existsSync(folder)) continue; // created later inside a folder checked here
      const probe = path.join(folder, `.write-check.${process.pid}.tmp`);
      try {
        fs.writeFileSync(probe, '');
        fs.rmSync(probe, { force: true });
      } catch (err) {
        throw new Error(
          `cannot write to ${folder} (${errnoCode(err) ?? (err as Error).message}): run '${this.run}' could not save its epochs. ` +
            'Nothing was trained. Make the folder writable, or train into another folder with --runs-dir.',
        );
      }
    }
  }

  /**
   * The folder that holds the run's current state: the staged --fresh run once it has saved its
   * first epoch (its commit was interrupted; recover() finishes it), else the run's own folder.
   */
  currentDir(): string {
    return fs.existsSync(this.checkpoint('last', this.staging)) ? this.staging : this.dir;
  }

  /**
   * Finishes or discards what an interrupted --fresh left (call with the lock held): a staged
   * run that saved its first epoch replaces the old run; an unfinished one is deleted.
   */
  recover(): 'none' | 'committed' | 'discarded' {
    this.removeOldCopies();
    for (const d of [this.dir, path.join(this.dir, 'metrics')]) removeStaleTempFiles(d);
    if (!fs.existsSync(this.staging)) return 'none';
    if (fs.existsSync(this.checkpoint('last', this.staging))) {
      this.commitFresh();
      return 'committed';
    }
    fs.rmSync(this.staging, { recursive: true, force: true });
    return 'discarded';
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

  private removeOldCopies(): void {
    if (!fs.existsSync(this.runsDir)) return;
    const prefix = `.${this.run}.old-`;
    for (const name of fs.readdirSync(this.runsDir)) {
      if (name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length))) {
        fs.rmSync(path.join(this.runsDir, name), { recursive: true, force: true });
      }
    }
  }
}

