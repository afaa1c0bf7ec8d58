/**
 * Prediction from a saved model state: the first N official test images in evaluation mode,
 * as labels and logits. Used by `npm run predict` (scripts/predict.ts); the state may be an
 * exported model state or a training checkpoint (its optimizer moments are ignored).
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Architecture, architectureOf, createNet, type Net, readModelState } from '../model/index';
import { NORMALIZATIONS, NUM_CLASSES, parseChoice, VARIANTS, type NormName, type Variant } from '../config';
import type { Precision } from '../runtime/index';
import { loadCifar10 } from '../data/index';
import { recordsToTensors } from '../formats/index';
import { predictLogits } from './evaluate';

export interface LoadedNet {
  net: Net;
  variant: Variant;
  norm: NormName;
  metadata: Record<string, string>;
  /** What the file's checksum covered ('none': it carries none, e.g. exported before checksums). */
  checksum: 'file' | 'tensors' | 'none';
}

/**
 * A net holding the state in `file`, its checksum verified (lib/model/weights readModelState: a damaged
 * file is refused). `want.variant` / `want.norm` must agree with what the file
 * records (metadata, or the head's keys for the variant); either may be omitted when the file
 * records it. Refuses — naming the problem — a wrong variant or normalisation, a missing key or
 * a mis-shaped tensor.
 */
export function loadNetFromStateFile(file: string, want: { variant?: Variant; norm?: NormName } = {}): LoadedNet {
  const state = readModelState(file);
  if (want.variant && state.variant && want.variant !== state.variant) {
    throw new Error(
      `${file} holds a ${state.variant}-variant model, but the ${want.variant} variant was asked for: use --variant ${state.variant}`,
    );
  }
  if (want.norm && state.norm && want.norm !== state.norm) {
    throw new Error(
      `${file} expects '${state.norm}'-normalised inputs, but '${want.norm}' was asked for: use --norm ${state.norm}`,
    );
  }
  const variant = want.variant ?? state.variant;
  if (!variant)
    throw new Error(
      `${file} does not say which variant it holds (no metadata, no head tensors): pass --variant dynamic|static`,
    );
  const norm = want.norm ?? state.norm;
  if (!norm)
    throw new Error(
      `${file} does not record its input normalisation: pass --norm ${Object.keys(NORMALIZATIONS).join('|')}`,
    );
  const net = createNet(variant, { pretrained: false, architecture: savedArchitecture(state.metadata, file) });
  const tensors = recordsToTensors(state.tensors);
  try {
    net.loadStateDict(tensors);
  } catch (err) {
    net.dispose();
    throw new Error(`${file}: ${(err as Error).message}`);
  } finally {
    tf.dispose(Object.values(tensors));
  }
  return { net, variant, norm, metadata: state.metadata, checksum: state.checksum };
}

/**
 * The architecture a state file records: `architecture` metadata (an exported state), else the
 * `config` of a training checkpoint; the lab's net when it records neither (older files).
 */
function savedArchitecture(metadata: Record<string, string>, file = 'the state file'): Architecture {
  for (const key of ['architecture', 'config']) {
    if (metadata[key] === undefined) continue;
    try {
      return architectureOf(JSON.parse(metadata[key]) as Record<string, unknown>);
    } catch {
      throw new Error(`${file}: its '${key}' metadata is not JSON`);
    }
  }
  return architectureOf(undefined);
}

export interface PredictOptions {
  weights: string;
  variant?: Variant;
  norm?: NormName;
  /** The first `limit` official test images (default all 10,000). */
  limit?: number;
  batchSize?: number;
  /** CIFAR-10 folder (default PATHS.cifarDir). */
  dir?: string;
  /** The forward's precision (default fp32; lib/runtime/precision). */
  precision?: Precision;
  onProgress?: (done: number, total: number) => void;
}

export interface Predictions {
  /** The official labels of the images, in test-set order. */
  labels: number[];
  /** [N][10] evaluation-mode logits. */
  logits: number[][];
}

export async function predict(
  opts: PredictOptions,
): Promise<Predictions & { variant: Variant; norm: NormName; checksum: LoadedNet['checksum'] }> {
  if (opts.variant) parseChoice('variant', opts.variant, VARIANTS);
  if (opts.norm) parseChoice('norm', opts.norm, Object.keys(NORMALIZATIONS) as NormName[]);
  const batchSize = opts.batchSize ?? 500;
  if (!(Number.isInteger(batchSize) && batchSize > 0))
    throw new Error(`batch size must be a whole number > 0; got ${batchSize}`);
  const { net, variant, norm, checksum } = loadNetFromStateFile(opts.weights, opts);
  try {
    const test = loadCifar10('test', { dir: opts.dir, limit: opts.limit });
    const values = await predictLogits(net, test, {
      norm,
      batchSize,
      precision: opts.precision,
      onBatch: opts.onProgress,
    });
    const logits = Array.from({ length: test.count }, (_, i) =>
      Array.from(values.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES)),
    );
    return { labels: Array.from(test.labels), logits, variant, norm, checksum };
  } finally {
    net.dispose();
  }
}
