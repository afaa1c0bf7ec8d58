// tfjs-node 4.22.0 on the Node lines that removed util.isNullOrUndefined / util.isArray (23+):
// lib/runtime/node-compat puts them back before the native package loads. The child-process
// checks need a Node >= 23: the one running the tests (CI's Node 26 run), else the Node 26 that
// .ci/run fetches into the cache (scripts/fetch-node.sh).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { PATHS } from '../lib/config';
import { REMOVED_UTIL_FUNCTIONS, restoreRemovedUtilFunctions } from '../lib/runtime/node-compat';

const major = (version: string) => Number(version.replace(/^v/, '').split('.')[0]);

/** A Node binary from the line that removed the functions, if there is one here. */
function modernNode(): string | undefined {
  if (major(process.version) >= 23) return process.execPath;
  const dir = path.join(PATHS.cache, 'node');
  const found = (fs.existsSync(dir) ? fs.readdirSync(dir) : [])
    .filter((v) => major(v) >= 23 && fs.existsSync(path.join(dir, v, 'bin', 'node')))
    .sort((a, b) => major(b) - major(a));
  return found.length ? path.join(dir, found[0], 'bin', 'node') : undefined;
}

const node = modernNode();
if (!node)
  console.warn(
    'node-compat: no Node >= 23 here (run bash scripts/fetch-node.sh 26.12.1): child-process checks skipped',
  );

function run(code: string): { status: number | null; out: string } {
  const r = spawnSync(node!, ['--import', 'tsx', '-e', code], {
    cwd: PATHS.root,
    encoding: 'utf8',
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
  });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

describe('restoreRemovedUtilFunctions', () => {
  it('sets the two functions with their old meaning, once, also over deprecated ones (Node 22)', () => {
    const target: Record<string, unknown> = {};
    expect(restoreRemovedUtilFunctions(target)).toEqual(['isNullOrUndefined', 'isArray']);
    const { isNullOrUndefined, isArray } = target as typeof REMOVED_UTIL_FUNCTIONS;
    expect([null, undefined, 0, '', false, []].map(isNullOrUndefined)).toEqual([
      true,
      true,
      false,
      false,
      false,
      false,
    ]);
    expect([[], [1], {}, 'ab', null].map(isArray)).toEqual([true, true, false, false, false]);
    expect(restoreRemovedUtilFunctions(target)).toEqual([]);
    const deprecated = { isArray: () => true, isNullOrUndefined: () => true };
    expect(restoreRemovedUtilFunctions(deprecated)).toEqual(['isNullOrUndefined', 'isArray']);
    expect(deprecated.isArray).toBe(REMOVED_UTIL_FUNCTIONS.isArray);
  });

  it("has put them on Node's util module in this process (the backend is loaded)", () => {
    const util = require('util') as Record<string, unknown>;
    expect(util.isNullOrUndefined).toBe(REMOVED_UTIL_FUNCTIONS.isNullOrUndefined);
    expect(util.isArray).toBe(REMOVED_UTIL_FUNCTIONS.isArray);
  });
});

describe.skipIf(!node)(
  `tfjs-node on Node >= 23 (${node ? spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim() : 'none'})`,
  () => {
    it('fails at the first op without the shim: the bug is real on this Node', () => {
      const r = run(`
      const tf = require('@tensorflow/tfjs-node');
      tf.add(tf.scalar(1), tf.scalar(2)).dataSync();`);
      expect(r.status).not.toBe(0);
      expect(r.out).toMatch(/isNullOrUndefined\) is not a function/);
    });

    it('trains through initBackend: a convolution and its gradient run on the native backend', () => {
      const r = run(`
      const { initBackend, describeBackend } = require('./lib/runtime/backend.ts');
      const info = initBackend('native');
      const tf = require('@tensorflow/tfjs-core');
      const x = tf.ones([1, 4, 4, 2]);
      const g = tf.grad((w) => tf.conv2d(x, w, 1, 'valid').sum())(tf.ones([3, 3, 2, 1]));
      const y = tf.conv2d(x, tf.ones([3, 3, 2, 1]), 1, 'valid');
      console.log(describeBackend(info), y.dataSync()[0], g.sum().dataSync()[0]);`);
      expect(r.out).not.toMatch(/is not a function/);
      expect(r.status, r.out).toBe(0);
      // 3x3x2 ones over ones = 18 per output; 4 outputs each see every weight once -> gradient sum 4 * 18.
      expect(r.out).toMatch(/tensorflow \(@tensorflow\/tfjs-node, TensorFlow 2\.21\.\d+, CPU\) 18 72/);
    });
  },
);
