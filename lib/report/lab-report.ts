/**
 * The short lab report, the deliverable: the lab's questions in the lab's order, each answered in a
 * few generated sentences (lib/report/answers) and shown by one or two figures or tables. Built
 * from the recorded suite alone (`npm run report -- --recorded`: report/lab-report.html and .pdf,
 * committed) or from your runs beside the recorded suite (`npm start`: results/report/lab-report.*).
 * Every figure and table names its source; the two sources are never mixed in one statistic.
 *
 *   gatherFacts    reads the results (files only; your response maps evaluate your best checkpoint)
 *   labReportHtml  facts → one self-contained HTML page (pure, deterministic: no clock, no paths)
 *   writeLabReport writes the HTML, prints the PDF with Chromium, and a manifest tying them together
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { CLASS_NAMES, FEATURE_SIZE, IMAGE_SIZE, PATHS } from '../config';
import { loadCifar10 } from '../data/index';
import { initBackend } from '../runtime/index';
import { checkpointPath, loadNetFromStateFile } from '../train/index';
import {
  bestRun,
  checkpointFacts,
  compareFacts,
  recordedMeasurements,
  costFacts,
  freezeFacts,
  loadResults,
  networkFacts,
  precisionFacts,
  readRecorded,
  readRecordedEpochs,
  type CheckpointFacts,
  type CompareFacts,
  type ComparisonRow,
  type CostFacts,
  type FreezeFacts,
  type NetworkFacts,
  type PrecisionFacts,
  type Provenance,
  type ResultRow,
  type RunEpochs,
  verdictPhrase,
  yourResults,
  loadLabResults,
} from '../experiments/index';
import { writeFileAtomic } from '../formats/index';
import {
  checkpointAnswer,
  compareAnswer,
  freezeAnswer,
  networkAnswer,
  pct,
  precisionAnswer,
  prosConsAnswer,
  pts,
  responseMapAnswer,
  type Answer,
} from './answers';
import { launchChromium } from './chromium';
import { escapeHtml, textToHtml } from './html-table';
import { heatColor, intervalChart, lineChart, pixelsPngUri, type LineSeries } from './svg';
import { mapFacts, readMapFacts, type MapFacts } from './visualize';
import { upsampleBilinear } from './plots';

/** Everything the report shows, from one build. */
export interface ReportFacts {
  /** 'recorded': the recorded suite alone; 'yours': your runs beside it. */
  mode: 'recorded' | 'yours';
  provenance: Provenance;
  network: NetworkFacts;
  checkpoint?: CheckpointFacts;
  /** Test accuracy per epoch of each run behind `checkpoint`. */
  checkpointRuns: RunEpochs[];
  /** lab-dynamic / lab-static test accuracy and train loss per epoch, mean ± sd over seeds (recorded). */
  curves: LineSeries[][];
  compare: CompareFacts;
  maps?: MapFacts;
  freeze: FreezeFacts;
  costs: CostFacts;
  /** bf16 against fp32 (the README's key results; not a question of the lab). */
  precision: PrecisionFacts;
  /** Your runs (mode 'yours'): each lab-suite run's best test accuracy, one seed each. */
  yours: ResultRow[];
  yourMaps?: MapFacts;
}

/** Mean ± sd over the runs of `arm` of one split's metric per epoch. */
function epochBand(
  epochs: readonly { run: string; epoch: number; split: string; accuracy: number; loss: number }[],
  runs: readonly string[],
  split: string,
  metric: 'accuracy' | 'loss',
) {
  const byEpoch = new Map<number, number[]>();
  for (const e of epochs)
    if (runs.includes(e.run) && e.split === split)
      byEpoch.set(e.epoch, [...(byEpoch.get(e.epoch) ?? []), metric === 'accuracy' ? 100 * e.accuracy : e.loss]);
  const x = [...byEpoch.keys()].sort((a, b) => a - b);
  const stats = x.map((k) => {
    const v = byEpoch.get(k)!;
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    return { m, sd: v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1)) : 0 };
  });
  return { x, y: stats.map((s) => s.m), band: stats.map((s) => s.sd) };
}

