/**
 * The lab's answers in words, generated from the findings (lib/experiments/findings): the wording
 * is fixed text, every number, interval, direction and conclusion comes from the computed results.
 * Each answer returns its sentences and its `conclusion`, a small record a test flips by feeding
 * the opposite numbers.
 */
import {
  type CauseFact,
  type CheckpointFacts,
  type CompareFacts,
  type ComparisonRow,
  type CostFacts,
  type FreezeFacts,
  type NetworkFacts,
  type PrecisionFacts,
  type Source,
  verdictPhrase,
  proportionVsChance,
} from '../experiments/index';
import { CLASS_NAMES } from '../config';
import { mapPeak, type MapFacts } from './visualize';

export interface Answer<C = Record<string, unknown>> {
  /** The lab's section number and title. */
  id: string;
  title: string;
  /** Two to six plain sentences: the answer first. */
  sentences: string[];
  /** What the sentences conclude, as data (for tests and tables). */
  conclusion: C;
}

// ---- formatting --------------------------------------------------------------------------------

const MINUS = '−';
/** 0.7663 → "76.63 %". */
export const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(2)} %` : 'not measured');
/** A difference of fractions in points, signed: "+0.11", "−18.83". */
export const pts = (x: number) => (Number.isFinite(x) ? `${x < 0 ? MINUS : '+'}${Math.abs(100 * x).toFixed(2)}` : '–');
/** "+0.11 points (95 % CI −1.14 to +1.35)". */
export const diff = (c: Pick<ComparisonRow, 'mean' | 'low' | 'high' | 'n'>) =>
  c.n >= 2
    ? `${pts(c.mean)} points (95 % CI ${pts(c.low)} to ${pts(c.high)})`
    : c.n === 1
      ? `${pts(c.mean)} points (one pair, no interval)`
      : 'not measured (no finished pair of runs)';
const mean = (s: { mean: number; sd: number; n: number }) =>
  s.n ? `${pct(s.mean)}${s.n > 1 ? ` ± ${(100 * s.sd).toFixed(2)}` : ''}` : 'not measured yet';
const count = (n: number) => n.toLocaleString('en-US');
const seeds = (n: number) => `${n} seed${n === 1 ? '' : 's'}`;
/** Where a number comes from, said once per sentence that quotes it. */
const sourceTag = (source: Source, n?: number) =>
  source === 'recorded' ? `recorded suite${n ? `, ${seeds(n)}` : ''}` : 'your runs';
const list = (xs: readonly string[]) =>
  xs.length <= 1 ? (xs[0] ?? '') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`;

/** "higher"/"lower"/"no different"-style word for a verdict, for sentences. */
function outcome(c: ComparisonRow, higher: string, lower: string): string {
  switch (c.verdict) {
    case 'better':
      return higher;
    case 'worse':
      return lower;
    case 'equivalent':
      return `${verdictPhrase(c)}${c.direction ? ` (a real but small difference, ${c.direction})` : ''}`;
    default:
      return verdictPhrase(c);
  }
}

// ---- 2.1 --------------------------------------------------------------------------------------

export function networkAnswer(n: NetworkFacts): Answer<{ headRatio: number }> {
  const ratio = n.head.dynamic / n.head.static;
  return {
    id: '2.1',
    title: 'The network',
    sentences: [
      'A 32×32 image goes through the ImageNet-pretrained ResNet-18 stem and layer1 ' +
        `(${count(n.backbone)} parameters), which give a [8, 8, 64] feature map.`,
      `Each class has a learned 128-d embedding (${count(n.embeddings)} parameters in all); the generator MLP (128→256 ReLU→64 Tanh, ` +
        `${count(n.generator)} parameters) turns it into a 1×1 filter of 64 weights, which is L2-normalised.`,
      'The filter is applied at every position of the feature map; the 8×8 response map is divided by √64 = 8, flattened, and scored by an MLP ' +
        `(64→64 ReLU→1, ${count(n.scoreMlp)} parameters, shared by the classes); the ten scores go to a softmax, and the prediction is their argmax.`,
      `The comparison net without the generator learns the ten filters directly (${count(n.staticFilters)} numbers): its head has ` +
        `${count(n.head.static)} parameters against ${count(n.head.dynamic)} (${ratio.toFixed(1)}×).`,
    ],
    conclusion: { headRatio: ratio },
  };
}

