// The intervals behind notebook 05's verdicts: a share against chance (Wilson) and a correlation
// (Fisher z). The verdict follows the interval, and flips with the sign.
import { describe, expect, it } from 'vitest';
import { correlationInterval, proportionVsChance } from '../lib/experiments/stats';

describe('proportionVsChance', () => {
  it('gives the Wilson interval and says above or below chance only when it excludes chance', () => {
    const half = proportionVsChance(50, 100, 0.25);
    expect(half.share).toBe(0.5);
    expect(half.low).toBeCloseTo(0.4038, 4);
    expect(half.high).toBeCloseTo(0.5962, 4);
    expect(half.verdict).toBe('above chance');
    expect(proportionVsChance(10, 100, 0.25).verdict).toBe('below chance');
    expect(proportionVsChance(7, 30, 0.25).verdict).toBe('no detectable difference');
    const none = proportionVsChance(0, 10, 0.25);
    expect(none.low).toBeCloseTo(0, 12);
    expect(none.high).toBeCloseTo(0.2775, 4);
    expect(proportionVsChance(0, 0, 0.25).verdict).toBe('no data');
  });
});

describe('correlationInterval', () => {
  it('gives the Fisher-z interval and a verdict that flips with the sign', () => {
    const r = correlationInterval(0.5, 45);
    expect(r.low).toBeCloseTo(0.242, 3);
    expect(r.high).toBeCloseTo(0.692, 3);
    expect(r.verdict).toBe('positive');
    const flipped = correlationInterval(-0.5, 45);
    expect(flipped.low).toBeCloseTo(-0.692, 3);
    expect(flipped.verdict).toBe('negative');
    expect(correlationInterval(0.1, 45).verdict).toBe('no detectable correlation');
    expect(correlationInterval(0.9, 3).verdict).toBe('too few');
    expect(correlationInterval(NaN, 45).verdict).toBe('too few');
  });
});
