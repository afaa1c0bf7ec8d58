// The architecture options of the experiments (lib/model/architecture): each changes what it should and
// nothing else, is recorded in configs and checkpoints, and the lab's net stays the default.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { Adam } from '../lib/train/adam';
import { LAB_ARCHITECTURE } from '../lib/model/architecture';
import { readCheckpoint, restoreCheckpoint, saveCheckpoint } from '../lib/train/checkpoint';
import { exportModelState } from '../lib/train/export';
import { createNet, describeState, expectedStateShapes, type Net } from '../lib/model/model';
import { loadNetFromStateFile } from '../lib/train/predict';
import { parseTrainArgs } from '../lib/train/train-cli';
import { LAB_RECIPE, trainConfig, validateConfig } from '../lib/train/train-config';
import { recipeTensor } from './helpers/golden';
import { gradNorms, oneHotLoss } from './helpers/grads';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-arch-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const images = (n = 4, seed = 5) => tf.tensor4d(recipeTensor([n, 32, 32, 3], seed, 0, 2), [n, 32, 32, 3]);
const labels = tf.tensor1d([1, 5, 9, 0], 'int32');
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

function adamStep(net: Net, adam: Adam, x: tf.Tensor4D): void {
  const vars = net.trainable();
  const { value, grads } = tf.variableGrads(() => oneHotLoss(net, x, labels), [...vars.values()]);
  const named = Object.fromEntries([...vars].map(([name, v]) => [name, grads[v.name]]));
  adam.step(named);
  tf.dispose([value, ...Object.values(grads)]);
}

function values(net: Net, prefix: string): Record<string, number[]> {
  const state = net.stateDict();
  const out = Object.fromEntries(
    Object.entries(state)
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, t]) => [k, Array.from(t.dataSync())]),
  );
  tf.dispose(Object.values(state));
  return out;
}

describe('defaults', () => {
  it("is the lab's net unless asked otherwise: same keys, same logits as an explicit LAB_ARCHITECTURE", () => {
    const a = createNet('dynamic', { seed: 7, pretrained: false });
    const b = createNet('dynamic', { seed: 7, pretrained: false, architecture: { ...LAB_ARCHITECTURE } });
    expect(a.architecture).toEqual({
      filterNorm: true,
      staticNorm: false,
      responseScale: true,
      upsample: 1,
      adapter: false,
    });
    expect(a.describe().map((p) => p.name)).toEqual([...expectedStateShapes('dynamic').keys()]);
    const x = images();
    expect(maxDiff(a.forward(x, false), b.forward(x, false))).toBe(0);
    tf.dispose(x);
    a.dispose();
    b.dispose();
  });

  it('describeState (no tensors) says what net.describe() says, for every option and freezing', () => {
    for (const variant of ['dynamic', 'static'] as const) {
      for (const freeze of ['none', 'all', 'keep-bn'] as const) {
        for (const architecture of [{}, { adapter: true }, { upsample: 2, responseScale: false }]) {
          const net = createNet(variant, { pretrained: false, freeze, architecture });
          expect(
            describeState(variant, architecture, freeze),
            `${variant} ${freeze} ${JSON.stringify(architecture)}`,
          ).toEqual(net.describe());
          net.dispose();
        }
      }
    }
  });
});

describe('filterNorm: false', () => {
  it('applies the generated filters without L2 normalisation (their norms are not 1), the same filters up to scale', () => {
    const normed = createNet('dynamic', { seed: 4, pretrained: false });
    const raw = createNet('dynamic', { seed: 4, pretrained: false, architecture: { filterNorm: false } });
    tf.tidy(() => {
      const f = raw.classFilters();
      const norms = Array.from(tf.norm(f, 'euclidean', 1).dataSync());
      expect(norms.every((n) => Math.abs(n - 1) > 0.05)).toBe(true);
      // tanh outputs: every component in (−1, 1), so a norm below √64 = 8.
      expect(Math.max(...norms)).toBeLessThan(8);
      expect(maxDiff(tf.div(f, tf.norm(f, 'euclidean', 1, true)), normed.classFilters())).toBeLessThan(1e-6);
    });
    normed.dispose();
    raw.dispose();
  });

  it('is refused for the static head (its filters follow staticNorm)', () => {
    expect(() => createNet('static', { pretrained: false, architecture: { filterNorm: false } })).toThrow(
      /dynamic head only/,
    );
    expect(() => trainConfig({ run: 'x', variant: 'static', filterNorm: false })).toThrow(/dynamic head only/);
  });
});

