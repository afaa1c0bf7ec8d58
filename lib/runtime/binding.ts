/**
 * tfjs-node's binding: the one door every TensorFlow op of this project goes through (TF.js
 * kernels and lib/runtime/kernels' raw ops alike call its `executeOp`; tensors made from JavaScript
 * values go through `createTensor`). lib/runtime/op-profile times the calls; lib/runtime/graph records them.
 */
import * as tf from '@tensorflow/tfjs-core';

/** TensorFlow's C API enums (tensorflow/c/tf_datatype.h, tf_attrtype.h), as the binding uses them. */
export const TF_DTYPE = { float: 1, int32: 3, bool: 10, bfloat16: 14 } as const;
export const ATTR = { string: 0, int: 1, float: 2, bool: 3, type: 4, shape: 5 } as const;

/** An op attribute as the binding takes it (`type`: TensorFlow's TF_AttrType; a list when `value` is an array). */
export interface OpAttr {
  name: string;
  type: number;
  value: unknown;
}

/** A TensorFlow tensor handle as the binding describes it (`dtype`: TensorFlow's TF_DataType). */
export interface TensorMetadata {
  id: number;
  shape: number[];
  dtype: number;
}

/** The binding's op call. */
export type ExecuteOp = (name: string, attrs: OpAttr[], inputIds: number[], numOutputs: number) => TensorMetadata[];

type Binding = Record<string, unknown>;

/**
 * Runs `fn` with some of the binding's functions replaced by `wrap(binding)`'s (each may call
 * the original through the binding it is given). The binding object is frozen, so the backend
 * gets a copy with those functions swapped in, and its own back afterwards, also on error.
 * Needs the native backend; `what` names the caller in the error otherwise.
 */
export function withWrappedBinding<T>(what: string, wrap: (binding: Binding) => Binding, fn: () => T): T {
  const backend = tf.backend() as unknown as { binding?: Binding };
  if (tf.getBackend() !== 'tensorflow' || !backend.binding) {
    throw new Error(`${what} needs the native backend (tfjs-node); the active backend is '${tf.getBackend()}'`);
  }
  const binding = backend.binding;
  const copy: Binding = {};
  for (const key of Object.getOwnPropertyNames(binding)) {
    const v = binding[key];
    copy[key] = typeof v === 'function' ? v.bind(binding) : v;
  }
  Object.assign(copy, wrap(binding));
  backend.binding = copy;
  try {
    return fn();
  } finally {
    backend.binding = binding;
  }
}
