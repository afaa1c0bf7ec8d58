import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagesToTensor } from '../lib/data/batches';
import { loadCifar10, type Cifar10Split } from '../lib/data/cifar10';
import { createNet, type Net } from '../lib/model/model';
import {
  attributionMaps,
  cellWeightMaps,
  chooseExamples,
  correlation,
  distribution,
  filterSimilarity,
  mapAttributionAgreement,
  mapPeak,
  predictLabels,
  responseMapsOf,
  runnerUp,
  scoreGradient,
  scoreMlpOf,
  similarityVsConfusion,
} from '../lib/report/visualize';

let net: Net;
let test: Cifar10Split;
beforeAll(() => {
  test = loadCifar10('test', { limit: 40 });
  net = createNet('dynamic', { seed: 3, pretrained: false });
});
afterAll(() => net.dispose());

describe('response maps of test images', () => {
  it('gives each image its pixels, label, ten 8×8 maps and the logits forward() computes', () => {
    const indices = [0, 7, 31];
    const out = responseMapsOf(net, test, indices, 'half', 2); // batches of 2: the split across batches is seamless
    const logits = tf.tidy(() => net.forward(imagesToTensor(test, indices, 'half'), false).arraySync());
    expect(out.map((o) => o.index)).toEqual(indices);
    out.forEach((o, k) => {
      expect(o.label).toBe(test.labels[indices[k]]);
      expect(Array.from(o.image)).toEqual(Array.from(test.images.subarray(indices[k] * 3072, (indices[k] + 1) * 3072)));
      expect(o.maps).toHaveLength(640);
      Array.from(o.scores).forEach((s, c) => expect(s).toBeCloseTo(logits[k][c], 4));
      expect(o.predicted).toBe(logits[k].indexOf(Math.max(...logits[k])));
    });
    expect(Array.from(predictLabels(net, test, indices, 'half'))).toEqual(out.map((o) => o.predicted));
    expect(() => responseMapsOf(net, test, [40], 'half')).toThrow(/outside 0 … 39/);
  });

  it('chooses correct or wrong examples per class, in order', () => {
    const indices = [0, 1, 2, 3, 4, 5];
    const labels = indices.map((i) => test.labels[i]);
    const predictions = labels.map((l, k) => (k % 2 === 0 ? l : (l + 1) % 10));
    const right = chooseExamples(test, indices, predictions, { correct: true });
    const wrong = chooseExamples(test, indices, predictions, { correct: false });
    expect(right.every((i) => i % 2 === 0)).toBe(true);
    expect(wrong.every((i) => i % 2 === 1)).toBe(true);
    expect(new Set(right.map((i) => test.labels[i])).size).toBe(right.length); // one per class
  });

  it('finds where an upsampled map peaks', () => {
    const maps = new Float32Array(640);
    maps[2 * 64 + 6 * 8 + 1] = 1; // class 2, cell row 6, column 1
    const { y, x } = mapPeak(maps, 2);
    expect(y).toBeGreaterThanOrEqual(24);
    expect(y).toBeLessThanOrEqual(27);
    expect(x).toBeGreaterThanOrEqual(4);
    expect(x).toBeLessThanOrEqual(7);
  });
});

