// The fused TensorFlow kernels (lib/runtime/kernels) against the same functions composed from public
// TF.js ops: values, gradients, BatchNorm's running statistics, and no leaked tensors.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  adamUpdate,
  addRelu,
  batchNormTrain,
  sparseSoftmaxCrossEntropy as crossEntropy,
  l2NormalizeRows,
  linear,
  fusedKernelsActive,
  maxPool,
  maxPoolImplementation,
  relu,
  useFusedKernels,
  useOneDnnMaxPool,
} from '../lib/runtime/kernels';
import { mulberry32, randomNormal } from '../lib/runtime/random';

afterAll(() => {
  useFusedKernels(true);
});

/** A seeded normal tensor (mean `mu`, std `sd`). */
function normal(shape: number[], seed: number, mu = 0, sd = 1): tf.Tensor {
  const rng = mulberry32(seed);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = mu + sd * randomNormal(rng);
  return tf.tensor(data, shape);
}

/** Runs `f` once with the fused kernels and once composed from TF.js ops; returns both. */
function both<T>(f: () => T): { fused: T; plain: T } {
  const before = useFusedKernels(true);
  expect(fusedKernelsActive()).toBe(true);
  const fused = f();
  useFusedKernels(false);
  expect(fusedKernelsActive()).toBe(false);
  const plain = f();
  useFusedKernels(before);
  return { fused, plain };
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

function maxAbs(a: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(a)).dataSync()[0]);
}

/** Value and gradients of sum(f(...xs) · weights) with respect to every x. */
function valueAndGrads(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  xs: tf.Tensor[],
  weights: tf.Tensor,
): { y: tf.Tensor; grads: tf.Tensor[] } {
  let y: tf.Tensor | undefined;
  const grads = tf.grads((...args: tf.Tensor[]) => {
    y = tf.keep(f(...args));
    return tf.sum(tf.mul(y, weights));
  })(xs);
  return { y: y!, grads };
}

/** Checks values and gradients agree to `tol` relative to the largest magnitude. */
function expectClose(
  fused: { y: tf.Tensor; grads: tf.Tensor[] },
  plain: { y: tf.Tensor; grads: tf.Tensor[] },
  tol: number,
): void {
  expect(maxAbsDiff(fused.y, plain.y)).toBeLessThan(tol * Math.max(1, maxAbs(plain.y)));
  fused.grads.forEach((g, i) => {
    const scale = maxAbs(plain.grads[i]);
    expect(scale).toBeGreaterThan(0); // a gradient that is all zeros would prove nothing
    expect(maxAbsDiff(g, plain.grads[i])).toBeLessThan(tol * scale);
  });
}

describe('batchNormTrain', () => {
  it('normalises with batch statistics and has the composite gradients for x, γ and β', () => {
    const x = normal([6, 5, 5, 4], 1, 0.5, 2);
    const gamma = normal([4], 2, 1, 0.3);
    const beta = normal([4], 3);
    const w = normal([6, 5, 5, 4], 4);
    const { fused, plain } = both(() =>
      valueAndGrads(
        (xx, g, b) => batchNormTrain(xx as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, { eps: 1e-5 }),
        [x, gamma, beta],
        w,
      ),
    );
    expectClose(fused, plain, 1e-5);
    // Each channel of (y − β)/γ has mean 0 and biased variance ≈ 1.
    const { mean, variance } = tf.moments(tf.div(tf.sub(fused.y, beta), gamma), [0, 1, 2]);
    expect(maxAbs(mean)).toBeLessThan(1e-5);
    expect(maxAbsDiff(variance, tf.onesLike(variance))).toBeLessThan(1e-3);
  });

  it('updates the running statistics like torch.nn.BatchNorm2d (momentum, unbiased variance)', () => {
    const x = normal([4, 3, 3, 2], 7, 1, 3);
    const run = () => {
      const running = {
        mean: tf.variable(tf.tensor1d([0.5, -1])),
        variance: tf.variable(tf.tensor1d([2, 0.5])),
        momentum: 0.1,
      };
      tf.dispose(batchNormTrain(x as tf.Tensor4D, tf.ones([2]), tf.zeros([2]), { eps: 1e-5, running }));
      return running;
    };
    const { fused, plain } = both(run);
    // By hand: n = 36 values per channel.
    const m = tf.moments(x, [0, 1, 2]);
    const expectMean = tf.add(tf.mul(tf.tensor1d([0.5, -1]), 0.9), tf.mul(m.mean, 0.1));
    const expectVar = tf.add(tf.mul(tf.tensor1d([2, 0.5]), 0.9), tf.mul(m.variance, (0.1 * 36) / 35));
    for (const r of [fused, plain]) {
      expect(maxAbsDiff(r.mean, expectMean)).toBeLessThan(1e-5);
      expect(maxAbsDiff(r.variance, expectVar)).toBeLessThan(1e-4);
    }
  });

  it('refuses a batch with one value per channel when updating statistics', () => {
    const running = { mean: tf.variable(tf.zeros([2])), variance: tf.variable(tf.ones([2])), momentum: 0.1 };
    expect(() =>
      batchNormTrain(tf.ones([1, 1, 1, 2]) as tf.Tensor4D, tf.ones([2]), tf.zeros([2]), { eps: 1e-5, running }),
    ).toThrow(/more than one value per channel/);
  });
});