/** Reads what the report needs: the recorded suites, and in mode 'yours' your runs and your best dynamic run's maps. */
export function gatherFacts(opts: {
  mode: 'recorded' | 'yours';
  recordedDir?: string;
  resultsDir?: string;
  yourMaps?: MapFacts;
}): ReportFacts {
  const recordedDir = opts.recordedDir ?? PATHS.recorded;
  const pairedDir = path.join(recordedDir, 'paired');
  const { rows, provenance } = readRecorded('paired', pairedDir);
  const t = loadResults({ recordedDir, yours: false });
  const labRuns = (arm: string) => rows.filter((r) => r.arm === arm && r.status === 'done').map((r) => r.name);
  const epochs = readRecordedEpochs('paired', pairedDir, [...labRuns('lab-dynamic'), ...labRuns('lab-static')]);
  const testOf = (run: string) =>
    epochs
      .filter((e) => e.run === run && e.split === 'test')
      .sort((a, b) => a.epoch - b.epoch)
      .map((e) => [e.epoch, e.accuracy] as [number, number]);
  const series = (
    arm: string,
    name: string,
    split: string,
    metric: 'accuracy' | 'loss',
    color: number,
    dashed = false,
  ): LineSeries => ({
    name,
    color,
    dashed,
    ...epochBand(epochs, labRuns(arm), split, metric),
  });
  return {
    mode: opts.mode,
    provenance,
    network: networkFacts(),
    checkpoint: checkpointFacts(
      labRuns('lab-dynamic').map((run) => ({ run, test: testOf(run) })),
      'recorded',
    ),
    checkpointRuns: labRuns('lab-dynamic').map((run) => ({ run, test: testOf(run) })),
    curves: [
      [
        series('lab-dynamic', 'dynamic, test', 'test', 'accuracy', 0),
        series('lab-static', 'static, test', 'test', 'accuracy', 1),
        series('lab-dynamic', 'dynamic, train', 'train', 'accuracy', 0, true),
        series('lab-static', 'static, train', 'train', 'accuracy', 1, true),
      ],
      [
        series('lab-dynamic', 'dynamic, train', 'train', 'loss', 0, true),
        series('lab-static', 'static, train', 'train', 'loss', 1, true),
        series('lab-dynamic', 'dynamic, test', 'test', 'loss', 0),
        series('lab-static', 'static, test', 'test', 'loss', 1),
      ],
    ],
    compare: compareFacts(t),
    maps: readMapFacts(pairedDir),
    freeze: freezeFacts(t),
    costs: costFacts(t, recordedMeasurements(recordedDir)),
    precision: precisionFacts(t),
    yours: opts.mode === 'yours' ? yourResults(opts.resultsDir) : [],
    yourMaps: opts.yourMaps,
  };
}

// ---- rendering --------------------------------------------------------------------------------

const STYLE = `
body { font-family: Georgia, 'Times New Roman', serif; font-size: 10.5pt; line-height: 1.4; max-width: 760px; margin: 24px auto; color: #111; }
h1 { font-size: 18pt; margin-bottom: 2px; } h2 { font-size: 13pt; margin: 20px 0 6px; border-bottom: 1px solid #ccc; }
p.lead { margin: 6px 0; } .meta { color: #555; font-size: 9pt; } figure { margin: 10px 0; break-inside: avoid; text-align: center; }
figcaption, caption { font-size: 8.5pt; color: #444; text-align: left; caption-side: bottom; margin-top: 4px; }
table { border-collapse: collapse; font-size: 8.5pt; margin: 8px auto; break-inside: avoid; font-family: Helvetica, Arial, sans-serif; }
th, td { border-bottom: 1px solid #ddd; padding: 2px 6px; text-align: right; white-space: nowrap; } th:first-child, td:first-child { text-align: left; }
.yours { background: #f5f8ff; border-left: 3px solid #1f77b4; padding: 4px 8px; font-size: 9.5pt; }
.maps { display: grid; grid-template-columns: repeat(11, 1fr); gap: 3px; font: 7.5pt Helvetica, Arial, sans-serif; }
.maps img { width: 100%; image-rendering: pixelated; } ul { margin: 4px 0; padding-left: 20px; }
@page { size: A4; margin: 14mm; } @media print { body { margin: 0; max-width: none; } }`;

let figureNo = 0;
let tableNo = 0;

function figure(body: string, caption: string): string {
  return `<figure>${body}<figcaption>Figure ${++figureNo}. ${textToHtml(caption)}</figcaption></figure>`;
}

