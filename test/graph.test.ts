// lib/formats/protobuf and lib/runtime/graph: the wire format, and functions run as one TensorFlow graph giving
// the eager results — for a toy function and for the lab's whole training step.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { Adam } from '../lib/train/adam';
import { GraphFunction, encodeSavedModel, graphSpec, record } from '../lib/runtime/graph';
import { SUITES } from '../lib/experiments/experiments';
import { distinctSettings, settingName } from '../lib/experiments/measurements';
import { createNet } from '../lib/model/model';
import { ProtoWriter } from '../lib/formats/protobuf';
import { EvalForward } from '../lib/train/evaluate';
import { TrainStep } from '../lib/train/train-step';

const hex = (w: ProtoWriter) => Buffer.from(w.finish()).toString('hex');

describe('ProtoWriter', () => {
  it('writes the wire format of the protobuf documentation', () => {
    expect(hex(new ProtoWriter().varint(1, 150))).toBe('089601'); // the docs' example
    expect(hex(new ProtoWriter().string(2, 'testing'))).toBe('120774657374696e67');
    expect(hex(new ProtoWriter().varint(3, -1))).toBe('18ffffffffffffffffff01'); // int64 −1: ten bytes
    expect(hex(new ProtoWriter().varint(1, true))).toBe('0801');
    expect(hex(new ProtoWriter().float(4, 1))).toBe('250000803f');
    expect(hex(new ProtoWriter().packedVarints(4, [3, 270, 86942]))).toBe('2206038e029ea705'); // the docs' packed example
    expect(hex(new ProtoWriter().message(1, new ProtoWriter()))).toBe('0a00'); // an empty message is still there
  });

  it('refuses what it cannot encode', () => {
    expect(() => new ProtoWriter().varint(1, 1.5)).toThrow(/integer/);
    expect(() => new ProtoWriter().varint(0, 1)).toThrow(/field number/);
  });
});

describe('record / graphSpec', () => {
  it('turns the ops of a call into a graph of inputs, constants and ops, pruning what the outputs do not need', () => {
    const x = tf.tensor1d([1, 2, 3]);
    const ids = (t: tf.Tensor) =>
      (tf.backend() as unknown as { getInputTensorIds(t: tf.Tensor[]): number[] }).getInputTensorIds([t])[0];
    const xId = ids(x);
    const { result, recording } = record(() => {
      tf.exp(x).dispose(); // not an output: pruned
      return tf.mul(x, tf.scalar(2));
    });
    const spec = graphSpec(recording, [xId], [{ shape: [3], dtype: 1 }], [ids(result)]);
    expect(spec.nodes.map((n) => n.op)).toEqual(['Mul']);
    expect(spec.nodes[0].inputs).toEqual([{ input: 0 }, { const: 0 }]);
    expect(Array.from(spec.consts[0].values)).toEqual([2]);
    expect(spec.outputs).toEqual([{ node: 0, output: 0 }]);
    expect(encodeSavedModel(new Uint8Array([1])).length).toBeGreaterThan(8);
    tf.dispose([x, result]);
  });

  it('names a tensor from outside that is neither an input nor state', () => {
    // Computed by TensorFlow before the call. (One made from JavaScript values and first used in
    // the call becomes a constant: TF.js tensors never change, so that is right.)
    const outside = tf.mul(tf.tensor1d([1, 2]), 2);
    const x = tf.tensor1d([3, 4]);
    const g = new GraphFunction(([a]) => [tf.add(a, outside)], []);
    expect(() => g.call([x])).toThrow(/made before it was called, that is neither an input nor a state variable/);
    tf.dispose([outside, x]);
  });
});

describe('GraphFunction', () => {
  it('runs the function as a graph, with the eager results, and assigns the state', () => {
    const w = tf.variable(tf.tensor1d([1, -2, 0.5]));
    const count = tf.variable(tf.scalar(0, 'int32'));
    // One "step": y = relu(x·w) summed; w moves by 0.1·x; a counter counts the calls.
    const step = ([x]: tf.Tensor[]) => {
      const y = tf.sum(tf.relu(tf.mul(x, w)));
      w.assign(tf.add(w, tf.mul(x, 0.1)));
      count.assign(tf.add(count, tf.scalar(1, 'int32')));
      return [y];
    };
    const g = new GraphFunction(step, [w, count]);
    const x = tf.tensor1d([1, 1, 2]);
    const modes: string[] = [];
    const ys: number[] = [];
    for (let i = 0; i < 4; i++) {
      modes.push(g.modeFor([x]));
      const [y] = g.call([x]);
      ys.push(y.dataSync()[0]);
      y.dispose();
    }
    expect(modes).toEqual(['build', 'check', 'graph', 'graph']);
    // Eagerly: w = [1,-2,.5] + 0.1·k·[1,1,2], y = Σ relu(x·w).
    const expected = [0, 1, 2, 3].map((k) =>
      [1 + 0.1 * k, -2 + 0.1 * k, 2 * (0.5 + 0.2 * k)].reduce((s, v) => s + Math.max(v, 0), 0),
    );
    ys.forEach((y, i) => expect(y).toBeCloseTo(expected[i], 5));
    [1.4, -1.6, 1.3].forEach((v, i) => expect(w.dataSync()[i]).toBeCloseTo(v, 5));
    expect(count.dataSync()[0]).toBe(4);
    // Other shapes: a graph of their own, recorded first.
    expect(g.modeFor([tf.tensor1d([1, 2])])).toBe('build');
    g.dispose();
    tf.dispose([w, count, x]);
  });

  it('refuses a function that bakes a changing JavaScript number into a constant', () => {
    let calls = 0;
    const x = tf.tensor1d([1, 2]);
    const g = new GraphFunction(([a]) => [tf.mul(a, ++calls)], []);
    g.call([x])[0].dispose();
    expect(() => g.call([x])).toThrow(
      /a constant \(input of Mul\) was \[1\], then \[2\]: a value that changes between calls must be an input tensor/,
    );
    tf.dispose(x);
  });

  it('refuses a function that reads tensor values back to JavaScript', () => {
    const x = tf.tensor1d([1, 2]);
    const g = new GraphFunction(([a]) => [tf.mul(a, tf.sum(a).dataSync()[0])], []);
    expect(() => g.call([x])).toThrow(/reads tensor values back to JavaScript/);
    tf.dispose(x);
  });
});