describe('staticNorm: true', () => {
  it("L2-normalises the static head's learned filters, and only those (the control that isolates the generator)", () => {
    const plain = createNet('static', { seed: 4, pretrained: false });
    const normed = createNet('static', { seed: 4, pretrained: false, architecture: { staticNorm: true } });
    const [p, n] = [plain, normed].map((net) => tf.tidy(() => net.classFilters().arraySync()));
    n.forEach((row, c) => {
      expect(Math.hypot(...row)).toBeCloseTo(1, 5);
      const scale = Math.hypot(...p[c]);
      row.forEach((v, k) => expect(v * scale).toBeCloseTo(p[c][k], 5)); // the same direction
    });
    expect(Math.hypot(...p[0])).not.toBeCloseTo(1, 2);
    expect(() => createNet('dynamic', { pretrained: false, architecture: { staticNorm: true } })).toThrow(
      /staticNorm applies to the static head only/,
    );
    plain.dispose();
    normed.dispose();
  });
});

describe('responseScale: false', () => {
  it('leaves the response maps √64 = 8 times larger; nothing else changes', () => {
    for (const variant of ['dynamic', 'static'] as const) {
      const scaled = createNet(variant, { seed: 2, pretrained: false });
      const raw = createNet(variant, { seed: 2, pretrained: false, architecture: { responseScale: false } });
      const x = images(2);
      tf.tidy(() => {
        const a = scaled.responseMaps(x).maps;
        const b = raw.responseMaps(x).maps;
        expect(maxDiff(tf.mul(a, 8), b), variant).toBeLessThan(1e-5);
        expect(maxDiff(scaled.classFilters(), raw.classFilters())).toBe(0);
        expect(maxDiff(tf.mul(scaled.headFilters(), 8), raw.headFilters())).toBe(0);
      });
      x.dispose();
      scaled.dispose();
      raw.dispose();
    }
  });
});

describe('upsample', () => {
  it('gives [b, 16, 16, 64] features for ×2, average-pooled to the same 8×8 maps and the same state', () => {
    const lab = createNet('dynamic', { seed: 3, pretrained: false });
    const up = createNet('dynamic', { seed: 3, pretrained: false, architecture: { upsample: 2 } });
    const x = images(2);
    tf.tidy(() => {
      expect(lab.features(x).shape).toEqual([2, 8, 8, 64]);
      const f = up.features(x);
      expect(f.shape).toEqual([2, 16, 16, 64]);
      // The features are those of the bilinearly upsampled 64×64 image.
      const big = tf.image.resizeBilinear(x, [64, 64], false, true);
      expect(maxDiff(lab.features(big), f)).toBeLessThan(1e-5);
      // The head sees them average-pooled 2×2: 8×8 maps, and the lab's head unchanged.
      const { maps, scores } = up.responseMaps(x);
      expect(maps.shape).toEqual([2, 10, 8, 8]);
      const pooled = tf.reshape(tf.avgPool(f, 2, 2, 'valid'), [2 * 64, 64]);
      const expected = tf.transpose(
        tf.reshape(tf.matMul(pooled, up.headFilters(), false, true), [2, 64, 10]),
        [0, 2, 1],
      );
      expect(maxDiff(tf.reshape(maps, [2, 10, 64]), expected)).toBeLessThan(1e-5);
      expect(maxDiff(scores, up.forward(x, false))).toBe(0);
      expect(maxDiff(scores, lab.forward(x, false))).toBeGreaterThan(1e-4);
    });
    expect(up.describe()).toEqual(lab.describe());
    x.dispose();
    lab.dispose();
    up.dispose();
  });

  it('refuses factors outside 1…4', () => {
    expect(() => createNet('dynamic', { pretrained: false, architecture: { upsample: 0 } })).toThrow(
      /upsample must be/,
    );
    expect(() => createNet('dynamic', { pretrained: false, architecture: { upsample: 1.5 } })).toThrow(
      /upsample must be/,
    );
  });
});

