/**
 * What dynamic filters cost against static ones, from results/measurements.parquet
 * (lib/experiments/measurements): parameters per part of each head, time per training and
 * inference step, the generator's own time, and the ratios between them. Typed numbers only:
 * notebook 06 shows them beside its discussion of the pros and cons.
 */
import type { Measure, MeasurementRow } from './measurements';

/** Parameters of one part (or 'total') in each head; null where the head has no such part. */
export interface ParameterRow {
  part: string;
  dynamic: number | null;
  static: number | null;
}

/** A median step time with half its 10–90 % spread, in ms. */
export interface StepTime {
  ms: number;
  spread: number;
  batch: number;
}

export interface StepTimeRow {
  measure: Measure;
  dynamic: StepTime | null;
  /** null where the static head has no such step (cached filters: its filters are parameters). */
  static: StepTime | null;
}

const TIMED_MEASURES: readonly Measure[] = [
  'train-step',
  'inference-step',
  'inference-step-precomputed-filters',
  'filter-generation',
];

export interface DynamicCosts {
  parameters: ParameterRow[];
  /** The heads' parameters (parts named head.*): dynamic, static, their ratio, and the generator's share. */
  head: { dynamic: number | null; static: number | null; ratio: number | null; generator: number | null };
  times: StepTimeRow[];
  /** Images per timed step (the lab's batch). */
  batch: number | null;
  /** dynamic / static training step. */
  trainStepRatio: number | null;
  /** Filter generation (all ten classes) as a share of the dynamic training step. */
  generationShareOfTrainStep: number | null;
  /** Inference with cached filters / the static head's inference step. */
  cachedInferenceRatio: number | null;
  /** Input-conditioned filters done naively, one generator pass per image: batch × generation time (ms). */
  perImageGenerationMs: number | null;
  /** How quiet the machine was: the largest share of the CPUs other processes took (null: not recorded), the load average. */
  timing: { cpus: number | null; othersShare: number | null; load1: number | null };
  /** Measures without a time yet (train and inference steps of both heads, the filter ones of the dynamic head). */
  missing: Measure[];
}

function time(ms: readonly MeasurementRow[], measure: Measure, variant: string): StepTime | null {
  const m = ms.find((r) => r.measure === measure && r.variant === variant && r.setting === 'lab' && r.unit === 'ms');
  return m ? { ms: m.value, spread: m.spread, batch: m.batch } : null;
}

export function dynamicCosts(measurements: readonly MeasurementRow[]): DynamicCosts {
  const counts = measurements.filter((m) => m.measure === 'parameters' && m.setting === 'lab');
  const count = (variant: string, part: string) =>
    counts.find((m) => m.variant === variant && m.part === part)?.value ?? null;
  const parts = [...new Set(counts.map((m) => m.part))].filter((p) => p !== 'total');
  const parameters = [...parts, ...(counts.length ? ['total'] : [])].map((part) => ({
    part,
    dynamic: count('dynamic', part),
    static: count('static', part),
  }));
  const headOf = (variant: string) => {
    const head = counts.filter((m) => m.variant === variant && m.part.startsWith('head'));
    return head.length ? head.reduce((a, m) => a + m.value, 0) : null;
  };
  const hd = headOf('dynamic');
  const hs = headOf('static');
  const times = TIMED_MEASURES.map((measure) => ({
    measure,
    dynamic: time(measurements, measure, 'dynamic'),
    static: time(measurements, measure, 'static'),
  }));
  const [train, infer, cached, generation] = times;
  const ratio = (a: StepTime | null, b: StepTime | null) => (a && b ? a.ms / b.ms : null);
  const timedRows = measurements.filter((m) => m.unit === 'ms' && m.setting === 'lab');
  const shares = timedRows.map((m) => m.othersShare).filter((v) => typeof v === 'number') as number[];
  const stepBatch = timedRows.find((m) => m.measure === 'train-step')?.batch ?? null;
  return {
    parameters,
    head: {
      dynamic: hd,
      static: hs,
      ratio: hd !== null && hs ? hd / hs : null,
      generator: count('dynamic', 'head.gen'),
    },
    times,
    batch: stepBatch,
    trainStepRatio: ratio(train.dynamic, train.static),
    generationShareOfTrainStep: ratio(generation.dynamic, train.dynamic),
    cachedInferenceRatio: ratio(cached.dynamic, infer.static),
    perImageGenerationMs: generation.dynamic && stepBatch ? stepBatch * generation.dynamic.ms : null,
    timing: {
      cpus: timedRows[0]?.cpus ?? null,
      othersShare: shares.length ? Math.max(...shares) : null,
      load1: timedRows.length ? Math.max(...timedRows.map((m) => m.load1)) : null,
    },
    missing: times
      .filter((t) => !t.dynamic || (!t.static && (t.measure === 'train-step' || t.measure === 'inference-step')))
      .map((t) => t.measure),
  };
}
