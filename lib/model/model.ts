/**
 * The lab's network: ResNet-18 features (lib/model/resnet) and one of two heads that score each of
 * the ten classes from its response map.
 *
 * Dynamic head (the lab's model):
 *   embed [10, 128] → gen: Linear(128, 256) → ReLU → Linear(256, 64) → Tanh → filters [10, 64]
 *   each filter L2-normalised → 1×1 convolution of the features [batch, 8, 8, 64] (no bias)
 *   → response maps [batch, 10, 8, 8] / √64 → flatten 64 → score: Linear(64, 64) → ReLU →
 *   Linear(64, 1) → logits [batch, 10].
 * Static head (the comparison "without the dynamic mechanism"): the ten 1×1 filters `dc`
 *   [10, 64] are parameters trained directly — no embeddings, generator or normalisation —
 *   followed by the same /√64 and the same score predictor. It needs one filter PER CLASS:
 *   a single shared filter with the one-output score predictor would compute the same map and
 *   hence the same score for every class, and the logits could not tell classes apart.
 *
 * Architecture options (lib/model/architecture; the defaults are the lab's net, used by the
 * experiments): no L2 normalisation of the generated filters, no /√64, bilinear upsampling of
 * the input before the backbone, and a trainable adapter after it (lib/model/adapter).
 *
 * All ten classes run in one batched matrix product (equal to the lab's loop over classes).
 * The generated filters are computed inside the forward pass from the embeddings and the
 * generator, so the loss's gradient reaches both (copying them into a conv layer's weights
 * would cut it).
 *
 * State: named tensors with PyTorch's names and layouts (see `stateDict`), so that a state file
 * loads into the PyTorch reference module (python/reference.py) and back.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Adapter } from './adapter';
import {
  architectureDifferences,
  architectureOf,
  architectureProblems,
  LAB_ARCHITECTURE,
  type Architecture,
} from './architecture';
import { FEATURE_CHANNELS, FEATURE_SIZE, NUM_CLASSES, PATHS, type Freeze, type Variant } from '../config';
import { Head } from './head';
import { deriveSeed } from '../runtime/index';
import { BatchNorm2d, ResNet18Stem, hwioToOihw, oihwToHwio, type BnMode } from './resnet';
import { checkState, expectedStateShapes, partOf, trainsUnder, type ParameterInfo } from './state';
import { readPretrainedBackbone } from './weights';
import { recordToTensor } from '../formats/index';

// The state's names and shapes without tensors (lib/model/state), part of the net's face.
export { checkState, describeState, expectedStateShapes, isCounter, trainsUnder, variantOfState } from './state';
export type { ParameterInfo } from './state';

/** Tensors by PyTorch name in PyTorch layout (OIHW convs, [out, in] linears). */
export type NamedTensors = Record<string, tf.Tensor>;

/** Response maps are divided by √(channels) = √64 = 8. */
const MAP_SCALE = 1 / Math.sqrt(FEATURE_CHANNELS);

export interface Net {
  readonly variant: Variant;
  readonly freeze: Freeze;
  /** The architecture options (LAB_ARCHITECTURE for the lab's net). */
  readonly architecture: Architecture;
  /**
   * Logits [batch, 10] of images [batch, 32, 32, 3] (normalised). training=true: BatchNorm uses
   * batch statistics and updates its running statistics (momentum 0.1), except with freeze
   * 'all', which keeps BatchNorm in evaluation mode. No data leaves the device.
   * `filters` (evaluation only): the head's filters from headFilters(), computed once and reused
   * across batches, so that the generator does not run for every batch.
   */
  forward(x: tf.Tensor4D, training: boolean, opts?: { filters?: tf.Tensor2D }): tf.Tensor2D;
  /**
   * What the head sees before pooling: backbone features [batch, 8·u, 8·u, 64] of the input
   * upsampled by u (architecture.upsample; [batch, 8, 8, 64] for the lab's net), after the
   * adapter when there is one (evaluation mode unless training).
   */
  features(x: tf.Tensor4D, training?: boolean): tf.Tensor4D;
  /** Evaluation-mode response maps [batch, 10, 8, 8] (after /√64 unless turned off) and scores [batch, 10]. */
  responseMaps(x: tf.Tensor4D, opts?: { filters?: tf.Tensor2D }): { maps: tf.Tensor4D; scores: tf.Tensor2D };
  /** The ten 1×1 filters [10, 64] (dynamic: generated, L2-normalised unless filterNorm is off; static: learned, L2-normalised with staticNorm), before /√64. */
  classFilters(): tf.Tensor2D;
  /**
   * The filters exactly as the head applies them to the features [10, 64]: classFilters() times
   * 1/√64 (unless responseScale is off). They depend on the parameters only, never on the
   * image: compute them once and pass them to forward/responseMaps for inference.
   */
  headFilters(): tf.Tensor2D;
  /** The variables the optimizer updates, keyed by PyTorch name (respects freeze). */
  trainable(): Map<string, tf.Variable>;
  /** Every variable of the state, buffers and BatchNorm counters included: all a training step may change. */
  variables(): tf.Variable[];
  /** Whole state (parameters + BN buffers incl. num_batches_tracked) as new tensors, PyTorch names/layouts. */
  stateDict(): NamedTensors;
  /** Checks every key and shape (clear error naming the key), then assigns. Nothing changes on error. */
  loadStateDict(state: NamedTensors): void;
  /** A tensor in this net's internal layout (e.g. a gradient or Adam moment) → PyTorch layout. */
  toTorchLayout(name: string, t: tf.Tensor): tf.Tensor;
  /** A tensor in PyTorch layout → this net's internal layout (the inverse of toTorchLayout). */
  fromTorchLayout(name: string, t: tf.Tensor): tf.Tensor;
  /** Every tensor of the state with its part, PyTorch shape and whether it is trained (for summaries). */
  describe(): ParameterInfo[];
  dispose(): void;
}

