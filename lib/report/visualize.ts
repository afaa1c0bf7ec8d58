/**
 * What a trained net does on particular test images: its predictions, and each image's ten
 * response maps with their scores, ready for lib/report/plots' responseMapFigure. Evaluation mode only;
 * nothing is trained. The report's map facts are computed here too, and recorded (maps.parquet) for
 * the report built from the recorded suite alone.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import pl, { type DataType } from 'nodejs-polars';
import { writeFileAtomic } from '../formats/index';
import { type Cifar10Split, imagesToTensor } from '../data/index';
import { FEATURE_SIZE, IMAGE_SIZE, NUM_CLASSES, type NormName } from '../config';
import type { Net } from '../model/index';
import { predictClasses } from '../train/index';
import { argmax, upsampleBilinear, type ResponseMapInput } from './plots';

const IMAGE_BYTES = IMAGE_SIZE * IMAGE_SIZE * 3;
const MAP_VALUES = FEATURE_SIZE * FEATURE_SIZE;

/** One image with what the net computed for it. */
export interface ImageMaps extends ResponseMapInput {
  /** Its index in the split. */
  index: number;
  label: number;
  predicted: number;
  /** [10, 8, 8] class-major. */
  maps: Float32Array;
  /** [10] logits. */
  scores: Float32Array;
}

function checkIndices(split: Cifar10Split, indices: readonly number[]): void {
  for (const i of indices) {
    if (!(Number.isInteger(i) && i >= 0 && i < split.count))
      throw new Error(`image index ${i} outside 0 … ${split.count - 1}`);
  }
}

/** Predicted classes (argmax of the logits, evaluation mode) of the images at `indices`. */
export function predictLabels(
  net: Net,
  split: Cifar10Split,
  indices: readonly number[],
  norm: NormName,
  batchSize = 250,
): Int32Array {
  checkIndices(split, indices);
  return predictClasses(net, split, { indices, norm, batchSize }); // lib/train's one inference path
}

/** Response maps [10, 8, 8] and scores [10] of the images at `indices` (evaluation mode). */
export function responseMapsOf(
  net: Net,
  split: Cifar10Split,
  indices: readonly number[],
  norm: NormName,
  batchSize = 100,
): ImageMaps[] {
  checkIndices(split, indices);
  const out: ImageMaps[] = [];
  for (let start = 0; start < indices.length; start += batchSize) {
    const chunk = indices.slice(start, start + batchSize);
    const x = imagesToTensor(split, chunk, norm);
    const { maps, scores } = net.responseMaps(x);
    const mapValues = maps.dataSync() as Float32Array;
    const scoreValues = scores.dataSync() as Float32Array;
    tf.dispose([x, maps, scores]);
    chunk.forEach((index, k) => {
      const s = scoreValues.slice(k * NUM_CLASSES, (k + 1) * NUM_CLASSES);
      out.push({
        index,
        image: split.images.subarray(index * IMAGE_BYTES, (index + 1) * IMAGE_BYTES),
        label: split.labels[index],
        maps: mapValues.slice(k * NUM_CLASSES * MAP_VALUES, (k + 1) * NUM_CLASSES * MAP_VALUES),
        scores: s,
        predicted: argmax(s),
        caption: `test #${index}`,
      });
    });
  }
  return out;
}

/**
 * Picks up to `perClass` images of each class among `indices`, in order, that the net got right
 * (`correct: true`) or wrong (`correct: false`).
 */
export function chooseExamples(
  split: Cifar10Split,
  indices: readonly number[],
  predictions: ArrayLike<number>,
  opts: { correct: boolean; perClass?: number; classes?: readonly number[] },
): number[] {
  if (predictions.length !== indices.length)
    throw new Error(`${indices.length} indices but ${predictions.length} predictions`);
  const perClass = opts.perClass ?? 1;
  const taken = new Map<number, number>();
  const out: number[] = [];
  indices.forEach((index, k) => {
    const label = split.labels[index];
    if (opts.classes && !opts.classes.includes(label)) return;
    if ((predictions[k] === label) !== opts.correct) return;
    if ((taken.get(label) ?? 0) >= perClass) return;
    taken.set(label, (taken.get(label) ?? 0) + 1);
    out.push(index);
  });
  return out;
}

/** Where a class's map peaks once upsampled to 32×32: pixel row and column. */
export function mapPeak(maps: ArrayLike<number> /* [10, 8, 8] */, cls: number): { y: number; x: number } {
  const map = upsampleBilinear(
    Array.prototype.slice.call(maps, cls * MAP_VALUES, (cls + 1) * MAP_VALUES),
    FEATURE_SIZE,
    FEATURE_SIZE,
    IMAGE_SIZE,
    IMAGE_SIZE,
  );
  const best = argmax(map);
  return { y: Math.floor(best / IMAGE_SIZE), x: best % IMAGE_SIZE };
}