// ---- 2.2 --------------------------------------------------------------------------------------

export function checkpointAnswer(c: CheckpointFacts): Answer<{ bestEarlierInMost: boolean; share: number }> {
  const share = c.bestBeforeLast / c.runs;
  const s = c.shown;
  return {
    id: '2.2',
    title: 'Checkpoint and resume',
    sentences: [
      'After every epoch the net is evaluated on the 10,000 test images; the state with the best test accuracy so far is saved as the ' +
        "run's best checkpoint, and the latest epoch as its last checkpoint, each with Adam's moments, BatchNorm's statistics and the step count.",
      'Training resumes from the best checkpoint (`npm run train -- --resume best`, or rerunning the training cell) and continues at the next ' +
        'epoch with the data order of an uninterrupted run, so a resumed run reproduces one trained in a single session (checked by the tests).',
      `In ${s.run} (${sourceTag(c.source)}) test accuracy peaked at epoch ${s.bestEpoch} of ${s.epochs} with ${pct(s.best)}` +
        (s.bestEpoch < s.epochs
          ? `, ${pts(s.best - s.final)} points above the last epoch: that is the state kept and resumed from.`
          : ', the last epoch.'),
      `Over ${c.runs} runs of the lab's protocol the best epoch came before the last in ${c.bestBeforeLast} ` +
        `(${share >= 0.5 ? 'most' : 'a minority'}), ${pts(c.meanGain)} points above the last epoch on average: ` +
        (share >= 0.5
          ? 'keeping the best checkpoint rather than the last one matters here.'
          : 'the last epoch is usually the best one here.'),
    ],
    conclusion: { bestEarlierInMost: share >= 0.5, share },
  };
}

// ---- 2.3 --------------------------------------------------------------------------------------

export function compareAnswer(
  c: CompareFacts,
): Answer<{ verdict: string; generator: string; protocolHigher: boolean | null }> {
  const m = c.main;
  const protocol = c.protocol;
  return {
    id: '2.3',
    title: 'Training statistics and the comparison without the dynamic mechanism',
    sentences: [
      `Under the lab's protocol (all 50,000 training images, 5 epochs, the best test epoch kept; ${sourceTag(c.source, c.lab.dynamic.n)}) ` +
        `the dynamic net reached ${mean(c.lab.dynamic)} test accuracy and the static net ${mean(c.lab.static)}: ` +
        `a paired difference of ${diff(c.labComparison)}, ${outcome(c.labComparison, 'higher for the dynamic net', 'lower for the dynamic net')}.`,
      `The pre-declared comparison trains on 45,000 images and picks each run's epoch on a held-out validation split; over ${seeds(m.n)} ` +
        `paired by seed, dynamic − static is ${diff(m)}, so the dynamic net is ${outcome(m, 'better', 'worse')} ` +
        `(90 % CI ${pts(m.low90)} to ${pts(m.high90)} against the ±${(100 * m.margin).toFixed(0)}-point margin declared before the runs).`,
      `The generator alone (dynamic − static with L2-normalised filters) is ${diff(c.generator)}: ${outcome(c.generator, 'better', 'worse')}.`,
      `The lab's protocol scores ${diff(protocol)} against the validation protocol for the same net and seed ` +
        `(${outcome(protocol, 'higher', 'lower')}): it trains on 5,000 more images and chooses the epoch on the test set itself, which flatters it.`,
    ],
    conclusion: {
      verdict: m.verdict,
      generator: c.generator.verdict,
      protocolHigher: protocol.verdict === 'better' ? true : protocol.verdict === 'worse' ? false : null,
    },
  };
}

// ---- 3.1 --------------------------------------------------------------------------------------