describe('adapter', () => {
  it('starts as the identity (zero-init residual), so it starts where the frozen net without it starts', () => {
    const plain = createNet('dynamic', { seed: 5, pretrained: false, freeze: 'all' });
    const adapted = createNet('dynamic', {
      seed: 5,
      pretrained: false,
      freeze: 'all',
      architecture: { adapter: true },
    });
    const x = images();
    expect(maxDiff(plain.forward(x, false), adapted.forward(x, false))).toBe(0);
    const names = adapted
      .describe()
      .filter((p) => p.part === 'adapter')
      .map((p) => [p.name, p.shape, p.trainable]);
    expect(names).toEqual([
      ['adapter.conv.weight', [64, 64, 3, 3], true],
      ['adapter.bn.weight', [64], true],
      ['adapter.bn.bias', [64], true],
      ['adapter.bn.running_mean', [64], false],
      ['adapter.bn.running_var', [64], false],
    ]);
    x.dispose();
    plain.dispose();
    adapted.dispose();
  });

  it('trains behind a frozen backbone: adapter parameters get gradients and change, the backbone does not', () => {
    const net = createNet('dynamic', { seed: 6, pretrained: false, freeze: 'all', architecture: { adapter: true } });
    const trainable = [...net.trainable().keys()];
    expect(trainable.filter((k) => k.startsWith('backbone.'))).toEqual([]);
    expect(trainable.filter((k) => k.startsWith('adapter.'))).toEqual([
      'adapter.conv.weight',
      'adapter.bn.weight',
      'adapter.bn.bias',
    ]);
    const x = images();
    let norms = gradNorms(net, x, labels);
    expect(norms.get('adapter.bn.weight')).toBeGreaterThan(1e-6);
    expect(norms.get('adapter.bn.bias')).toBeGreaterThan(1e-6);
    const backboneBefore = values(net, 'backbone.');
    const adapterBefore = values(net, 'adapter.');
    const adam = new Adam(net.trainable(), { lr: 1e-2 });
    adamStep(net, adam, x);
    // After one step γ ≠ 0, and the convolution's gradient is no longer zero.
    norms = gradNorms(net, x, labels);
    for (const name of ['adapter.conv.weight', 'adapter.bn.weight', 'adapter.bn.bias'])
      expect(norms.get(name), name).toBeGreaterThan(1e-6);
    const backboneAfter = values(net, 'backbone.');
    const adapterAfter = values(net, 'adapter.');
    expect(backboneAfter).toEqual(backboneBefore); // frozen: weights and BatchNorm statistics
    expect(adapterAfter['adapter.bn.weight']).not.toEqual(adapterBefore['adapter.bn.weight']);
    // The adapter's BatchNorm trains in training mode (statistics and counter) although the backbone's is frozen.
    expect(adapterAfter['adapter.bn.running_mean']).not.toEqual(adapterBefore['adapter.bn.running_mean']);
    expect(adapterAfter['adapter.bn.num_batches_tracked'][0]).toBeGreaterThan(0);
    x.dispose();
    adam.dispose();
    net.dispose();
  });

  it('its state round-trips; a state with and a net without an adapter (or the reverse) are refused by name', () => {
    const a = createNet('static', { seed: 1, pretrained: false, architecture: { adapter: true } });
    const b = createNet('static', { seed: 2, pretrained: false, architecture: { adapter: true } });
    const plain = createNet('static', { seed: 1, pretrained: false });
    const state = a.stateDict();
    expect(
      Object.keys(state)
        .filter((k) => k.startsWith('adapter.'))
        .sort(),
    ).toEqual([
      'adapter.bn.bias',
      'adapter.bn.num_batches_tracked',
      'adapter.bn.running_mean',
      'adapter.bn.running_var',
      'adapter.bn.weight',
      'adapter.conv.weight',
    ]);
    b.loadStateDict(state);
    expect(values(b, '')).toEqual(values(a, ''));
    expect(() => plain.loadStateDict(state)).toThrow(/the state has an adapter \(adapter\.\*\) but the net has none/);
    const plainState = plain.stateDict();
    expect(() => a.loadStateDict(plainState)).toThrow(/the net has an adapter \(adapter\.\*\) but the state has none/);
    tf.dispose([...Object.values(state), ...Object.values(plainState)]);
    for (const n of [a, b, plain]) n.dispose();
  });
});

