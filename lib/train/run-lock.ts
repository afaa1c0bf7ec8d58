/**
 * A run's lock, `.<run>.lock` beside its folder: one training of a run at a time, in this process,
 * in another, or on another host sharing the folder (a cluster's network file system).
 *
 * The file holds its holder as JSON { host, pid, start, boot, since }, and its holder refreshes its
 * mtime every HEARTBEAT_MS. Whether the holder still holds it:
 *  - same host: its pid exists, is not a zombie, and started at `start` since boot `boot` (a pid
 *    reused after a reboot or in another container is not the holder). A process in the middle
 *    of exiting (killed, not gone yet) is waited for, up to EXIT_WAIT_MS.
 *  - another host: its pid means nothing here; the lock is stale once its heartbeat has stopped
 *    for STALE_AFTER_MS (hosts' clocks may differ by seconds, not by that).
 * Locks written before this format hold a bare pid: read as held on this host, with no start time.
 *
 * Created complete under its name in one step (a hard link of a written temporary file; the link
 * count is checked, as NFS may report a link it made as failed); a stale one is renamed to a
 * private claim name and checked there, so two takers cannot both win.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { HAS_PROC, isAlive, procStat } from '../formats/index';

export const HEARTBEAT_MS = 5_000;
export const STALE_AFTER_MS = 60_000;
export const EXIT_WAIT_MS = 5_000;
/** PF_EXITING | PF_SIGNALED: the process is exiting, or dying of a signal (/proc/<pid>/stat flags). */
const EXITING_FLAGS = 0x4 | 0x400;

const HOST = os.hostname();
const BOOT = HAS_PROC ? readText('/proc/sys/kernel/random/boot_id')?.trim() : undefined;

/** Who holds a lock, as its file says. */
export interface LockHolder {
  host: string;
  pid: number;
  /** /proc/<pid>/stat start time and the boot id (Linux; absent in locks of the earlier format). */
  start?: string;
  boot?: string;
  /** ISO time it was taken. */
  since?: string;
}

/** This process as a lock holder. */
export function thisHolder(pid = process.pid): LockHolder {
  return { host: HOST, pid, start: procStat(pid)?.start, boot: BOOT, since: new Date().toISOString() };
}

export type Liveness = { state: 'live' } | { state: 'exiting' } | { state: 'stale'; why: string };

/** Whether `h` still holds a lock last refreshed at `mtimeMs` (see the module comment). */
export function liveness(h: LockHolder, mtimeMs: number, now = Date.now()): Liveness {
  if (h.host !== HOST) {
    const age = Math.round((now - mtimeMs) / 1000);
    const limit = STALE_AFTER_MS / 1000;
    return age > limit ? { state: 'stale', why: `no heartbeat from host ${h.host} for ${age} s (limit ${limit} s)` } : { state: 'live' };
  }
  // Not held here (HELD_HERE says what is): left by an earlier process that had this pid.
  if (h.pid === process.pid) return { state: 'stale', why: 'it has ended; its pid is now this process' };
  if (!HAS_PROC) return isAlive(h.pid) ? { state: 'live' } : { state: 'stale', why: 'it has ended' };
  if (h.boot && h.boot !== BOOT) return { state: 'stale', why: 'the machine has restarted since' };
  const p = procStat(h.pid);
  if (!p) return { state: 'stale', why: 'it has ended' };
  if (p.state === 'Z' || p.state === 'X') return { state: 'stale', why: 'it has ended (a zombie)' };
  if (h.start && p.start !== h.start) return { state: 'stale', why: 'it has ended; its pid now belongs to another process' };
  return p.flags & EXITING_FLAGS ? { state: 'exiting' } : { state: 'live' };
}

export function describeHolder(h: LockHolder): string {
  return h.host === HOST ? `process ${h.pid}` : `process ${h.pid} on host ${h.host}`;
}

/** The run is being trained right now by `holder`. */
export class RunLockedError extends Error {
  constructor(
    readonly run: string,
    readonly holder: LockHolder & { thisProcess?: boolean },
    lockFile: string,
    why = '',
  ) {
    super(
      holder.thisProcess
        ? `run '${run}' is already being trained in this process (pid ${holder.pid}, since ${new Date(holder.since!).toLocaleTimeString()}): ` +
            'a second training would run next to it. Interrupt it (■ in JupyterLab, Ctrl-C in a terminal) or wait for it to finish, then run again.'
        : `run '${run}' is being trained by ${describeHolder(holder)}${why} (${lockFile}); wait for it, stop it, or use another --run name`,
    );
    this.name = 'RunLockedError';
  }
}

