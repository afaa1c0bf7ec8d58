/**
 * Paired statistics for comparing two arms of an experiment run with the same seeds (same data
 * order, same seeded initialisation streams): the per-seed differences, their mean with a 95 %
 * Student-t interval, an exact sign-flip permutation test, an equivalence test against a margin
 * declared before the runs (two one-sided tests, i.e. the 90 % interval inside ±margin), and a
 * verdict computed from those intervals.
 *
 * Pure functions on numbers: the notebooks and the report state what these return, so no
 * sentence about "better", "worse" or "equivalent" is ever written by hand.
 */

/** One arm's value per seed (e.g. test accuracy at the validation-selected epoch). */
export type BySeed = ReadonlyMap<number, number>;

/**
 * better / worse: the 95 % interval excludes 0 and the difference is not shown to be inside the
 * margin; equivalent: the 90 % interval lies inside ±margin (whether or not the 95 % one excludes 0:
 * a real difference smaller than the margin is still equivalent); inconclusive: neither.
 */
export type Verdict = 'better' | 'worse' | 'equivalent' | 'inconclusive' | 'too few pairs';

export interface PairedComparison {
  /** Seeds present in both arms, ascending. */
  seeds: number[];
  /** b − a per seed, in `seeds` order. */
  differences: number[];
  n: number;
  mean: number;
  /** Sample standard deviation of the differences (NaN for n < 2). */
  sd: number;
  /** 95 % t interval of the mean difference ([NaN, NaN] for n < 2). */
  low: number;
  high: number;
  /** 90 % t interval: the equivalence test's (TOST at 5 % each side). */
  low90: number;
  high90: number;
  /** The equivalence margin (same unit as the values; 0: no equivalence claim possible). */
  margin: number;
  /** Two-sided exact sign-flip permutation p-value of the mean difference (1 for n = 0). */
  permutationP: number;
  /** Seeds where b beat a, lost to a, tied. */
  wins: number;
  losses: number;
  /** From the intervals (verdictOf). */
  verdict: Verdict;
  /** The mean's sign where the 95 % interval excludes 0 (also when equivalent), else null. */
  direction: 'higher' | 'lower' | null;
}

/** Compares arm `b` against arm `a` over the seeds both have; `margin` is the declared equivalence margin. */
export function pairedComparison(a: BySeed, b: BySeed, opts: { margin?: number } = {}): PairedComparison {
  const margin = opts.margin ?? 0;
  const seeds = [...a.keys()].filter((s) => b.has(s)).sort((x, y) => x - y);
  const differences = seeds.map((s) => b.get(s)! - a.get(s)!);
  const n = differences.length;
  const mean = n ? differences.reduce((s, d) => s + d, 0) / n : NaN;
  const sd = n >= 2 ? Math.sqrt(differences.reduce((s, d) => s + (d - mean) ** 2, 0) / (n - 1)) : NaN;
  const half = (level: number) => (n >= 2 ? studentTQuantile(1 - (1 - level) / 2, n - 1) * (sd / Math.sqrt(n)) : NaN);
  const [h95, h90] = [half(0.95), half(0.9)];
  const iv = { low: mean - h95, high: mean + h95, low90: mean - h90, high90: mean + h90 };
  const verdict = verdictOf(n, iv, margin);
  return {
    seeds,
    differences,
    n,
    mean,
    sd,
    ...iv,
    margin,
    permutationP: signFlipPValue(differences),
    wins: differences.filter((d) => d > 0).length,
    losses: differences.filter((d) => d < 0).length,
    verdict,
    direction: iv.low > 0 ? 'higher' : iv.high < 0 ? 'lower' : null,
  };
}

/**
 * The verdict the intervals allow: equivalent when the 90 % interval lies inside ±margin (TOST);
 * else better or worse when the 95 % interval excludes 0; else inconclusive at this n.
 */
export function verdictOf(
  n: number,
  iv: { low: number; high: number; low90: number; high90: number },
  margin = 0,
): Verdict {
  if (n < 2 || ![iv.low, iv.high, iv.low90, iv.high90].every(Number.isFinite)) return 'too few pairs';
  if (margin > 0 && iv.low90 > -margin && iv.high90 < margin) return 'equivalent';
  if (iv.low > 0) return 'better';
  if (iv.high < 0) return 'worse';
  return 'inconclusive';
}

/**
 * Two-sided exact permutation test of a zero mean: under the null each difference's sign is a
 * fair coin, so p is the share of all 2^n sign patterns whose |sum| is at least the observed one.
 * With 5 pairs the smallest possible p is 2/32 = 0.0625: 5 seeds cannot reach 0.05 this way.
 */