describe('relu and addRelu', () => {
  it('match tf.relu in value and gradient, including exact zeros', () => {
    const x = tf.concat([tf.zeros([1, 4, 4, 3]), normal([2, 4, 4, 3], 11)]);
    const w = normal([3, 4, 4, 3], 12);
    const { fused, plain } = both(() => valueAndGrads((xx) => relu(xx), [x], w));
    expectClose(fused, plain, 1e-6);
  });

  it('addRelu passes the same gradient to both inputs', () => {
    const a = normal([2, 3, 3, 4], 13);
    const b = normal([2, 3, 3, 4], 14);
    const w = normal([2, 3, 3, 4], 15);
    const { fused, plain } = both(() => valueAndGrads((p, q) => addRelu(p, q), [a, b], w));
    expectClose(fused, plain, 1e-6);
    expect(maxAbsDiff(fused.grads[0], fused.grads[1])).toBe(0);
  });
});

describe('maxPool with explicit padding', () => {
  // Both native implementations: oneDNN's (pad + workspace) and Eigen's (EXPLICIT padding).
  for (const oneDnn of [true, false]) {
    it(`is PyTorch’s MaxPool2d(3, 2, 1): the padding never wins, even over negative values (${oneDnn ? 'oneDNN' : 'Eigen'})`, () => {
      const before = useOneDnnMaxPool(oneDnn);
      try {
        // TensorFlow's x86-64 builds include oneDNN (and TF_ENABLE_ONEDNN_OPTS=0 turns it off).
        const expected =
          oneDnn && process.arch === 'x64' && process.env.TF_ENABLE_ONEDNN_OPTS !== '0' ? 'onednn' : 'eigen';
        expect(maxPoolImplementation()).toBe(expected);
        const x = tf.neg(tf.add(tf.abs(normal([2, 16, 16, 3], 31)), 1)); // all ≤ −1
        const w = normal([2, 8, 8, 3], 32);
        const { fused, plain } = both(() => valueAndGrads((xx) => maxPool(xx as tf.Tensor4D, 3, 2, 1), [x], w));
        expect(fused.y.shape).toEqual([2, 8, 8, 3]);
        expect(tf.max(fused.y).dataSync()[0]).toBeLessThanOrEqual(-1);
        expectClose(fused, plain, 1e-6);
        // The top-left output is the max of the 2×2 corner of the input.
        const corner = tf.max(tf.slice(x, [0, 0, 0, 0], [1, 2, 2, 1])).dataSync()[0];
        expect(tf.slice(fused.y, [0, 0, 0, 0], [1, 1, 1, 1]).dataSync()[0]).toBe(corner);
        // Post-ReLU inputs have many ties at 0: each window's gradient still goes to one place.
        const r = tf.relu(normal([2, 16, 16, 3], 33));
        const g = both(() => valueAndGrads((xx) => maxPool(xx as tf.Tensor4D, 3, 2, 1), [r], w));
        expectClose(g.fused, g.plain, 1e-6);
      } finally {
        useOneDnnMaxPool(before);
      }
    });
  }
});

