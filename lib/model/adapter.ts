/**
 * A small trainable adapter between a frozen backbone and the head (the frozen-backbone fix):
 *
 *   features [batch, h, w, 64] → conv 3×3 (64→64, pad 1, no bias) → BatchNorm → + features → ReLU
 *
 * PyTorch names under `adapter.`: conv.weight [64, 64, 3, 3], bn.weight, bn.bias,
 * bn.running_mean, bn.running_var, bn.num_batches_tracked; in PyTorch: `relu(x + bn(conv(x)))`.
 *
 * BatchNorm's γ starts at 0 (zero-init residual, as torchvision's `zero_init_residual`): the
 * adapter starts as the identity (the backbone's features are post-ReLU, so relu(x + 0) = x), so
 * a frozen net with an adapter starts exactly where the frozen net without one starts, and
 * training can only add to it. After the first step γ ≠ 0 and the convolution learns too.
 * The adapter always trains and its BatchNorm uses batch statistics in training, whatever the
 * backbone's freezing: it is the part meant to adapt the features to CIFAR-10.
 */
import * as tf from '@tensorflow/tfjs-core';
import { FEATURE_CHANNELS } from '../config';
import { addRelu, deriveSeed, mulberry32, randomNormal } from '../runtime/index';
import { BatchNorm2d, convBn, variableFrom, type BackboneEntry, type BnMode } from './resnet';

export class Adapter {
  readonly conv: tf.Variable; // [3, 3, 64, 64] HWIO
  readonly bn: BatchNorm2d;

  /** Convolution kaiming-normal (fan_out, ReLU) like torchvision; BatchNorm γ = 0, β = 0. */
  constructor(seed: number, channels = FEATURE_CHANNELS) {
    const shape = [3, 3, channels, channels];
    const std = Math.sqrt(2 / (channels * 9));
    const rng = mulberry32(deriveSeed(seed, 0xada97));
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = randomNormal(rng) * std;
    this.conv = variableFrom(tf.tensor(data, shape), true);
    this.bn = new BatchNorm2d(channels);
    tf.tidy(() => this.bn.weight.assign(tf.zerosLike(this.bn.weight)));
  }

  /** relu(x + BN(conv(x))) of features x [batch, h, w, 64]; 'train' updates BatchNorm's running statistics. */
  apply(x: tf.Tensor4D, mode: BnMode): tf.Tensor4D {
    return tf.tidy(() => addRelu(convBn(x, this.conv, this.bn, 1, mode, false), x));
  }

  /** Every tensor under its name below `adapter.` (kinds as the backbone's: conv, bn-param, bn-buffer). */
  entries(): BackboneEntry[] {
    return [
      { name: 'conv.weight', variable: this.conv, kind: 'conv' },
      { name: 'bn.weight', variable: this.bn.weight, kind: 'bn-param' },
      { name: 'bn.bias', variable: this.bn.bias, kind: 'bn-param' },
      { name: 'bn.running_mean', variable: this.bn.runningMean, kind: 'bn-buffer' },
      { name: 'bn.running_var', variable: this.bn.runningVar, kind: 'bn-buffer' },
    ];
  }
}
