// The model's behaviour beyond the golden numbers: gradient flow into the generator, the
// batched head against the lab's loop of ten, freezing, state round trips and refusals.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { createNet, expectedStateShapes, type Net } from '../lib/model/model';
import { readModelState, writeModelState } from '../lib/model/weights';
import { recordsToTensors } from '../lib/formats/safetensors';
import { recipeTensor } from './helpers/golden';
import { gradNorms } from './helpers/grads';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-model-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const images = (n = 4, seed = 5) => tf.tensor4d(recipeTensor([n, 32, 32, 3], seed, 0, 2), [n, 32, 32, 3]);
const labels = tf.tensor1d([1, 5, 9, 0], 'int32');

function snapshot(net: Net): Record<string, number[]> {
  const state = net.stateDict();
  const out = Object.fromEntries(Object.entries(state).map(([k, t]) => [k, Array.from(t.dataSync())]));
  tf.dispose(Object.values(state));
  return out;
}

describe('dynamic head', () => {
  it('passes non-zero gradients to the embeddings and the generator (the filters stay in the graph)', () => {
    const net = createNet('dynamic', { seed: 3 });
    const x = images();
    const norms = gradNorms(net, x, labels);
    for (const name of [
      'embed.weight',
      'gen.0.weight',
      'gen.0.bias',
      'gen.2.weight',
      'gen.2.bias',
      'score.0.weight',
      'backbone.conv1.weight',
      'backbone.bn1.weight',
    ]) {
      expect(norms.get(name), name).toBeGreaterThan(1e-6);
    }
    // Every trainable tensor gets a gradient (not only the ones listed).
    expect([...norms.values()].every((n) => Number.isFinite(n))).toBe(true);
    expect(norms.size).toBe(5 + 10 + 5 + 4);
    x.dispose();
    net.dispose();
  });

  it('the ten generated filters are unit vectors, different per class', () => {
    const net = createNet('dynamic', { seed: 4, pretrained: false });
    const f = net.classFilters();
    expect(f.shape).toEqual([10, 64]);
    const norms = tf.tidy(() => Array.from(tf.norm(f, 'euclidean', 1).dataSync()));
    for (const n of norms) expect(n).toBeCloseTo(1, 5);
    const rows = f.arraySync();
    expect(Math.max(...rows[0].map((v, i) => Math.abs(v - rows[1][i])))).toBeGreaterThan(1e-3);
    f.dispose();
    net.dispose();
  });

  it("computes all ten classes in one batched operation equal to the lab's loop of ten", () => {
    for (const variant of ['dynamic', 'static'] as const) {
      const net = createNet(variant, { seed: 8 });
      const x = images(3, 9);
      tf.tidy(() => {
        const s = net.stateDict();
        const features = net.features(x, false); // [3, 8, 8, 64]
        const filters = net.classFilters(); // [10, 64]
        const perClass: tf.Tensor[] = [];
        for (let c = 0; c < 10; c++) {
          // The lab's loop: a 1×1 conv with class c's filter, /√64, flatten, score MLP.
          const w = tf.reshape(tf.slice(filters, [c, 0], [1, 64]), [1, 1, 64, 1]) as tf.Tensor4D;
          const map = tf.div(tf.conv2d(features, w, 1, 'valid'), 8);
          const flat = tf.reshape(map, [3, 64]);
          const h = tf.relu(tf.add(tf.matMul(flat, s['score.0.weight'], false, true), s['score.0.bias']));
          perClass.push(tf.add(tf.matMul(h, s['score.2.weight'], false, true), s['score.2.bias']));
        }
        const loop = tf.concat(perClass, 1);
        const batched = net.forward(x, false);
        expect(batched.shape).toEqual([3, 10]);
        expect(tf.max(tf.abs(tf.sub(loop, batched))).dataSync()[0], variant).toBeLessThan(1e-5);
        const { maps, scores } = net.responseMaps(x);
        expect(maps.shape).toEqual([3, 10, 8, 8]);
        expect(tf.max(tf.abs(tf.sub(scores, batched))).dataSync()[0]).toBe(0);
      });
      x.dispose();
      net.dispose();
    }
  });
});

describe('static head', () => {
  it('gives every class the same score if all classes share one filter (why it needs ten)', () => {
    const net = createNet('static', { seed: 1 });
    const state = net.stateDict();
    const one = tf.slice(state['dc.weight'], [0, 0, 0, 0], [1, 64, 1, 1]);
    state['dc.weight'].dispose();
    state['dc.weight'] = tf.tile(one, [10, 1, 1, 1]);
    net.loadStateDict(state);
    const x = images();
    const logits = net.forward(x, false).arraySync();
    for (const row of logits) expect(Math.max(...row) - Math.min(...row)).toBeLessThan(1e-6);
    tf.dispose([one, x, ...Object.values(state)]);
    net.dispose();
  });
});

