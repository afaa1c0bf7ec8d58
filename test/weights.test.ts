// Pretrained backbone loading in its three forms, the .pth reader, and the pretrained function:
// with BatchNorm in evaluation mode the net's features equal those of the folded network.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { PRETRAINED_FILES } from '../lib/config';
import { createNet } from '../lib/model/model';
import { readTorchStateDict } from '../lib/formats/pth';
import { BN_EPS } from '../lib/model/resnet';
import { readSafetensors, writeSafetensors, type TensorRecord } from '../lib/formats/safetensors';
import { readPretrainedBackbone } from '../lib/model/weights';
import { loadCifar10 } from '../lib/data/cifar10';
import { imagesToTensor } from '../lib/data/batches';
import { hasRealData } from './cifar10-synthetic';
import { recipeTensor } from './helpers/golden';

const PTH = path.join(__dirname, 'fixtures', 'resnet18-stem-layer1-unfolded.pth');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-weights-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const folded = readSafetensors(PRETRAINED_FILES.folded).tensors;

/** The folded network computed directly: conv + bias, ReLU, max-pool, two residual blocks. */
function foldedFeatures(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const w = (k: string) =>
      tf.transpose(
        tf.tensor(
          folded[`${k}.weight`].data as Float32Array,
          folded[`${k}.weight`].shape as [number, number, number, number],
        ),
        [2, 3, 1, 0],
      ) as tf.Tensor4D;
    const b = (k: string) => tf.tensor1d(folded[`${k}.bias`].data as Float32Array);
    const conv = (h: tf.Tensor4D, k: string, stride: number, pad: number) =>
      tf.add(
        tf.conv2d(
          tf.pad(h, [
            [0, 0],
            [pad, pad],
            [pad, pad],
            [0, 0],
          ]),
          w(k),
          stride,
          'valid',
        ),
        b(k),
      ) as tf.Tensor4D;
    let h = tf.relu(conv(x, 'conv1', 2, 3));
    h = tf.maxPool(
      tf.pad(
        h,
        [
          [0, 0],
          [1, 1],
          [1, 1],
          [0, 0],
        ],
        -1e30,
      ),
      3,
      2,
      'valid',
    );
    for (const i of [0, 1]) {
      const y = conv(tf.relu(conv(h, `layer1.${i}.conv1`, 1, 1)), `layer1.${i}.conv2`, 1, 1);
      h = tf.relu(tf.add(y, h)) as tf.Tensor4D;
    }
    return h as tf.Tensor4D;
  });
}

function maxAbs(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** Random inputs in the range of normalised pixels, [8, 32, 32, 3]. */
function randomImages(): tf.Tensor4D {
  return tf.tensor4d(recipeTensor([8, 32, 32, 3], 77, 0, 2), [8, 32, 32, 3]);
}

describe('the .pth reader', () => {
  it("reads torch.save's zip format: every tensor of torchvision's layout, exactly", () => {
    const sd = readTorchStateDict(PTH);
    expect(sd['conv1.weight'].shape).toEqual([64, 3, 7, 7]);
    expect(sd['layer1.1.bn2.running_var'].shape).toEqual([64]);
    expect(sd['bn1.num_batches_tracked']).toEqual({ dtype: 'I64', shape: [], data: new BigInt64Array([1000n]) });
    expect(sd['fc.bias'].shape).toEqual([1000]);
    expect(Object.keys(sd).filter((k) => k.startsWith('layer1.')).length).toBe(4 * 5 + 2 * 2);
    // The unfolding (python/make_pth_fixture.py) chose non-trivial BatchNorm statistics.
    const gamma = sd['bn1.weight'].data as Float32Array;
    expect(Math.min(...gamma)).toBeGreaterThanOrEqual(0.5);
    expect(Math.max(...gamma) - Math.min(...gamma)).toBeGreaterThan(0.5);
  });

  it('refuses files that are not torch zip state_dicts, saying why', () => {
    const notZip = path.join(dir, 'x.pth');
    fs.writeFileSync(notZip, Buffer.from('hello world, not a zip file at all'));
    expect(() => readTorchStateDict(notZip)).toThrow(/not a readable PyTorch zip file/);
    const bytes = fs.readFileSync(PTH);
    const cut = path.join(dir, 'cut.pth');
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 1000));
    expect(() => readTorchStateDict(cut)).toThrow(/truncated|end-of-central-directory/);
    const legacy = path.join(dir, 'legacy.pth');
    fs.writeFileSync(legacy, Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8]));
    expect(() => readTorchStateDict(legacy)).toThrow(/legacy \(pre-1.6\) serialisation/);
  });

  it('refuses a pickle that calls anything but the tensor rebuild functions', () => {
    // Same archive, data.pkl's first GLOBAL renamed to os.system (same length keeps the zip valid).
    const bytes = Buffer.from(fs.readFileSync(PTH));
    const at = bytes.indexOf('collections\nOrderedDict');
    expect(at).toBeGreaterThan(0);
    bytes.write('os\nsystem\n\n\n\n\n\n\n\n\n\n\n\n\n', at, 'latin1');
    const evil = path.join(dir, 'evil.pth');
    fs.writeFileSync(evil, bytes);
    expect(() => readTorchStateDict(evil)).toThrow(/refusing pickle global os.system/);
  });
});

