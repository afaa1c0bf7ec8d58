// What the notebooks show, outside a kernel: lib/report/display's composite views (captured, not
// displayed) and lib/report/tables' rows and columns, on small synthetic results. Each view is
// computed from the rows it is given: other numbers give other tables, verdicts and captions.
import { describe, expect, it } from 'vitest';
import { fromRecorded, resultsFrame } from '../lib/experiments/table';
import { freezeFacts, networkFacts } from '../lib/experiments/findings';
import { dynamicCosts } from '../lib/experiments/costs';
import type { ExperimentRow } from '../lib/experiments/experiment-table';
import type { RecordedRow, RecordBatch } from '../lib/experiments/recorded';
import type { LabResults } from '../lib/experiments/results';
import type { ArmComparison } from '../lib/experiments/experiments';
import type { MeasurementRow } from '../lib/experiments/measurements';
import type { EpochRow } from '../lib/train/metrics';
import type { ParameterInfo } from '../lib/model/model';
import { htmlTable } from '../lib/report/html-table';
import {
  answerMarkdown,
  captureDisplay,
  PLOTLY_MIME,
  show,
  showComparisons,
  showCurves,
  showGaps,
} from '../lib/report/display';
import {
  CAUSE_COLUMNS,
  costRows,
  equivalenceCell,
  FIX_COLUMNS,
  NETWORK_COLUMNS,
  networkRows,
  partRows,
  PROVENANCE_COLUMNS,
  recipeEstimates,
} from '../lib/report/tables';
import type { Figure } from '../lib/report/plots';
import type { RecipeRow } from '../lib/experiments/recipe';
import type { LabRunRow } from '../lib/experiments/evidence';

/** Recorded rows of the paired suite: arm → test accuracy per seed (null: the run is not finished). */
function recorded(arms: Record<string, (number | null)[]>, status: Record<string, string> = {}): RecordedRow[] {
  return Object.entries(arms).flatMap(([arm, accs]) =>
    accs.map((acc, seed) => ({
      name: `${arm}-s${seed}`,
      suite: 'paired',
      group: 'test',
      arm,
      purpose: 'test',
      settings: arm,
      variant: 'dynamic',
      seed,
      status: status[`${arm}-s${seed}`] ?? (acc === null ? 'not-started' : 'done'),
      epochs: 5,
      epochs_done: acc === null ? 0 : 5,
      select_by: 'val',
      selected_epoch: acc === null ? null : 3,
      selected_test_acc: acc,
      best_test_acc: acc,
      final_test_acc: acc,
      best_val_acc: acc,
      train_images_per_s: 100,
      train_seconds_per_epoch: 10,
    })),
  );
}

const plus = (xs: readonly number[], d: readonly number[]) => xs.map((x, i) => x + d[i]);
const DYNAMIC = [0.8, 0.81, 0.79, 0.82, 0.8];
const text = (html: string) => html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

describe('captureDisplay', () => {
  it('collects what would be shown, in order, and restores the kernel display after', () => {
    const fig: Figure = { data: [{ type: 'bar', y: new Float32Array([1, 2]) }], layout: {} };
    const shown = captureDisplay(() => show(fig));
    expect(shown).toEqual([{ mime: PLOTLY_MIME, content: { data: [{ type: 'bar', y: { 0: 1, 1: 2 } }], layout: {} } }]);
    expect(() => show(fig)).toThrow(/only inside a tslab notebook kernel/);
  });
});

describe('an answer as Markdown', () => {
  it('puts the title before the sentences, and lists advantages and downsides when there are any', () => {
    const md = answerMarkdown({ id: '3.2', title: 'Freezing', sentences: ['One.', 'Two.'], conclusion: {} });
    expect(md).toBe('**3.2 Freezing.** One. Two.');
    const pros = { advantages: ['a1', 'a2'], downsides: ['d1'] };
    const pc = answerMarkdown({ id: '3.2', title: 'Pros', sentences: ['S.'], conclusion: {}, ...pros });
    expect(pc).toBe('**3.2 Pros.** S.\n\n**Advantages**\n\n- a1\n- a2\n\n**Downsides**\n\n- d1');
  });
});