function table(head: string[], rows: (string | number)[][], caption: string): string {
  const cells = (r: (string | number)[], tag: string) =>
    `<tr>${r.map((c) => `<${tag}>${textToHtml(String(c))}</${tag}>`).join('')}</tr>`;
  return `<table><caption>Table ${++tableNo}. ${textToHtml(caption)}</caption>${cells(head, 'th')}${rows.map((r) => cells(r, 'td')).join('')}</table>`;
}

function section(a: Answer, body: string[]): string {
  return `<h2>${escapeHtml(a.id)} ${escapeHtml(a.title)}</h2>${a.sentences.map((s) => `<p class="lead">${textToHtml(s)}</p>`).join('')}${body.join('')}`;
}

/** An arm's mean over all its seeds, with their number where it is not the pairs'. */
const armMean = (mean: number, seeds: number, pairs: number) =>
  seeds ? `${pct(mean)}${seeds !== pairs ? ` (${seeds} seeds)` : ''}` : '–';

function comparisonTable(rows: readonly ComparisonRow[], caption: string): string {
  return table(
    ['b − a', 'b: mean', 'a: mean', 'pairs', 'b − a, points', '95 % CI', '90 % CI', 'p', 'verdict'],
    rows.map((c) => [
      `${c.b} − ${c.a}`,
      armMean(c.meanB, c.nB, c.n),
      armMean(c.meanA, c.nA, c.n),
      c.n,
      c.n ? pts(c.mean) : '–',
      c.n > 1 ? `${pts(c.low)} to ${pts(c.high)}` : '–',
      c.n > 1 ? `${pts(c.low90)} to ${pts(c.high90)}` : '–',
      c.n ? c.permutationP.toFixed(3) : '–',
      verdictPhrase(c),
    ]),
    `b − a is over the seeds both arms have; an arm's mean is over all its seeds. ${caption}`,
  );
}

function intervalFigure(rows: readonly ComparisonRow[], title: string, caption: string): string {
  return figure(
    intervalChart(
      rows.map((c) => ({
        label: `${c.b} − ${c.a}`,
        mean: 100 * c.mean,
        low: 100 * c.low,
        high: 100 * c.high,
        low90: 100 * c.low90,
        high90: 100 * c.high90,
        points: c.differences.map((d) => 100 * d),
      })),
      {
        title,
        xLabel: 'b − a, points of test accuracy (◆ mean, thin 95 % CI, thick 90 % CI, dots seeds)',
        margin: 100 * (rows[0]?.margin ?? 0),
      },
    ),
    caption,
  );
}

/** The image and its ten maps, upsampled to 32×32 and laid over it, one colour scale for all ten. */
function mapsFigure(m: MapFacts, k: number, caption: string): string {
  const e = m.examples[k];
  const maps = Array.from(e.maps);
  const lo = Math.min(...maps);
  const hi = Math.max(...maps);
  const px = (i: number) => [e.image[i * 3], e.image[i * 3 + 1], e.image[i * 3 + 2]] as [number, number, number];
  const cells = [
    `<div><img src="${pixelsPngUri(IMAGE_SIZE, IMAGE_SIZE, (x, y) => px(y * IMAGE_SIZE + x), 2)}"><br>image (${escapeHtml(CLASS_NAMES[e.label])})</div>`,
  ];
  for (let c = 0; c < CLASS_NAMES.length; c++) {
    const up = upsampleBilinear(
      maps.slice(c * FEATURE_SIZE ** 2, (c + 1) * FEATURE_SIZE ** 2),
      FEATURE_SIZE,
      FEATURE_SIZE,
      IMAGE_SIZE,
      IMAGE_SIZE,
    );
    const uri = pixelsPngUri(
      IMAGE_SIZE,
      IMAGE_SIZE,
      (x, y) => {
        const heat = heatColor((up[y * IMAGE_SIZE + x] - lo) / (hi - lo));
        const base = px(y * IMAGE_SIZE + x);
        return heat.map((h, i) => Math.round(0.55 * h + 0.45 * base[i])) as [number, number, number];
      },
      2,
    );
    const name = CLASS_NAMES[c] + (c === e.predicted ? ' ●' : '');
    cells.push(`<div><img src="${uri}"><br>${escapeHtml(name)} ${e.scores[c].toFixed(1)}</div>`);
  }
  return figure(`<div class="maps">${cells.join('')}</div>`, caption);
}

