/**
 * The facts each of the lab's answers rests on, as typed numbers: read from the results table
 * (lib/experiments/table) and the recorded epochs, never written by hand. lib/report/answers turns
 * them into sentences; a test feeds opposite numbers and checks that the sentences flip with them.
 *
 * One source per finding: `source` says whether the numbers are the recorded suite's or your runs'.
 */
import type pl from 'nodejs-polars';
import { describeState, LAB_ARCHITECTURE } from '../model/index';
import type { Variant } from '../config';
import { FREEZE_CAUSES, PAIRED_COMPARISONS, PAIRED_EXPERIMENTS, PAIRED_FIXES, type ArmComparison } from './experiments';
import { armSummaries, compare, type ArmSummary, type ComparisonRow, type Source } from './table';
import { dynamicCosts, type DynamicCosts } from './costs';
import type { MeasurementRow } from './measurements';

/** The comparisons of PAIRED_COMPARISONS between `a` and `b` (b − a), exactly one. */
function comparisonOf(a: string, b: string): ArmComparison {
  const c = PAIRED_COMPARISONS.find((x) => x.a === a && x.b === b);
  if (!c) throw new Error(`no comparison ${b} − ${a} in PAIRED_COMPARISONS`);
  return c;
}

// ---- 2.1 the network --------------------------------------------------------------------------

/** Parameters per part of each head, from the state's shapes (the model definition, no data). */
export interface NetworkFacts {
  backbone: number;
  head: Record<Variant, number>;
  generator: number;
  embeddings: number;
  scoreMlp: number;
  staticFilters: number;
}

export function networkFacts(): NetworkFacts {
  const count = (variant: Variant, test: (name: string, part: string) => boolean) =>
    describeState(variant, LAB_ARCHITECTURE)
      .filter((p) => p.kind === 'parameter' && test(p.name, p.part))
      .reduce((n, p) => n + p.size, 0);
  return {
    backbone: count('dynamic', (_, part) => part.startsWith('backbone')),
    head: {
      dynamic: count('dynamic', (_, part) => part.startsWith('head')),
      static: count('static', (_, part) => part.startsWith('head')),
    },
    generator: count('dynamic', (name) => name.startsWith('gen.')),
    embeddings: count('dynamic', (name) => name.startsWith('embed.')),
    scoreMlp: count('dynamic', (name) => name.startsWith('score.')),
    staticFilters: count('static', (name) => name.startsWith('dc.')),
  };
}

// ---- 2.2 checkpoints ----------------------------------------------------------------------------

/** One run's test accuracy per epoch (for the checkpoint answer). */
export interface RunEpochs {
  run: string;
  /** [epoch, test accuracy] in epoch order. */
  test: [number, number][];
}

export interface CheckpointFacts {
  source: Source;
  /** The run shown: its epochs, best epoch and accuracies. */
  shown: { run: string; epochs: number; bestEpoch: number; best: number; final: number };
  /** Over all runs of the same protocol: how many had their best epoch before the last, and the mean gain there. */
  runs: number;
  bestBeforeLast: number;
  /** Mean of best − final over all runs (points as a fraction). */
  meanGain: number;
}

export function checkpointFacts(runs: readonly RunEpochs[], source: Source): CheckpointFacts | undefined {
  const done = runs.filter((r) => r.test.length > 0);
  if (!done.length) return undefined;
  const summary = (r: RunEpochs) => {
    const best = r.test.reduce((b, x) => (x[1] > b[1] ? x : b));
    return {
      run: r.run,
      epochs: r.test.length,
      bestEpoch: best[0],
      best: best[1],
      final: r.test[r.test.length - 1][1],
    };
  };
  const all = done.map(summary);
  return {
    source,
    shown: all[0],
    runs: all.length,
    bestBeforeLast: all.filter((s) => s.bestEpoch < s.epochs).length,
    meanGain: all.reduce((g, s) => g + s.best - s.final, 0) / all.length,
  };
}

// ---- 2.3 the comparison -----------------------------------------------------------------------

