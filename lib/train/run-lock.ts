/**
 * A run's lock, `.<run>.lock` beside its folder: one training of a run at a time, in this process, another, or on
 * another host sharing the folder. The file names its holder (LockHolder), who refreshes its mtime every
 * HEARTBEAT_MS. The holder still holds it when:
 *  - on this host: its pid runs, is not a zombie, and started at `start` since boot `boot` (else the pid was
 *    reused). One in the middle of exiting is waited for, up to EXIT_WAIT_MS;
 *  - on another host, where its pid means nothing: its heartbeat is younger than STALE_AFTER_MS.
 * A lock of the earlier format, a bare pid, is read as held on this host with no start time. A lock is created
 * complete in one step (a hard link of a written temporary file; the link count decides, as NFS may report a link
 * it made as failed); a stale one is renamed to a private claim name and checked there: two takers cannot both win.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { HAS_PROC, isAlive, procStat } from '../formats/index';

export const HEARTBEAT_MS = 5_000;
export const STALE_AFTER_MS = 60_000;
export const EXIT_WAIT_MS = 5_000;
/** PF_EXITING | PF_SIGNALED in /proc/<pid>/stat's flags: exiting, or dying of a signal. */
const EXITING_FLAGS = 0x4 | 0x400;
const HOST = os.hostname();

/** f(), or undefined where it throws (a file gone meanwhile, a lock that is not JSON). */
function attempt<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}
const readText = (file: string) => attempt(() => fs.readFileSync(file, 'utf8'));
const BOOT = readText('/proc/sys/kernel/random/boot_id')?.trim();

/** The lock file's JSON (start and boot: Linux, and not in the earlier format; since: ISO time taken). */
type LockHolder = { host: string; pid: number; start?: string; boot?: string; since?: string };
type Liveness = { state: 'live' | 'exiting' } | { state: 'stale'; why: string };

export function thisHolder(pid = process.pid): LockHolder {
  return { host: HOST, pid, start: procStat(pid)?.start, boot: BOOT, since: new Date().toISOString() };
}

/** Whether `h` still holds a lock last refreshed at `mtimeMs` (see the module comment). */
export function liveness(h: LockHolder, mtimeMs: number): Liveness {
  const stale = (why: string) => ({ state: 'stale' as const, why });
  if (h.host !== HOST) {
    const age = Math.round((Date.now() - mtimeMs) / 1000);
    const limit = STALE_AFTER_MS / 1000;
    return age > limit ? stale(`no heartbeat from host ${h.host} for ${age} s (limit ${limit} s)`) : { state: 'live' };
  }
  // This process's locks are in HELD_HERE: one with its pid was left by an earlier process.
  if (h.pid === process.pid) return stale('it has ended; its pid is now this process');
  if (!HAS_PROC) return isAlive(h.pid) ? { state: 'live' } : stale('it has ended');
  if (h.boot && h.boot !== BOOT) return stale('the machine has restarted since');
  const p = procStat(h.pid);
  if (!p) return stale('it has ended');
  if (p.state === 'Z' || p.state === 'X') return stale('it has ended (a zombie)');
  if (h.start && p.start !== h.start) return stale('it has ended; its pid now belongs to another process');
  return { state: p.flags & EXITING_FLAGS ? 'exiting' : 'live' };
}

const describeHolder = (h: LockHolder): string =>
  h.host === HOST ? `process ${h.pid}` : `process ${h.pid} on host ${h.host}`;

/** The run is being trained right now by another training. */
export class RunLockedError extends Error {
  override name = 'RunLockedError';
}

/** Lock files this process holds, by absolute path: a second train() of a run in one process is refused too. */
const HELD_HERE = new Map<string, LockHolder>();

export class RunLock {
  readonly file: string;
  /** The text of the lock file while this process holds it. */
  private mine?: string;
  private heartbeat?: ReturnType<typeof setInterval>;

  constructor(
    file: string,
    readonly run: string,
  ) {
    this.file = path.resolve(file);
  }

  /** The lock file's holder, its text and whether it holds; undefined when there is none. */
  private read(): { holder: LockHolder; text: string; state: Liveness } | undefined {
    const text = readText(this.file);
    const mtimeMs = fs.statSync(this.file, { throwIfNoEntry: false })?.mtimeMs;
    if (text === undefined || mtimeMs === undefined) return undefined; // none, or gone meanwhile
    const bare = /^\s*\d+\s*$/.test(text); // the earlier format: a bare pid
    const h = bare ? { host: HOST, pid: Number(text) } : attempt(() => JSON.parse(text) as LockHolder);
    if (typeof h?.host === 'string' && Number.isInteger(h.pid)) return { holder: h, text, state: liveness(h, mtimeMs) };
    return { holder: { host: HOST, pid: 0 }, text, state: { state: 'stale', why: 'it cannot be read' } };
  }

