/**
 * npm run bench:data — how long the data path takes on this machine (a benchmark, not a test):
 * verifying the files, loading the whole training and test sets into uint8, the per-channel
 * statistics, and one epoch of float batches with and without augmentation.
 */
import { initBackend } from '../lib/runtime';
import * as tf from '@tensorflow/tfjs-core';
import { batches, channelStats, loadCifar10, verifyBatchFiles } from '../lib/data';
import { PATHS } from '../lib/config';

function time<T>(label: string, run: () => T): T {
  const started = process.hrtime.bigint();
  const result = run();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  console.log(`${label.padEnd(48)} ${(ms / 1000).toFixed(2).padStart(7)} s`);
  return result;
}

function main(): void {
  initBackend();
  console.log(`CIFAR-10 data path, ${PATHS.cifarDir}`);
  time('verify six files (stamp)', () => verifyBatchFiles(PATHS.cifarDir));
  time('verify six files (full sha256)', () => verifyBatchFiles(PATHS.cifarDir, { full: true }));
  const train = time('load train, 50,000 images -> uint8 HWC', () => loadCifar10('train'));
  time('load test, 10,000 images -> uint8 HWC', () => loadCifar10('test'));
  const stats = time('channel mean/std of train', () => channelStats(train));
  console.log(
    `  mean ${stats.mean.map((v) => v.toFixed(4)).join(' ')}  std ${stats.std.map((v) => v.toFixed(4)).join(' ')}`,
  );
  for (const augment of [false, true]) {
    time(`one epoch of float batches (128, shuffle${augment ? ', augment' : ''})`, () => {
      for (const batch of batches(train, { batchSize: 128, norm: 'imagenet', shuffle: true, seed: 1, augment })) {
        tf.dispose([batch.x, batch.y]);
      }
    });
  }
  console.log(
    `heap used ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB, rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`,
  );
}

main();