describe('linear', () => {
  for (const activation of ['linear', 'relu', 'tanh'] as const) {
    it(`is x·Wᵀ + b (${activation}) with the composite gradients for x, W and b`, () => {
      const x = normal([7, 5], 81);
      const weight = normal([4, 5], 82, 0, 0.5);
      const bias = normal([4], 83);
      const w = normal([7, 4], 84);
      const { fused, plain } = both(() =>
        valueAndGrads(
          (xx, ww, bb) => linear(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D, activation),
          [x, weight, bias],
          w,
        ),
      );
      expect(fused.y.shape).toEqual([7, 4]);
      expectClose(fused, plain, 1e-5);
      // By hand for element [0, 0].
      const xs = x.dataSync(),
        ws = weight.dataSync();
      let z = bias.dataSync()[0];
      for (let i = 0; i < 5; i++) z += xs[i] * ws[i];
      const expected = activation === 'relu' ? Math.max(z, 0) : activation === 'tanh' ? Math.tanh(z) : z;
      expect(fused.y.dataSync()[0]).toBeCloseTo(expected, 5);
    });
  }
});

describe('l2NormalizeRows', () => {
  it('is F.normalize(x, dim=1) with the composite gradient', () => {
    const x = normal([3, 6], 91, 0.3, 2);
    const w = normal([3, 6], 92);
    const { fused, plain } = both(() => valueAndGrads((xx) => l2NormalizeRows(xx as tf.Tensor2D), [x], w));
    expectClose(fused, plain, 1e-5);
    const norms = tf.norm(fused.y, 'euclidean', 1).dataSync();
    expect(Array.from(norms).map((n) => Number(n.toFixed(5)))).toEqual([1, 1, 1]);
  });

  it('divides a zero row by ε like PyTorch (finite gradient dy / ε, where TF.js’s norm gives NaN)', () => {
    const x = tf.concat([normal([1, 4], 93), tf.zeros([1, 4])]);
    const w = tf.ones([2, 4]);
    const { y, grads } = valueAndGrads((xx) => l2NormalizeRows(xx as tf.Tensor2D), [x], w);
    expect(Array.from(tf.slice(y, [1, 0], [1, 4]).dataSync())).toEqual([0, 0, 0, 0]);
    expect(Array.from(tf.slice(grads[0], [1, 0], [1, 4]).dataSync())).toEqual(
      [1e12, 1e12, 1e12, 1e12].map(Math.fround),
    );
  });
});

describe('crossEntropy', () => {
  it('is the mean negative log-softmax of the true class, with the same gradient', () => {
    const logits = normal([5, 10], 41, 0, 3);
    const labels = tf.tensor1d([0, 9, 3, 3, 7], 'int32');
    const { fused, plain } = both(() =>
      valueAndGrads((l) => crossEntropy(l as tf.Tensor2D, labels), [logits], tf.scalar(1)),
    );
    expectClose(fused, plain, 1e-6);
    const byHand = -tf.tidy(
      () => tf.mean(tf.sum(tf.mul(tf.oneHot(labels, 10), tf.logSoftmax(logits)), 1)).dataSync()[0],
    );
    expect(fused.y.dataSync()[0]).toBeCloseTo(byHand, 5);
  });

  it('refuses float labels', () => {
    expect(() => crossEntropy(tf.zeros([2, 10]) as tf.Tensor2D, tf.tensor1d([1, 2]))).toThrow(/int32/);
  });
});