export interface CompareFacts {
  source: Source;
  /** The lab's protocol (all 50k images, best test epoch): each head's accuracy. */
  lab: { dynamic: ArmSummary; static: ArmSummary };
  /** dynamic − static under the lab's protocol, paired by seed. */
  labComparison: ComparisonRow;
  /** dynamic − static under the validation protocol (the main, pre-declared comparison). */
  main: ComparisonRow;
  /** dynamic − static-l2: the generator alone. */
  generator: ComparisonRow;
  /** lab-dynamic − dynamic: what the lab's protocol adds to the same net and seed. */
  protocol: ComparisonRow;
}

export function compareFacts(t: pl.DataFrame): CompareFacts {
  const [dynamic, stat] = armSummaries(t, ['lab-dynamic', 'lab-static']);
  const [labComparison, main, generator, protocol] = compare(t, [
    comparisonOf('lab-static', 'lab-dynamic'),
    comparisonOf('static', 'dynamic'),
    comparisonOf('static-l2', 'dynamic'),
    comparisonOf('dynamic', 'lab-dynamic'),
  ]);
  return { source: 'recorded', lab: { dynamic, static: stat }, labComparison, main, generator, protocol };
}

// ---- 3.2 freezing -------------------------------------------------------------------------------

/** A candidate cause of the frozen backbone's loss, with the comparison that tests it. */
export interface CauseFact {
  cause: string;
  how: string;
  /** arm − control: removing the cause. */
  test: ComparisonRow;
}

export interface FreezeFacts {
  source: Source;
  /** frozen-requires-grad − dynamic (the lab's freeze against training everything). */
  freeze: ComparisonRow;
  causes: CauseFact[];
  /** Each fix against training everything (fix − dynamic) and against its control, best mean first. */
  fixes: { arm: string; how: string; vsDynamic: ComparisonRow; vsControl: ComparisonRow }[];
}

export function freezeFacts(t: pl.DataFrame): FreezeFacts {
  const [freeze] = compare(t, [comparisonOf('dynamic', 'frozen-requires-grad')]);
  const causes = FREEZE_CAUSES.map((c) => ({
    cause: c.cause,
    how: c.how,
    test: compare(t, [comparisonOf(c.control, c.arm)])[0],
  }));
  const fixes = PAIRED_FIXES.map((f) => {
    const [vsDynamic, vsControl] = compare(t, [comparisonOf('dynamic', f.arm), comparisonOf(f.control, f.arm)]);
    return { arm: f.arm, how: f.how, vsDynamic, vsControl };
  }).sort(
    (x, y) =>
      (Number.isFinite(y.vsDynamic.meanB) ? y.vsDynamic.meanB : -1) -
      (Number.isFinite(x.vsDynamic.meanB) ? x.vsDynamic.meanB : -1),
  );
  return { source: 'recorded', freeze, causes, fixes };
}

// ---- pros and cons ----------------------------------------------------------------------------

export interface CostFacts {
  source: Source;
  network: NetworkFacts;
  /** Step times of both heads measured in alternating rounds on one machine (lib/experiments/costs); undefined when not measured. */
  times?: DynamicCosts;
  /** The main comparison, for whether dynamic filters buy accuracy. */
  accuracy: ComparisonRow;
}

export function costFacts(t: pl.DataFrame, measurements: readonly MeasurementRow[]): CostFacts {
  const times = dynamicCosts(measurements);
  return {
    source: 'recorded',
    network: networkFacts(),
    times: times.trainStepRatio === null ? undefined : times,
    accuracy: compare(t, [comparisonOf('static', 'dynamic')])[0],
  };
}

// ---- precision (README, #23) ------------------------------------------------------------------

export interface PrecisionFacts {
  source: Source;
  /** dynamic-bf16 − dynamic: bf16 mixed precision against fp32, same net, seeds and data. */
  bf16: ComparisonRow;
  /** The paired suite's arms by the precision their experiments set. */
  arms: Record<string, string[]>;
}

export function precisionFacts(t: pl.DataFrame): PrecisionFacts {
  const arms: Record<string, string[]> = {};
  for (const e of PAIRED_EXPERIMENTS) {
    const list = (arms[e.config.precision] ??= []);
    if (!list.includes(e.arm)) list.push(e.arm);
  }
  return { source: 'recorded', bf16: compare(t, [comparisonOf('dynamic', 'dynamic-bf16')])[0], arms };
}
