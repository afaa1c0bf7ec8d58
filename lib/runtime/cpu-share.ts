/**
 * How much of the machine OTHER processes took while something was timed, from Linux's /proc:
 * the figure that says whether a timing was quiet. A load average cannot: it trails by a minute
 * and counts this process's own threads.
 */
import * as fs from 'fs';

/** All CPUs' busy and total clock ticks, and the ticks of the processes being measured. */
export interface CpuSnapshot {
  busy: number;
  total: number;
  ours: number;
}

/** CPU clock ticks (USER_HZ) of a process: utime + stime from /proc/<pid>/stat. */
function processTicks(pid: number | 'self'): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // after "pid (comm) "
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of the line)
}

/**
 * A reading of /proc/stat and of this process (plus `childPids`, e.g. the PyTorch process a
 * benchmark takes turns with). Undefined where /proc is not there (not Linux).
 */
export function cpuSnapshot(childPids: readonly number[] = []): CpuSnapshot | undefined {
  try {
    // user nice system idle iowait irq softirq steal (guest time is already inside user/nice).
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    const total = f.reduce((a, b) => a + b, 0);
    const ours = processTicks('self') + childPids.reduce((s, pid) => s + processTicks(pid), 0);
    return { busy: total - idle, total, ours };
  } catch {
    return undefined;
  }
}

/**
 * Share (0–1) of all CPUs' time that processes other than the measured ones took between two
 * snapshots; null when either is missing or no time passed.
 */
export function othersShare(before: CpuSnapshot | undefined, after: CpuSnapshot | undefined): number | null {
  if (!before || !after || after.total === before.total) return null;
  return Math.max(0, after.busy - before.busy - (after.ours - before.ours)) / (after.total - before.total);
}