export function responseMapAnswer(m: MapFacts): Answer<{ localises: boolean; example: number }> {
  // The example shown: the correctly classified image the net is surest of (largest score margin).
  const margin = (k: number) => {
    const e = m.examples[k];
    const others = Array.from(e.scores).filter((_, c) => c !== e.label);
    return e.scores[e.label] - Math.max(...others);
  };
  const correct = m.examples.map((e, k) => k).filter((k) => m.examples[k].predicted === m.examples[k].label);
  const k = correct.reduce((best, x) => (margin(x) > margin(best) ? x : best), correct[0] ?? 0);
  const e = m.examples[k];
  const peak = mapPeak(e.maps, e.label);
  const runnerUp = Array.from(e.scores)
    .map((s, c) => ({ s, c }))
    .filter((x) => x.c !== e.label)
    .sort((a, b) => b.s - a.s)[0];
  const truth = m.peaks.truth;
  const vs = proportionVsChance(Math.round(truth.central * truth.images), truth.images, 0.25);
  const localises = vs.verdict === 'above chance';
  const where = m.source === 'recorded' ? `the recorded run ${m.run}` : `your run ${m.run}`;
  return {
    id: '3.1',
    title: 'Response maps',
    sentences: [
      `Test image #${e.index}, a ${CLASS_NAMES[e.label]}, is classified correctly by ${where} (score ${e.scores[e.label].toFixed(2)} against ` +
        `${runnerUp.s.toFixed(2)} for ${CLASS_NAMES[runnerUp.c]}); its ${CLASS_NAMES[e.label]} map, upsampled to 32×32, peaks at row ${peak.y}, column ${peak.x}.`,
      `Over ${truth.images} correctly classified test images the true class's map peaked in the central quarter of the image, where CIFAR-10 ` +
        `objects mostly sit, in ${pct(truth.central)} (95 % CI ${pct(vs.low)} to ${pct(vs.high)}): ` +
        `${vs.verdict === 'above chance' ? 'above' : vs.verdict === 'below chance' ? 'below' : 'no different from'} the 25 % of a peak placed anywhere; ` +
        `the strongest other class's map did so in ${pct(m.peaks.other.central)}.`,
      localises
        ? 'So the maps can serve as weak localisation, pointing at the object without any box labels, and to explain a decision: ' +
          "in a mistake, the wrong class's map shows which region raised its score, and a map lit on the background (water, sky) reveals a shortcut."
        : 'So these maps do not localise the object better than chance and should not be read as object locations; they still serve to explain a decision ' +
          "(the score MLP reads them: in a mistake, the wrong class's map shows which cells raised its score) and to spot shortcuts on the background.",
    ],
    conclusion: { localises, example: k },
  };
}

// ---- 3.2 --------------------------------------------------------------------------------------

type CauseStatus = 'supported' | 'ruled out' | 'undecided';

/** What a supported cause means, by FREEZE_CAUSES' cause name (wording only). */
const WHY: Record<string, string> = {
  'BatchNorm statistics':
    'BatchNorm normalises CIFAR-10 activations with statistics that do not match the ImageNet ones the filters expect',
  'input statistics': 'the inputs are scaled differently from the images the backbone was trained on',
  'object scale':
    "objects in a 32×32 image are several times smaller than in ImageNet's 224×224 crops, so the pretrained filters see them at the wrong scale",
  'features not adapted to CIFAR-10':
    "filters learnt on ImageNet are not the features CIFAR-10's classes need, and frozen filters cannot adapt",
};

/** Removing a cause helps (better): the data supports it; equivalent or worse: it rules it out; else undecided. */
export function causeStatus(c: CauseFact): CauseStatus {
  if (c.test.verdict === 'better') return 'supported';
  if (c.test.verdict === 'equivalent' || c.test.verdict === 'worse') return 'ruled out';
  return 'undecided';
}