describe('what the score MLP reads from a map', () => {
  it('gives the exact gradient of the score with respect to the map (against tf.grad)', () => {
    const mlp = scoreMlpOf(net);
    const [example] = responseMapsOf(net, test, [5], 'half');
    const w1 = tf.tensor2d(mlp.w1, [mlp.hidden, mlp.cells]);
    const b1 = tf.tensor1d(mlp.b1);
    const w2 = tf.tensor1d(mlp.w2);
    const score = (m: tf.Tensor) =>
      tf.add(
        tf.sum(tf.mul(tf.relu(tf.add(tf.reshape(tf.matMul(w1, tf.reshape(m, [mlp.cells, 1])), [mlp.hidden]), b1)), w2)),
        mlp.b2,
      ) as tf.Scalar;
    for (const c of [0, 4, 9]) {
      const m = tf.tensor1d(example.maps.slice(c * 64, (c + 1) * 64));
      const want = tf.grad(score)(m).dataSync();
      const got = scoreGradient(mlp, m.dataSync());
      Array.from(got).forEach((g, i) => expect(g).toBeCloseTo(want[i], 5));
      // The MLP's own score of this map is the net's logit.
      expect(score(m).dataSync()[0]).toBeCloseTo(example.scores[c], 4);
      m.dispose();
    }
    tf.dispose([w1, b1, w2]);
  });

  it('splits each class score into per-cell gradient × response plus the bias terms', () => {
    const mlp = scoreMlpOf(net);
    for (const example of responseMapsOf(net, test, [1, 2, 3], 'half')) {
      const attribution = attributionMaps(mlp, example.maps);
      expect(attribution).toHaveLength(640);
      for (let c = 0; c < 10; c++) {
        const m = example.maps.slice(c * 64, (c + 1) * 64);
        let bias = mlp.b2;
        for (let h = 0; h < mlp.hidden; h++) {
          let pre = mlp.b1[h];
          for (let i = 0; i < 64; i++) pre += mlp.w1[h * 64 + i] * m[i];
          if (pre > 0) bias += mlp.w2[h] * mlp.b1[h];
        }
        const sum = attribution.slice(c * 64, (c + 1) * 64).reduce((a, b) => a + b, 0);
        expect(sum + bias).toBeCloseTo(example.scores[c], 4);
      }
    }
  });

  it('summarises the first layer per map cell', () => {
    const mlp = scoreMlpOf(net);
    const { slope, meanAbs, unit } = cellWeightMaps(mlp);
    expect(slope).toHaveLength(64);
    expect(unit(3)).toEqual(mlp.w1.slice(3 * 64, 4 * 64));
    const i = 17;
    let s = 0;
    let a = 0;
    for (let h = 0; h < mlp.hidden; h++) {
      s += mlp.w2[h] * mlp.w1[h * 64 + i];
      a += Math.abs(mlp.w1[h * 64 + i]);
    }
    expect(slope[i]).toBeCloseTo(s / mlp.hidden, 6);
    expect(meanAbs[i]).toBeCloseTo(a / mlp.hidden, 6);
    expect(correlation([1, 2, 3], [2, 4, 6])).toBeCloseTo(1, 12);
    expect(correlation([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 12);
  });
});

describe('summaries of maps', () => {
  it('finds the strongest class other than the true one, the lowest index on a tie', () => {
    expect(runnerUp([0.1, 0.9, 0.5, 0.5], 1)).toEqual({ cls: 2, score: 0.5 });
    expect(runnerUp([0.1, 0.9, 0.5, 0.7], 3)).toEqual({ cls: 1, score: 0.9 });
  });

  it('correlates each true-class map with its attribution, and summarises the spread', () => {
    const mlp = scoreMlpOf(net);
    const examples = responseMapsOf(net, test, [1, 2, 3], 'half');
    const r = mapAttributionAgreement(mlp, examples);
    expect(r).toHaveLength(3);
    const own = (m: ArrayLike<number>, c: number) => Array.from(m).slice(c * 64, (c + 1) * 64);
    const e = examples[1];
    expect(r[1]).toBeCloseTo(correlation(own(e.maps, e.label), own(attributionMaps(mlp, e.maps), e.label)), 12);
    const spread = distribution([0.5, -0.2, 0.9, 0.1, 0.3]);
    expect(spread).toEqual({ n: 5, median: 0.3, p10: -0.2, p90: 0.9, belowZero: 0.2 });
    expect(distribution([]).n).toBe(0);
  });
});

describe('generated filters against confusions', () => {
  it('gives a symmetric cosine matrix with ones on the diagonal', () => {
    const s = filterSimilarity(net);
    expect(s).toHaveLength(10);
    for (let i = 0; i < 10; i++) {
      expect(s[i][i]).toBeCloseTo(1, 5);
      for (let j = 0; j < 10; j++) expect(s[i][j]).toBeCloseTo(s[j][i], 6);
    }
  });

  it('pairs each two classes with their symmetric error rate and correlates the two', () => {
    const sim = Array.from({ length: 3 }, (_, i) =>
      Array.from({ length: 3 }, (_, j) => (i === j ? 1 : i + j === 1 ? 0.9 : 0.1)),
    );
    // 10 images per class; classes 0 and 1 (alike filters) are mixed up 4 + 2 times, the others once.
    const conf = [
      [5, 4, 1],
      [2, 8, 0],
      [1, 0, 9],
    ];
    const { pairs, correlation: r } = similarityVsConfusion(sim, conf);
    expect(pairs.map((p) => [p.a, p.b])).toEqual([
      [0, 1],
      [0, 2],
      [1, 2],
    ]);
    expect(pairs[0].confusion).toBeCloseTo(6 / 20, 12);
    expect(pairs[1].confusion).toBeCloseTo(2 / 20, 12);
    expect(pairs[2].confusion).toBe(0);
    expect(r).toBeGreaterThan(0.9);
    expect(() => similarityVsConfusion(sim, conf.slice(0, 2))).toThrow(/3×3 but confusion has 2 rows/);
  });
});
