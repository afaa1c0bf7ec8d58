// lib/runtime/precision: the bf16 rewrite of a recorded graph (which ops, which casts), the lab's
// training step and inference in bf16 against fp32 on real CIFAR-10 batches, and what 'auto' picks.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { batches, imagesToTensor } from '../lib/data/batches';
import { loadCifar10, type Cifar10Split } from '../lib/data/cifar10';
import { pretrainedFile } from '../lib/config';
import { createNet, type Net } from '../lib/model/model';
import { describeBackend, initBackend } from '../lib/runtime/backend';
import { TF_DTYPE } from '../lib/runtime/binding';
import { GraphFunction, graphSpec, record, type GraphSpec } from '../lib/runtime/graph';
import { cpuFlags, mixedPrecision, precisionCensus, resolvePrecision } from '../lib/runtime/precision';
import { Adam } from '../lib/train/adam';
import { EvalForward } from '../lib/train/evaluate';
import { crossEntropy } from '../lib/train/loss';
import { SUITES } from '../lib/experiments/experiments';
import { distinctSettings, settingName } from '../lib/experiments/measurements';
import { TrainStep } from '../lib/train/train-step';
import { train as runTraining } from '../lib/train/train';
import { trainConfig } from '../lib/train/train-config';
import type { TrainEvent } from '../lib/train/events';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const { float, bfloat16 } = TF_DTYPE;
const ids = (ts: tf.Tensor[]) =>
  (tf.backend() as unknown as { getInputTensorIds(t: tf.Tensor[]): number[] }).getInputTensorIds(ts);

/** The spec of `fn(inputs)` as GraphFunction records it (inputs fp32). */
function specOf(inputs: tf.Tensor[], fn: () => tf.Tensor[]): GraphSpec {
  const inputIds = ids(inputs);
  const { result, recording } = record(fn);
  const spec = graphSpec(
    recording,
    inputIds,
    inputs.map((t) => ({ shape: t.shape, dtype: float })),
    ids(result),
  );
  tf.dispose(result);
  return spec;
}

describe('mixedPrecision (the graph rewrite)', () => {
  it('runs convolutions in bf16, lets ReLU and bias adds follow their data, keeps the rest and the outputs fp32', () => {
    const x = tf.randomNormal([2, 4, 4, 3]);
    const w = tf.randomNormal([1, 1, 3, 8]);
    const bias = tf.randomNormal([8]);
    const other = tf.randomNormal([2, 4, 4, 8]);
    const spec = specOf([x, w, bias, other], () => {
      const h = tf.relu(tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), bias)); // conv, bias add, ReLU
      return [tf.add(h, other), tf.exp(h)]; // an add of two full-size tensors, one fp32; an op outside the list
    });
    const mixed = mixedPrecision(spec);
    const node = (op: string) => mixed.nodes.find((n) => n.op === op)!;
    const dtypeOf = (op: string) => node(op).outputs[0].dtype;
    expect(dtypeOf('Conv2D')).toBe(bfloat16);
    // The bias add became a BiasAdd (fusable into the conv) and runs in bf16 with the bias cast down.
    expect(mixed.nodes.filter((n) => n.op === 'Add')).toHaveLength(1);
    expect(dtypeOf('BiasAdd')).toBe(bfloat16);
    expect(dtypeOf('Relu')).toBe(bfloat16);
    // h + other: the largest inputs are not all bf16, so it stays fp32 (h is cast up); so does Exp.
    expect(dtypeOf('Add')).toBe(float);
    expect(dtypeOf('Exp')).toBe(float);
    const casts = mixed.nodes.filter((n) => n.op === 'Cast');
    const castsTo = (t: number) => casts.filter((c) => c.attrs.find((a) => a.name === 'DstT')!.value === t).length;
    expect(castsTo(bfloat16)).toBe(3); // x, w, bias
    expect(castsTo(float)).toBe(1); // h, once for its two fp32 users
    expect(precisionCensus(mixed)).toEqual({ bf16: 3, fp32: 2, casts: 4 });
    expect(mixed.outputDtypes).toEqual([float, float]);
    // Pure: the recorded spec is unchanged (fp32 throughout).
    expect(spec.nodes.every((n) => n.outputs[0].dtype === float)).toBe(true);
    tf.dispose([x, w, bias, other]);
  });

  it('gives the fp32 graph results within bf16 rounding, with fp32 inputs, outputs and state', () => {
    const x = tf.randomNormal([4, 8, 8, 16], 0, 1, 'float32', 1);
    const w = tf.variable(tf.randomNormal([3, 3, 16, 16], 0, 0.1, 'float32', 2));
    const fn = ([a]: tf.Tensor[]) => {
      const y = tf.relu(tf.conv2d(a as tf.Tensor4D, w as unknown as tf.Tensor4D, 1, 'same'));
      w.assign(tf.sub(w, tf.mul(tf.mean(y), 1e-3))); // state written back in fp32
      return [y];
    };
    const before = w.clone();
    const [y32] = new GraphFunction(fn, [w]).call([x]);
    const after32 = w.clone();
    w.assign(before);
    const [y16] = new GraphFunction(fn, [w], { precision: 'bf16' }).call([x]);
    expect(y16.dtype).toBe('float32');
    expect(w.dtype).toBe('float32');
    const scale = tf.max(tf.abs(y32)).dataSync()[0];
    const err = tf.max(tf.abs(tf.sub(y32, y16))).dataSync()[0];
    expect(err).toBeGreaterThan(0); // it did run in bf16
    expect(err).toBeLessThan(scale * 2 ** -6);
    expect(tf.max(tf.abs(tf.sub(after32, w))).dataSync()[0]).toBeLessThan(1e-5);
    tf.dispose([x, w, y32, y16, before, after32]);
  });
});

