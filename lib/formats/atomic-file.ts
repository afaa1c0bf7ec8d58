/**
 * Every file the project writes goes to a temporary name in the same folder and is renamed when
 * complete: an interrupted run leaves a `*.tmp` file, never a half-written file under the real name.
 */
import * as fs from 'fs';
import * as path from 'path';

/** The temporary name used while `file` is being written (same folder, so rename is atomic). */
export function tempNameFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
}

/** The fs calls a write makes; tests pass their own to inject faults (a full disk). */
export interface WriteIo {
  openSync: typeof fs.openSync;
  writeFileSync: (fd: number, data: string | Uint8Array) => void;
  fsyncSync: typeof fs.fsyncSync;
  closeSync: typeof fs.closeSync;
  renameSync: typeof fs.renameSync;
}

/** Error codes that mean the disk (or the user's quota) has no room left. */
const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);

/**
 * A write failure as an error that names the file and says what to do; a full disk says so.
 * The original error stays as `cause` and its `code` is kept.
 */
export function writeError(file: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException)?.code;
  const why = (err as Error)?.message ?? String(err);
  const message =
    code && DISK_FULL.has(code)
      ? `cannot write ${file}: the disk is full (${code}). Any earlier ${path.basename(file)} is unchanged; free some space and run again.`
      : `cannot write ${file}: ${why}. Any earlier ${path.basename(file)} is unchanged.`;
  return Object.assign(new Error(message, { cause: err }), { code });
}

/**
 * Writes `data` to `file` atomically (temporary name, fsync, rename), creating the folder.
 * A failure removes the temporary file, leaves any earlier `file` as it was, and throws an
 * error naming `file` (writeError). `io` replaces the fs calls (tests inject faults).
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, io: WriteIo = fs): void {
  const tmp = tempNameFor(file);
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const fd = io.openSync(tmp, 'w');
    try {
      io.writeFileSync(fd, data);
      io.fsyncSync(fd);
    } finally {
      io.closeSync(fd);
    }
    io.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw writeError(file, err);
  }
}

/**
 * Removes temporary files (`.<name>.<pid>.tmp` from writeFileAtomic, `<name>.<pid>.tmp` from
 * writers that name their own) left in `dir` by processes that no longer run (an interrupted
 * write), leaving those of live processes alone.
 */
export function removeStaleTempFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const removed: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    const match = /\.(\d+)\.tmp$/.exec(name);
    if (!match) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || isAlive(pid)) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

/** What Linux's /proc/<pid>/stat says about a process (undefined: no such process). */
export interface ProcStat {
  /** R, S, D, …; Z: a zombie (exited, not yet reaped by its parent). */
  state: string;
  /** The kernel's PF_* flags (field 9). */
  flags: number;
  /** Start time in clock ticks after boot (field 22): with the boot id, it tells a reused pid apart. */
  start: string;
}

/** True where /proc describes processes (Linux); elsewhere only `process.kill(pid, 0)` can tell. */
export const HAS_PROC = fs.existsSync('/proc/self/stat');

export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name, which may itself hold spaces and parentheses.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: f[0], flags: Number(f[6]), start: f[19] };
}

/** True while process `pid` runs: a zombie does not (EPERM: it runs, as another user). */
export function isAlive(pid: number): boolean {
  if (HAS_PROC) {
    const state = procStat(pid)?.state;
    return state !== undefined && state !== 'Z' && state !== 'X';
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