describe('paired comparisons in a notebook', () => {
  const cmp: ArmComparison[] = [
    { group: 'compare', a: 'static', b: 'dynamic', isolates: 'both factors' },
    { group: 'ablation', a: 'dynamic', b: 'ablate', isolates: 'a device' },
  ];

  it('shows the table with the 90 % interval and margin, the verdict, the runs left out, and the figure', () => {
    const t = resultsFrame(
      fromRecorded(
        recorded(
          {
            dynamic: DYNAMIC,
            static: plus(DYNAMIC, [-0.02, -0.03, -0.01, -0.03, -0.01]),
            ablate: [...plus(DYNAMIC.slice(0, 4), [0.001, -0.001, 0.002, -0.002]), null],
          },
          { 'ablate-s4': 'diverged' },
        ),
      ),
    );
    const shown = captureDisplay(() => showComparisons(t, cmp, 'caption x'));
    expect(shown.map((s) => s.mime)).toEqual(['text/html', 'text/html', PLOTLY_MIME]);
    const table = text(shown[0].content as string);
    expect(table).toContain('caption x');
    expect(table).toContain('+2.00 (+0.76 to +3.24)');
    expect(table).toMatch(/better .*equivalent within ±1 point/);
    expect(table).toContain('(±1.00)');
    expect(text(shown[1].content as string)).toContain('ablate diverged 4');
    const fig = shown[2].content as Figure;
    expect((fig.layout.shapes as { x0: number }[]).map((s) => s.x0)).toEqual([-1, 1]);

    // The other way round: the verdict and the difference follow the numbers.
    const ahead = plus(DYNAMIC, [0.02, 0.03, 0.01, 0.03, 0.01]);
    const flipped = resultsFrame(fromRecorded(recorded({ dynamic: DYNAMIC, static: ahead })));
    const again = text(captureDisplay(() => showComparisons(flipped, cmp.slice(0, 1), 'c'))[0].content as string);
    expect(again).toContain('−2.00 (−3.24 to −0.76)');
    expect(again).toContain('worse');
  });

  it('shows no figure when no comparison has a pair', () => {
    const t = resultsFrame(fromRecorded(recorded({ dynamic: [0.8], static: [null] })));
    const shown = captureDisplay(() => showComparisons(t, cmp.slice(0, 1), 'c'));
    expect(shown.map((s) => s.mime)).toEqual(['text/html', 'text/html']);
  });
});

describe('your runs in a notebook', () => {
  const row = (name: string, status: ExperimentRow['status'], epochsDone: number, best: number | null) =>
    ({ name, status, epochsDone, epochs: 5, bestTestAccuracy: best, finalTestAccuracy: best }) as ExperimentRow;

  it('names what is missing or unfinished with the command that completes it, nothing when all is done', () => {
    const rows = [row('a', 'done', 5, 0.7), row('b', 'partial', 2, 0.5), row('c', 'not-started', 0, null)];
    const [gaps] = captureDisplay(() => showGaps(rows, ['a', 'b', 'c']));
    const t = text(gaps.content as string);
    expect(t).toContain('npm run experiments -- --only c,b');
    expect(t).toContain('b partial 2/5 epochs so far');
    expect(captureDisplay(() => showGaps(rows, ['a']))).toEqual([]);
  });

  it('draws the curves of the runs that have epochs, leaving out validation rows', () => {
    const epoch = (run: string, split: string, e: number) =>
      ({ run, split, epoch: e, loss: 1, accuracy: 0.5, variant: 'dynamic', seed: 0 }) as unknown as EpochRow;
    const epochRows = [epoch('a', 'train', 1), epoch('a', 'test', 1), epoch('a', 'val', 1)];
    const results = {
      resultsDir: '',
      epochRows,
      runs: [
        { name: 'a', epochs: epochRows },
        { name: 'b', epochs: [] },
      ],
    } as unknown as LabResults;
    const shown = captureDisplay(() => showCurves(results, ['a', 'b'], 'title'));
    expect(shown).toHaveLength(1);
    const names = (shown[0].content as Figure).data.map((d) => `${d.name}`);
    expect(names.some((n) => /val/.test(n))).toBe(false);
    expect(names.some((n) => /test/.test(n))).toBe(true);
    expect(captureDisplay(() => showCurves(results, ['b'], 'title'))).toEqual([]);
  });
});

