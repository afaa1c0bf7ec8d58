import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { activeBackend, assertFastBackend, checkLinkedLibraries, describeBackend, initBackend } from '../lib/backend';

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
    for (const [name, size] of Object.entries(actual)) fs.writeFileSync(path.join(deps, 'lib', name), Buffer.alloc(size));
    return deps;
  }

  it('accepts libraries of the recorded sizes', () => {
    expect(() => checkLinkedLibraries(depsWith({ 'a.so': 10 }, { 'a.so': 10 }))).not.toThrow();
  });

  it('names a truncated library and says how to repair it', () => {
    const deps = depsWith({ 'libtensorflow_cc.so.2': 100 }, { 'libtensorflow_cc.so.2': 40 });
    expect(() => checkLinkedLibraries(deps)).toThrow(/libtensorflow_cc\.so\.2 is damaged \(40 bytes, expected 100\).*npm run setup/);
  });

  it('names a missing library', () => {
    expect(() => checkLinkedLibraries(depsWith({ 'b.so': 5 }, {}))).toThrow(/b\.so is missing.*npm run setup/);
  });
});
