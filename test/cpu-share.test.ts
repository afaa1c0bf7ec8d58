// lib/runtime/cpu-share: how much of the machine other processes took while something was timed.
import { describe, expect, it } from 'vitest';
import { cpuSnapshot, othersShare } from '../lib/runtime/cpu-share';

describe('othersShare', () => {
  it('is the busy time not spent by the measured processes, as a share of all CPU time', () => {
    // 200 ticks passed on all CPUs; 150 of them busy, 100 of those ours: others took 50/200.
    expect(othersShare({ busy: 1000, total: 4000, ours: 10 }, { busy: 1150, total: 4200, ours: 110 })).toBeCloseTo(
      0.25,
      12,
    );
    // Tick granularity can make ours exceed the machine's busy time: never negative.
    expect(othersShare({ busy: 0, total: 0, ours: 0 }, { busy: 10, total: 100, ours: 12 })).toBe(0);
  });

  it('is null when a reading is missing or no time passed', () => {
    const s = { busy: 1, total: 2, ours: 0 };
    expect(othersShare(undefined, s)).toBeNull();
    expect(othersShare(s, undefined)).toBeNull();
    expect(othersShare(s, s)).toBeNull();
  });

  it('reads this machine: busy within total, our own CPU time counted, a share in [0, 1] after real work', () => {
    const before = cpuSnapshot();
    expect(before).toBeDefined(); // Linux: /proc is there
    let x = 0;
    // ~0.3 s of our own CPU time, however busy the machine (a wall-clock loop gets less under load).
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    while (process.cpuUsage(cpu0).user < 300_000 && Date.now() - t0 < 20_000) x += Math.sqrt(x + 1);
    const after = cpuSnapshot()!;
    expect(after.busy).toBeLessThanOrEqual(after.total);
    expect(after.ours - before!.ours).toBeGreaterThan(10); // USER_HZ 100: ≥ 0.1 s
    const share = othersShare(before, after)!;
    expect(share).toBeGreaterThanOrEqual(0);
    expect(share).toBeLessThanOrEqual(1);
    expect(x).toBeGreaterThan(0);
  });

  it('counts the given child processes as measured, and fails soft on a process that is gone', () => {
    const selfBefore = cpuSnapshot()!.ours; // this process alone
    // This process named once more as a "child" counts twice: at least twice what it had before.
    expect(cpuSnapshot([process.pid])!.ours).toBeGreaterThanOrEqual(2 * selfBefore);
    expect(cpuSnapshot([2 ** 22 + 12345])).toBeUndefined();
  });
});