describe('tables for the notebooks', () => {
  it('sums parameters, buffers and trainable numbers per part, then in all', () => {
    const p = (name: string, part: string, size: number, kind: ParameterInfo['kind'], trainable: boolean) =>
      ({ name, part, shape: [size], size, kind, trainable }) as ParameterInfo;
    const rows = partRows([
      p('w', 'backbone.conv', 10, 'parameter', false),
      p('g', 'backbone.bn', 2, 'parameter', true),
      p('m', 'backbone.bn', 2, 'buffer', false),
      p('e', 'head.embed', 5, 'parameter', true),
    ]);
    expect(rows).toEqual([
      { part: 'backbone.conv', tensors: 1, parameters: 10, buffers: 0, trainable: 0 },
      { part: 'backbone.bn', tensors: 2, parameters: 2, buffers: 2, trainable: 2 },
      { part: 'head.embed', tensors: 1, parameters: 5, buffers: 0, trainable: 5 },
      { part: 'total', tensors: 4, parameters: 17, buffers: 2, trainable: 7 },
    ]);
  });

  it("lays out each head's parameters from the model definition, a dash where a head has no such part", () => {
    const n = networkFacts();
    const rows = networkRows(n);
    expect(rows.at(-1)).toEqual({ part: 'head in all', dynamic: n.head.dynamic, static: n.head.static });
    expect(n.head.dynamic).toBe(n.embeddings + n.generator + n.scoreMlp);
    const html = text(htmlTable(rows, { columns: NETWORK_COLUMNS }));
    expect(html).toContain(`generator MLP ${n.generator.toLocaleString('en-US')} –`);
  });

  it('shows the 90 % interval with the margin it must lie inside', () => {
    expect(equivalenceCell({ n: 5, low90: -0.0085, high90: 0.0106, margin: 0.01 })).toBe('−0.85 to +1.06 (±1.00)');
    expect(equivalenceCell({ n: 1, low90: NaN, high90: NaN, margin: 0.01 })).toBe('–');
  });

  it('says of each cause whether the data supports it, and ranks the fixes', () => {
    const frg = plus(DYNAMIC, [-0.2, -0.2, -0.2, -0.2, -0.2]);
    const feval = plus(frg, [0.001, -0.002, 0.002, -0.001, 0]);
    const t = resultsFrame(
      fromRecorded(
        recorded({
          dynamic: DYNAMIC,
          'frozen-requires-grad': frg,
          'frozen-eval': feval,
          'fix-stem-frozen': plus(frg, [0.19, 0.2, 0.2, 0.21, 0.2]),
          'fix-bn-only': plus(frg, [0.05, 0.04, 0.06, 0.05, 0.05]),
        }),
      ),
    );
    const f = freezeFacts(t);
    const causes = text(htmlTable(f.causes, { columns: CAUSE_COLUMNS }));
    expect(causes).toMatch(/BatchNorm statistics .* ruled out/);
    expect(causes).toMatch(/features not adapted to CIFAR-10 .* better supported/);
    expect(causes).toMatch(/object scale .* too few pairs undecided/);
    const fixes = text(htmlTable(f.fixes, { columns: FIX_COLUMNS }));
    expect(fixes.indexOf('fix-stem-frozen')).toBeLessThan(fixes.indexOf('fix-bn-only'));
  });

  it('describes each provenance batch', () => {
    const b: RecordBatch = {
      runs: ['a', 'b'],
      commit: '0123456789abcdef',
      machine: { cpu: 'EPYC', cores: 2, flags: [], memoryGiB: 8 },
      backend: 'tf 2.21',
      recordedAt: '',
      firstEpochAt: '2026-12-02T06:05:00Z',
      lastEpochAt: '2026-12-02T08:33:00Z',
      runSeconds: 7200,
      command: '',
      note: 'alone',
    };
    expect(text(htmlTable([b], { columns: PROVENANCE_COLUMNS }))).toContain(
      '2 0123456789ab EPYC, 2 cores, 8 GiB tf 2.21 2026-12-02T06:05 … 2026-12-02T08:33 2.0 alone',
    );
  });

  it('derives the cost ratios, a dash for what is not measured', () => {
    const m = (measure: MeasurementRow['measure'], variant: string, value: number, part = '') =>
      ({
        measure,
        variant,
        value,
        part,
        setting: 'lab',
        unit: measure === 'parameters' ? 'count' : 'ms',
        batch: 64,
        spread: 0,
        n: 3,
        cpus: 2,
        othersShare: 0.1,
        load1: 0,
      }) as unknown as MeasurementRow;
    const costs = dynamicCosts([
      m('parameters', 'dynamic', 100, 'head.gen'),
      m('parameters', 'static', 10, 'head.dc'),
      m('train-step', 'dynamic', 30),
      m('train-step', 'static', 20),
    ]);
    const rows = Object.fromEntries(costRows(costs).map((r) => [r.quantity, r.value]));
    expect(rows['head parameters, dynamic / static']).toBe('100 / 10 = 10.0×');
    expect(rows['training step, dynamic / static']).toBe('1.50');
    expect(rows['inference with cached filters / static inference']).toBe('–');
    expect(rows['timed with other processes taking (share of the CPUs)']).toBe('10% of 2');
  });

  it('estimates each recipe on your machine from your run, nothing without its time', () => {
    const recipes = [
      { name: 'best', epochs: 40 },
      { name: 'short', epochs: 6 },
    ] as RecipeRow[];
    const lab = { name: 'lab-dynamic-s0', secondsPerEpoch: 90 } as LabRunRow;
    const perEpoch = 's / epoch of lab-dynamic-s0 here';
    const minutes = 'estimated training time here (min)';
    expect(recipeEstimates(recipes, lab)).toEqual([
      { recipe: 'best', epochs: 40, [perEpoch]: '90', [minutes]: '60' },
      { recipe: 'short', epochs: 6, [perEpoch]: '90', [minutes]: '9' },
    ]);
    expect(recipeEstimates(recipes, { ...lab, secondsPerEpoch: null })).toEqual([]);
    expect(recipeEstimates(recipes, undefined)).toEqual([]);
  });
});