  /** Who trains the run right now ("process 1234 on host n7"), other than this process; one exiting does not. */
  heldBy(): string | undefined {
    const seen = this.read();
    return seen?.state.state === 'live' ? describeHolder(seen.holder) : undefined;
  }

  /** Takes the lock, or throws RunLockedError while a live process holds it (this one included). Returns notes. */
  async acquire(): Promise<string[]> {
    const here = HELD_HERE.get(this.file);
    if (here) {
      const since = new Date(here.since!).toLocaleTimeString();
      throw new RunLockedError(
        `run '${this.run}' is already being trained in this process (pid ${here.pid}, since ${since}): a second ` +
          'training would run next to it. Interrupt it (■ in JupyterLab, Ctrl-C in a terminal) or wait for it to ' +
          'finish, then run again.',
      );
    }
    const notes: string[] = [];
    const began = Date.now();
    const waited = () => `${((Date.now() - began) / 1000).toFixed(1)} s`;
    let exiting: LockHolder | undefined;
    for (let claims = 0; !this.create();) {
      const seen = this.read();
      if (!seen) continue; // released meanwhile
      const { holder, state } = seen;
      if (state.state === 'exiting' && Date.now() - began < EXIT_WAIT_MS) {
        exiting = holder;
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      if (state.state !== 'stale') {
        // A lock of the earlier format has no start time: a pid reused since cannot be told apart.
        const why =
          state.state === 'exiting'
            ? `, which is still exiting after ${waited()}; try again in a moment`
            : holder.host === HOST && !holder.start
              ? ' (its lock is of an earlier format, without a start time: if that is not a training, delete the lock)'
              : '';
        throw new RunLockedError(
          `run '${this.run}' is being trained by ${describeHolder(holder)}${why} (${this.file}); ` +
            'wait for it, stop it, or use another --run name',
        );
      }
      if (++claims > 10) throw new Error(`could not take the lock ${this.file}; other processes keep taking it`);
      this.claimStale(seen.text);
      const wait = exiting?.pid === holder.pid ? `; waited ${waited()} for it to exit` : '';
      notes.push(`the lock of ${describeHolder(holder)} was stale (${state.why}${wait}): taken over`);
      if (wait) exiting = undefined;
    }
    if (exiting) notes.push(`waited ${waited()} for ${describeHolder(exiting)} to finish exiting`);
    HELD_HERE.set(this.file, JSON.parse(this.mine!));
    // A kernel shut down mid-training exits without unwinding train(): leave no lock behind.
    process.on('exit', this.release);
    this.heartbeat = setInterval(this.refresh, HEARTBEAT_MS);
    this.heartbeat.unref();
    return notes;
  }

  /** Creates the lock file in one step (link of a complete temporary file); false if it exists. */
  private create(): boolean {
    const text = `${JSON.stringify(thisHolder())}\n`;
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text);
    try {
      fs.linkSync(tmp, this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      if (fs.statSync(tmp).nlink === 2) this.mine = text; // linked: the temporary file had two names
      fs.rmSync(tmp, { force: true });
    }
    return this.mine === text;
  }

  /**
   * Removes the stale lock whose text is `stale`, unless another taker got there first: only one
   * taker can rename it to its claim name; a lock a new holder created meanwhile is put back.
   */
  private claimStale(stale: string): void {
    const claim = `${this.file}.claim-${process.pid}`;
    try {
      fs.renameSync(this.file, claim);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // another taker removed it
      throw err;
    }
    if (readText(claim) !== stale) attempt(() => fs.linkSync(claim, this.file)); // unless a third taker was faster
    fs.rmSync(claim, { force: true });
  }

  /** The heartbeat: the lock's mtime tells other hosts that its holder lives. A lock gone meanwhile is left be. */
  private readonly refresh = () => {
    const now = new Date();
    if (readText(this.file) === this.mine) fs.utimes(this.file, now, now, () => {});
  };

  readonly release = (): void => {
    if (this.mine === undefined) return;
    clearInterval(this.heartbeat);
    process.off('exit', this.release);
    HELD_HERE.delete(this.file);
    if (readText(this.file) === this.mine) fs.rmSync(this.file, { force: true });
    this.mine = undefined;
  };
}