describe('TrainStep as a graph', () => {
  it('trains the lab net exactly as the eager step does: same statistics, parameters, BatchNorm state and Adam state', () => {
    const setup = (graph: boolean) => {
      const net = createNet('dynamic', { pretrained: false, seed: 3 });
      // ε well above float rounding: Adam divides by |gradient| + ε, which turns rounding noise in
      // gradients that are zero in exact arithmetic (score.2.bias: Σ softmax − one-hot = 0) into
      // updates of up to lr, in either order of summation.
      const adam = new Adam(net.trainable(), { lr: 1e-3, weightDecay: 1e-4, eps: 1e-2 });
      return { net, adam, step: new TrainStep(net, adam, 0.1, { graph }) };
    };
    const eager = setup(false);
    const graph = setup(true);
    const x = tf.randomNormal([16, 32, 32, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
    const y = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5], 'int32');
    const tensorsBefore = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      const lr = 1e-3 * (1 - i / 10); // a schedule: the learning rate changes every step
      const a = eager.step.run(x, y, lr);
      const b = graph.step.run(x, y, lr);
      const [sa, sb] = [a.dataSync(), b.dataSync()];
      expect(sb[1]).toBe(sa[1]); // correct predictions
      expect(sb[0]).toBeCloseTo(sa[0], 3); // loss · batch
      tf.dispose([a, b]);
    }
    expect(tf.memory().numTensors).toBe(tensorsBefore + 0);
    expect(graph.adam.stepCount).toBe(5);
    const [se, sg] = [eager.net.stateDict(), graph.net.stateDict()];
    expect(sg['backbone.bn1.num_batches_tracked'].dataSync()[0]).toBe(5);
    for (const key of Object.keys(se)) {
      const diff = tf.tidy(
        () => tf.max(tf.abs(tf.sub(tf.cast(se[key], 'float32'), tf.cast(sg[key], 'float32')))).dataSync()[0],
      );
      expect(diff, key).toBeLessThan(1e-5);
    }
    const [ae, ag] = [eager.adam.state(), graph.adam.state()];
    for (const key of Object.keys(ae.tensors)) {
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(ae.tensors[key], ag.tensors[key]))).dataSync()[0]);
      expect(diff, key).toBeLessThan(1e-6);
    }
    tf.dispose([
      x,
      y,
      ...Object.values(se),
      ...Object.values(sg),
      ...Object.values(ae.tensors),
      ...Object.values(ag.tensors),
    ]);
    for (const s of [eager, graph]) {
      s.step.dispose();
      s.adam.dispose();
      s.net.dispose();
    }
  });

  it('records and runs every net the experiment suites train (every freeze, adapter, ablations, both heads, normalised static filters)', () => {
    const settings = distinctSettings(Object.values(SUITES).flatMap((suite) => suite.map((e) => e.config)));
    expect(settings.length).toBeGreaterThanOrEqual(8);
    const x = tf.randomNormal([8, 32, 32, 3], 0, 1, 'float32', 11) as tf.Tensor4D;
    const y = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32');
    for (const s of settings) {
      const name = `${s.variant} ${settingName(s)}`;
      const losses = [false, true].map((graph) => {
        const net = createNet(s.variant, {
          pretrained: false,
          seed: 1,
          freeze: s.freeze,
          architecture: s.architecture,
        });
        const adam = new Adam(net.trainable(), { lr: 1e-3, eps: 1e-2 });
        const step = new TrainStep(net, adam, 0, { graph });
        const out = [0, 1, 2].map(() => {
          const stats = step.run(x, y, 1e-3);
          const loss = stats.dataSync()[0] / 8;
          stats.dispose();
          return loss;
        });
        step.dispose();
        adam.dispose();
        net.dispose();
        return out;
      });
      losses[1].forEach((l, i) => expect(l, `${name}, step ${i + 1}`).toBeCloseTo(losses[0][i], 4));
    }
    tf.dispose([x, y]);
  });

  it('evaluates as a graph with the eager logits, with and without cached filters', () => {
    const net = createNet('dynamic', { pretrained: false, seed: 5 });
    const x = tf.randomNormal([20, 32, 32, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const filters = net.headFilters();
    const eager = net.forward(x, false);
    const forward = new EvalForward(net, { graph: true });
    for (let i = 0; i < 3; i++) {
      for (const opts of [{}, { filters }]) {
        const logits = forward.run(x, opts);
        const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(logits, eager))).dataSync()[0]);
        expect(diff).toBeLessThan(1e-5);
        logits.dispose();
      }
    }
    forward.dispose();
    tf.dispose([x, filters, eager]);
    net.dispose();
  });
});
