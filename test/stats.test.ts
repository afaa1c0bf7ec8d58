// Paired statistics: t quantiles against published values, the sign-flip test by hand, and the
// verdict logic on synthetic runs (including one where the sign of the difference flips).
import { describe, expect, it } from 'vitest';
import {
  pairedComparison,
  signFlipPValue,
  studentTCdf,
  studentTQuantile,
  verdictOf,
  verdictPhrase,
} from '../lib/experiments/stats';

const bySeed = (values: number[]) => new Map(values.map((v, seed) => [seed, v]));

describe('Student t', () => {
  it('matches published 97.5 % quantiles', () => {
    // scipy.stats.t.ppf(0.975, df)
    expect(studentTQuantile(0.975, 1)).toBeCloseTo(12.706205, 5);
    expect(studentTQuantile(0.975, 4)).toBeCloseTo(2.776445, 5);
    expect(studentTQuantile(0.975, 10)).toBeCloseTo(2.228139, 5);
    expect(studentTQuantile(0.975, 1000)).toBeCloseTo(1.962339, 5);
    expect(studentTQuantile(0.025, 4)).toBeCloseTo(-2.776445, 5);
  });

  it('has the CDF of the Cauchy distribution at df = 1', () => {
    for (const t of [-3, -0.5, 0, 0.7, 5]) expect(studentTCdf(t, 1)).toBeCloseTo(0.5 + Math.atan(t) / Math.PI, 10);
  });
});

describe('sign-flip permutation test', () => {
  it('counts the sign patterns at least as extreme as the observed sum', () => {
    // All five positive: only all-plus and all-minus reach |sum| = 5 → 2/32.
    expect(signFlipPValue([1, 1, 1, 1, 1])).toBeCloseTo(2 / 32, 12);
    // [3, -1]: sums ±2 and ±4; |sum| ≥ 2 for all four patterns.
    expect(signFlipPValue([3, -1])).toBe(1);
    // [3, 1]: |sum| ≥ 4 only for ++ and −−.
    expect(signFlipPValue([3, 1])).toBe(0.5);
    expect(signFlipPValue([])).toBe(1);
  });
});

describe('paired comparison and verdicts', () => {
  it('calls a consistent gain better, with the t interval of the differences', () => {
    const a = bySeed([0.7, 0.72, 0.71, 0.69, 0.73]);
    const b = bySeed([0.72, 0.735, 0.73, 0.71, 0.745]); // +2.0, +1.5, +2.0, +2.0, +1.5 points
    const c = pairedComparison(a, b);
    expect(c.n).toBe(5);
    expect(c.mean).toBeCloseTo(0.018, 12);
    const sd = Math.sqrt((3 * 0.002 ** 2 + 2 * 0.003 ** 2) / 4);
    expect(c.sd).toBeCloseTo(sd, 12);
    expect(c.high - c.mean).toBeCloseTo(2.776445 * (sd / Math.sqrt(5)), 6);
    expect(c.low).toBeGreaterThan(0);
    expect(c.verdict).toBe('better');
    expect(c.wins).toBe(5);
    expect(c.permutationP).toBeCloseTo(2 / 32, 12);
  });

  it('calls the reverse comparison worse', () => {
    const a = bySeed([0.7, 0.72, 0.71, 0.69, 0.73]);
    const b = bySeed([0.72, 0.735, 0.73, 0.71, 0.745]);
    expect(pairedComparison(b, a).verdict).toBe('worse');
  });

  it('is inconclusive when the sign flips between seeds', () => {
    // Same mean gain as above, but two seeds go the other way: the interval straddles 0.
    const a = bySeed([0.7, 0.72, 0.71, 0.69, 0.73]);
    const b = bySeed([0.76, 0.71, 0.77, 0.68, 0.78]);
    const c = pairedComparison(a, b);
    expect(c.mean).toBeGreaterThan(0);
    expect(c.wins).toBe(3);
    expect(c.losses).toBe(2);
    expect(c.low).toBeLessThan(0);
    expect(c.high).toBeGreaterThan(0);
    expect(c.verdict).toBe('inconclusive');
    // The same differences against a margin wider than their 90 % interval: equivalent.
    expect(pairedComparison(a, b, { margin: 0.2 }).verdict).toBe('equivalent');
  });

  it('pairs by seed, ignoring seeds only one arm has', () => {
    const a = new Map([
      [0, 0.5],
      [1, 0.6],
      [2, 0.7],
    ]);
    const b = new Map([
      [1, 0.65],
      [2, 0.74],
      [7, 0.99],
    ]);
    const c = pairedComparison(a, b);
    expect(c.seeds).toEqual([1, 2]);
    expect(c.differences.map((d) => +d.toFixed(10))).toEqual([0.05, 0.04]);
  });

  it('refuses a verdict from fewer than two pairs', () => {
    expect(pairedComparison(bySeed([0.5]), bySeed([0.9])).verdict).toBe('too few pairs');
    const iv = (low: number, high: number, low90: number, high90: number) => ({ low, high, low90, high90 });
    expect(verdictOf(1, iv(NaN, NaN, NaN, NaN), 0.01)).toBe('too few pairs');
    expect(verdictOf(5, iv(-0.01, 0.02, -0.008, 0.018), 0.01)).toBe('inconclusive');
    expect(verdictOf(5, iv(-0.01, 0.02, -0.008, 0.009), 0.01)).toBe('equivalent');
  });

  it('calls a difference whose 95 % interval excludes 0 but whose 90 % interval lies inside the margin equivalent, with its direction', () => {
    // b is ahead by 0.3–0.5 points on every seed: real (the 95 % interval is above 0) and smaller than the ±1-point margin.
    const a = bySeed([0.7, 0.72, 0.71, 0.69, 0.73, 0.7, 0.71, 0.72, 0.7, 0.71]);
    const b = bySeed([0.704, 0.724, 0.713, 0.695, 0.733, 0.704, 0.714, 0.723, 0.705, 0.713]);
    const c = pairedComparison(a, b, { margin: 0.01 });
    expect(c.low).toBeGreaterThan(0);
    expect(c.high90).toBeLessThan(0.01);
    expect(c.verdict).toBe('equivalent');
    expect(c.direction).toBe('higher');
    expect(verdictPhrase(c)).toBe('equivalent within ±1 point');
    // Without a margin the same numbers say better; with the roles swapped, lower.
    expect(pairedComparison(a, b).verdict).toBe('better');
    expect(pairedComparison(b, a, { margin: 0.01 }).direction).toBe('lower');
    // Shifted by two points it is no longer inside the margin: better.
    const far = bySeed([...b.values()].map((x) => x + 0.02));
    expect(pairedComparison(a, far, { margin: 0.01 }).verdict).toBe('better');
    expect(verdictPhrase({ verdict: 'inconclusive', n: 10, margin: 0.01 })).toBe('inconclusive at n = 10');
  });
});