/** How a parameter is stored internally relative to PyTorch. */
type Layout = 'same' | 'conv' | 'dc';

interface Slot {
  name: string;
  variable: tf.Variable;
  part: string;
  kind: 'parameter' | 'buffer';
  layout: Layout;
  torchShape: number[];
}

class LabNet implements Net {
  readonly backbone: ResNet18Stem;
  readonly adapter?: Adapter;
  private readonly slots: Slot[] = [];
  private readonly byName = new Map<string, Slot>();
  private readonly head: Head;

  constructor(
    readonly variant: Variant,
    readonly freeze: Freeze,
    seed: number,
    readonly architecture: Architecture = { ...LAB_ARCHITECTURE },
  ) {
    this.backbone = new ResNet18Stem(deriveSeed(seed, 1));
    // The adapter draws from its own seed stream: the backbone's and the head's initialisation
    // are the same with or without it.
    if (architecture.adapter) this.adapter = new Adapter(deriveSeed(seed, 3));
    const modules: [string, ReturnType<ResNet18Stem['entries']>][] = [['backbone', this.backbone.entries()]];
    if (this.adapter) modules.push(['adapter', this.adapter.entries()]);
    for (const [prefix, entries] of modules) {
      for (const e of entries) {
        const name = `${prefix}.${e.name}`;
        e.variable.trainable = trainsUnder(name, freeze);
        this.add(
          name,
          e.variable,
          partOf(name),
          e.kind === 'bn-buffer' ? 'buffer' : 'parameter',
          e.kind === 'conv' ? 'conv' : 'same',
        );
      }
    }
    // The head draws from seed streams (seed, 2, k), its parameters in PyTorch's order.
    this.head = new Head(variant, architecture).build(seed);
    for (const { name, param } of this.head.entries()) {
      // 'dc': the static filters, kept [10, 64] (PyTorch [10, 64, 1, 1]).
      this.add(name, param.variable, partOf(name), 'parameter', param.shape === param.torchShape ? 'same' : 'dc');
    }
    const shapes = expectedStateShapes(variant, architecture);
    for (const s of this.slots) s.torchShape = shapes.get(s.name)!;
  }

  private add(
    name: string,
    variable: tf.Variable,
    part: string,
    kind: 'parameter' | 'buffer' = 'parameter',
    layout: Layout = 'same',
  ) {
    const slot: Slot = { name, variable, part, kind, layout, torchShape: [] };
    this.slots.push(slot);
    this.byName.set(name, slot);
  }

  private bnMode(training: boolean): BnMode {
    // Only 'all' fixes BatchNorm's statistics; with requires_grad = False PyTorch's BN still trains its statistics.
    return training && this.freeze !== 'all' ? 'train' : 'eval';
  }

  features(x: tf.Tensor4D, training = false): tf.Tensor4D {
    checkInput(x);
    return tf.tidy(() => {
      const u = this.architecture.upsample;
      // Bilinear like PyTorch's F.interpolate(mode='bilinear', align_corners=False).
      const input = u === 1 ? x : tf.image.resizeBilinear(x, [x.shape[1] * u, x.shape[2] * u], false, true);
      const f = this.backbone.apply(input, this.bnMode(training)); // [b, 8u, 8u, 64]
      // The adapter always trains (batch statistics in training), even with a frozen backbone.
      return this.adapter ? this.adapter.apply(f, training ? 'train' : 'eval') : f;
    });
  }

  classFilters(): tf.Tensor2D {
    return tf.tidy(() => this.head.filters.filters());
  }

  headFilters(): tf.Tensor2D {
    // Scale the ten filters instead of the maps: /8 is exact in floating point.
    return tf.tidy(
      () =>
        (this.architecture.responseScale ? tf.mul(this.classFilters(), MAP_SCALE) : this.classFilters()) as tf.Tensor2D,
    );
  }