describe('BatchNorm and freezing', () => {
  it("freeze 'none' trains everything; training mode updates running statistics and counters", () => {
    const net = createNet('static', { seed: 2 });
    expect([...net.trainable().keys()].filter((k) => k.startsWith('backbone.')).length).toBe(5 + 10);
    const before = snapshot(net);
    const x = images();
    tf.dispose(net.forward(x, true));
    const after = snapshot(net);
    expect(after['backbone.layer1.1.bn2.running_mean']).not.toEqual(before['backbone.layer1.1.bn2.running_mean']);
    expect(after['backbone.bn1.num_batches_tracked']).toEqual([1]);
    // Evaluation mode changes nothing.
    tf.dispose(net.forward(x, false));
    expect(snapshot(net)).toEqual(after);
    x.dispose();
    net.dispose();
  });

  it("freeze 'all' trains only the head and keeps BatchNorm in evaluation mode", () => {
    const net = createNet('dynamic', { seed: 2, freeze: 'all' });
    const names = [...net.trainable().keys()];
    expect(names.some((k) => k.startsWith('backbone.'))).toBe(false);
    expect(names).toContain('embed.weight');
    const before = snapshot(net);
    const x = images();
    const train = net.forward(x, true);
    const evalLogits = net.forward(x, false);
    expect(tf.max(tf.abs(tf.sub(train, evalLogits))).dataSync()[0]).toBe(0);
    expect(snapshot(net)).toEqual(before);
    const norms = gradNorms(net, x, labels);
    expect(norms.get('gen.0.weight')).toBeGreaterThan(0);
    tf.dispose([x, train, evalLogits]);
    net.dispose();
  });

  it("freeze 'keep-bn' fixes the convolutions but trains BatchNorm with batch statistics", () => {
    const net = createNet('static', { seed: 2, freeze: 'keep-bn' });
    const backbone = [...net.trainable().keys()].filter((k) => k.startsWith('backbone.'));
    expect(backbone.length).toBe(10);
    expect(backbone.every((k) => /\.bn\d\.(weight|bias)$/.test(k))).toBe(true);
    const before = snapshot(net);
    const x = images();
    tf.dispose(net.forward(x, true));
    expect(snapshot(net)['backbone.bn1.running_var']).not.toEqual(before['backbone.bn1.running_var']);
    x.dispose();
    net.dispose();
  });

  it("freeze 'requires-grad' (the lab's) trains no backbone parameter, but BatchNorm stays in training mode", () => {
    const net = createNet('dynamic', { seed: 2, freeze: 'requires-grad' });
    expect([...net.trainable().keys()].some((k) => k.startsWith('backbone.'))).toBe(false);
    const before = snapshot(net);
    const x = images();
    const train = net.forward(x, true);
    const evalLogits = net.forward(x, false);
    // Batch statistics in training differ from the running ones in evaluation, and the running ones move.
    expect(tf.max(tf.abs(tf.sub(train, evalLogits))).dataSync()[0]).toBeGreaterThan(1e-4);
    const after = snapshot(net);
    expect(after['backbone.layer1.0.bn1.running_mean']).not.toEqual(before['backbone.layer1.0.bn1.running_mean']);
    expect(after['backbone.conv1.weight']).toEqual(before['backbone.conv1.weight']);
    expect(after['backbone.bn1.weight']).toEqual(before['backbone.bn1.weight']);
    tf.dispose([x, train, evalLogits]);
    net.dispose();
  });

  it("freeze 'stem' fixes conv1 and bn1 only: layer1 trains", () => {
    const net = createNet('static', { seed: 2, freeze: 'stem' });
    const backbone = [...net.trainable().keys()].filter((k) => k.startsWith('backbone.'));
    expect(backbone.some((k) => /^backbone\.(conv1|bn1)\./.test(k))).toBe(false);
    expect(backbone.filter((k) => k.startsWith('backbone.layer1.')).length).toBe(4 + 8);
    expect(backbone).toHaveLength(12);
    net.dispose();
  });
});