export function freezeAnswer(f: FreezeFacts): Answer<{
  freeze: string;
  supported: string[];
  ruledOut: string[];
  bestFix: string | null;
  bestFixVsFull: string | null;
}> {
  const byStatus = (s: CauseStatus) => f.causes.filter((c) => causeStatus(c) === s);
  const supported = byStatus('supported');
  const ruledOut = byStatus('ruled out');
  const undecided = byStatus('undecided');
  const best = f.fixes.find((x) => x.vsDynamic.nB > 0);
  const cause = (c: CauseFact) => `${c.cause} (${diff(c.test)})`;
  const sentences = [
    `Freezing the backbone as the lab does (requires_grad = False, BatchNorm still in training mode) changes test accuracy by ${diff(f.freeze)} ` +
      `against training everything (${sourceTag(f.source, f.freeze.n)}): ${outcome(f.freeze, 'it helps', 'it hurts')}.`,
    `Each candidate cause was tested by an arm that removes it alone. ` +
      (supported.length
        ? `The data supports ${list(supported.map(cause))}`
        : 'The data supports none of the candidate causes') +
      (ruledOut.length ? `; it rules out ${list(ruledOut.map(cause))}` : '') +
      (undecided.length ? `; it cannot decide ${list(undecided.map(cause))}` : '') +
      '.',
  ];
  const why = supported.map((c) => WHY[c.cause]).filter(Boolean);
  if (why.length) sentences.push(`Why: ${why.join('; ')}.`);
  if (best) {
    sentences.push(
      `The best fix measured is ${best.arm} (${best.how}): it reaches ${pct(best.vsDynamic.meanB)} and differs from training everything by ` +
        `${diff(best.vsDynamic)}: ${outcome(best.vsDynamic, 'better', 'worse')}; against its frozen control it gains ${diff(best.vsControl)}.`,
    );
  }
  return {
    id: '3.2',
    title: 'Freezing the backbone',
    sentences,
    conclusion: {
      freeze: f.freeze.verdict,
      supported: supported.map((c) => c.cause),
      ruledOut: ruledOut.map((c) => c.cause),
      bestFix: best?.arm ?? null,
      bestFixVsFull: best?.vsDynamic.verdict ?? null,
    },
  };
}

// ---- pros and cons ----------------------------------------------------------------------------

export interface ProsCons {
  advantages: string[];
  downsides: string[];
}

