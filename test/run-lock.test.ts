// The run lock (issues #24, #25): a holder is its host, pid and process start time, so that a
// zombie, a reused pid, a process in the middle of exiting and another host's stopped heartbeat
// are each told apart from a live holder. Real processes, real lock files.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { procStat } from '../lib/formats/atomic-file';
import {
  EXIT_WAIT_MS,
  HEARTBEAT_MS,
  liveness,
  RunLock,
  RunLockedError,
  STALE_AFTER_MS,
  thisHolder,
} from '../lib/train/run-lock';

let dir: string;
let lockFile: string;
const children: ChildProcessWithoutNullStreams[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'run-lock-'));
  lockFile = path.join(dir, '.r.lock');
});
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A lock file as `holder` would have written it, last refreshed `ageMs` ago. */
function writeLock(holder: object | string, ageMs = 0): void {
  fs.writeFileSync(lockFile, typeof holder === 'string' ? holder : JSON.stringify(holder));
  const t = new Date(Date.now() - ageMs);
  fs.utimesSync(lockFile, t, t);
}

const holderOnFile = () => JSON.parse(fs.readFileSync(lockFile, 'utf8'));

/** Starts `command` and resolves with its first line of output once it matches `want`. */
function started(
  command: string,
  args: string[],
  want: RegExp,
): Promise<{ child: ChildProcessWithoutNullStreams; line: () => Promise<string> }> {
  const child = spawn(command, args);
  children.push(child);
  const lines: string[] = [];
  let waiting: ((l: string) => void) | undefined;
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      lines.push(buffer.slice(0, i));
      buffer = buffer.slice(i + 1);
    }
    if (waiting && lines.length) waiting(lines.shift()!);
  });
  const line = () => new Promise<string>((resolve) => (lines.length ? resolve(lines.shift()!) : (waiting = resolve)));
  return line().then((first) => {
    if (!want.test(first)) throw new Error(`${command} printed '${first}'`);
    lines.unshift(first);
    return { child, line };
  });
}