  /**
   * The head's input [batch, 8, 8, 64]: the features, average-pooled by the upsampling factor.
   *
   * Why pool back to 8×8 rather than score 16×16 maps with a 256-input MLP: the head — its
   * parameters, their count and their names — stays exactly the lab's, so a run with upsampling
   * differs from one without only in what the backbone sees (objects at twice the scale, closer
   * to the ImageNet scale its filters were trained on, and finer 16×16 features). A 1×1
   * convolution commutes with average pooling, so this equals averaging each 16×16 response map
   * over 2×2 cells: the maps keep the finer features' evidence, and checkpoints and the
   * visualisation keep their 8×8 maps. A 256-input score MLP would change the head's capacity
   * (4× the first layer) at the same time, and the comparison would no longer isolate the input.
   */
  private pooled(features: tf.Tensor4D): tf.Tensor4D {
    const u = this.architecture.upsample;
    return u === 1 ? features : tf.avgPool(features, u, u, 'valid');
  }

  /** Response maps as [batch, 10, 64] (flattened 8×8, /√64 unless turned off) from features. */
  private maps(features: tf.Tensor4D, given?: tf.Tensor2D): tf.Tensor3D {
    const pooled = this.pooled(features);
    const [b, h, w, c] = pooled.shape;
    const filters = given ?? this.headFilters(); // [10, 64]
    // [b·h·w, C] × [10, C]ᵀ → [b, h·w, 10]: every class's 1×1 convolution in one product.
    const m = tf.matMul(tf.reshape(pooled, [b * h * w, c]) as tf.Tensor2D, filters, false, true);
    return tf.transpose(tf.reshape(m, [b, h * w, NUM_CLASSES]), [0, 2, 1]) as tf.Tensor3D; // [b, 10, h·w]
  }

  /** Scores [batch, 10] from maps [batch, 10, 64]: the same MLP applied to every class's map. */
  private scores(maps: tf.Tensor3D): tf.Tensor2D {
    const [b, k, n] = maps.shape;
    const s = this.head.score.apply(tf.reshape(maps, [b * k, n]) as tf.Tensor2D); // [b·10, 1]
    return tf.reshape(s, [b, k]) as tf.Tensor2D;
  }

  /** Checks filters passed in for inference: the right shape, and never in training (the generator must be in the graph). */
  private givenFilters(training: boolean, filters: tf.Tensor2D | undefined): tf.Tensor2D | undefined {
    if (!filters) return undefined;
    if (training)
      throw new Error(
        'precomputed filters are for evaluation only: in training the filters must be computed in the graph so that their gradient reaches the generator',
      );
    if (filters.rank !== 2 || filters.shape[0] !== NUM_CLASSES || filters.shape[1] !== FEATURE_CHANNELS) {
      throw new Error(`filters must be headFilters()' [${NUM_CLASSES}, ${FEATURE_CHANNELS}]; got [${filters.shape}]`);
    }
    return filters;
  }

  forward(x: tf.Tensor4D, training: boolean, opts: { filters?: tf.Tensor2D } = {}): tf.Tensor2D {
    const filters = this.givenFilters(training, opts.filters);
    return tf.tidy(() => this.scores(this.maps(this.features(x, training), filters)));
  }

  responseMaps(x: tf.Tensor4D, opts: { filters?: tf.Tensor2D } = {}): { maps: tf.Tensor4D; scores: tf.Tensor2D } {
    const filters = this.givenFilters(false, opts.filters);
    return tf.tidy(() => {
      const m = this.maps(this.features(x, false), filters);
      return {
        maps: tf.reshape(m, [x.shape[0], NUM_CLASSES, FEATURE_SIZE, FEATURE_SIZE]) as tf.Tensor4D,
        scores: this.scores(m),
      };
    });
  }

  trainable(): Map<string, tf.Variable> {
    return new Map(
      this.slots.filter((s) => s.kind === 'parameter' && s.variable.trainable).map((s) => [s.name, s.variable]),
    );
  }

  toTorchLayout(name: string, t: tf.Tensor): tf.Tensor {
    const slot = this.slot(name);
    if (slot.layout === 'conv') return hwioToOihw(t);
    if (slot.layout === 'dc') return tf.reshape(t, slot.torchShape);
    return t.clone();
  }

  fromTorchLayout(name: string, t: tf.Tensor): tf.Tensor {
    const slot = this.slot(name);
    if (slot.layout === 'conv') return oihwToHwio(t);
    if (slot.layout === 'dc') return tf.reshape(t, slot.variable.shape);
    return t.clone();
  }

  private slot(name: string): Slot {
    const s = this.byName.get(name);
    if (!s) throw new Error(`the ${this.variant} net has no tensor named '${name}'`);
    return s;
  }

