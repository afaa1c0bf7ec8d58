/**
 * The heads (lib/model/model describes the net): each scores the ten classes from the features
 * with ten 1×1 filters [10, 64] and one score predictor. The dynamic head generates its filters
 * from class embeddings; the static head learns them directly.
 *
 *   DynamicFilters  embed: Embedding(10, 128) → gen: Linear(128, 256) → ReLU → Linear(256, 64) → Tanh
 *   StaticFilters   dc: the filters themselves (PyTorch: a Conv2d(64, 10, 1) weight)
 *   ScorePredictor  score: Linear(64, 64) → ReLU → Linear(64, 1), on every class's flattened 8×8 map
 *
 * Each module names its parameters once, in entries(), with PyTorch's names and shapes. Declaring
 * a head makes no tensors (like PyTorch's meta device): its entries give the state's names and
 * shapes without a net. build() then makes the variables, each from its own seed stream, in the
 * entries' order (PyTorch's state order).
 */
import * as tf from '@tensorflow/tfjs-core';
import { EMBED_DIM, FEATURE_CHANNELS, FEATURE_SIZE, NUM_CLASSES, type Variant } from '../config';
import { deriveSeed, l2NormalizeRows, linear, mulberry32, randomNormal } from '../runtime/index';
import type { LinearActivation, Rng } from '../runtime/index';
import type { Architecture } from './architecture';
import { variableFrom } from './resnet';

/** Generator hidden width and score-predictor hidden width (the lab's recipe). */
const GEN_HIDDEN = 256;
const SCORE_HIDDEN = 64;

/** A parameter: its PyTorch shape and how it starts; its variable (internal `shape`) once built. */
export class Param {
  private built?: tf.Variable;
  constructor(
    readonly torchShape: number[],
    readonly init: (rng: Rng) => number,
    readonly shape = torchShape,
  ) {}

  get variable(): tf.Variable {
    if (!this.built) throw new Error('the head has no tensors yet: build() makes them');
    return this.built;
  }

  build(rng: Rng): void {
    const data = new Float32Array(this.shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = this.init(rng);
    this.built = variableFrom(tf.tensor(data, this.shape), true);
  }
}

/** One parameter of a head under its name below the module (`weight`, `gen.0.bias`). */
export interface HeadEntry {
  name: string;
  param: Param;
}

const prefixed = (prefix: string, entries: HeadEntry[]) => entries.map((e) => ({ ...e, name: `${prefix}.${e.name}` }));
/** PyTorch's default initialisation of linear and conv layers: U(−1/√fan_in, 1/√fan_in). */
function uniform(fanIn: number): (rng: Rng) => number {
  const bound = 1 / Math.sqrt(fanIn);
  return (rng) => (2 * rng() - 1) * bound;
}

/** nn.Linear(in, out): weight [out, in] (PyTorch's layout, applied with transposeB) and bias [out]. */
class Linear {
  readonly weight: Param;
  readonly bias: Param;

  constructor(inFeatures: number, outFeatures: number) {
    this.weight = new Param([outFeatures, inFeatures], uniform(inFeatures));
    this.bias = new Param([outFeatures], uniform(inFeatures));
  }

  /** x [n, in] → [n, out] (lib/runtime/kernels: one TensorFlow kernel or two, forward and backward). */
  apply(x: tf.Tensor2D, activation?: LinearActivation): tf.Tensor2D {
    return linear(x, this.weight.variable as tf.Tensor2D, this.bias.variable as tf.Tensor1D, activation);
  }

  entries(): HeadEntry[] {
    return [
      { name: 'weight', param: this.weight },
      { name: 'bias', param: this.bias },
    ];
  }
}

/** nn.Embedding(n, dim): weight [n, dim] ~ N(0, 1). */
class Embedding {
  readonly weight: Param;

  constructor(n: number, dim: number) {
    this.weight = new Param([n, dim], randomNormal);
  }

  entries(): HeadEntry[] {
    return [{ name: 'weight', param: this.weight }];
  }
}

/** The dynamic head's filters [10, 64], generated from the class embeddings (L2-normalised with filterNorm). */
class DynamicFilters {
  readonly embed = new Embedding(NUM_CLASSES, EMBED_DIM);
  // nn.Sequential(Linear, ReLU, Linear, Tanh): the linears are its layers 0 and 2.
  readonly gen = [new Linear(EMBED_DIM, GEN_HIDDEN), new Linear(GEN_HIDDEN, FEATURE_CHANNELS)] as const;

  constructor(readonly normalize: boolean) {}

  filters(): tf.Tensor2D {
    const h = this.gen[0].apply(this.embed.weight.variable as tf.Tensor2D, 'relu');
    const g = this.gen[1].apply(h, 'tanh'); // [10, 64]
    // F.normalize(g, dim=1): g / max(‖g‖, 1e-12).
    return this.normalize ? l2NormalizeRows(g) : g;
  }

  entries(): HeadEntry[] {
    return [
      ...prefixed('embed', this.embed.entries()),
      ...prefixed('gen.0', this.gen[0].entries()),
      ...prefixed('gen.2', this.gen[1].entries()),
    ];
  }
}

/** The static head's ten learned filters [10, 64] (L2-normalised with staticNorm). */
class StaticFilters {
  // nn.Conv2d(64, 10, 1, bias=False): [10, 64, 1, 1] in PyTorch, kept as [10, 64].
  readonly dc = new Param([NUM_CLASSES, FEATURE_CHANNELS, 1, 1], uniform(FEATURE_CHANNELS), [
    NUM_CLASSES,
    FEATURE_CHANNELS,
  ]);

  constructor(readonly normalize: boolean) {}

  filters(): tf.Tensor2D {
    const dc = this.dc.variable as tf.Tensor2D;
    return this.normalize ? l2NormalizeRows(dc) : (dc.clone() as tf.Tensor2D);
  }

  entries(): HeadEntry[] {
    return [{ name: 'dc.weight', param: this.dc }];
  }
}

/** Scores [n, 1] of flattened response maps [n, 64]: the same MLP for every class. */
class ScorePredictor {
  // nn.Sequential(Linear, ReLU, Linear): its layers 0 and 2.
  readonly layers = [new Linear(FEATURE_SIZE * FEATURE_SIZE, SCORE_HIDDEN), new Linear(SCORE_HIDDEN, 1)] as const;

  apply(maps: tf.Tensor2D): tf.Tensor2D {
    return this.layers[1].apply(this.layers[0].apply(maps, 'relu'));
  }

  entries(): HeadEntry[] {
    return [...prefixed('0', this.layers[0].entries()), ...prefixed('2', this.layers[1].entries())];
  }
}

/** A head: its filters, and the score predictor under `score.`. */
export class Head {
  readonly filters: DynamicFilters | StaticFilters;
  readonly score = new ScorePredictor();

  constructor(variant: Variant, architecture: Pick<Architecture, 'filterNorm' | 'staticNorm'>) {
    const dynamic = variant === 'dynamic';
    this.filters = dynamic ? new DynamicFilters(architecture.filterNorm) : new StaticFilters(architecture.staticNorm);
  }

  /** Every parameter under its state name, in PyTorch's order. */
  entries(): HeadEntry[] {
    return [...this.filters.entries(), ...prefixed('score', this.score.entries())];
  }

  /** Makes the variables: parameter k from seed stream (seed, 2, k). */
  build(seed: number): this {
    this.entries().forEach((e, k) => e.param.build(mulberry32(deriveSeed(seed, 2, k))));
    return this;
  }
}