export function prosConsAnswer(
  c: CostFacts,
): Answer<{ accuracyIs: 'advantage' | 'downside' | 'neither'; slower: boolean | null }> & ProsCons {
  const n = c.network;
  const ratio = n.head.dynamic / n.head.static;
  const t = c.times;
  const trainRatio = t?.trainStepRatio ?? null;
  // Slower or faster only when the two steps differ by more than their timings' spreads together.
  const train = t?.times.find((r) => r.measure === 'train-step');
  const gap =
    train?.dynamic && train.static
      ? { ms: train.dynamic.ms - train.static.ms, spread: Math.hypot(train.dynamic.spread, train.static.spread) }
      : null;
  const slower = trainRatio === null || gap === null ? null : gap.ms > gap.spread;
  const withinNoise = gap !== null && Math.abs(gap.ms) <= gap.spread;
  const cached = t?.cachedInferenceRatio ?? null;
  const measured = t
    ? ` (batch ${t.batch}, ${sourceTag(c.source)}, the heads timed in alternating rounds on one machine)`
    : '';
  const advantages = [
    'Cheap at inference: a filter depends on the class only, never on the image, so the ten filters are generated once and cached; the net then ' +
      'costs what the static net costs per image' +
      (cached !== null
        ? `: measured, inference with cached filters takes ${cached.toFixed(2)}× the static net's step${measured}.`
        : '.'),
    `Shared structure between classes: every filter comes from one generator (${count(n.generator)} parameters) applied to a 128-d embedding, ` +
      'so a new class needs only an embedding — one that could come from side information such as a word vector (zero-shot classes) — ' +
      'and the same mechanism extends to filters conditioned on the image itself.',
  ];
  const downsides = [
    `More parameters: the dynamic head has ${count(n.head.dynamic)} parameters against the static head's ${count(n.head.static)} ` +
      `(${ratio.toFixed(1)}×), almost all in the generator, to produce ${count(n.staticFilters)} numbers.`,
  ];
  if (slower === true) {
    downsides.push(
      `Slower training: every step runs the generator forward and backward; a training step takes ${trainRatio!.toFixed(2)}× the static one${measured}.`,
    );
  } else if (slower === false) {
    advantages.push(
      `No training-time cost: a training step takes ${trainRatio!.toFixed(2)}× the static one${measured}` +
        (withinNoise
          ? `; the ${Math.abs(gap!.ms).toFixed(2)} ms between them is within the timings' spread (±${gap!.spread.toFixed(2)} ms).`
          : '.'),
    );
  }
  const a = c.accuracy;
  let accuracyIs: 'advantage' | 'downside' | 'neither' = 'neither';
  if (a.verdict === 'better') {
    accuracyIs = 'advantage';
    advantages.push(`Higher accuracy: dynamic − static is ${diff(a)} over ${seeds(a.n)}.`);
  } else if (a.n >= 2) {
    accuracyIs = 'downside';
    downsides.push(
      `No accuracy gain to pay for that: dynamic − static is ${diff(a)} over ${seeds(a.n)}, ${a.verdict === 'worse' ? 'worse' : verdictPhrase(a)}.`,
    );
  }
  const gain =
    accuracyIs === 'advantage'
      ? `for ${pts(a.mean)} points of accuracy`
      : a.n >= 2
        ? `for no accuracy gain (${verdictPhrase(a)})`
        : 'for an accuracy not measured yet';
  return {
    id: '3.2',
    title: 'Advantages and downsides of dynamic filters',
    sentences: [
      `Here dynamic filters cost ${ratio.toFixed(1)}× the head's parameters` +
        (trainRatio !== null ? ` and ${trainRatio.toFixed(2)}× the training step's time` : '') +
        ` ${gain}; once generated, the filters cost nothing more at inference. Each point below is tied to a number counted or measured here.`,
    ],
    advantages,
    downsides,
    conclusion: { accuracyIs, slower },
  };
}

// ---- precision (README) -----------------------------------------------------------------------

/**
 * Whether bf16 training holds fp32's accuracy: equivalence is claimed only when the 90 % interval
 * lies inside the margin; a mean inside the margin with a wider interval is said to be just that.
 */
export function precisionAnswer(p: PrecisionFacts): Answer<{ verdict: string; meanInsideMargin: boolean | null }> {
  const c = p.bf16;
  const margin = `±${(100 * c.margin).toFixed(0)}-point margin`;
  const inside = c.n >= 1 ? Math.abs(c.mean) < c.margin : null;
  let conclusion: string;
  if (c.verdict === 'equivalent') conclusion = `${verdictPhrase(c)}: bf16 holds fp32's accuracy`;
  else if (c.verdict === 'too few pairs') conclusion = 'too few pairs to say anything yet';
  else {
    const where = inside
      ? `its mean lies inside the ${margin}, but its 90 % CI (${pts(c.low90)} to ${pts(c.high90)}) reaches beyond it`
      : `its mean lies outside the ${margin}`;
    const said =
      c.verdict === 'inconclusive'
        ? `so equivalence is not shown (${verdictPhrase(c)})`
        : `and bf16 is ${c.verdict === 'better' ? 'higher' : 'lower'} than fp32`;
    conclusion = `${where}, ${said}`;
  }
  return {
    id: 'precision',
    title: 'bf16 against fp32',
    sentences: [
      `The recorded suite trains in ${Object.entries(p.arms)
        .sort((x, y) => y[1].length - x[1].length)
        .map(([precision, arms], i) =>
          i ? `${precision} in the ${list(arms)} arm${arms.length > 1 ? 's' : ''}` : precision,
        )
        .join(', and ')} (set by its experiments).`,
      `bf16 mixed precision against fp32 (the same net, seeds and data; ${sourceTag(p.source, c.n)}): ` +
        `dynamic-bf16 − dynamic is ${diff(c)}; ${conclusion}.`,
    ],
    conclusion: { verdict: c.verdict, meanInsideMargin: inside },
  };
}