export function signFlipPValue(differences: readonly number[]): number {
  const n = differences.length;
  if (n === 0) return 1;
  if (n > 20) throw new Error(`signFlipPValue enumerates 2^n patterns; n = ${n} is too many (at most 20)`);
  const observed = Math.abs(differences.reduce((s, d) => s + d, 0));
  const tolerance = 1e-12 * differences.reduce((s, d) => s + Math.abs(d), 0);
  let atLeast = 0;
  for (let mask = 0; mask < 1 << n; mask++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += mask & (1 << i) ? -differences[i] : differences[i];
    if (Math.abs(sum) >= observed - tolerance) atLeast++;
  }
  return atLeast / (1 << n);
}

/** The p-quantile of Student's t distribution with `df` degrees of freedom (bisection on the CDF). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1) || !(df > 0))
    throw new Error(`studentTQuantile needs 0 < p < 1 and df > 0; got p=${p}, df=${df}`);
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom, through the regularised incomplete beta. */
export function studentTCdf(t: number, df: number): number {
  const x = df / (df + t * t);
  const tail = 0.5 * regularizedIncompleteBeta(x, df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** I_x(a, b) by its continued fraction (Numerical Recipes' betacf), accurate to ~1e-14. */
function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // The fraction converges fast for x < (a+1)/(a+b+2); use the symmetry I_x(a,b) = 1 − I_{1−x}(b,a) otherwise.
  if (x > (a + 1) / (a + b + 2)) return 1 - (front * betaFraction(1 - x, b, a)) / b;
  return (front * betaFraction(x, a, b)) / a;
}

function betaFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let h = d;
  for (let m = 1; m <= 300; m++) {
    for (const num of [
      (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m)),
      (-(a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1)),
    ]) {
      d = 1 + num * d;
      d = 1 / (Math.abs(d) < tiny ? tiny : d);
      c = 1 + num / c;
      if (Math.abs(c) < tiny) c = tiny;
      h *= d * c;
    }
    if (Math.abs(d * c - 1) < 1e-15) break;
  }
  return h;
}

/** ln Γ(z) for z > 0 (Lanczos, g = 7). */
function logGamma(z: number): number {
  const g = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (z < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * z))) - logGamma(1 - z);
  const zz = z - 1;
  let sum = g[0];
  for (let i = 1; i < 9; i++) sum += g[i] / (zz + i);
  const t = zz + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (zz + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** The 0.975 quantile of the standard normal (two-sided 95 %). */
const Z95 = 1.959963984540054;

/** A share of successes against the share chance would give, with its 95 % Wilson interval. */
export interface ChanceComparison {
  successes: number;
  n: number;
  share: number;
  /** 95 % Wilson score interval of the share ([NaN, NaN] for n = 0). */
  low: number;
  high: number;
  chance: number;
  /** From the interval: above or below chance only when it excludes `chance`. */
  verdict: 'above chance' | 'below chance' | 'no detectable difference' | 'no data';
}

export function proportionVsChance(successes: number, n: number, chance: number): ChanceComparison {
  if (n <= 0) return { successes, n, share: NaN, low: NaN, high: NaN, chance, verdict: 'no data' };
  const p = successes / n;
  const z2 = Z95 * Z95;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (Z95 * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  const low = centre - half;
  const high = centre + half;
  return {
    successes,
    n,
    share: p,
    low,
    high,
    chance,
    verdict: low > chance ? 'above chance' : high < chance ? 'below chance' : 'no detectable difference',
  };
}

/** A Pearson correlation with its 95 % interval (Fisher z, as for independent pairs). */
export interface CorrelationInterval {
  r: number;
  n: number;
  low: number;
  high: number;
  /** From the interval: positive or negative only when it excludes 0. */
  verdict: 'positive' | 'negative' | 'no detectable correlation' | 'too few';
}

export function correlationInterval(r: number, n: number): CorrelationInterval {
  if (n < 4 || !Number.isFinite(r)) return { r, n, low: NaN, high: NaN, verdict: 'too few' };
  const clipped = Math.max(-0.999999999999, Math.min(0.999999999999, r));
  const z = Math.atanh(clipped);
  const half = Z95 / Math.sqrt(n - 3);
  const low = Math.tanh(z - half);
  const high = Math.tanh(z + half);
  return { r, n, low, high, verdict: low > 0 ? 'positive' : high < 0 ? 'negative' : 'no detectable correlation' };
}

/**
 * The verdict in words, with what qualifies it: 'equivalent within ±1 point', 'inconclusive at
 * n = 5', 'better', 'worse', 'too few pairs'. `unit` turns the margin into points (100 for accuracies).
 */
export function verdictPhrase(c: Pick<PairedComparison, 'verdict' | 'n' | 'margin'>, unit = 100): string {
  const m = +(c.margin * unit).toFixed(2);
  switch (c.verdict) {
    case 'equivalent':
      return `equivalent within ±${m} point${m === 1 ? '' : 's'}`;
    case 'inconclusive':
      return `inconclusive at n = ${c.n}`;
    default:
      return c.verdict;
  }
}