function yours(text: string): string {
  return `<p class="yours"><b>Your runs</b> (this machine, seed 0, one run each: numbers, never a verdict). ${textToHtml(text)}</p>`;
}

function yourAccuracy(rows: readonly ResultRow[], run: string): number | undefined {
  return rows.find((r) => r.run === run && r.metric === 'test_acc')?.value ?? undefined;
}

/** The whole report as one HTML page. Pure: the same facts give the same bytes. */
export function labReportHtml(f: ReportFacts): string {
  figureNo = 0;
  tableNo = 0;
  const n = f.network;
  const batches = f.provenance.batches;
  const source = (what: string) => `Source: recorded suite (${what}).`;
  const parts: string[] = [];
  const net = networkAnswer(n);
  parts.push(
    section(net, [
      table(
        ['part', 'dynamic head', 'static head'],
        [
          ['backbone (stem + layer1)', n.backbone, n.backbone],
          ['class embeddings', n.embeddings, '–'],
          ['generator MLP', n.generator, '–'],
          ['learned filters', '–', n.staticFilters],
          ['score MLP', n.scoreMlp, n.scoreMlp],
          ['head in all', n.head.dynamic, n.head.static],
        ].map((r) => r.map((c) => (typeof c === 'number' ? c.toLocaleString('en-US') : c))),
        'Parameters per part, counted from the model definition (lib/model).',
      ),
    ]),
  );

  if (f.checkpoint) {
    const cp = checkpointAnswer(f.checkpoint);
    const shown = f.compare.lab.dynamic;
    parts.push(
      section(cp, [
        figure(
          lineChart(
            f.checkpointRuns.map((r, k) => {
              const best = r.test.reduce((b, x, i) => (x[1] > r.test[b][1] ? i : b), 0);
              return {
                name: r.run,
                x: r.test.map((e) => e[0]),
                y: r.test.map((e) => 100 * e[1]),
                mark: best,
                color: k,
                unlisted: f.checkpointRuns.length > 6,
              };
            }),
            {
              title: 'Test accuracy per epoch; dot: the best epoch (the checkpoint kept)',
              xLabel: 'epoch',
              yLabel: 'test accuracy, %',
              width: 520,
              height: 216,
            },
          ),
          `The dynamic net's runs under the lab's protocol, one line per seed. ${source(`lab protocol, ${shown.n} seeds`)}`,
        ),
        f.mode === 'yours' && yourAccuracy(f.yours, 'lab-dynamic-s0') !== undefined
          ? yours(`lab-dynamic-s0 reached ${pct(yourAccuracy(f.yours, 'lab-dynamic-s0')!)} at its best epoch.`)
          : '',
      ]),
    );
  }

  const cmp = compareAnswer(f.compare);
  const c = f.compare;
  parts.push(
    section(cmp, [
      `<div style="display:flex;gap:8px;justify-content:center">${figure(lineChart(f.curves[0], { title: 'Accuracy per epoch', xLabel: 'epoch', yLabel: 'accuracy, %' }), `Mean ± sd over ${c.lab.dynamic.n} seeds; train: running average over the epoch. ${source('lab protocol')}`)}${figure(lineChart(f.curves[1], { title: 'Loss per epoch', xLabel: 'epoch', yLabel: 'cross-entropy' }), source('lab protocol'))}</div>`,
      comparisonTable(
        [c.main, c.generator, c.labComparison, c.protocol],
        `Paired by seed. ${source('validation protocol: 45k images, epoch chosen on validation; lab protocol: arms lab-*')}`,
      ),
      intervalFigure(
        [c.main, c.generator, c.labComparison],
        'Dynamic against static',
        `The green lines are the ±${(100 * c.main.margin).toFixed(0)}-point equivalence margin. ${source('paired seeds')}`,
      ),
      f.mode === 'yours' &&
      yourAccuracy(f.yours, 'lab-dynamic-s0') !== undefined &&
      yourAccuracy(f.yours, 'lab-static-s0') !== undefined
        ? yours(
            `lab-dynamic-s0 ${pct(yourAccuracy(f.yours, 'lab-dynamic-s0')!)}, lab-static-s0 ${pct(yourAccuracy(f.yours, 'lab-static-s0')!)}: a difference of ${pts(yourAccuracy(f.yours, 'lab-dynamic-s0')! - yourAccuracy(f.yours, 'lab-static-s0')!)} points on one seed, inside the seed-to-seed spread of the recorded suite (sd ${(100 * c.lab.dynamic.sd).toFixed(2)} points).`,
          )
        : '',
    ]),
  );

  const maps = f.yourMaps ?? f.maps;
  if (maps) {
    const ma = responseMapAnswer(maps);
    parts.push(
      section(ma, [
        mapsFigure(
          maps,
          ma.conclusion.example,
          `Test image #${maps.examples[ma.conclusion.example].index}: each class's 8×8 response map, upsampled bilinearly to 32×32 and laid over the image (one colour scale for all ten; ● the predicted class, numbers its score). Source: ${maps.source === 'recorded' ? `recorded suite, ${maps.run}` : `your run ${maps.run}`}.`,
        ),
        table(
          ['map of', 'images', 'peak in the central quarter', 'mean distance from the centre'],
          [
            [
              'true class',
              maps.peaks.truth.images,
              pct(maps.peaks.truth.central),
              `${maps.peaks.truth.meanDistance.toFixed(1)} px`,
            ],
            [
              'strongest other class',
              maps.peaks.other.images,
              pct(maps.peaks.other.central),
              `${maps.peaks.other.meanDistance.toFixed(1)} px`,
            ],
            ['chance (a peak anywhere)', '', '25.00 %', '≈ 12.2 px'],
          ],
          `Where the upsampled maps peak over correctly classified test images. Source: ${maps.source === 'recorded' ? `recorded suite, ${maps.run}` : `your run ${maps.run}`}.`,
        ),
      ]),
    );
  }

  const fr = freezeAnswer(f.freeze);
  const freezeRows = [
    f.freeze.freeze,
    ...f.freeze.causes.map((x) => x.test),
    ...f.freeze.fixes.flatMap((x) => [x.vsControl, x.vsDynamic]),
  ].filter((r, i, all) => all.findIndex((q) => q.a === r.a && q.b === r.b) === i);
  parts.push(
    section(fr, [
      intervalFigure(
        freezeRows,
        'Freezing, its causes and its fixes',
        `Each row changes one thing against the arm after the minus. ${source(`${f.freeze.freeze.n} paired seeds`)}`,
      ),
      comparisonTable(freezeRows, source('validation protocol, paired by seed')),
      f.mode === 'yours'
        ? yours(
            ['frozen-requires-grad', 'frozen-eval', 'fix-bn-only', 'fix-adapter']
              .map(
                (r) =>
                  `${r} ${yourAccuracy(f.yours, r) === undefined ? 'not trained' : pct(yourAccuracy(f.yours, r)!)}`,
              )
              .join('; ') + '.',
          )
        : '',
    ]),
  );

  const pc = prosConsAnswer(f.costs);
  parts.push(
    section(pc, [
      `<p><b>Advantages</b></p><ul>${pc.advantages.map((x) => `<li>${textToHtml(x)}</li>`).join('')}</ul>`,
      `<p><b>Downsides</b></p><ul>${pc.downsides.map((x) => `<li>${textToHtml(x)}</li>`).join('')}</ul>`,
    ]),
  );

  const runs = batches.reduce((s, b) => s + b.runs.length, 0);
  const header =
    `<h1>Lab 4: dynamic convolutional filters for CIFAR-10</h1><p class="meta">` +
    (f.mode === 'recorded'
      ? 'Built from the recorded suite alone. '
      : 'Your runs on this machine beside the recorded suite. ') +
    `Recorded suite: ${runs} runs in ${batches.length} batch${batches.length === 1 ? '' : 'es'} (${batches.map((b) => `${b.runs.length} at commit ${b.commit.slice(0, 7)}, ${b.lastEpochAt?.slice(0, 10) ?? '–'}, ${b.machine.cores} cores of ${b.machine.cpu}`).join('; ')}). ` +
    'Accuracies are on the 10,000 CIFAR-10 test images; intervals are paired by seed. The lab book (the six notebooks, executed) is the appendix.</p>';
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Lab 4: dynamic convolutional filters for CIFAR-10</title><style>${STYLE}</style></head><body>${header}${parts.join('')}</body></html>\n`;
}

/**
 * The README's key results: the answers' own generated sentences (main comparison, the lab's
 * protocol, freezing) and bf16 against fp32, as Markdown. `npm run report -- --recorded` writes
 * them into README.md's generated block; test/lab-report.test.ts checks that block is current.
 */
export function readmeKeyResults(facts: ReportFacts): string {
  const [lab, main, generator, protocol] = compareAnswer(facts.compare).sentences;
  const freeze = freezeAnswer(facts.freeze).sentences;
  return [
    '**Key results** (recorded suite; the report gives the evidence):',
    '',
    `- **Dynamic against static.** ${main} ${generator}`,
    `- **The lab's protocol.** ${lab} ${protocol}`,
    `- **Freezing the backbone.** ${freeze.join(' ')}`,
    `- **Precision.** ${precisionAnswer(facts.precision).sentences.join(' ')}`,
  ].join('\n');
}