describe('adamUpdate', () => {
  const shapes = [[3, 3, 4, 5], [5], [2, 7], [1]];
  const setup = (seed: number) => ({
    params: shapes.map((s, i) => normal(s, seed + i)),
    grads: shapes.map((s, i) => normal(s, seed + 10 + i, 0, 0.1)),
    m: normal([shapes.reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0)], seed + 20, 0, 0.01) as tf.Tensor1D,
    v: tf.abs(
      normal([shapes.reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0)], seed + 21, 0, 0.001),
    ) as tf.Tensor1D,
  });
  const hyper = (weightDecay: number) => ({
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay,
    stepSize: 1e-3 / (1 - 0.9 ** 3),
    bias2Sqrt: Math.sqrt(1 - 0.999 ** 3),
  });

  for (const weightDecay of [0, 0.01]) {
    it(`gives exactly the composite result (weight decay ${weightDecay})`, () => {
      const { params, grads, m, v } = setup(60);
      const { fused, plain } = both(() => adamUpdate(params, grads, m, v, hyper(weightDecay)));
      expect(maxAbsDiff(fused.m, plain.m)).toBe(0);
      expect(maxAbsDiff(fused.v, plain.v)).toBe(0);
      fused.params.forEach((p, i) => {
        expect(p.shape).toEqual(shapes[i]);
        expect(maxAbsDiff(p, plain.params[i])).toBe(0);
        expect(maxAbsDiff(p, params[i])).toBeGreaterThan(0); // it moved
      });
      // By hand for the first element of the first parameter.
      const g0 = grads[0].dataSync()[0] + weightDecay * params[0].dataSync()[0];
      const m0 = 0.9 * m.dataSync()[0] + 0.1 * g0;
      const v0 = 0.999 * v.dataSync()[0] + 0.001 * g0 * g0;
      const h = hyper(weightDecay);
      expect(fused.params[0].dataSync()[0]).toBeCloseTo(
        params[0].dataSync()[0] - (m0 / (Math.sqrt(v0) / h.bias2Sqrt + h.eps)) * h.stepSize,
        6,
      );
    });
  }

  it('works for a single parameter and frees every intermediate TensorFlow handle', () => {
    const binding = (tf.backend() as unknown as { binding: { getNumOfTensors(): number } }).binding;
    const p = normal([4, 3], 70);
    const g = normal([4, 3], 71);
    const m = tf.zeros([12]) as tf.Tensor1D;
    const v = tf.zeros([12]) as tf.Tensor1D;
    tf.dispose(Object.values(adamUpdate([p], [g], m, v, hyper(0))).flat()); // creates the inputs' handles
    const handles = binding.getNumOfTensors();
    const tensors = tf.memory().numTensors;
    const out = adamUpdate([p], [g], m, v, hyper(0.1));
    expect(tf.memory().numTensors).toBe(tensors + 3);
    tf.dispose([out.m, out.v, ...out.params]);
    expect(binding.getNumOfTensors()).toBe(handles);
    expect(() => adamUpdate([p], [], m, v, hyper(0))).toThrow(/1 parameters but 0 gradients/);
  });
});

describe('memory', () => {
  it('a training step through every kernel leaves no tensor behind', () => {
    const x = normal([4, 16, 16, 3], 51) as tf.Tensor4D;
    const labels = tf.tensor1d([1, 2, 3, 4], 'int32');
    const filter = tf.variable(normal([7, 7, 3, 8], 52, 0, 0.1)) as tf.Variable<tf.Rank.R4>;
    const gamma = tf.variable(tf.ones([8]));
    const beta = tf.variable(tf.zeros([8]));
    const running = { mean: tf.variable(tf.zeros([8])), variance: tf.variable(tf.ones([8])), momentum: 0.1 };
    const head = tf.variable(normal([8, 10], 53, 0, 0.1));
    const step = () =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => {
          let h = relu(
            batchNormTrain(tf.conv2d(x, filter, 2, 'same'), gamma as tf.Tensor1D, beta as tf.Tensor1D, {
              eps: 1e-5,
              running,
            }),
          );
          h = maxPool(h, 3, 2, 1);
          h = addRelu(h, h);
          const logits = tf.matMul(tf.mean(h, [1, 2]) as tf.Tensor2D, head as tf.Tensor2D) as tf.Tensor2D;
          return crossEntropy(logits, labels);
        });
        for (const v of [filter, gamma, beta, head]) v.assign(tf.sub(v, tf.mul(grads[v.name], 0.01)));
        return value;
      });
    tf.dispose(step());
    const binding = (tf.backend() as unknown as { binding: { getNumOfTensors(): number } }).binding;
    const before = tf.memory().numTensors;
    const handles = binding.getNumOfTensors(); // TensorFlow's own handles, incl. raw ones
    for (let i = 0; i < 3; i++) tf.dispose(step());
    expect(tf.memory().numTensors).toBe(before);
    expect(binding.getNumOfTensors()).toBe(handles);
  });
});