describe('precomputed filters for inference', () => {
  it('headFilters() passed to forward/responseMaps give the same result without running the generator; refused in training', () => {
    const net = createNet('dynamic', { seed: 9, pretrained: false });
    const x = images();
    const filters = net.headFilters();
    expect(maxDiff(net.forward(x, false), net.forward(x, false, { filters }))).toBe(0);
    expect(maxDiff(net.responseMaps(x).maps, net.responseMaps(x, { filters }).maps)).toBe(0);
    expect(() => net.forward(x, true, { filters })).toThrow(/evaluation only/);
    const wrong = tf.zeros([10, 32]) as tf.Tensor2D;
    expect(() => net.forward(x, false, { filters: wrong })).toThrow(/\[10, 64\]/);
    tf.dispose([x, filters, wrong]);
    net.dispose();
  });
});

describe('configs, checkpoints and the command line record the architecture', () => {
  it('a config saved before the options existed reads back as the lab net', () => {
    const old: Record<string, unknown> = { ...LAB_RECIPE, run: 'old' };
    for (const k of ['filterNorm', 'responseScale', 'upsample', 'adapter']) delete old[k];
    expect(validateConfig(old)).toMatchObject({ filterNorm: true, responseScale: true, upsample: 1, adapter: false });
  });

  it('npm run train flags set the options', () => {
    const args = parseTrainArgs([
      '--run',
      'x',
      '--no-filter-norm',
      '--no-response-scale',
      '--upsample',
      '2',
      '--adapter',
    ]);
    expect(args.help).toBe(false);
    if (args.help) return;
    expect(args.given).toEqual({ filterNorm: false, responseScale: false, upsample: 2, adapter: true });
    expect(
      parseTrainArgs(['--run', 'x']).help === false && (parseTrainArgs(['--run', 'x']) as { given: object }).given,
    ).toEqual({});
    expect(() => parseTrainArgs(['--run', 'x', '--upsample', 'two'])).toThrow(/--upsample needs a whole number/);
  });

  it('a checkpoint of another architecture is refused before anything changes; export and predict keep the architecture', () => {
    const config = trainConfig({ run: 'ablate', filterNorm: false, responseScale: false });
    const saved = createNet('dynamic', { seed: 1, pretrained: false, architecture: config });
    const adam = new Adam(saved.trainable(), { lr: 1e-3 });
    const file = path.join(dir, 'ablate.safetensors');
    saveCheckpoint(file, saved, adam, {
      kind: 'last',
      epoch: 1,
      accuracy: 0.5,
      bestAccuracy: 0.5,
      bestEpoch: 1,
      session: 1,
      config: { ...config },
      backend: 'test',
    });
    const lab = createNet('dynamic', { seed: 2, pretrained: false });
    const labAdam = new Adam(lab.trainable(), { lr: 1e-3 });
    const before = values(lab, '');
    expect(() => restoreCheckpoint(readCheckpoint(file), file, lab, labAdam)).toThrow(
      /another architecture.*filterNorm: false vs true; responseScale: false vs true/,
    );
    expect(values(lab, '')).toEqual(before);
    // The same architecture restores.
    const same = createNet('dynamic', { seed: 2, pretrained: false, architecture: config });
    const sameAdam = new Adam(same.trainable(), { lr: 1e-3 });
    restoreCheckpoint(readCheckpoint(file), file, same, sameAdam);
    const x = images(2);
    expect(maxDiff(same.forward(x, false), saved.forward(x, false))).toBe(0);
    // An exported state records it, and predict's loader rebuilds the same net from it.
    const exported = path.join(dir, 'ablate-state.safetensors');
    exportModelState(file, exported);
    const loaded = loadNetFromStateFile(exported);
    expect(loaded.net.architecture).toMatchObject({ filterNorm: false, responseScale: false });
    expect(maxDiff(loaded.net.forward(x, false), saved.forward(x, false))).toBe(0);
    x.dispose();
    loaded.net.dispose();
    for (const o of [adam, labAdam, sameAdam]) o.dispose();
    for (const n of [saved, lab, same]) n.dispose();
  });
});