describe('the run lock', () => {
  it('records host, pid, start time and boot; refuses a live holder; releases only its own lock', async () => {
    const lock = new RunLock(lockFile, 'r');
    expect(await lock.acquire()).toEqual([]);
    expect(holderOnFile()).toMatchObject({
      host: os.hostname(),
      pid: process.pid,
      start: procStat(process.pid)!.start,
    });
    expect(holderOnFile().boot).toMatch(/^[0-9a-f-]{36}$/);
    await expect(new RunLock(lockFile, 'r').acquire()).rejects.toThrow(
      /run 'r' is already being trained in this process/,
    );
    lock.release();
    expect(fs.existsSync(lockFile)).toBe(false);

    // Another live process of this host (also in the earlier format: a bare pid) holds it.
    const earlier =
      ' (its lock is of an earlier format, without a start time: if that is not a training, delete the lock)';
    for (const [holder, hint] of [
      [thisHolder(process.ppid), ''],
      [String(process.ppid), earlier],
    ] as const) {
      writeLock(holder);
      const refusal = await lock.acquire().catch((e: Error) => e);
      expect(refusal).toBeInstanceOf(RunLockedError);
      expect((refusal as Error).message).toBe(
        `run 'r' is being trained by process ${process.ppid}${hint} (${lockFile}); ` +
          'wait for it, stop it, or use another --run name',
      );
      lock.release(); // not ours: stays
      expect(fs.existsSync(lockFile)).toBe(true);
    }
  });

  it('a zombie (exited, not reaped) holds nothing, though process.kill(pid, 0) still finds it', async () => {
    // `sleep 0` exits at once; its parent execs into a sleep that never reaps it.
    const { line } = await started('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], /^\d+$/);
    const zombie = Number(await line());
    for (let i = 0; procStat(zombie)?.state !== 'Z'; i++) {
      if (i > 100) throw new Error(`process ${zombie} never became a zombie`);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(() => process.kill(zombie, 0)).not.toThrow(); // what the lock used to ask
    writeLock(thisHolder(zombie));
    const lock = new RunLock(lockFile, 'r');
    expect(await lock.acquire()).toEqual([
      `the lock of process ${zombie} was stale (it has ended (a zombie)): taken over`,
    ]);
    expect(holderOnFile().pid).toBe(process.pid);
    lock.release();
  });

  it('a reused pid (a live, unrelated process with the recorded pid) or a restart since holds nothing', async () => {
    const live = thisHolder(process.ppid);
    for (const [holder, why] of [
      [{ ...live, start: String(Number(live.start) + 1) }, 'it has ended; its pid now belongs to another process'],
      [{ ...live, boot: '00000000-0000-0000-0000-000000000000' }, 'the machine has restarted since'],
    ] as const) {
      writeLock(holder);
      const lock = new RunLock(lockFile, 'r');
      expect(await lock.acquire()).toEqual([`the lock of process ${process.ppid} was stale (${why}): taken over`]);
      lock.release();
    }
    // A dead pid, in the earlier format too.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeLock(String(dead));
    const lock = new RunLock(lockFile, 'r');
    expect(await lock.acquire()).toEqual([`the lock of process ${dead} was stale (it has ended): taken over`]);
    lock.release();
  });

  const staleAfter = `${STALE_AFTER_MS / 1000} s`;
  it(`another host's lock is refused while its heartbeat is fresh, taken once silent for ${staleAfter}`, async () => {
    // Its pid means nothing here: this very process's pid, say.
    const elsewhere = {
      host: 'node-7.cluster',
      pid: process.pid,
      start: '1',
      boot: 'b',
      since: new Date().toISOString(),
    };
    writeLock(elsewhere, STALE_AFTER_MS - 10_000);
    await expect(new RunLock(lockFile, 'r').acquire()).rejects.toThrow(
      `run 'r' is being trained by process ${process.pid} on host node-7.cluster (${lockFile})`,
    );
    expect(holderOnFile()).toEqual(elsewhere);
    writeLock(elsewhere, STALE_AFTER_MS + 5_000);
    const lock = new RunLock(lockFile, 'r');
    expect(await lock.acquire()).toEqual([
      `the lock of process ${process.pid} on host node-7.cluster was stale ` +
        '(no heartbeat from host node-7.cluster for 65 s (limit 60 s)): taken over',
    ]);
    expect(holderOnFile().host).toBe(os.hostname());
    lock.release();
  });

  it('its holder refreshes it (the heartbeat other hosts go by) every few seconds', async () => {
    const lock = new RunLock(lockFile, 'r');
    await lock.acquire();
    const hourAgo = new Date(Date.now() - 3_600_000);
    fs.utimesSync(lockFile, hourAgo, hourAgo);
    // Seen from another host, it now looks stale; the next heartbeat makes it live again.
    const asSeenElsewhere = () =>
      liveness({ ...holderOnFile(), host: 'elsewhere' }, fs.statSync(lockFile).mtimeMs).state;
    expect(asSeenElsewhere()).toBe('stale');
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS + 500));
    expect(Date.now() - fs.statSync(lockFile).mtimeMs).toBeLessThan(HEARTBEAT_MS + 1000);
    expect(asSeenElsewhere()).toBe('live');
    lock.release();
  }, 20_000);

  describe('a holder in the middle of exiting (killed, held at its exit by ptrace)', () => {
    const helper = path.join(__dirname, 'helpers', 'exiting_process.py');
    const python = ['python3', 'python'].find((p) => spawnSync(p, ['-c', 'import ctypes']).status === 0);

    /** A process held at its exit for `seconds`, with its lock on file. */
    async function exitingHolder(seconds: number): Promise<{ pid: number; gone: Promise<string> }> {
      const { child, line } = await started(python!, [helper, String(seconds)], /^\d+$/);
      const pid = Number(await line());
      writeLock(thisHolder(pid));
      child.stdin.write('kill\n');
      const said = await line();
      if (said !== 'exiting') throw new Error(`the helper said '${said}'`);
      return { pid, gone: line() };
    }

    it.skipIf(!python)('is waited for (and that is said) until it is gone', async (ctx) => {
      const { pid, gone } = await exitingHolder(1).catch((err: Error) => ctx.skip(err.message) as never);
      expect(liveness(thisHolder(pid), Date.now()).state).toBe('exiting');
      const lock = new RunLock(lockFile, 'r');
      const notes = await lock.acquire();
      expect(await gone).toBe('gone');
      expect(notes).toHaveLength(1);
      const why = 'it has ended( \\(a zombie\\))?; waited [1-4]\\.\\d s for it to exit';
      expect(notes[0]).toMatch(new RegExp(`^the lock of process ${pid} was stale \\(${why}\\): taken over$`));
      lock.release();
    });

    it.skipIf(!python)(
      `is refused, saying so, when still exiting after ${EXIT_WAIT_MS / 1000} s`,
      async (ctx) => {
        const { pid } = await exitingHolder(EXIT_WAIT_MS / 1000 + 5).catch(
          (err: Error) => ctx.skip(err.message) as never,
        );
        await expect(new RunLock(lockFile, 'r').acquire()).rejects.toThrow(
          new RegExp(`^run 'r' is being trained by process ${pid}, which is still exiting after [5-9]\\.\\d s`),
        );
      },
      20_000,
    );
  });
});
