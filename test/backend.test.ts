import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import {
  TESTED_TENSORFLOW,
  activeBackend,
  assertFastBackend,
  checkLinkedLibraries,
  describeBackend,
  initBackend,
  untestedTensorflowWarning,
} from '../lib/runtime/backend';
import {
  TF_VERSION,
  judgeInstalled,
  parseArgs,
  planSteps,
  release,
  stockWarning,
} from '../scripts/native-backend-plan.mjs';

describe('backend', () => {
  it('runs on the native TensorFlow library, not the pure-JS backend', () => {
    const info = initBackend();
    console.log(`backend: ${describeBackend(info)}`);
    expect(tf.getBackend()).toBe('tensorflow');
    expect(info.fast).toBe(true);
    expect(info.tensorflowVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(activeBackend()).toBe(info);
  });

  it('computes a convolution on it', () => {
    const x = tf.ones([1, 4, 4, 2]);
    const w = tf.ones([3, 3, 2, 1]);
    const y = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid');
    expect(y.shape).toEqual([1, 2, 2, 1]);
    expect(Array.from(y.dataSync())).toEqual([18, 18, 18, 18]);
    tf.dispose([x, w, y]);
  });

  it('rejects a bogus backend choice with the valid ones named', () => {
    expect(() => initBackend('bogus')).toThrow(/DCF_BACKEND must be one of auto, gpu, native, cpu; got 'bogus'/);
  });

  it('refuses to switch backends once chosen', () => {
    expect(() => initBackend('cpu')).toThrow(/cannot switch to 'cpu'/);
  });

  it('refuses training on the pure-JS backend unless asked', () => {
    const slow = { ...initBackend(), name: 'cpu', fast: false };
    expect(() => assertFastBackend(slow)).toThrow(/refusing to train on the pure-JS 'cpu' backend/);
    expect(() => assertFastBackend(slow, true)).not.toThrow();
  });
});

describe('checkLinkedLibraries', () => {
  function depsWith(sizes: Record<string, number>, actual: Record<string, number>): string {
    const deps = fs.mkdtempSync(path.join(os.tmpdir(), 'deps-'));
    fs.mkdirSync(path.join(deps, 'lib'));
    fs.writeFileSync(path.join(deps, 'dcf-manifest.json'), JSON.stringify({ files: sizes }));
    for (const [name, size] of Object.entries(actual))
      fs.writeFileSync(path.join(deps, 'lib', name), Buffer.alloc(size));
    return deps;
  }

  it('accepts libraries of the recorded sizes', () => {
    expect(() => checkLinkedLibraries(depsWith({ 'a.so': 10 }, { 'a.so': 10 }))).not.toThrow();
  });

  it('names a truncated library and says how to repair it', () => {
    const deps = depsWith({ 'libtensorflow_cc.so.2': 100 }, { 'libtensorflow_cc.so.2': 40 });
    expect(() => checkLinkedLibraries(deps)).toThrow(
      /libtensorflow_cc\.so\.2 is damaged \(40 bytes, expected 100\).*npm run setup/,
    );
  });

  it('names a missing library', () => {
    expect(() => checkLinkedLibraries(depsWith({ 'b.so': 5 }, {}))).toThrow(/b\.so is missing.*npm run setup/);
  });
});

describe('untestedTensorflowWarning', () => {
  it('is silent on the tested TensorFlow 2.21 and on the pure-JS backend', () => {
    expect(untestedTensorflowWarning('2.21.0')).toBeUndefined();
    expect(untestedTensorflowWarning('2.21.1')).toBeUndefined();
    expect(untestedTensorflowWarning('n/a')).toBeUndefined();
  });

  it('names the version, the tested one and the command for any other TensorFlow', () => {
    const w = untestedTensorflowWarning('2.9.1');
    expect(w).toMatch(/TensorFlow 2\.9\.1, which this project has not been tested with/);
    expect(w).toMatch(/tested on TensorFlow 2\.21 only/);
    expect(w).toMatch(
      /Run `npm run setup` to build .* against TensorFlow 2\.21 \(the C library of the tensorflow-cpu wheel\)/,
    );
    expect(untestedTensorflowWarning('2.210.0')).toBeDefined();
    expect(untestedTensorflowWarning('3.21.0')).toBeDefined();
  });

  it('warns when the version cannot be read, and sends the GPU package to its own set-up', () => {
    expect(untestedTensorflowWarning('unknown')).toMatch(/TensorFlow of unknown version \('unknown'\)/);
    expect(untestedTensorflowWarning('2.9.1', '@tensorflow/tfjs-node-gpu')).toMatch(
      /`npm run setup -- --gpu`.*tensorflow wheel/,
    );
  });

  it('agrees with the TensorFlow set-up builds against', () => {
    expect(TF_VERSION.startsWith(`${TESTED_TENSORFLOW}.`)).toBe(true);
  });

  it('is silent on the backend these tests run on (set-up built it against the tested TensorFlow)', () => {
    expect(untestedTensorflowWarning(initBackend().tensorflowVersion, initBackend().package)).toBeUndefined();
  });
});

describe('native backend set-up (scripts/native-backend-plan.mjs)', () => {
  const ok = (version: string) => ({ ok: true as const, version });
  const broken = { ok: false as const, error: 'cannot open shared object file' };

  it('reads its flags', () => {
    expect(parseArgs([])).toEqual({ gpu: false, force: false, stock: false, unknown: [] });
    expect(parseArgs(['--gpu', '--stock-libtensorflow', '--bogus'])).toEqual({
      gpu: true,
      force: false,
      stock: true,
      unknown: ['--bogus'],
    });
  });

  it('compares releases, not strings', () => {
    expect(release('2.21.0')).toBe('2.21.0');
    expect(release('2.21.0-rc1')).toBe('2.21.0');
    expect(release('unknown')).toBeNull();
    expect(judgeInstalled(ok('2.21.0-dev'), '2.21.0').keep).toBe(true);
  });

  it('keeps a working addon linked against the wanted TensorFlow', () => {
    expect(
      planSteps({ stock: false, force: false, installed: ok('2.21.0'), wanted: TF_VERSION, cached: true }),
    ).toEqual(['keep']);
  });

  it('replaces a working addon linked against another TensorFlow (an old stock 2.9.1 download)', () => {
    expect(judgeInstalled(ok('2.9.1'), TF_VERSION)).toEqual({
      keep: false,
      reason: 'it is linked against TensorFlow 2.9.1, not 2.21.0',
    });
    expect(planSteps({ stock: false, force: false, installed: ok('2.9.1'), wanted: TF_VERSION, cached: true })).toEqual(
      ['restore-cache', 'build-from-wheel'],
    );
    expect(
      planSteps({ stock: false, force: false, installed: ok('2.9.1'), wanted: TF_VERSION, cached: false }),
    ).toEqual(['build-from-wheel']);
  });

  it('builds from the wheel by default and never tries the stock download unless asked', () => {
    for (const installed of [null, broken, ok('2.9.1'), ok('2.21.0')]) {
      for (const force of [false, true]) {
        for (const cached of [false, true]) {
          const steps = planSteps({ stock: false, force, installed, wanted: TF_VERSION, cached });
          expect(steps).not.toContain('stock-download');
          expect(steps.at(-1)).toMatch(/^(keep|build-from-wheel)$/);
        }
      }
    }
    expect(planSteps({ stock: false, force: true, installed: null, wanted: TF_VERSION, cached: true })).toEqual([
      'build-from-wheel',
    ]);
  });

  it('uses the stock download only with --stock-libtensorflow, and then nothing else', () => {
    expect(planSteps({ stock: true, force: false, installed: ok('2.21.0'), wanted: '2.9.1', cached: true })).toEqual([
      'stock-download',
    ]);
    expect(planSteps({ stock: true, force: false, installed: broken, wanted: '2.9.1', cached: true })).toEqual([
      'stock-download',
    ]);
    expect(planSteps({ stock: true, force: false, installed: ok('2.9.1'), wanted: '2.9.1', cached: true })).toEqual([
      'keep',
    ]);
    expect(stockWarning('2.9.1')).toMatch(
      /^UNTESTED: .*stock libtensorflow 2\.9\.1.*tested on TensorFlow 2\.21\.0 only.*npm run setup` without --stock-libtensorflow/,
    );
  });
});