/** Lock files this process holds (absolute paths): a second train() in one process is refused too. */
const HELD_HERE = new Map<string, LockHolder>();

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** A lock file's holder: JSON, or a bare pid (earlier format); undefined when unreadable. */
function parseHolder(text: string | undefined): LockHolder | undefined {
  if (text === undefined) return undefined;
  if (/^\s*\d+\s*$/.test(text)) return { host: HOST, pid: Number(text) };
  try {
    const h = JSON.parse(text) as LockHolder;
    return typeof h.host === 'string' && Number.isInteger(h.pid) ? h : undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class RunLock {
  private heartbeat?: ReturnType<typeof setInterval>;
  private mine?: string;

  readonly file: string;

  constructor(
    file: string,
    readonly run: string,
  ) {
    this.file = path.resolve(file);
  }

  /** The lock file's holder and when it was last refreshed, or undefined when there is none. */
  read(): { holder?: LockHolder; text: string; mtimeMs: number } | undefined {
    const text = readText(this.file);
    if (text === undefined) return undefined;
    const mtimeMs = fs.statSync(this.file, { throwIfNoEntry: false })?.mtimeMs ?? Date.now();
    return { holder: parseHolder(text), text, mtimeMs };
  }

  /** The holder training the run right now, other than this process (exiting ones do not count). */
  heldBy(): LockHolder | undefined {
    const seen = this.read();
    if (!seen?.holder) return undefined;
    return liveness(seen.holder, seen.mtimeMs).state === 'live' ? seen.holder : undefined;
  }

  /**
   * Takes the lock, or throws RunLockedError while a live process holds it (this one included).
   * Returns notes: a stale lock taken over, an exiting holder waited for.
   */
  async acquire(): Promise<string[]> {
    const here = HELD_HERE.get(this.file);
    if (here) throw new RunLockedError(this.run, { ...here, thisProcess: true }, this.file);
    const notes: string[] = [];
    const began = Date.now();
    let waitedFor: LockHolder | undefined;
    for (let claims = 0; !this.create(); ) {
      const seen = this.read();
      if (!seen) continue; // released meanwhile
      const holder = seen.holder ?? { host: HOST, pid: 0 };
      const state = seen.holder ? liveness(holder, seen.mtimeMs) : { state: 'stale' as const, why: 'it cannot be read' };
      if (state.state === 'live') throw new RunLockedError(this.run, holder, this.file);
      if (state.state === 'exiting') {
        const waited = Date.now() - began;
        if (waited >= EXIT_WAIT_MS) {
          throw new RunLockedError(this.run, holder, this.file, `, which is still exiting after ${(waited / 1000).toFixed(1)} s; try again in a moment`);
        }
        waitedFor = holder;
        await sleep(50);
        continue;
      }
      if (++claims > 10) throw new Error(`could not take the lock ${this.file}; other processes keep taking it`);
      this.claimStale(seen.text);
      const waited = waitedFor?.pid === holder.pid ? `; waited ${((Date.now() - began) / 1000).toFixed(1)} s for it to exit` : '';
      notes.push(`the lock of ${describeHolder(holder)} was stale (${state.why}${waited}): taken over`);
      if (waited) waitedFor = undefined;
    }
    if (waitedFor) notes.push(`waited ${((Date.now() - began) / 1000).toFixed(1)} s for ${describeHolder(waitedFor)} to finish exiting`);
    HELD_HERE.set(this.file, parseHolder(this.mine)!);
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
      try {
        fs.linkSync(tmp, this.file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      // Linked when the temporary file has two names (NFS may report a link it made as EEXIST).
      if (fs.statSync(tmp).nlink !== 2) return false;
      this.mine = text;
      return true;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  /**
   * Removes the stale lock whose text is `stale`, unless another taker got there first: it is
   * renamed to a private claim name (only one taker gets the file) and checked there; a lock
   * created since by a new holder is put back.
   */
  private claimStale(stale: string): void {
    const claim = `${this.file}.claim-${process.pid}`;
    try {
      fs.renameSync(this.file, claim);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // another taker removed it
      throw err;
    }
    if (readText(claim) !== stale) {
      try {
        fs.linkSync(claim, this.file);
      } catch {
        // a third taker was faster; its lock stands
      }
    }
    fs.rmSync(claim, { force: true });
  }

  /** The heartbeat: the lock's mtime says its holder is alive (while the file is still ours). */
  private readonly refresh = () => {
    if (readText(this.file) !== this.mine) return;
    const now = new Date();
    fs.utimesSync(this.file, now, now);
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
