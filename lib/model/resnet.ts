/**
 * The backbone: torchvision's ResNet-18 up to and including `layer1`.
 *
 *   x [batch, 32, 32, 3]
 *   conv1 7×7 stride 2 pad 3 (3→64, no bias) → bn1 → ReLU          [batch, 16, 16, 64]
 *   max-pool 3×3 stride 2 pad 1                                     [batch,  8,  8, 64]
 *   layer1.0, layer1.1: BasicBlock (conv3×3 → BN → ReLU → conv3×3 → BN, + identity, ReLU)
 *   features                                                        [batch,  8,  8, 64]
 *
 * Tensors are NHWC and convolution weights HWIO inside TF.js; the names are torchvision's
 * (`conv1.weight`, `layer1.0.bn2.running_var`, …) and `backboneState` gives PyTorch's layouts.
 *
 * BatchNorm follows torch.nn.BatchNorm2d exactly: in training it normalises with the batch's
 * mean and BIASED variance and updates running_mean / running_var with momentum 0.1, the
 * variance UNBIASED (n / (n − 1)); in evaluation it uses the running statistics, ε = 1e-5.
 * Evaluation folds each BatchNorm into the convolution before it (one conv + bias per layer).
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  addRelu,
  batchNormTrain,
  deriveSeed,
  maxPool,
  mulberry32,
  randomNormal,
  relu as reluKernel,
} from '../runtime/index';

export const BN_EPS = 1e-5;

/** A variable holding `init` (which it takes over and disposes). */
export function variableFrom(init: tf.Tensor, trainable: boolean): tf.Variable {
  const v = tf.variable(init, trainable);
  init.dispose();
  return v;
}
const BN_MOMENTUM = 0.1;

/** One torch.nn.BatchNorm2d: affine parameters, running statistics and the batch counter. */
export class BatchNorm2d {
  readonly weight: tf.Variable; // γ [C]
  readonly bias: tf.Variable; // β [C]
  readonly runningMean: tf.Variable; // [C]
  readonly runningVar: tf.Variable; // [C]
  /**
   * PyTorch's num_batches_tracked: training-mode forward passes seen (informational). An int32
   * scalar variable rather than a JavaScript number, so that steps run as one TensorFlow graph
   * (lib/runtime/graph), which run no JavaScript, count too.
   */
  readonly batchesTracked: tf.Variable = variableFrom(tf.scalar(0, 'int32'), false);

  constructor(readonly channels: number) {
    this.weight = variableFrom(tf.ones([channels]), true);
    this.bias = variableFrom(tf.zeros([channels]), true);
    this.runningMean = variableFrom(tf.zeros([channels]), false);
    this.runningVar = variableFrom(tf.ones([channels]), false);
  }

  /**
   * Batch statistics: normalises x [batch, h, w, C] with the batch mean and biased variance,
   * and (when `update`) moves the running statistics towards them like PyTorch.
   */
  normaliseWithBatchStats(x: tf.Tensor4D, update: boolean): tf.Tensor4D {
    // One fused kernel forward and one backward on the native backend (lib/runtime/kernels).
    const y = batchNormTrain(x, this.weight as tf.Tensor1D, this.bias as tf.Tensor1D, {
      eps: BN_EPS,
      running: update ? { mean: this.runningMean, variance: this.runningVar, momentum: BN_MOMENTUM } : undefined,
    });
    if (update) tf.tidy(() => this.batchesTracked.assign(tf.add(this.batchesTracked, tf.scalar(1, 'int32'))));
    return y;
  }

  /** Evaluation-mode BatchNorm as y = x·scale + shift, scale = γ/√(σ²+ε), shift = β − μ·scale. */
  evalScaleShift(): { scale: tf.Tensor1D; shift: tf.Tensor1D } {
    const scale = tf.mul(this.weight, tf.rsqrt(tf.add(this.runningVar, BN_EPS))) as tf.Tensor1D;
    const shift = tf.sub(this.bias, tf.mul(this.runningMean, scale)) as tf.Tensor1D;
    return { scale, shift };
  }