/** The class with the highest score other than `label` (the strongest other class), and its score. */
export function runnerUp(scores: ArrayLike<number>, label: number): { cls: number; score: number } {
  let best = { cls: -1, score: -Infinity };
  for (let c = 0; c < scores.length; c++) {
    if (c !== label && scores[c] > best.score) best = { cls: c, score: scores[c] };
  }
  return best;
}

/** Where maps peak over many images: how often in the image's centre, and how far from it. */
export interface PeakStatistics {
  images: number;
  /** Fraction of images whose map (of `which` class) peaks in the central half × half of the image (chance: 0.25). */
  central: number;
  /** Mean distance of the peak from the image centre, pixels (uniform peaks: ≈ 12.2 on 32×32). */
  meanDistance: number;
}

/**
 * Peak positions of the true class's (or the predicted class's) upsampled map. CIFAR-10 has no
 * boxes, but its objects are mostly centred: if the maps localise the object, their peaks fall in
 * the central quarter of the image far more often than the 25% of a map that ignores it.
 */
export function peakStatistics(examples: readonly ImageMaps[], which: 'label' | 'predicted' = 'label'): PeakStatistics {
  const c = (IMAGE_SIZE - 1) / 2;
  let central = 0;
  let distance = 0;
  for (const e of examples) {
    const p = mapPeak(e.maps, which === 'label' ? e.label : e.predicted);
    const q = IMAGE_SIZE / 4;
    if (p.y >= q && p.y < IMAGE_SIZE - q && p.x >= q && p.x < IMAGE_SIZE - q) central++;
    distance += Math.hypot(p.y - c, p.x - c);
  }
  const n = examples.length;
  return { images: n, central: n ? central / n : NaN, meanDistance: n ? distance / n : NaN };
}

// ---- what the score MLP reads from a map -----------------------------------------------------

/**
 * The score MLP that turns each class's flattened map (64 cells) into its score: 64 → 64 ReLU → 1,
 * the same for every class. PyTorch layouts: w1 [hidden, cells] row-major, w2 [hidden].
 */
export interface ScoreMlp {
  hidden: number;
  cells: number;
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: number;
}

/** The net's score MLP, copied out of its state. */
export function scoreMlpOf(net: Net): ScoreMlp {
  const state = net.stateDict();
  try {
    const [hidden, cells] = state['score.0.weight'].shape;
    return {
      hidden,
      cells,
      w1: state['score.0.weight'].dataSync() as Float32Array,
      b1: state['score.0.bias'].dataSync() as Float32Array,
      w2: state['score.2.weight'].dataSync() as Float32Array,
      b2: (state['score.2.bias'].dataSync() as Float32Array)[0],
    };
  } finally {
    tf.dispose(Object.values(state));
  }
}

/**
 * ∂score/∂map for one class's map (`cells` values), exact: the MLP is linear where its ReLU
 * pattern is fixed, so the gradient is W1ᵀ (w2 ⊙ [W1·m + b1 > 0]).
 */
export function scoreGradient(mlp: ScoreMlp, map: ArrayLike<number>): Float32Array {
  const g = new Float32Array(mlp.cells);
  for (let h = 0; h < mlp.hidden; h++) {
    let pre = mlp.b1[h];
    for (let i = 0; i < mlp.cells; i++) pre += mlp.w1[h * mlp.cells + i] * map[i];
    if (pre <= 0) continue;
    for (let i = 0; i < mlp.cells; i++) g[i] += mlp.w2[h] * mlp.w1[h * mlp.cells + i];
  }
  return g;
}

/**
 * Gradient × response for every class of one image: [10, 8, 8] like the maps. Cell (c, i) is how
 * much map cell i contributes to class c's score in the MLP's current linear piece; a class's
 * cells sum to its score minus the MLP's bias terms (b2 + Σ over active units of w2·b1).
 * Unlike the raw map, it shows what the score MLP actually uses: a bright cell with a near-zero
 * or negative weight contributes nothing or lowers the score.
 */
export function attributionMaps(mlp: ScoreMlp, maps: ArrayLike<number>): Float32Array {
  const k = maps.length / mlp.cells;
  const out = new Float32Array(maps.length);
  for (let c = 0; c < k; c++) {
    const m = Array.prototype.slice.call(maps, c * mlp.cells, (c + 1) * mlp.cells) as number[];
    const g = scoreGradient(mlp, m);
    for (let i = 0; i < mlp.cells; i++) out[c * mlp.cells + i] = g[i] * m[i];
  }
  return out;
}

