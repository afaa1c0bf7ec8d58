import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagesToTensor } from '../lib/batches';
import { loadCifar10, type Cifar10Split } from '../lib/cifar10';
import { createNet, type Net } from '../lib/model';
import { chooseExamples, mapPeak, predictLabels, responseMapsOf } from '../lib/visualize';

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
