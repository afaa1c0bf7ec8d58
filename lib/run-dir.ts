/**
 * A run's folder, results/runs/<run>/:
 *
 *   config.json          the TrainConfig of the latest session that saved a checkpoint
 *   best.safetensors     checkpoint of the best epoch so far (lib/checkpoint)
 *   last.safetensors     checkpoint of the latest finished epoch
 *   metrics/             Parquet parts (lib/metrics)
 *
 * Beside it, in the runs folder, only hidden names of the same run:
 *
 *   .<run>.lock          the pid of the process training it (a second trainer is refused;
 *                        a lock of a dead process is taken over)
 *   .<run>.fresh/        a --fresh restart being staged: the old run stays untouched until the
 *                        new one has finished its first epoch (metrics, config and both
 *                        checkpoints); then the old folder is moved aside and deleted and the
 *                        staged one renamed into place.
 *
 * Nothing here touches another run's names.
 */
import * as fs from 'fs';
import * as path from 'path';
import { isAlive, removeStaleTempFiles, writeFileAtomic } from './atomic-file';
import { checkpointPath, type CheckpointKind } from './checkpoint';
import { checkRunName, validateConfig, type TrainConfig } from './train-config';

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

  /** The saved config.json, or undefined when the run has none. */
  readConfig(dir = this.dir): TrainConfig | undefined {
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
   * Takes the run's lock (refused while another live process holds it). Call release() in a
   * finally block; a SIGKILLed holder leaves a stale lock that the next trainer takes over.
   */
  lock(): void {
    fs.mkdirSync(this.runsDir, { recursive: true });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(this.lockFile, String(process.pid), { flag: 'wx' });
        this.locked = true;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = Number(fs.readFileSync(this.lockFile, 'utf8').trim());
      if (holder && holder !== process.pid && isAlive(holder)) {
        throw new Error(
          `run '${this.run}' is being trained by process ${holder} (${this.lockFile}); wait for it, stop it, or use another --run name`,
        );
      }
      fs.rmSync(this.lockFile, { force: true }); // stale: its process is gone
    }
    throw new Error(`could not take the lock ${this.lockFile}; another process keeps creating it`);
  }

  /** The pid of another live process holding the run's lock (training it right now), else undefined. */
  lockedBy(): number | undefined {
    let holder: number;
    try {
      holder = Number(fs.readFileSync(this.lockFile, 'utf8').trim());
    } catch {
      return undefined;
    }
    return holder && holder !== process.pid && isAlive(holder) ? holder : undefined;
  }

  release(): void {
    if (!this.locked) return;
    this.locked = false;
    try {
      if (Number(fs.readFileSync(this.lockFile, 'utf8').trim()) === process.pid) fs.rmSync(this.lockFile, { force: true });
    } catch {
      // already gone
    }
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