  get numBatchesTracked(): number {
    return this.batchesTracked.dataSync()[0];
  }

  set numBatchesTracked(n: number) {
    tf.tidy(() => this.batchesTracked.assign(tf.scalar(n, 'int32')));
  }

  variables(): tf.Variable[] {
    return [this.weight, this.bias, this.runningMean, this.runningVar];
  }
}

/** How the backbone's BatchNorm layers behave in one forward pass. */
export type BnMode =
  /** Batch statistics, running statistics updated (PyTorch's model.train()). */
  | 'train'
  /** Running statistics (PyTorch's model.eval()), BatchNorm folded into the convolutions. */
  | 'eval';

type Pad = [[number, number], [number, number], [number, number], [number, number]];
const STEM_PAD: Pad = [
  [0, 0],
  [3, 3],
  [3, 3],
  [0, 0],
];

/**
 * conv → BatchNorm (→ ReLU). `pad` 'same' is PyTorch's padding 1 for the stride-1 3×3 convs;
 * the stem pads explicitly because TF's 'same' pads asymmetrically at stride 2.
 */
export function convBn(
  x: tf.Tensor4D,
  w: tf.Variable,
  bn: BatchNorm2d,
  stride: number,
  mode: BnMode,
  relu: boolean,
): tf.Tensor4D {
  const filter = w as tf.Tensor4D; // HWIO
  if (mode === 'eval') {
    const { scale, shift } = bn.evalScaleShift();
    // Folding: conv(x, W)·scale + shift = conv(x, W·scale) + shift (scale per output channel).
    return tf.fused.conv2d({
      x,
      filter: tf.mul(filter, scale) as tf.Tensor4D,
      strides: stride,
      pad: stride === 1 ? 'same' : 'valid',
      bias: shift,
      activation: relu ? 'relu' : 'linear',
    });
  }
  const y = bn.normaliseWithBatchStats(tf.conv2d(x, filter, stride, stride === 1 ? 'same' : 'valid'), true);
  return relu ? reluKernel(y) : y;
}

/** torchvision's BasicBlock with 64 channels, stride 1 and identity shortcut. */
export class BasicBlock {
  readonly conv1: tf.Variable; // [3, 3, 64, 64] HWIO
  readonly bn1: BatchNorm2d;
  readonly conv2: tf.Variable;
  readonly bn2: BatchNorm2d;

  constructor(channels: number, init: (shape: number[]) => tf.Tensor) {
    this.conv1 = variableFrom(init([3, 3, channels, channels]), true);
    this.bn1 = new BatchNorm2d(channels);
    this.conv2 = variableFrom(init([3, 3, channels, channels]), true);
    this.bn2 = new BatchNorm2d(channels);
  }

  apply(x: tf.Tensor4D, mode: BnMode): tf.Tensor4D {
    const h = convBn(x, this.conv1, this.bn1, 1, mode, true);
    const y = convBn(h, this.conv2, this.bn2, 1, mode, false);
    return addRelu(y, x);
  }
}

/** One named tensor of the backbone: conv weights or BatchNorm parameters/buffers. */
export interface BackboneEntry {
  /** torchvision name, e.g. `layer1.0.conv2.weight`. */
  name: string;
  variable: tf.Variable;
  kind: 'conv' | 'bn-param' | 'bn-buffer';
}

/** ResNet-18's stem and layer1 (torchvision names, NHWC / HWIO inside). */
export class ResNet18Stem {
  readonly conv1: tf.Variable; // [7, 7, 3, 64] HWIO
  readonly bn1: BatchNorm2d;
  readonly layer1: [BasicBlock, BasicBlock];

