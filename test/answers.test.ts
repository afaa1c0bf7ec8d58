// The report's answers are generated from the results: each conclusion flips when the numbers do.
import { describe, expect, it } from 'vitest';
import {
  dynamicCosts,
  EQUIVALENCE_MARGIN,
  networkFacts,
  pairedComparison,
  type MeasurementRow,
  type ArmSummary,
  type ComparisonRow,
  type CompareFacts,
  type CostFacts,
  type FreezeFacts,
} from '../lib/experiments';
import {
  causeStatus,
  checkpointAnswer,
  compareAnswer,
  freezeAnswer,
  networkAnswer,
  precisionAnswer,
  prosConsAnswer,
  responseMapAnswer,
  type MapFacts,
} from '../lib/report';

/** A comparison row b − a from per-seed values (fractions). */
function row(a: string, b: string, av: number[], bv: number[]): ComparisonRow {
  const m = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const bySeed = (xs: number[]) => new Map(xs.map((x, i) => [i, x]));
  return {
    group: 'compare',
    a,
    b,
    isolates: '',
    ...pairedComparison(bySeed(av), bySeed(bv), { margin: EQUIVALENCE_MARGIN }),
    meanA: m(av),
    nA: av.length,
    meanB: m(bv),
    nB: bv.length,
  };
}
const base = [0.76, 0.77, 0.765, 0.772, 0.758, 0.768, 0.761, 0.774, 0.763, 0.769];
const shift = (xs: number[], d: number, wobble = 0) => xs.map((x, i) => x + d + (i % 2 ? wobble : -wobble));
const summary = (arm: string, xs: number[]): ArmSummary => ({
  arm,
  mean: xs.reduce((s, x) => s + x, 0) / xs.length,
  sd: 0.005,
  n: xs.length,
});

function compareFacts(dynamicMinusStatic: number, wobble: number): CompareFacts {
  const dyn = shift(base, dynamicMinusStatic, wobble);
  return {
    source: 'recorded',
    lab: { dynamic: summary('lab-dynamic', dyn.slice(0, 5)), static: summary('lab-static', base.slice(0, 5)) },
    labComparison: row('lab-static', 'lab-dynamic', base.slice(0, 5), dyn.slice(0, 5)),
    main: row('static', 'dynamic', base, dyn),
    generator: row('static-l2', 'dynamic', base, dyn),
    protocol: row('dynamic', 'lab-dynamic', base.slice(0, 5), shift(base.slice(0, 5), 0.015, 0.001)),
  };
}

describe('2.3 the comparison', () => {
  it('says equivalent within the margin when the 90 % interval lies inside it', () => {
    const a = compareAnswer(compareFacts(0.001, 0.001));
    expect(a.conclusion.verdict).toBe('equivalent');
    expect(a.sentences.join(' ')).toContain('equivalent within ±1 point');
  });
  it('flips to better, worse or inconclusive with the numbers', () => {
    expect(compareAnswer(compareFacts(0.03, 0.002)).conclusion.verdict).toBe('better');
    expect(compareAnswer(compareFacts(-0.03, 0.002)).conclusion.verdict).toBe('worse');
    const noisy = compareAnswer(compareFacts(0.004, 0.03));
    expect(noisy.conclusion.verdict).toBe('inconclusive');
    expect(noisy.sentences.join(' ')).toContain('inconclusive at n = 10');
    expect(compareAnswer(compareFacts(0.03, 0.002)).sentences.join(' ')).toMatch(/dynamic net is better/);
  });
  it('calls a real difference smaller than the margin equivalent, and says which way it goes', () => {
    const small = compareFacts(0.004, 0.0005); // the 95 % interval excludes 0, the 90 % one lies inside ±1 point
    expect(small.main.low).toBeGreaterThan(0);
    const a = compareAnswer(small);
    expect(a.conclusion.verdict).toBe('equivalent');
    expect(a.sentences.join(' ')).toContain('a real but small difference, higher');
  });
  it('states the protocol difference in the direction the numbers give', () => {
    expect(compareAnswer(compareFacts(0, 0.001)).conclusion.protocolHigher).toBe(true);
    const f = compareFacts(0, 0.001);
    f.protocol = row('dynamic', 'lab-dynamic', base.slice(0, 5), shift(base.slice(0, 5), -0.015, 0.001));
    expect(compareAnswer(f).conclusion.protocolHigher).toBe(false);
  });
});