/**
 * How the score MLP's first layer weighs each map cell: per hidden unit, the 64 weights as an 8×8
 * map; summarised as the mean over units of w2[h]·W1[h, i] (the score's slope in cell i if every
 * unit were active) and the mean |W1[h, i]| (how strongly any unit reads cell i).
 */
export function cellWeightMaps(mlp: ScoreMlp): {
  slope: Float32Array;
  meanAbs: Float32Array;
  unit: (h: number) => Float32Array;
} {
  const slope = new Float32Array(mlp.cells);
  const meanAbs = new Float32Array(mlp.cells);
  for (let h = 0; h < mlp.hidden; h++) {
    for (let i = 0; i < mlp.cells; i++) {
      const w = mlp.w1[h * mlp.cells + i];
      slope[i] += (mlp.w2[h] * w) / mlp.hidden;
      meanAbs[i] += Math.abs(w) / mlp.hidden;
    }
  }
  return { slope, meanAbs, unit: (h) => mlp.w1.slice(h * mlp.cells, (h + 1) * mlp.cells) };
}

/** Pearson correlation of two equal-length vectors (NaN when either is constant). */
export function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i] / n;
    mb += b[i] / n;
  }
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

/**
 * Per image, how closely the true class's raw map ranks its cells as the score MLP uses them: the
 * Pearson correlation of the map with its gradient × response (images where either is constant left out).
 */
export function mapAttributionAgreement(mlp: ScoreMlp, examples: readonly ImageMaps[]): number[] {
  const own = (maps: ArrayLike<number>, c: number) => Array.from(maps).slice(c * MAP_VALUES, (c + 1) * MAP_VALUES);
  const r = examples.map((e) => correlation(own(e.maps, e.label), own(attributionMaps(mlp, e.maps), e.label)));
  return r.filter(Number.isFinite);
}

/** The spread of some values: their number, median, 10th and 90th percentiles (nearest rank) and the share below 0. */
export function distribution(values: readonly number[]): {
  n: number;
  median: number;
  p10: number;
  p90: number;
  belowZero: number;
} {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const q = (p: number) => (n ? sorted[Math.min(n - 1, Math.floor(p * n))] : NaN);
  return { n, median: q(0.5), p10: q(0.1), p90: q(0.9), belowZero: n ? sorted.filter((v) => v < 0).length / n : NaN };
}

// ---- generated filters against the classes the net confuses ------------------------------------

/** Cosine similarity [10][10] of the ten class filters (the generated ones for the dynamic head). */
export function filterSimilarity(net: Net): number[][] {
  const f = tf.tidy(() => net.classFilters().arraySync());
  const norm = f.map((row) => Math.hypot(...row) || 1);
  return f.map((a, i) => f.map((b, j) => a.reduce((s, v, k) => s + v * b[k], 0) / (norm[i] * norm[j])));
}

/** Two classes: how alike their filters are, and how often the net mixes them up. */
export interface ClassPair {
  a: number;
  b: number;
  similarity: number;
  /** (confusion[a][b] + confusion[b][a]) / (images of a + images of b): the pair's symmetric error rate. */
  confusion: number;
}

/**
 * Every unordered pair of classes with its filter similarity and confusion rate, and the Pearson
 * correlation between the two over the 45 pairs: do classes with alike filters get confused more?
 */
export function similarityVsConfusion(
  similarity: readonly number[][],
  confusion: readonly number[][],
): { pairs: ClassPair[]; correlation: number } {
  const k = similarity.length;
  if (confusion.length !== k) throw new Error(`similarity is ${k}×${k} but confusion has ${confusion.length} rows`);
  const total = confusion.map((row) => row.reduce((a, b) => a + b, 0));
  const pairs: ClassPair[] = [];
  for (let a = 0; a < k; a++) {
    for (let b = a + 1; b < k; b++) {
      pairs.push({
        a,
        b,
        similarity: similarity[a][b],
        confusion: (confusion[a][b] + confusion[b][a]) / Math.max(total[a] + total[b], 1),
      });
    }
  }
  return {
    pairs,
    correlation: correlation(
      pairs.map((p) => p.similarity),
      pairs.map((p) => p.confusion),
    ),
  };
}

// ---- the maps the report shows, recorded or from your run --------------------------------------

/** The recorded maps of a suite's representative dynamic run: results/recorded/<suite>/maps.parquet. */
const MAPS_FILE = 'maps.parquet';
/** Test images the examples and the peak statistics come from: index FIRST_EXAMPLE on, not the lab's own example. */
const FIRST_EXAMPLE = 100;
const EXAMPLE_POOL = 2000;
/** Correctly classified images per class behind the peak statistics. */
const PEAK_IMAGES_PER_CLASS = 30;