  /**
   * Weights initialised like torchvision's ResNet: kaiming-normal (fan_out, ReLU) convs,
   * BatchNorm γ = 1, β = 0, running mean 0, variance 1. Seeded: the same seed gives the same net.
   */
  constructor(seed = 0) {
    let k = 0;
    const kaiming = (shape: number[]) => {
      // HWIO: fan_out = out_channels · kh · kw.
      const std = Math.sqrt(2 / (shape[3] * shape[0] * shape[1]));
      const rng = mulberry32(deriveSeed(seed, 0x5e5e7, k++));
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < data.length; i++) data[i] = randomNormal(rng) * std;
      return tf.tensor(data, shape);
    };
    this.conv1 = variableFrom(kaiming([7, 7, 3, 64]), true);
    this.bn1 = new BatchNorm2d(64);
    this.layer1 = [new BasicBlock(64, kaiming), new BasicBlock(64, kaiming)];
  }

  /** Features [batch, 8, 8, 64] of images [batch, 32, 32, 3] (any size divisible by 4 works). */
  apply(x: tf.Tensor4D, mode: BnMode): tf.Tensor4D {
    return tf.tidy(() => {
      let h = convBn(tf.pad(x, STEM_PAD), this.conv1, this.bn1, 2, mode, true); // [b, 16, 16, 64]
      h = maxPool(h, 3, 2, 1); // [b, 8, 8, 64], padded with −∞ like PyTorch
      for (const block of this.layer1) h = block.apply(h, mode);
      return h;
    });
  }

  /** Every tensor under torchvision's name, in torchvision's state_dict order. */
  entries(): BackboneEntry[] {
    const bn = (prefix: string, b: BatchNorm2d): BackboneEntry[] => [
      { name: `${prefix}.weight`, variable: b.weight, kind: 'bn-param' },
      { name: `${prefix}.bias`, variable: b.bias, kind: 'bn-param' },
      { name: `${prefix}.running_mean`, variable: b.runningMean, kind: 'bn-buffer' },
      { name: `${prefix}.running_var`, variable: b.runningVar, kind: 'bn-buffer' },
    ];
    const out: BackboneEntry[] = [{ name: 'conv1.weight', variable: this.conv1, kind: 'conv' }, ...bn('bn1', this.bn1)];
    this.layer1.forEach((block, i) => {
      out.push(
        { name: `layer1.${i}.conv1.weight`, variable: block.conv1, kind: 'conv' },
        ...bn(`layer1.${i}.bn1`, block.bn1),
      );
      out.push(
        { name: `layer1.${i}.conv2.weight`, variable: block.conv2, kind: 'conv' },
        ...bn(`layer1.${i}.bn2`, block.bn2),
      );
    });
    return out;
  }

  /** The BatchNorm layers by torchvision prefix (`bn1`, `layer1.0.bn1`, …). */
  batchNorms(): Map<string, BatchNorm2d> {
    return new Map<string, BatchNorm2d>([
      ['bn1', this.bn1],
      ...this.layer1.flatMap((b, i): [string, BatchNorm2d][] => [
        [`layer1.${i}.bn1`, b.bn1],
        [`layer1.${i}.bn2`, b.bn2],
      ]),
    ]);
  }

  dispose(): void {
    for (const e of this.entries()) e.variable.dispose();
  }
}

/** OIHW (PyTorch) → HWIO (TF.js) for convolution weights. */
export function oihwToHwio(w: tf.Tensor): tf.Tensor4D {
  return tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D;
}

/** HWIO (TF.js) → OIHW (PyTorch). */
export function hwioToOihw(w: tf.Tensor): tf.Tensor4D {
  return tf.transpose(w, [3, 2, 0, 1]) as tf.Tensor4D;
}

/** The torchvision shape (OIHW for convs) of every backbone tensor, by name. */
export function backboneShapes(): Map<string, number[]> {
  const shapes = new Map<string, number[]>([['conv1.weight', [64, 3, 7, 7]]]);
  const bn = (p: string) =>
    ['weight', 'bias', 'running_mean', 'running_var'].forEach((s) => shapes.set(`${p}.${s}`, [64]));
  bn('bn1');
  for (const i of [0, 1]) {
    shapes.set(`layer1.${i}.conv1.weight`, [64, 64, 3, 3]);
    bn(`layer1.${i}.bn1`);
    shapes.set(`layer1.${i}.conv2.weight`, [64, 64, 3, 3]);
    bn(`layer1.${i}.bn2`);
  }
  return shapes;
}