function freezeFacts(featuresHelp: boolean): FreezeFacts {
  const dyn = base.slice(0, 5);
  const frozen = shift(dyn, -0.19, 0.002);
  const big = (d: number) => shift(frozen, d, 0.002);
  const none = (d = 0.0005) => shift(frozen, d, 0.0008);
  return {
    source: 'recorded',
    freeze: row('dynamic', 'frozen-requires-grad', dyn, frozen),
    causes: [
      {
        cause: 'BatchNorm statistics',
        how: '',
        test: row('frozen-requires-grad', 'frozen-eval', frozen, featuresHelp ? none() : big(0.1)),
      },
      { cause: 'input statistics', how: '', test: row('frozen-eval', 'frozen-eval-imagenet', frozen, none(-0.0005)) },
      {
        cause: 'object scale',
        how: '',
        test: row('frozen-eval', 'frozen-eval-up2', frozen, shift(frozen, 0.01, 0.03)),
      },
      {
        cause: 'features not adapted to CIFAR-10',
        how: '',
        test: row('frozen-requires-grad', 'fix-stem-frozen', frozen, featuresHelp ? big(0.185) : none()),
      },
    ],
    fixes: [
      {
        arm: 'fix-stem-frozen',
        how: "layer1's filters trained",
        vsDynamic: row('dynamic', 'fix-stem-frozen', dyn, featuresHelp ? shift(dyn, -0.001, 0.0005) : big(0.0005)),
        vsControl: row('frozen-requires-grad', 'fix-stem-frozen', frozen, big(0.185)),
      },
    ],
  };
}

describe('3.2 freezing', () => {
  it('says which causes the data supports and rules out, and flips with them', () => {
    const a = freezeAnswer(freezeFacts(true));
    expect(a.conclusion.freeze).toBe('worse');
    expect(a.conclusion.supported).toEqual(['features not adapted to CIFAR-10']);
    expect(a.conclusion.ruledOut).toEqual(['BatchNorm statistics', 'input statistics']);
    expect(a.sentences.join(' ')).toContain('it hurts');
    expect(a.sentences.join(' ')).toMatch(/cannot decide object scale/);
    const b = freezeAnswer(freezeFacts(false));
    expect(b.conclusion.supported).toEqual(['BatchNorm statistics']);
    expect(b.conclusion.ruledOut).toEqual(['input statistics', 'features not adapted to CIFAR-10']);
    expect(b.sentences.join(' ')).toContain('BatchNorm normalises');
  });
  it('judges the best fix against training everything', () => {
    expect(freezeAnswer(freezeFacts(true)).conclusion.bestFixVsFull).toBe('equivalent');
    expect(freezeAnswer(freezeFacts(false)).conclusion.bestFixVsFull).toBe('worse');
    expect(
      causeStatus({ cause: 'x', how: '', test: row('a', 'b', base.slice(0, 5), shift(base.slice(0, 5), 0.004, 0.02)) }),
    ).toBe('undecided');
  });
});

describe('advantages and downsides', () => {
  /** Step times of both heads (ms), as lib/experiments/measurements records them. */
  const measured = (dynamicTrainMs: number): MeasurementRow[] => {
    const base = {
      setting: 'lab',
      part: '',
      unit: 'ms' as const,
      spread: 1,
      n: 12,
      backend: 'test',
      cpus: 2,
      load1: 0,
      othersShare: 0,
      time: new Date(0),
    };
    return [
      { ...base, measure: 'train-step', variant: 'dynamic', batch: 64, value: dynamicTrainMs },
      { ...base, measure: 'train-step', variant: 'static', batch: 64, value: 100 },
      { ...base, measure: 'inference-step', variant: 'static', batch: 64, value: 30 },
      { ...base, measure: 'inference-step', variant: 'dynamic', batch: 64, value: 31 },
      { ...base, measure: 'inference-step-precomputed-filters', variant: 'dynamic', batch: 64, value: 30.3 },
      { ...base, measure: 'filter-generation', variant: 'dynamic', batch: 10, value: 0.4 },
    ];
  };
  const costs = (accuracyGain: number, dynamicTrainMs: number): CostFacts => ({
    source: 'recorded',
    network: networkFacts(),
    times: dynamicCosts(measured(dynamicTrainMs)),
    accuracy: row('static', 'dynamic', base, shift(base, accuracyGain, 0.001)),
  });
  it('counts accuracy as a downside when there is no gain, an advantage when there is one; time by the measured step ratio', () => {
    const none = prosConsAnswer(costs(0.001, 110));
    expect(none.conclusion).toEqual({ accuracyIs: 'downside', slower: true });
    expect(none.advantages.length).toBeGreaterThanOrEqual(2);
    expect(none.downsides.length).toBeGreaterThanOrEqual(2);
    expect(none.downsides.join(' ')).toContain('1.10× the static one');
    expect(none.advantages.join(' ')).toContain('1.01× the static net');
    expect(none.sentences[0]).toContain('for no accuracy gain (equivalent within ±1 point)');
    const gain = prosConsAnswer(costs(0.03, 95));
    expect(gain.conclusion).toEqual({ accuracyIs: 'advantage', slower: false });
    expect(gain.advantages.join(' ')).toContain('Higher accuracy');
    expect(gain.advantages.join(' ')).toContain('No training-time cost');
    expect(gain.sentences[0]).toContain('for +3.00 points of accuracy');
    // A gap inside the timings' spread (±1 ms each here) is no cost either way.
    const same = prosConsAnswer(costs(0.001, 100.5));
    expect(same.conclusion.slower).toBe(false);
    expect(same.advantages.join(' ')).toMatch(
      /No training-time cost: .*1\.00× the static one.*0\.50 ms between them is within the timings' spread \(±1\.41 ms\)/,
    );
    expect(same.downsides.join(' ')).not.toContain('Slower training');
  });
});

