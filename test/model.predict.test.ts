// npm run predict and the state loading behind it: refusals with clear messages, and
// predictions equal to the net's own evaluation-mode logits on the official test images.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../lib/config';
import { createNet, type NamedTensors } from '../lib/model/model';
import { loadNetFromStateFile, predict } from '../lib/train/predict';
import { writeSafetensors, tensorsToRecords } from '../lib/formats/safetensors';
import { writeModelState } from '../lib/model/weights';
import { loadCifar10 } from '../lib/data/cifar10';
import { imagesToTensor } from '../lib/data/batches';
import { hasRealData } from './cifar10-synthetic';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-predict-'));
const file = (name: string) => path.join(dir, name);
let state: NamedTensors;

beforeAll(() => {
  const net = createNet('static', { seed: 11 });
  state = net.stateDict();
  net.dispose();
  writeModelState(file('static.safetensors'), state, { variant: 'static', norm: 'half' });
});
afterAll(() => {
  tf.dispose(Object.values(state));
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Writes `tensors` as a bare safetensors file with the given metadata. */
function writeRaw(name: string, tensors: NamedTensors, metadata: Record<string, string> = {}): string {
  writeSafetensors(
    file(name),
    tensorsToRecords(tensors, (k) => k.endsWith('num_batches_tracked')),
    metadata,
  );
  return file(name);
}

describe('loading a state for prediction', () => {
  it('loads a good state, taking variant and normalisation from the metadata', () => {
    const loaded = loadNetFromStateFile(file('static.safetensors'));
    expect(loaded.variant).toBe('static');
    expect(loaded.norm).toBe('half');
    loaded.net.dispose();
  });

  it('refuses the wrong variant', () => {
    expect(() => loadNetFromStateFile(file('static.safetensors'), { variant: 'dynamic' })).toThrow(
      /holds a static-variant model, but the dynamic variant was asked for: use --variant static/,
    );
    // Without metadata, the keys still tell: the net refuses a static state for the dynamic head.
    const bare = writeRaw('bare.safetensors', state);
    expect(() => loadNetFromStateFile(bare, { variant: 'dynamic', norm: 'half' })).toThrow(/static-variant model/);
  });

  it('refuses a missing key, naming it', () => {
    const { ['backbone.layer1.1.conv2.weight']: _dropped, ...rest } = state;
    const f = writeRaw('missing.safetensors', rest, { variant: 'static', norm: 'half' });
    expect(() => loadNetFromStateFile(f)).toThrow(
      /missing.safetensors: .*\n.*missing key 'backbone\.layer1\.1\.conv2\.weight' \(expected shape \[64,64,3,3\]\)/,
    );
  });

  it('refuses a wrong shape, naming key, shape and expected shape', () => {
    const wrong = tf.zeros([10, 64]);
    const f = writeRaw('shape.safetensors', { ...state, 'dc.weight': wrong }, { variant: 'static', norm: 'half' });
    expect(() => loadNetFromStateFile(f)).toThrow(/'dc\.weight' has shape \[10,64\], expected \[10,64,1,1\]/);
    wrong.dispose();
  });

  it('refuses a normalisation other than the recorded one, and asks for what is not recorded', () => {
    expect(() => loadNetFromStateFile(file('static.safetensors'), { norm: 'imagenet' })).toThrow(
      /expects 'half'-normalised inputs.*use --norm half/,
    );
    const bare = writeRaw('nonorm.safetensors', state, { variant: 'static' });
    expect(() => loadNetFromStateFile(bare)).toThrow(/does not record its input normalisation: pass --norm/);
    const { ['dc.weight']: _dc, ...headless } = state;
    const f = writeRaw('headless.safetensors', headless);
    expect(() => loadNetFromStateFile(f, { norm: 'half' })).toThrow(/does not say which variant.*pass --variant/);
  });

  it('refuses a file that is not a state at all', () => {
    fs.writeFileSync(file('junk.safetensors'), 'not a tensor file');
    expect(() => loadNetFromStateFile(file('junk.safetensors'))).toThrow(/is not a valid safetensors file/);
  });
});

describe.skipIf(!hasRealData())('predictions on the official test images', () => {
  it('equal the net evaluated directly on the first N test images, with their labels', async () => {
    const result = await predict({ weights: file('static.safetensors'), limit: 24, batchSize: 10 });
    expect(result.logits.length).toBe(24);
    expect(result.logits.every((row) => row.length === 10)).toBe(true);
    const test = loadCifar10('test', { limit: 24 });
    expect(result.labels).toEqual(Array.from(test.labels));
    const net = createNet('static', { pretrained: false });
    net.loadStateDict(state);
    const x = imagesToTensor(
      test,
      Array.from({ length: 24 }, (_, i) => i),
      'half',
    );
    const direct = net.forward(x, false).arraySync();
    for (let i = 0; i < 24; i++) for (let j = 0; j < 10; j++) expect(result.logits[i][j]).toBeCloseTo(direct[i][j], 6);
    tf.dispose(x);
    net.dispose();
  });

  it('npm run predict writes {labels, logits} and exits non-zero with the message on refusal', () => {
    const tsx = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');
    const out = file('pred.json');
    const ok = spawnSync(
      tsx,
      [
        'scripts/predict.ts',
        '--weights',
        file('static.safetensors'),
        '--variant',
        'static',
        '--norm',
        'half',
        '--limit',
        '12',
        '--out',
        out,
      ],
      {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
      },
    );
    expect(ok.status, ok.stderr).toBe(0);
    const json = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(Object.keys(json)).toEqual(['labels', 'logits']);
    expect(json.labels).toEqual([3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9]);
    expect(json.logits.length).toBe(12);
    const refused = spawnSync(
      tsx,
      ['scripts/predict.ts', '--weights', file('static.safetensors'), '--variant', 'dynamic', '--out', file('no.json')],
      {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
      },
    );
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/holds a static-variant model, but the dynamic variant was asked for/);
    expect(fs.existsSync(file('no.json'))).toBe(false);
  });
});