  /** Every BatchNorm layer under its full state prefix (`backbone.bn1`, …, `adapter.bn`). */
  private batchNorms(): [string, BatchNorm2d][] {
    const out: [string, BatchNorm2d][] = [...this.backbone.batchNorms()].map(([p, bn]): [string, BatchNorm2d] => [
      `backbone.${p}`,
      bn,
    ]);
    if (this.adapter) out.push(['adapter.bn', this.adapter.bn]);
    return out;
  }

  stateDict(): NamedTensors {
    const out: NamedTensors = {};
    for (const s of this.slots) out[s.name] = tf.tidy(() => this.toTorchLayout(s.name, s.variable));
    for (const [prefix, bn] of this.batchNorms()) {
      out[`${prefix}.num_batches_tracked`] = tf.scalar(bn.numBatchesTracked, 'int32');
    }
    return out;
  }

  loadStateDict(state: NamedTensors): void {
    const problems = checkState(state, this.variant, this.architecture);
    if (problems.length)
      throw new Error(`cannot load this state into the ${this.variant} net:\n  ${problems.join('\n  ')}`);
    const values = this.slots.map((s) =>
      tf.tidy(() => this.fromTorchLayout(s.name, tf.cast(state[s.name], 'float32'))),
    );
    this.slots.forEach((s, i) => s.variable.assign(values[i]));
    tf.dispose(values);
    for (const [prefix, bn] of this.batchNorms()) {
      const counter = state[`${prefix}.num_batches_tracked`];
      if (counter) bn.numBatchesTracked = counter.dataSync()[0];
    }
  }

  describe(): ParameterInfo[] {
    return this.slots.map((s) => ({
      name: s.name,
      part: s.part,
      shape: s.torchShape.slice(),
      size: s.torchShape.reduce((a, b) => a * b, 1),
      kind: s.kind,
      trainable: s.kind === 'parameter' && s.variable.trainable,
    }));
  }

  variables(): tf.Variable[] {
    return [...this.slots.map((s) => s.variable), ...this.batchNorms().map(([, bn]) => bn.batchesTracked)];
  }

  dispose(): void {
    for (const v of this.variables()) v.dispose();
  }
}

/** An error naming how a saved architecture differs from a net's, or undefined when they agree. */
export function architectureMismatch(saved: Architecture, net: Net, what: string): string | undefined {
  const diff = architectureDifferences(saved, net.architecture);
  if (diff.length === 0) return undefined;
  return `${what} was saved from another architecture than this net's (saved vs net): ${diff.map((d) => `${d.field}: ${JSON.stringify(d.a)} vs ${JSON.stringify(d.b)}`).join('; ')}`;
}

function checkInput(x: tf.Tensor): void {
  if (x.rank !== 4 || x.shape[3] !== 3 || x.dtype !== 'float32') {
    throw new Error(
      `the net takes float32 images [batch, height, width, 3] (NHWC, normalised); got ${x.dtype} [${x.shape}]`,
    );
  }
}

/**
 * A new net. `pretrained` (default: the shared ImageNet weights, PATHS.pretrained) loads the
 * backbone from a folded or unfolded safetensors file or torchvision's .pth (lib/model/weights);
 * false keeps the seeded torchvision-style initialisation. The head is always initialised from
 * `seed` like PyTorch's defaults. `freeze` (default 'none', the lab's instruction) fixes the
 * backbone's convolutions ('keep-bn') or everything in it including BatchNorm ('all').
 * `architecture` (default: the lab's net) changes the net for the experiments (lib/model/architecture).
 */
export function createNet(
  variant: Variant,
  opts: { seed?: number; pretrained?: string | false; freeze?: Freeze; architecture?: Partial<Architecture> } = {},
): Net {
  if (variant !== 'dynamic' && variant !== 'static')
    throw new Error(`variant must be 'dynamic' or 'static'; got '${variant}'`);
  const architecture = architectureOf(opts.architecture);
  const problems = architectureProblems(architecture, variant);
  if (problems.length) throw new Error(`invalid architecture for the ${variant} net:\n  ${problems.join('\n  ')}`);
  const net = new LabNet(variant, opts.freeze ?? 'none', opts.seed ?? 0, architecture);
  const file = opts.pretrained ?? PATHS.pretrained;
  if (file !== false) {
    try {
      const { tensors } = readPretrainedBackbone(file);
      const state = net.stateDict();
      const loaded: NamedTensors = {};
      for (const [k, r] of Object.entries(tensors)) loaded[`backbone.${k}`] = recordToTensor(r, k);
      try {
        net.loadStateDict({ ...state, ...loaded });
      } finally {
        tf.dispose([...Object.values(state), ...Object.values(loaded)]);
      }
    } catch (err) {
      net.dispose();
      throw err;
    }
  }
  return net;
}