/** What the report says about response maps: one example per class and where the maps peak. */
export interface MapFacts {
  source: 'recorded' | 'yours';
  run: string;
  /** One correctly classified test image of each class (first from FIRST_EXAMPLE on), then the first mistake. */
  examples: ImageMaps[];
  /** Peaks of the true class's map, and of the strongest other class's, over correctly classified images. */
  peaks: { truth: PeakStatistics; other: PeakStatistics };
}

/** The maps a trained dynamic net gives: evaluates `net` on test images (a few seconds). */
export function mapFacts(
  net: Net,
  norm: NormName,
  test: Cifar10Split,
  source: MapFacts['source'],
  run: string,
): MapFacts {
  const pool = Array.from({ length: Math.min(EXAMPLE_POOL, test.count - FIRST_EXAMPLE) }, (_, i) => FIRST_EXAMPLE + i);
  const predictions = predictLabels(net, test, pool, norm);
  const shown = [
    ...chooseExamples(test, pool, predictions, { correct: true }),
    ...chooseExamples(test, pool, predictions, { correct: false }).slice(0, 1),
  ];
  const many = responseMapsOf(
    net,
    test,
    chooseExamples(test, pool, predictions, { correct: true, perClass: PEAK_IMAGES_PER_CLASS }),
    norm,
  );
  return {
    source,
    run,
    examples: responseMapsOf(net, test, shown, norm).map((e) => ({ ...e, image: Uint8Array.from(e.image) })),
    peaks: {
      truth: peakStatistics(many, 'label'),
      other: peakStatistics(
        many.map((e) => ({ ...e, predicted: runnerUp(e.scores, e.label).cls })),
        'predicted',
      ),
    },
  };
}

/** Writes `facts` to `<dir>/maps.parquet` (atomically): one row per example, the peak statistics as two rows of kind 'peaks'. */
export function writeMapFacts(dir: string, facts: MapFacts): void {
  const rows = [
    ...facts.examples.map((e) => ({
      kind: 'example',
      index: e.index,
      label: e.label,
      predicted: e.predicted,
      scores: [...e.scores],
      maps: [...e.maps],
      image: Array.from(e.image),
      images: 0,
      central: 0,
      meanDistance: 0,
    })),
    ...(['truth', 'other'] as const).map((k) => ({
      kind: `peaks-${k}`,
      index: -1,
      label: -1,
      predicted: -1,
      scores: [],
      maps: [],
      image: [],
      ...facts.peaks[k],
    })),
  ];
  const col = (k: keyof (typeof rows)[number], dtype: DataType) =>
    pl.Series(k, rows.map((r) => r[k]) as unknown[], dtype);
  const df = pl.DataFrame([
    pl.Series(
      'run',
      rows.map(() => facts.run),
      pl.Utf8,
    ),
    col('kind', pl.Utf8),
    col('index', pl.Int32),
    col('label', pl.Int32),
    col('predicted', pl.Int32),
    col('scores', pl.List(pl.Float32)),
    col('maps', pl.List(pl.Float32)),
    col('image', pl.List(pl.UInt8)),
    col('images', pl.Int32),
    col('central', pl.Float64),
    col('meanDistance', pl.Float64),
  ]);
  writeFileAtomic(path.join(dir, MAPS_FILE), df.writeParquet({ compression: 'zstd' }));
}

/** The recorded maps of `dir` (undefined when the suite has none). */
export function readMapFacts(dir: string): MapFacts | undefined {
  const file = path.join(dir, MAPS_FILE);
  if (!fs.existsSync(file)) return undefined;
  type Row = {
    run: string;
    kind: string;
    index: number;
    label: number;
    predicted: number;
    scores: number[];
    maps: number[];
    image: number[];
    images: number;
    central: number;
    meanDistance: number;
  };
  const rows = pl.readParquet(file).toRecords() as unknown as Row[];
  const peaks = (k: string) => {
    const r = rows.find((x) => x.kind === k)!;
    return { images: r.images, central: r.central, meanDistance: r.meanDistance };
  };
  return {
    source: 'recorded',
    run: rows[0]?.run ?? '',
    examples: rows
      .filter((r) => r.kind === 'example')
      .map((r) => ({
        index: r.index,
        label: r.label,
        predicted: r.predicted,
        scores: Float32Array.from(r.scores),
        maps: Float32Array.from(r.maps),
        image: Uint8Array.from(r.image),
        caption: `test #${r.index}`,
      })),
    peaks: { truth: peaks('peaks-truth'), other: peaks('peaks-other') },
  };
}
