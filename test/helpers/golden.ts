/**
 * Rebuilds the golden fixtures' weights and inputs (python/make_golden.py) bit for bit:
 * float32(offset + scale · (2u − 1)) with u the outputs of mulberry32(seed), computed in float64
 * and rounded once — exactly what python/reference.py's recipe_tensor does with numpy.
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { readSafetensors, recordToTensor, type TensorRecord } from '../../lib/formats/safetensors';
import type { Variant } from '../../lib/config';

/**
 * mulberry32, as the fixtures define it (a copy of lib/runtime/random's, so that a change there cannot
 * silently change the golden weights).
 */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function recipeTensor(shape: number[], seed: number, offset: number, scale: number): Float32Array {
  const rng = mulberry32(seed);
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i++) out[i] = offset + scale * (2 * rng() - 1);
  return out;
}

export interface Golden {
  variant: Variant;
  /** The model's state from the recipe, PyTorch names and layouts. */
  state: Record<string, tf.Tensor>;
  /** Inputs [4, 32, 32, 3] NHWC (the fixture's NCHW recipe, transposed). */
  x: tf.Tensor4D;
  labels: tf.Tensor1D;
  /** Everything PyTorch computed (PyTorch layouts): eval.*, train.*, grad.*, after_train.*. */
  expected: Record<string, TensorRecord>;
}

export function loadGolden(variant: Variant, shapes: Map<string, number[]>): Golden {
  const file = path.join(__dirname, '..', 'fixtures', `golden-${variant}.safetensors`);
  const { tensors, metadata } = readSafetensors(file);
  const recipe = JSON.parse(metadata.recipe) as Record<string, [number, number, number]>;
  const state: Record<string, tf.Tensor> = {};
  for (const [name, shape] of shapes) {
    if (!recipe[name]) throw new Error(`golden recipe lacks ${name}`);
    const [seed, offset, scale] = recipe[name];
    state[name] = tf.tensor(recipeTensor(shape, seed, offset, scale), shape);
  }
  const [seed, offset, scale] = JSON.parse(metadata.input_recipe) as [number, number, number];
  const inputShape = JSON.parse(metadata.input_shape) as number[];
  const nchw = tf.tensor(recipeTensor(inputShape, seed, offset, scale), inputShape);
  const x = tf.transpose(nchw, [0, 2, 3, 1]) as tf.Tensor4D;
  nchw.dispose();
  const labels = recordToTensor(tensors.labels) as tf.Tensor1D;
  return { variant, state, x, labels, expected: tensors };
}