describe('state', () => {
  it("uses the issue's PyTorch names and shapes, and describes parameter counts per part", () => {
    const net = createNet('dynamic', { seed: 0 });
    const state = net.stateDict();
    const expected = expectedStateShapes('dynamic');
    const keys = Object.keys(state).filter((k) => !k.endsWith('num_batches_tracked'));
    expect(keys.sort()).toEqual([...expected.keys()].sort());
    for (const k of keys) expect(state[k].shape, k).toEqual(expected.get(k));
    expect(state['backbone.conv1.weight'].shape).toEqual([64, 3, 7, 7]);
    const parts = new Map<string, number>();
    for (const p of net.describe()) if (p.kind === 'parameter') parts.set(p.part, (parts.get(p.part) ?? 0) + p.size);
    expect(parts.get('backbone.conv')).toBe(156_864);
    expect(parts.get('backbone.bn')).toBe(640);
    expect(parts.get('head.embed')).toBe(1280);
    expect(parts.get('head.gen')).toBe(128 * 256 + 256 + 256 * 64 + 64);
    expect(parts.get('head.score')).toBe(64 * 64 + 64 + 64 + 1);
    tf.dispose(Object.values(state));
    net.dispose();
  });

  it('round-trips through a safetensors file into a differently seeded net with identical logits', () => {
    const a = createNet('dynamic', { seed: 1 });
    const x = images();
    tf.dispose(a.forward(x, true)); // move running stats and counters off their initial values
    const file = path.join(dir, 'state.safetensors');
    const state = a.stateDict();
    writeModelState(file, state, { variant: 'dynamic', norm: 'imagenet' });
    const read = readModelState(file);
    expect(read.variant).toBe('dynamic');
    expect(read.norm).toBe('imagenet');
    expect(read.tensors['backbone.bn1.num_batches_tracked'].dtype).toBe('I64');
    const b = createNet('dynamic', { seed: 99, pretrained: false });
    const loaded = recordsToTensors(read.tensors);
    b.loadStateDict(loaded);
    const la = a.forward(x, false);
    const lb = b.forward(x, false);
    expect(tf.max(tf.abs(tf.sub(la, lb))).dataSync()[0]).toBe(0);
    expect(snapshot(b)).toEqual(snapshot(a));
    tf.dispose([x, la, lb, ...Object.values(state), ...Object.values(loaded)]);
    a.dispose();
    b.dispose();
  });

  it('the same seed gives the same net; PyTorch-style init ranges', () => {
    const fresh = (seed: number) => {
      const net = createNet('dynamic', { seed, pretrained: false });
      const s = snapshot(net);
      net.dispose();
      return s;
    };
    const [s1, s2, s3] = [fresh(5), fresh(5), fresh(6)];
    expect(s1).toEqual(s2);
    expect(s1['gen.0.weight']).not.toEqual(s3['gen.0.weight']);
    const bound = (k: string, b: number) => expect(Math.max(...s1[k].map(Math.abs)), k).toBeLessThanOrEqual(b);
    bound('gen.0.weight', 1 / Math.sqrt(128));
    bound('gen.2.bias', 1 / Math.sqrt(256));
    bound('score.0.weight', 1 / 8);
    const e = s1['embed.weight'];
    const std = Math.sqrt(e.reduce((a, v) => a + v * v, 0) / e.length);
    expect(std).toBeGreaterThan(0.85);
    expect(std).toBeLessThan(1.15);
    const w = s1['backbone.conv1.weight'];
    const convStd = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / w.length);
    expect(convStd).toBeCloseTo(Math.sqrt(2 / (64 * 49)), 2); // kaiming normal, fan_out
  });

  it('refuses a wrong variant, a missing key, a wrong shape or an unknown key, naming it, and changes nothing', () => {
    const dynamicNet = createNet('dynamic', { seed: 1, pretrained: false });
    const staticNet = createNet('static', { seed: 1, pretrained: false });
    const before = snapshot(staticNet);
    const dynamicState = dynamicNet.stateDict();
    expect(() => staticNet.loadStateDict(dynamicState)).toThrow(
      /it is a dynamic-variant state .* but the net is static: use --variant dynamic/,
    );
    const state = staticNet.stateDict();
    const missing = { ...state };
    delete missing['backbone.layer1.0.bn1.running_mean'];
    expect(() => staticNet.loadStateDict(missing)).toThrow(
      /missing key 'backbone\.layer1\.0\.bn1\.running_mean' \(expected shape \[64\]\)/,
    );
    const wrong = { ...state, 'score.0.weight': tf.zeros([64, 32]) };
    expect(() => staticNet.loadStateDict(wrong)).toThrow(/'score\.0\.weight' has shape \[64,32\], expected \[64,64\]/);
    const extra = { ...state, 'head.fc.weight': tf.zeros([3]) };
    expect(() => staticNet.loadStateDict(extra)).toThrow(/unexpected key 'head\.fc\.weight'/);
    // A net is never left half-loaded: a failed load changed nothing.
    const bad = { ...dynamicState };
    expect(() => dynamicNet.loadStateDict({ ...bad, 'gen.2.bias': tf.zeros([65]) })).toThrow(/gen\.2\.bias/);
    expect(snapshot(staticNet)).toEqual(before);
    tf.dispose([
      ...Object.values(dynamicState),
      ...Object.values(state),
      wrong['score.0.weight'],
      extra['head.fc.weight'],
    ]);
    dynamicNet.dispose();
    staticNet.dispose();
  });

  it('refuses a state file whose metadata contradicts its tensors', () => {
    const net = createNet('static', { seed: 1, pretrained: false });
    const state = net.stateDict();
    const file = path.join(dir, 'liar.safetensors');
    writeModelState(file, state, { variant: 'dynamic', norm: 'half' });
    expect(() => readModelState(file)).toThrow(
      /metadata says variant 'dynamic' but its tensors are those of the static head/,
    );
    tf.dispose(Object.values(state));
    net.dispose();
  });
});