// ---- files ------------------------------------------------------------------------------------

export interface LabReportFiles {
  html: string;
  pdf?: string;
  manifest: string;
  pages?: number;
}

/** sha256 of a file's bytes. */
const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/**
 * Writes `<outDir>/lab-report.html`, prints `lab-report.pdf` from it with Chromium (A4), and writes
 * `lab-report.json`: the two files' sha256, so a test can tell that the PDF belongs to the HTML.
 * Each file is written to a temporary name and renamed: a failed build leaves the old report.
 */
export async function writeLabReport(
  facts: ReportFacts,
  opts: { outDir: string; pdf?: boolean },
): Promise<LabReportFiles> {
  fs.mkdirSync(opts.outDir, { recursive: true });
  const html = path.join(opts.outDir, 'lab-report.html');
  const pdf = path.join(opts.outDir, 'lab-report.pdf');
  const manifest = path.join(opts.outDir, 'lab-report.json');
  writeFileAtomic(html, labReportHtml(facts));
  let pages: number | undefined;
  if (opts.pdf !== false) {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });
      const bytes = await page.pdf({
        format: 'A4',
        printBackground: true,
        margin: { top: '14mm', bottom: '14mm', left: '14mm', right: '14mm' },
      });
      pages = (bytes.toString('latin1').match(/\/Type\s*\/Page[^s]/g) ?? []).length;
      writeFileAtomic(pdf, bytes);
    } finally {
      await browser.close();
    }
  }
  const record = { html: sha256(html), pdf: opts.pdf !== false ? sha256(pdf) : null, pages: pages ?? null };
  writeFileAtomic(manifest, `${JSON.stringify(record, null, 2)}\n`);
  return { html, pdf: opts.pdf !== false ? pdf : undefined, manifest, pages };
}

