// lib/runtime/op-profile: per-op timing of a real training step on the native backend, and the binding
// left as it was afterwards (also when the step throws).
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { Adam } from '../lib/train/adam';
import { createNet } from '../lib/model/model';
import { formatOpProfile, profileOps } from '../lib/runtime/op-profile';
import { TrainStep } from '../lib/train/train-step';

const binding = () => (tf.backend() as unknown as { binding: { executeOp: unknown } }).binding;

describe('profileOps', () => {
  it('times every TensorFlow op of a training step of the lab net, convolutions by shape', () => {
    const net = createNet('dynamic', { pretrained: false, seed: 0 });
    const trainable = net.trainable();
    const adam = new Adam(trainable, { lr: 1e-3 });
    const step = new TrainStep(net, adam, 0, { graph: false }); // eager: one binding call per op
    const x = tf.randomNormal([8, 32, 32, 3]) as tf.Tensor4D;
    const y = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32');
    const before = binding();
    try {
      const p = profileOps(() => tf.dispose(step.run(x, y, 1e-3)), { steps: 2, warmup: 1 });
      const calls = (op: string) => p.ops.find((o) => o.op === op)?.calls ?? 0;
      // The stem (7×7, stride 2 → [8,16,16,64]) and layer1's four 3×3 convolutions ([8,8,8,64]).
      expect(calls('Conv2D [8,16,16,64]')).toBe(1);
      expect(calls('Conv2D [8,8,8,64]')).toBe(4);
      expect(calls('Conv2DBackpropFilter [7,7,3,64]')).toBe(1);
      expect(calls('Conv2DBackpropFilter [3,3,64,64]')).toBe(4);
      // The images are data, not a parameter: no gradient is computed for the stem's input.
      expect(calls('Conv2DBackpropInput [8,32,32,3]')).toBe(0);
      expect(calls('FusedBatchNormGradV3')).toBe(5);
      expect(p.ops.every((o) => o.ms >= 0)).toBe(true);
      expect(p.opMs).toBeGreaterThan(0);
      expect(p.opMs).toBeLessThanOrEqual(p.stepMs);
      expect(p.outsideMs).toBeCloseTo(p.stepMs - p.opMs, 6);
      const text = formatOpProfile(p, 3);
      expect(text).toHaveLength(1 + 3 + 1 + 2);
      expect(text[text.length - 1]).toContain('step');
      expect(binding()).toBe(before);
    } finally {
      tf.dispose([x, y]);
      adam.dispose();
      net.dispose();
    }
  });

  it('restores the binding when the step throws, and rejects a bad step count', () => {
    const before = binding();
    let calls = 0;
    expect(() =>
      profileOps(
        () => {
          if (++calls > 1) throw new Error('boom');
        },
        { steps: 3, warmup: 1 },
      ),
    ).toThrow('boom');
    expect(binding()).toBe(before);
    expect(() => profileOps(() => undefined, { steps: 0 })).toThrow(/steps must be a positive integer/);
  });
});
