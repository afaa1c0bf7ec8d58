// The TypeScript model against PyTorch: fixtures from python/make_golden.py (torch 2.13 CPU),
// weights and inputs rebuilt from the fixtures' recipes. Forward within 1e-4 absolute,
// gradients within 1e-3 relative.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNet, expectedStateShapes, type Net } from '../lib/model/model';
import type { TensorRecord } from '../lib/formats/safetensors';
import { VARIANTS } from '../lib/config';
import { loadGolden, type Golden } from './helpers/golden';

function values(r: TensorRecord): number[] {
  return Array.from(r.data as Float32Array);
}

function maxAbsDiff(actual: tf.Tensor, expected: TensorRecord): number {
  expect(actual.shape).toEqual(expected.shape);
  const a = actual.dataSync();
  const e = values(expected);
  let m = 0;
  for (let i = 0; i < e.length; i++) m = Math.max(m, Math.abs(a[i] - e[i]));
  return m;
}

/** ‖a − e‖ / ‖e‖ and the largest element error relative to max |e|. */
function relativeErrors(actual: tf.Tensor, expected: TensorRecord): { norm: number; elem: number } {
  expect(actual.shape).toEqual(expected.shape);
  const a = actual.dataSync();
  const e = values(expected);
  let diff = 0;
  let ref = 0;
  let maxE = 0;
  let maxD = 0;
  for (let i = 0; i < e.length; i++) {
    diff += (a[i] - e[i]) ** 2;
    ref += e[i] ** 2;
    maxE = Math.max(maxE, Math.abs(e[i]));
    maxD = Math.max(maxD, Math.abs(a[i] - e[i]));
  }
  return { norm: Math.sqrt(diff / ref), elem: maxD / maxE };
}

function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(labels, 10), tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

describe.each(VARIANTS)('%s net matches PyTorch', (variant) => {
  let golden: Golden;
  let net: Net;
  beforeAll(() => {
    golden = loadGolden(variant, expectedStateShapes(variant));
    net = createNet(variant, { pretrained: false, seed: 123 });
    net.loadStateDict(golden.state);
  });
  afterAll(() => {
    net.dispose();
    tf.dispose([...Object.values(golden.state), golden.x, golden.labels]);
  });

  it('evaluation mode: features, class filters, response maps and logits within 1e-4', () => {
    const e = golden.expected;
    tf.tidy(() => {
      const features = tf.transpose(net.features(golden.x, false), [0, 3, 1, 2]); // → NCHW
      expect(maxAbsDiff(features, e['eval.features'])).toBeLessThan(1e-4);
      expect(maxAbsDiff(net.classFilters(), e['class_filters'])).toBeLessThan(1e-5);
      const { maps, scores } = net.responseMaps(golden.x);
      expect(maxAbsDiff(maps, e['eval.maps'])).toBeLessThan(1e-4);
      expect(maxAbsDiff(scores, e['eval.logits'])).toBeLessThan(1e-4);
      expect(maxAbsDiff(net.forward(golden.x, false), e['eval.logits'])).toBeLessThan(1e-4);
    });
    // The logits are not degenerate: they differ between classes and images.
    const logits = values(e['eval.logits']);
    expect(Math.max(...logits) - Math.min(...logits)).toBeGreaterThan(1e-2);
  });

  it('training mode: logits, loss, gradients (1e-3 relative) and running statistics', () => {
    const e = golden.expected;
    const vars = net.trainable();
    let logits: tf.Tensor2D | undefined;
    const { value, grads } = tf.variableGrads(() => {
      logits = tf.keep(net.forward(golden.x, true));
      return crossEntropy(logits, golden.labels);
    }, [...vars.values()]);
    expect(maxAbsDiff(logits!, e['train.logits'])).toBeLessThan(1e-4);
    expect(Math.abs(value.dataSync()[0] - values(e['train.loss'])[0])).toBeLessThan(1e-4);
    const byVar = new Map([...vars].map(([name, v]) => [v.name, name]));
    const gradNames = Object.keys(e).filter((k) => k.startsWith('grad.'));
    expect(gradNames.length).toBeGreaterThan(8);
    for (const key of gradNames) {
      const name = key.slice('grad.'.length);
      const v = vars.get(name)!;
      expect(byVar.get(v.name)).toBe(name);
      const g = tf.tidy(() => net.toTorchLayout(name, grads[v.name]));
      const err = relativeErrors(g, e[key]);
      expect(err.norm, `${name} relative norm error`).toBeLessThan(1e-3);
      expect(err.elem, `${name} largest element error / max |grad|`).toBeLessThan(1e-3);
      g.dispose();
    }
    // One training forward moved the running statistics like PyTorch (unbiased variance).
    const state = net.stateDict();
    for (const key of Object.keys(e).filter((k) => k.startsWith('after_train.'))) {
      const name = key.slice('after_train.'.length);
      if (name.endsWith('num_batches_tracked')) {
        expect(state[name].dataSync()[0]).toBe(Number((e[key].data as BigInt64Array)[0]));
      } else {
        expect(maxAbsDiff(state[name], e[key]), name).toBeLessThan(1e-5);
      }
    }
    tf.dispose([value, logits!, ...Object.values(grads), ...Object.values(state)]);
  });
});