describe('the lab net in bf16 against fp32, on real CIFAR-10 batches', () => {
  let train: Cifar10Split;
  let test: Cifar10Split;
  const pretrained = () => createNet('dynamic', { pretrained: pretrainedFile('torchvision'), seed: 0 });
  beforeAll(() => {
    initBackend();
    train = loadCifar10('train', { limit: 320 });
    test = loadCifar10('test', { limit: 500 });
  });

  it('a training step: the same loss, and gradients in the same direction within bf16 tolerance', () => {
    const net = pretrained();
    const params = [...net.trainable()];
    const lossAndGrads = ([x, y]: tf.Tensor[]) => {
      const { value, grads } = tf.variableGrads(
        () => crossEntropy(net.forward(x as tf.Tensor4D, true), y as tf.Tensor1D),
        params.map(([, v]) => v),
      );
      return [value, ...params.map(([, v]) => grads[v.name])];
    };
    const [batch] = batches(train, { batchSize: 64, norm: 'half', shuffle: true, seed: 0, epoch: 1 });
    const fp32 = new GraphFunction(lossAndGrads, net.variables());
    const bf16 = new GraphFunction(lossAndGrads, net.variables(), { precision: 'bf16' });
    const [l32, ...g32] = fp32.call([batch.x, batch.y]);
    const [l16, ...g16] = bf16.call([batch.x, batch.y]);
    expect(Math.abs(l16.dataSync()[0] - l32.dataSync()[0])).toBeLessThan(1e-3 * l32.dataSync()[0]);
    const norm = (t: tf.Tensor) => tf.tidy(() => tf.norm(t).dataSync()[0]);
    params.forEach(([name], i) => {
      const size = norm(g32[i]);
      // score.2.bias shifts every logit alike: softmax ignores it, its gradient is 0 up to rounding.
      if (size < 1e-4) return;
      const cosine = tf.tidy(() => tf.sum(tf.mul(g32[i], g16[i])).dataSync()[0]) / (size * norm(g16[i]));
      expect({ name, cosine: cosine > 0.99, relative: norm(tf.sub(g32[i], g16[i])) / size < 0.2 }).toEqual({
        name,
        cosine: true,
        relative: true,
      });
    });
    tf.dispose([batch.x, batch.y, l32, l16, ...g32, ...g16]);
    fp32.dispose();
    bf16.dispose();
    net.dispose();
  });

  it('five steps go the same way; inference agrees on the predicted classes', () => {
    const fiveSteps = (precision: 'fp32' | 'bf16') => {
      const net = pretrained();
      const adam = new Adam(net.trainable(), { lr: 1e-3 });
      const step = new TrainStep(net, adam, 0, { precision });
      const losses: number[] = [];
      for (const b of batches(train, { batchSize: 64, norm: 'half', shuffle: true, seed: 0, epoch: 1 })) {
        const stats = step.run(b.x, b.y, 1e-3);
        losses.push(stats.dataSync()[0] / 64);
        tf.dispose([stats, b.x, b.y]);
      }
      step.dispose();
      adam.dispose();
      return { net, losses };
    };
    const a = fiveSteps('fp32');
    const b = fiveSteps('bf16');
    expect(a.losses).toHaveLength(5);
    a.losses.forEach((l, i) => expect(Math.abs(b.losses[i] - l)).toBeLessThan(0.01 * l));
    // The weights moved the same way.
    const start = pretrained();
    const weights = (net: Net) => [...net.trainable().values()];
    const moved = (net: Net) =>
      tf.tidy(() => tf.concat(weights(net).map((v, j) => tf.reshape(tf.sub(v, weights(start)[j]), [-1]))));
    const [da, db] = [moved(a.net), moved(b.net)];
    const cosine = tf.tidy(
      () => tf.sum(tf.mul(da, db)).dataSync()[0] / (tf.norm(da).dataSync()[0] * tf.norm(db).dataSync()[0]),
    );
    expect(cosine).toBeGreaterThan(0.98);

    // Inference of the same (fp32-trained) weights, both ways.
    const x = imagesToTensor(
      test,
      Array.from({ length: test.count }, (_, i) => i),
      'half',
    );
    const logits = (precision: 'fp32' | 'bf16') => {
      const forward = new EvalForward(a.net, { precision });
      const out = forward.run(x);
      forward.dispose();
      return out;
    };
    const [l32, l16] = [logits('fp32'), logits('bf16')];
    const [p32, p16] = [tf.argMax(l32, 1).dataSync(), tf.argMax(l16, 1).dataSync()];
    const values = l32.arraySync() as number[][];
    let agree = 0;
    const margins: number[] = []; // fp32's top-1 minus top-2 logit where the two disagree
    for (let i = 0; i < test.count; i++) {
      if (p32[i] === p16[i]) agree++;
      else margins.push(values[i][p32[i]] - Math.max(...values[i].filter((_, k) => k !== p32[i])));
    }
    // Five steps leave small margins (fp32 on the full test set with a trained net: see the README).
    expect(agree / test.count).toBeGreaterThan(0.97);
    const spread = tf.tidy(() => tf.sub(tf.max(l32), tf.min(l32)).dataSync()[0]);
    for (const m of margins) expect(m).toBeLessThan(0.02 * spread); // only near-ties flip
    tf.dispose([x, l32, l16, da, db]);
    for (const n of [a.net, b.net, start]) n.dispose();
  });

  it('every net the experiment suites train runs in bf16 (every freeze, adapter, ablations, both heads)', () => {
    const settings = distinctSettings(Object.values(SUITES).flatMap((suite) => suite.map((e) => e.config)));
    const x = tf.randomNormal([8, 32, 32, 3], 0, 1, 'float32', 11) as tf.Tensor4D;
    const y = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32');
    for (const s of settings) {
      const [l32, l16] = (['fp32', 'bf16'] as const).map((precision) => {
        const net = createNet(s.variant, {
          pretrained: false,
          seed: 1,
          freeze: s.freeze,
          architecture: s.architecture,
        });
        const adam = new Adam(net.trainable(), { lr: 1e-3 });
        const step = new TrainStep(net, adam, 0, { precision });
        const forward = new EvalForward(net, { precision });
        const losses = [0, 1].map(() => {
          const stats = step.run(x, y, 1e-3);
          const logits = forward.run(x);
          const out = [stats.dataSync()[0] / 8, tf.tidy(() => crossEntropy(logits, y).dataSync()[0])];
          tf.dispose([stats, logits]);
          return out;
        });
        for (const d of [step, forward, adam, net]) d.dispose();
        return losses.flat();
      });
      l16.forEach((l, i) =>
        expect(Math.abs(l - l32[i]), `${s.variant} ${settingName(s)}, loss ${i}`).toBeLessThan(0.02 * l32[i]),
      );
    }
    tf.dispose([x, y]);
  });

  it('train() in bf16: it trains and evaluates, and its backend line says bf16 and why', async () => {
    const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bf16-'));
    const events: TrainEvent[] = [];
    const config = trainConfig({
      run: 'bf16',
      epochs: 1,
      batchSize: 64,
      limitTrain: 192,
      limitTest: 100,
      pretrained: false,
      precision: 'bf16',
    });
    const result = await runTraining(config, { runsDir, data: { train, test }, onProgress: (e) => events.push(e) });
    const start = events.find((e) => e.type === 'start') as Extract<TrainEvent, { type: 'start' }>;
    expect(start.backend).toMatch(/; bf16 \(asked for/);
    expect(result.history).toHaveLength(1);
    expect(Number.isFinite(result.history[0].train.loss) && result.test.images === 100).toBe(true);
    fs.rmSync(runsDir, { recursive: true, force: true });
  });

  it('bf16 needs the graph: an eager step or forward in bf16 is refused, saying what to do', () => {
    const net = createNet('dynamic', { pretrained: false, seed: 0 });
    const adam = new Adam(net.trainable(), { lr: 1e-3 });
    expect(() => new TrainStep(net, adam, 0, { graph: false, precision: 'bf16' })).toThrow(
      /bf16 runs only inside TensorFlow graphs.*DCF_GRAPH=0/,
    );
    expect(() => new EvalForward(net, { graph: false, precision: 'bf16' })).toThrow(
      /bf16 runs only inside TensorFlow graphs/,
    );
    adam.dispose();
    net.dispose();
  });
});

describe('resolvePrecision', () => {
  const flags = (s: string) => cpuFlags(`processor\t: 0\nflags\t\t: fpu sse2 ${s}\n`);

  it('auto: bf16 with AMX; fp32 with avx512_bf16 alone (measured slower) and without bf16 instructions', () => {
    expect(resolvePrecision('auto', flags('avx2 avx512f avx512_bf16 amx_bf16 amx_tile'))).toMatchObject({
      precision: 'bf16',
      why: expect.stringMatching(/AMX/),
    });
    expect(resolvePrecision('auto', flags('avx2 avx512f avx512_bf16'))).toMatchObject({
      precision: 'fp32',
      why: expect.stringMatching(/avx512_bf16 without AMX.*measured/),
    });
    expect(resolvePrecision('auto', flags('avx2 fma'))).toMatchObject({
      precision: 'fp32',
      why: expect.stringMatching(/no bf16 instructions/),
    });
    expect(resolvePrecision('auto', new Set())).toMatchObject({ precision: 'fp32' });
  });

  it('an explicit choice is kept; bf16 without bf16 instructions and an unknown choice are refused', () => {
    expect(() => resolvePrecision('bf16', flags('avx2 avx512f'))).toThrow(
      /'bf16' needs a CPU with bf16 instructions .*use 'fp32', or 'auto'/,
    );
    expect(resolvePrecision('bf16', flags('avx512_bf16'))).toEqual({ precision: 'bf16', why: 'asked for' });
    expect(resolvePrecision('fp32', flags('amx_bf16'))).toEqual({ precision: 'fp32', why: 'asked for' });
    expect(() => resolvePrecision('fp16' as 'fp32')).toThrow(/precision must be one of fp32, bf16, auto; got 'fp16'/);
  });

  it('the backend line says the precision and why', () => {
    const info = initBackend();
    expect(describeBackend(info, resolvePrecision('bf16', flags('amx_bf16')))).toMatch(
      /^tensorflow \(.*\); bf16 \(asked for\)$/,
    );
    expect(describeBackend(info)).not.toMatch(/fp32|bf16/);
  });
});