/**
 * Builds the short report: from the recorded suite alone into report/ (mode 'recorded'), or from
 * your runs beside it into <results>/report (mode 'yours': your best dynamic run's response maps
 * are computed from its best checkpoint, a few seconds). Returns the files and the facts they show.
 */
export async function buildLabReport(opts: {
  mode: 'recorded' | 'yours';
  outDir?: string;
  pdf?: boolean;
  resultsDir?: string;
}): Promise<LabReportFiles & { facts: ReportFacts }> {
  let yourMaps: MapFacts | undefined;
  if (opts.mode === 'yours') {
    const run = bestRun(loadLabResults({ resultsDir: opts.resultsDir }), { variant: 'dynamic' });
    if (run) {
      initBackend(); // the maps are evaluated here, in whatever process builds the report
      const { net, norm } = loadNetFromStateFile(checkpointPath(run.dir, 'best'));
      try {
        yourMaps = mapFacts(net, norm, loadCifar10('test'), 'yours', run.name);
      } finally {
        net.dispose();
      }
    }
  }
  const facts = gatherFacts({ mode: opts.mode, resultsDir: opts.resultsDir, yourMaps });
  const outDir = opts.outDir ?? path.dirname(opts.mode === 'recorded' ? PATHS.recordedLabReport : PATHS.labReport);
  return { ...(await writeLabReport(facts, { outDir, pdf: opts.pdf })), facts };
}