describe('2.1 and 2.2', () => {
  it('counts the network from the model definition', () => {
    const n = networkFacts();
    const a = networkAnswer(n);
    expect(n.head.dynamic).toBe(n.embeddings + n.generator + n.scoreMlp);
    expect(n.head.static).toBe(n.staticFilters + n.scoreMlp);
    expect(a.sentences.join(' ')).toContain(n.generator.toLocaleString('en-US'));
  });
  it('says whether keeping the best checkpoint mattered, from the epochs', () => {
    const earlier = checkpointAnswer({
      source: 'recorded',
      shown: { run: 'r', epochs: 5, bestEpoch: 3, best: 0.78, final: 0.77 },
      runs: 3,
      bestBeforeLast: 2,
      meanGain: 0.006,
    });
    expect(earlier.conclusion.bestEarlierInMost).toBe(true);
    expect(earlier.sentences.join(' ')).toContain('matters here');
    const last = checkpointAnswer({
      source: 'recorded',
      shown: { run: 'r', epochs: 5, bestEpoch: 5, best: 0.78, final: 0.78 },
      runs: 3,
      bestBeforeLast: 1,
      meanGain: 0.001,
    });
    expect(last.conclusion.bestEarlierInMost).toBe(false);
    expect(last.sentences.join(' ')).toContain('usually the best one');
  });
});

describe('3.1 response maps', () => {
  const maps = (central: number): MapFacts => {
    const m = new Float32Array(640);
    m[2 * 64 + 27] = 5; // class 2's map peaks near the centre
    return {
      source: 'recorded',
      run: 'lab-dynamic-s0',
      examples: [
        {
          index: 101,
          label: 2,
          predicted: 2,
          scores: Float32Array.from([0, 1, 4, 0, 0, 0, 0, 0, 0, 2]),
          maps: m,
          image: new Uint8Array(3072),
          caption: '',
        },
      ],
      peaks: {
        truth: { images: 300, central, meanDistance: 9 },
        other: { images: 300, central: 0.3, meanDistance: 11 },
      },
    };
  };
  it('says the maps localise only when their peaks beat chance', () => {
    const yes = responseMapAnswer(maps(0.6));
    expect(yes.conclusion.localises).toBe(true);
    expect(yes.sentences.join(' ')).toContain('weak localisation');
    expect(yes.sentences[0]).toContain('bird'); // class 2, from CLASS_NAMES
    const no = responseMapAnswer(maps(0.24));
    expect(no.conclusion.localises).toBe(false);
    expect(no.sentences.join(' ')).toContain('do not localise');
  });
});

describe('bf16 against fp32 (README)', () => {
  const fp32 = base.slice(0, 3);
  const say = (bf16: number[]) =>
    precisionAnswer({
      source: 'recorded',
      bf16: row('dynamic', 'dynamic-bf16', fp32, bf16),
      arms: { fp32: ['dynamic'], bf16: ['dynamic-bf16'] },
    });
  it('claims equivalence only when the 90 % interval lies inside the margin', () => {
    const a = say(shift(fp32, -0.001, 0.0005));
    expect(a.conclusion).toEqual({ verdict: 'equivalent', meanInsideMargin: true });
    expect(a.sentences[0]).toBe(
      'The recorded suite trains in fp32, and bf16 in the dynamic-bf16 arm (set by its experiments).',
    );
    expect(a.sentences[1]).toContain("bf16 holds fp32's accuracy");
  });
  it('says plainly when the mean lies inside the margin but equivalence is not shown', () => {
    const a = say(shift(fp32, -0.004, 0.006));
    expect(a.conclusion).toEqual({ verdict: 'inconclusive', meanInsideMargin: true });
    expect(a.sentences[1]).toMatch(
      /mean lies inside the ±1-point margin, but its 90 % CI .* reaches beyond it, so equivalence is not shown/,
    );
    expect(a.sentences[1]).not.toContain('holds');
  });
  it('says lower when bf16 loses more than the margin', () => {
    const a = say(shift(fp32, -0.03, 0.001));
    expect(a.conclusion).toEqual({ verdict: 'worse', meanInsideMargin: false });
    expect(a.sentences[1]).toMatch(/mean lies outside the ±1-point margin, and bf16 is lower than fp32/);
  });
});