describe('pretrained backbone', () => {
  it('unfolds the shared folded file by the README rule', () => {
    const { form, tensors } = readPretrainedBackbone(PRETRAINED_FILES.folded);
    expect(form).toBe('folded-safetensors');
    expect(Object.keys(tensors).length).toBe(5 + 5 * 4);
    expect(Array.from(tensors['layer1.0.bn2.bias'].data as Float32Array)).toEqual(
      Array.from(folded['layer1.0.conv2.bias'].data as Float32Array),
    );
    expect((tensors['bn1.running_var'].data as Float32Array)[7]).toBe(Math.fround(1 - BN_EPS));
    expect((tensors['bn1.weight'].data as Float32Array).every((g) => g === 1)).toBe(true);
    expect((tensors['bn1.running_mean'].data as Float32Array).every((m) => m === 0)).toBe(true);
  });

  it('with BatchNorm in evaluation mode, the features equal those of the folded network (all three forms)', () => {
    // The unfolded safetensors form: the .pth's tensors under `module.` (as a DataParallel save would name them).
    const unfolded = path.join(dir, 'unfolded.safetensors');
    const prefixed: Record<string, TensorRecord> = {};
    for (const [k, v] of Object.entries(readTorchStateDict(PTH))) prefixed[`module.${k}`] = v;
    writeSafetensors(unfolded, prefixed);
    expect(readPretrainedBackbone(unfolded).form).toBe('unfolded-safetensors');
    expect(readPretrainedBackbone(PTH).form).toBe('torchvision-pth');

    const x = randomImages();
    const expected = foldedFeatures(x);
    const mean = tf.tidy(() => tf.mean(tf.abs(expected)).dataSync()[0]);
    expect(mean).toBeGreaterThan(0.05); // a real signal, not all zeros
    for (const file of [PRETRAINED_FILES.folded, PTH, unfolded]) {
      const net = createNet('dynamic', { pretrained: file });
      const f = net.features(x, false);
      expect(f.shape).toEqual([8, 8, 8, 64]);
      expect(maxAbs(f, expected), file).toBeLessThan(1e-4);
      // Training mode normalises with batch statistics instead: a different function.
      const t = net.features(x, true);
      expect(maxAbs(t, expected)).toBeGreaterThan(1e-2);
      tf.dispose([f, t]);
      net.dispose();
    }
    tf.dispose([x, expected]);
  });

  it.skipIf(!hasRealData())('reproduces the folded network on real CIFAR-10 images', () => {
    const train = loadCifar10('train', { limit: 32, batches: [1] });
    const x = imagesToTensor(
      train,
      Array.from({ length: 32 }, (_, i) => i),
      'imagenet',
    );
    const net = createNet('static', { pretrained: PRETRAINED_FILES.folded });
    const f = net.features(x);
    const expected = foldedFeatures(x);
    expect(maxAbs(f, expected)).toBeLessThan(1e-4);
    tf.dispose([x, f, expected]);
    net.dispose();
  });

  it('names every missing or mis-shaped key', () => {
    const sd = readTorchStateDict(PTH);
    const broken: Record<string, TensorRecord> = { ...sd };
    delete broken['layer1.0.bn2.running_var'];
    broken['layer1.1.conv1.weight'] = { dtype: 'F32', shape: [64, 64, 1, 1], data: new Float32Array(64 * 64) };
    const file = path.join(dir, 'broken.safetensors');
    writeSafetensors(file, broken);
    expect(() => readPretrainedBackbone(file)).toThrow(
      /missing key 'layer1\.0\.bn2\.running_var' \(expected shape \[64\]\)[\s\S]*'layer1\.1\.conv1\.weight' has shape \[64, 64, 1, 1\], expected \[64, 64, 3, 3\]/,
    );
    const foldedBroken = { ...folded };
    delete foldedBroken['layer1.1.conv2.bias'];
    writeSafetensors(file, foldedBroken);
    expect(() => readPretrainedBackbone(file)).toThrow(
      /folded \(conv \+ bias\)[\s\S]*missing key 'layer1\.1\.conv2\.bias'/,
    );
    writeSafetensors(file, { 'fc.weight': { dtype: 'F32', shape: [1], data: new Float32Array(1) } });
    expect(() => readPretrainedBackbone(file)).toThrow(/not a ResNet-18 backbone.*fc\.weight/);
    expect(() => createNet('dynamic', { pretrained: path.join(dir, 'nope.pth') })).toThrow(
      /pretrained weights not found/,
    );
  });

  describe('a damaged copy of each in-repo form is refused, naming the tensor and the form', () => {
    /** A copy of `records` with `drop` removed and `reshape` given a wrong shape (same dtype). */
    function damagedCopy(
      records: Record<string, TensorRecord>,
      drop: string,
      reshape: string,
      shape: number[],
    ): string {
      const copy: Record<string, TensorRecord> = { ...records };
      expect(copy[drop], drop).toBeDefined();
      delete copy[drop];
      copy[reshape] = { dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) };
      const file = path.join(dir, `damaged-${drop}.safetensors`);
      writeSafetensors(file, copy);
      return file;
    }

    it('folded safetensors (data/pretrained, bnfolded)', () => {
      const file = damagedCopy(folded, 'layer1.0.conv2.bias', 'conv1.weight', [64, 3, 3, 3]);
      expect(() => readPretrainedBackbone(file)).toThrow(
        new RegExp(
          `${file} \\(folded \\(conv \\+ bias\\) ResNet-18 weights\\) cannot be used:\\n` +
            `  'conv1\\.weight' has shape \\[64, 3, 3, 3\\], expected \\[64, 3, 7, 7\\]\\n` +
            `  missing key 'layer1\\.0\\.conv2\\.bias' \\(expected shape \\[64\\]\\)\\n` +
            'Use an intact file',
        ),
      );
    });

    it('unfolded safetensors (data/pretrained, torchvision names)', () => {
      const unfolded = readSafetensors(PRETRAINED_FILES.torchvision).tensors;
      expect(readPretrainedBackbone(PRETRAINED_FILES.torchvision).form).toBe('unfolded-safetensors');
      const file = damagedCopy(unfolded, 'layer1.1.bn1.running_mean', 'bn1.weight', [32]);
      expect(() => readPretrainedBackbone(file)).toThrow(
        /\(unfolded \(conv \+ BatchNorm\) ResNet-18 weights\) cannot be used:\n  'bn1\.weight' has shape \[32\], expected \[64\]\n  missing key 'layer1\.1\.bn1\.running_mean' \(expected shape \[64\]\)/,
      );
    });

    it('torchvision .pth (test fixture, edited in its pickle)', () => {
      // Same-length edits inside data.pkl keep the zip readable (its reader does not check CRCs).
      const renamed = Buffer.from(fs.readFileSync(PTH));
      const key = renamed.indexOf('layer1.0.bn2.running_var');
      expect(key).toBeGreaterThan(0);
      renamed.write('layer1.0.bn2.running_vaX', key, 'latin1');
      const missing = path.join(dir, 'missing-key.pth');
      fs.writeFileSync(missing, renamed);
      expect(() => readPretrainedBackbone(missing)).toThrow(
        /missing-key\.pth \(torchvision \.pth, unfolded \(conv \+ BatchNorm\) ResNet-18 weights\) cannot be used:\n  missing key 'layer1\.0\.bn2\.running_var' \(expected shape \[64\]\)/,
      );

      // The size tuple (64, 64, 3, 3) of layer1.1.conv1.weight, as pickle BININT1 ops, becomes (64, 64, 1, 3).
      const reshaped = Buffer.from(fs.readFileSync(PTH));
      const size = reshaped.indexOf(
        Buffer.from('(K@K@K\x03K\x03t', 'latin1'),
        reshaped.indexOf('layer1.1.conv1.weight'),
      );
      expect(size).toBeGreaterThan(0);
      reshaped[size + 6] = 1;
      const wrongShape = path.join(dir, 'wrong-shape.pth');
      fs.writeFileSync(wrongShape, reshaped);
      expect(() => readPretrainedBackbone(wrongShape)).toThrow(
        /wrong-shape\.pth \(torchvision \.pth[^)]*\) ResNet-18 weights\) cannot be used:\n  'layer1\.1\.conv1\.weight' has shape \[64, 64, 1, 3\], expected \[64, 64, 3, 3\]/,
      );
    });
  });
});
