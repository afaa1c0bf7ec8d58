/**
 * Fused training kernels for the backbone: each layer is one or two TensorFlow kernels forward
 * and backward instead of the dozens of small element-wise ops TF.js composes them from.
 *
 *   batchNormTrain  FusedBatchNormV3 (batch statistics AND PyTorch's running-statistics update,
 *                   momentum, unbiased variance) / FusedBatchNormGradV3
 *   relu, addRelu   Relu (AddV2 + Relu) / ReluGrad  (TF.js's ReLU gradient is 6 ops: Step is
 *                   composed of IsNan, Greater, Fill, Select, …)
 *   maxPool         PyTorch's −∞ padding; oneDNN's max-pool and its workspace-based gradient
 *                   where TensorFlow has them, else MaxPool / MaxPoolGrad with EXPLICIT padding
 *   sparseSoftmaxCrossEntropy  SparseSoftmaxCrossEntropyWithLogits: loss and its gradient in one
 *                   kernel (the lab's loss is lib/train's crossEntropy, built on it)
 *   linear          nn.Linear (+ ReLU/tanh): MatMul, BiasAdd, activation / ReluGrad or TanhGrad,
 *                   2 MatMuls, BiasAddGrad (TF.js's ReLU gradient alone is 6 ops)
 *   l2NormalizeRows F.normalize(x, dim=1) with its closed-form gradient
 *   adamUpdate      Adam over all parameters at once, as raw TensorFlow ops (no TF.js engine
 *                   bookkeeping per op: the update is ~90 small kernels, dispatch-bound)
 *
 * On the native TensorFlow backend (tfjs-node) these are TF.js kernels registered here that run
 * TensorFlow's own ops by name; on any other backend, or with `useFusedKernels(false)`, each
 * function computes the same thing from public TF.js ops (the reference the tests compare to).
 * Shapes are NHWC.
 *
 * Convolutions need nothing here: TF.js's conv2d already runs TensorFlow's Conv2D and its two
 * backprop kernels. Keep them on 'same' (stride 1) or an explicit tf.pad + 'valid': with
 * oneDNN (TF_ENABLE_ONEDNN_OPTS=1) TensorFlow only takes its fast path for SAME/VALID, and
 * Conv2DBackpropFilter with EXPLICIT padding measured 1.5–3× slower.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { OpAttr, TensorMetadata } from './binding';
import { readEnv } from '../config';

// ---- the native backend's op runner ---------------------------------------------------------

/** The part of tfjs-node's backend used here (see its dist/nodejs_kernel_backend.js). */
interface NativeBackend {
  binding: {
    TF_ATTR_TYPE: number;
    TF_ATTR_FLOAT: number;
    TF_ATTR_INT: number;
    TF_ATTR_BOOL: number;
    TF_ATTR_STRING: number;
    TF_FLOAT: number;
    TF_INT32: number;
    createTensor(shape: number[], dtype: number, values: Float32Array | Int32Array): number;
    deleteTensor(id: number): void;
    executeOp(name: string, attrs: OpAttr[], inputIds: number[], numOutputs: number): TensorMetadata[];
  };
  executeMultipleOutputs(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[], numOutputs: number): tf.Tensor[];
  getInputTensorIds(tensors: tf.TensorInfo[]): number[];
  createOutputTensor(meta: TensorMetadata): tf.Tensor;
}

/** Undefined until first asked: DCF_FUSED (lib/config readEnv) decides, not the import. */
let fusedEnabled: boolean | undefined;

/**
 * Turns the fused kernels on or off (for comparisons and tests; DCF_FUSED=0 starts with them
 * off). Returns the previous setting. They are only ever used on the 'tensorflow' backend.
 */
export function useFusedKernels(on: boolean): boolean {
  const before = fusedEnabled ?? readEnv().fused;
  fusedEnabled = on;
  return before;
}

/** True when the functions below run TensorFlow's fused kernels (native backend, enabled). */
export function fusedKernelsActive(): boolean {
  return (fusedEnabled ??= readEnv().fused) && tf.getBackend() === 'tensorflow';
}

function nativeBackend(backend: unknown): NativeBackend {
  return backend as NativeBackend;
}

/** Attribute builders for one op call. */
function attrs(be: NativeBackend) {
  const b = be.binding;
  return {
    type: (name: string, dtype: 'float32' | 'int32' = 'float32'): OpAttr => ({
      name,
      type: b.TF_ATTR_TYPE,
      value: dtype === 'float32' ? b.TF_FLOAT : b.TF_INT32,
    }),
    float: (name: string, value: number): OpAttr => ({ name, type: b.TF_ATTR_FLOAT, value }),
    int: (name: string, value: number): OpAttr => ({ name, type: b.TF_ATTR_INT, value }),
    ints: (name: string, value: number[]): OpAttr => ({ name, type: b.TF_ATTR_INT, value }),
    bool: (name: string, value: boolean): OpAttr => ({ name, type: b.TF_ATTR_BOOL, value }),
    string: (name: string, value: string): OpAttr => ({ name, type: b.TF_ATTR_STRING, value }),
  };
}

function run(be: NativeBackend, op: string, opAttrs: OpAttr[], inputs: tf.TensorInfo[], numOutputs = 1): tf.Tensor[] {
  return be.executeMultipleOutputs(op, opAttrs, inputs, numOutputs);
}

function run1(be: NativeBackend, op: string, opAttrs: OpAttr[], inputs: tf.TensorInfo[]): tf.Tensor {
  return run(be, op, opAttrs, inputs, 1)[0];
}

/** The active backend as tfjs-node's (only called when the 'tensorflow' backend is active). */
function current(): NativeBackend {
  return nativeBackend(tf.backend());
}

/** `pad` on each side of h and w → TF's explicit_paddings for NHWC. */
function explicitPaddings(pad: number): number[] {
  return [0, 0, pad, pad, pad, pad, 0, 0];
}

const BACKEND = 'tensorflow';

// Registered once per process: a second copy of this module (e.g. a notebook reloading lib/)
// reuses the first copy's kernels instead of replacing them with a warning.
function registerKernel(config: tf.KernelConfig): void {
  if (!tf.getKernel(config.kernelName, config.backendName)) tf.registerKernel(config);
}

function registerGradient(config: tf.GradConfig): void {
  if (!tf.getGradient(config.kernelName)) tf.registerGradient(config);
}

// ---- BatchNorm in training mode -------------------------------------------------------------

const BN_KERNEL = 'DcfBatchNormTrain';
interface BnAttrs {
  epsilon: number;
  /** PyTorch's momentum (TensorFlow's exponential_avg_factor); 1 = batch statistics only. */
  momentum: number;
}

registerKernel({
  kernelName: BN_KERNEL,
  backendName: BACKEND,
  kernelFunc: ({ inputs, attrs: a, backend }) => {
    const be = nativeBackend(backend);
    const at = attrs(be);
    const { x, scale, offset, mean, variance } = inputs as Record<string, tf.TensorInfo>;
    // Outputs: y, new running mean, new running variance (unbiased, as PyTorch), and the batch
    // mean / biased variance / workspace that FusedBatchNormGradV3 needs.
    return run(
      be,
      'FusedBatchNormV3',
      [
        at.type('T'),
        at.type('U'),
        at.float('epsilon', (a as unknown as BnAttrs).epsilon),
        at.float('exponential_avg_factor', (a as unknown as BnAttrs).momentum),
        at.string('data_format', 'NHWC'),
        at.bool('is_training', true),
      ],
      [x, scale, offset, mean, variance],
      6,
    );
  },
});

registerGradient({
  kernelName: BN_KERNEL,
  inputsToSave: ['x', 'scale'],
  outputsToSave: [false, false, false, true, true, true],
  gradFunc: (dys, saved, a) => {
    const dy = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor;
    const [x, scale, saveMean, saveVar, reserve] = saved;
    const be = current();
    const at = attrs(be);
    // One kernel gives all three gradients; the thunks below hand them out.
    const [dx, dScale, dOffset] = run(
      be,
      'FusedBatchNormGradV3',
      [
        at.type('T'),
        at.type('U'),
        at.float('epsilon', (a as unknown as BnAttrs).epsilon),
        at.string('data_format', 'NHWC'),
        at.bool('is_training', true),
      ],
      [dy, x, scale, saveMean, saveVar, reserve],
      5,
    );
    return {
      x: () => dx,
      scale: () => dScale,
      offset: () => dOffset,
      // The running statistics are not on any loss's path (they only feed the next update).
      mean: () => tf.zerosLike(saveMean),
      variance: () => tf.zerosLike(saveMean),
    };
  },
});

export interface BatchNormTrainOptions {
  /** ε added to the variance (PyTorch: 1e-5). */
  eps: number;
  /** Running statistics to update in place like torch.nn.BatchNorm2d (momentum 0.1, unbiased variance). */
  running?: { mean: tf.Variable; variance: tf.Variable; momentum: number };
}

/**
 * Training-mode BatchNorm of x [batch, h, w, C] over (batch, h, w): normalises with the batch
 * mean and biased variance, then γ·x̂ + β. When `running` is given, also moves the running
 * statistics towards the batch's (mean; variance with n/(n−1)) — that update is not
 * differentiated. Gradients flow to x, γ and β.
 */
export function batchNormTrain(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  opts: BatchNormTrainOptions,
): tf.Tensor4D {
  const n = x.shape[0] * x.shape[1] * x.shape[2];
  if (opts.running && n < 2) {
    throw new Error(`BatchNorm in training mode needs more than one value per channel; got input [${x.shape}]`);
  }
  if (!fusedKernelsActive()) return batchNormTrainComposite(x, gamma, beta, opts);
  const { running } = opts;
  const outs = tf.engine().runKernel(
    BN_KERNEL,
    {
      x,
      scale: gamma,
      offset: beta,
      // Without a running update, TensorFlow ignores mean/variance (factor 1 = batch statistics only).
      mean: running?.mean ?? gamma,
      variance: running?.variance ?? gamma,
    },
    { epsilon: opts.eps, momentum: running?.momentum ?? 1 } satisfies BnAttrs as unknown as tf.NamedAttrMap,
  ) as tf.Tensor[];
  const [y, newMean, newVar, ...rest] = outs;
  if (running) {
    running.mean.assign(newMean);
    running.variance.assign(newVar);
  }
  tf.dispose([newMean, newVar, ...rest]);
  return y as tf.Tensor4D;
}

/** batchNormTrain from public TF.js ops (any backend). */
function batchNormTrainComposite(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  opts: BatchNormTrainOptions,
): tf.Tensor4D {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  if (opts.running) {
    const { mean: rm, variance: rv, momentum: m } = opts.running;
    const n = x.shape[0] * x.shape[1] * x.shape[2];
    const [newMean, newVar] = tf.tidy(() => [
      tf.add(tf.mul(rm, 1 - m), tf.mul(mean, m)),
      tf.add(tf.mul(rv, 1 - m), tf.mul(variance, (m * n) / (n - 1))),
    ]);
    rm.assign(newMean);
    rv.assign(newVar);
    tf.dispose([newMean, newVar]);
  }
  const y = tf.batchNorm4d(x, mean as tf.Tensor1D, variance as tf.Tensor1D, beta, gamma, opts.eps);
  tf.dispose([mean, variance]);
  return y;
}

// ---- ReLU, and the residual add + ReLU --------------------------------------------------------

const RELU_KERNEL = 'DcfRelu';
const ADD_RELU_KERNEL = 'DcfAddRelu';

registerKernel({
  kernelName: RELU_KERNEL,
  backendName: BACKEND,
  kernelFunc: ({ inputs, backend }) => {
    const be = nativeBackend(backend);
    return run1(be, 'Relu', [attrs(be).type('T')], [inputs.x as tf.TensorInfo]);
  },
});

registerKernel({
  kernelName: ADD_RELU_KERNEL,
  backendName: BACKEND,
  kernelFunc: ({ inputs, backend }) => {
    const be = nativeBackend(backend);
    const T = attrs(be).type('T');
    const sum = run1(be, 'AddV2', [T], [inputs.a as tf.TensorInfo, inputs.b as tf.TensorInfo]);
    const y = run1(be, 'Relu', [T], [sum]);
    sum.dispose();
    return y;
  },
});

/** dy · [y > 0] in one kernel (y, the ReLU's output, is > 0 exactly where its input is). */
function reluGrad(dy: tf.Tensor, y: tf.Tensor): tf.Tensor {
  const be = current();
  return run1(be, 'ReluGrad', [attrs(be).type('T')], [dy, y]);
}

registerGradient({
  kernelName: RELU_KERNEL,
  outputsToSave: [true],
  gradFunc: (dy, saved) => ({ x: () => reluGrad(dy as tf.Tensor, saved[0]) }),
});

registerGradient({
  kernelName: ADD_RELU_KERNEL,
  outputsToSave: [true],
  gradFunc: (dy, saved) => {
    const g = reluGrad(dy as tf.Tensor, saved[0]);
    // Both inputs get the same gradient; a clone, so that each can be disposed on its own.
    return { a: () => g, b: () => g.clone() };
  },
});

/** max(x, 0). */
export function relu<T extends tf.Tensor>(x: T): T {
  if (!fusedKernelsActive()) return tf.relu(x);
  return tf.engine().runKernel(RELU_KERNEL, { x }, {}) as T;
}

/** max(a + b, 0): a residual block's ending. */
export function addRelu<T extends tf.Tensor>(a: T, b: T): T {
  if (!fusedKernelsActive()) return tf.tidy(() => tf.relu(tf.add(a, b))) as T;
  return tf.engine().runKernel(ADD_RELU_KERNEL, { a, b }, {}) as T;
}

// ---- max-pool with explicit (PyTorch) padding ---------------------------------------------

const MAX_POOL_KERNEL = 'DcfMaxPool';
interface PoolAttrs {
  size: number;
  stride: number;
  pad: number;
}

function poolAttrs(be: NativeBackend, size: number, stride: number, pad: number): OpAttr[] {
  const at = attrs(be);
  return [
    at.type('T'),
    at.ints('ksize', [1, size, size, 1]),
    at.ints('strides', [1, stride, stride, 1]),
    at.string('padding', 'EXPLICIT'),
    at.ints('explicit_paddings', explicitPaddings(pad)),
    at.string('data_format', 'NHWC'),
  ];
}

registerKernel({
  kernelName: MAX_POOL_KERNEL,
  backendName: BACKEND,
  kernelFunc: ({ inputs, attrs: a, backend }) => {
    const be = nativeBackend(backend);
    const { size, stride, pad } = a as unknown as PoolAttrs;
    return run1(be, 'MaxPool', poolAttrs(be, size, stride, pad), [inputs.x as tf.TensorInfo]);
  },
});

registerGradient({
  kernelName: MAX_POOL_KERNEL,
  inputsToSave: ['x'],
  outputsToSave: [true],
  gradFunc: (dy, saved, a) => {
    const [x, y] = saved;
    const { size, stride, pad } = a as unknown as PoolAttrs;
    return {
      x: () => {
        const be = current();
        return run1(be, 'MaxPoolGrad', poolAttrs(be, size, stride, pad), [x, y, dy as tf.Tensor]);
      },
    };
  },
});

// oneDNN's pooling (TensorFlow's internal _MklNativeMaxPool / _MklNativeMaxPoolGrad): its
// backward pass uses the forward pass's argmax workspace and measured ~5× faster than Eigen's
// MaxPoolGrad, which recomputes the argmax. It takes only SAME/VALID padding, so the input is
// padded with −∞ first (PadV2) and the gradient sliced back. Used when TensorFlow has it (x86
// builds do) and TF_ENABLE_ONEDNN_OPTS is not 0; checked once.
const MAX_POOL_ONEDNN_KERNEL = 'DcfMaxPoolOneDnn';
const ONEDNN_LABEL = 'MklNameChangeOp';

function oneDnnPoolAttrs(be: NativeBackend, size: number, stride: number): OpAttr[] {
  const at = attrs(be);
  return [
    at.type('T'),
    at.string('_kernel', ONEDNN_LABEL),
    at.ints('ksize', [1, size, size, 1]),
    at.ints('strides', [1, stride, stride, 1]),
    at.string('padding', 'VALID'),
    at.string('data_format', 'NHWC'),
    at.bool('workspace_enabled', true),
  ];
}

let oneDnnPool: boolean | undefined;

/**
 * Which max-pool the native backend uses: true = oneDNN's when TensorFlow has it (the default),
 * false = Eigen's. For tests and comparisons; returns whether oneDNN's was in use before.
 */
export function useOneDnnMaxPool(on: boolean): boolean {
  const before = oneDnnPool !== false;
  oneDnnPool = on ? undefined : false;
  return before;
}

/** Which max-pool maxPool() runs now: TensorFlow's oneDNN or Eigen kernels, or TF.js ops. */
export function maxPoolImplementation(): 'onednn' | 'eigen' | 'tfjs' {
  if (!fusedKernelsActive()) return 'tfjs';
  return oneDnnPoolAvailable(current()) ? 'onednn' : 'eigen';
}

/** Whether TensorFlow runs oneDNN's max-pool here (tried once on a tiny input). */
function oneDnnPoolAvailable(be: NativeBackend): boolean {
  if (oneDnnPool === undefined) {
    oneDnnPool = false;
    if (readEnv().oneDnn) {
      const b = be.binding;
      const x = b.createTensor([1, 3, 3, 1], b.TF_FLOAT, new Float32Array(9));
      try {
        for (const out of b.executeOp('_MklNativeMaxPool', oneDnnPoolAttrs(be, 3, 2), [x], 2)) b.deleteTensor(out.id);
        oneDnnPool = true;
      } catch {
        // Not built with oneDNN: Eigen's MaxPool / MaxPoolGrad below.
      } finally {
        b.deleteTensor(x);
      }
    }
  }
  return oneDnnPool;
}

registerKernel({
  kernelName: MAX_POOL_ONEDNN_KERNEL,
  backendName: BACKEND,
  kernelFunc: ({ inputs, attrs: a, backend }) => {
    const be = nativeBackend(backend);
    const b = be.binding;
    const at = attrs(be);
    const { size, stride, pad } = a as unknown as PoolAttrs;
    const paddings = b.createTensor([4, 2], b.TF_INT32, Int32Array.of(0, 0, pad, pad, pad, pad, 0, 0));
    const lowest = b.createTensor([], b.TF_FLOAT, Float32Array.of(-Infinity));
    try {
      const [xId] = be.getInputTensorIds([inputs.x as tf.TensorInfo]);
      const [padded] = b.executeOp('PadV2', [at.type('T'), at.type('Tpaddings', 'int32')], [xId, paddings, lowest], 1);
      const [y, workspace] = b.executeOp('_MklNativeMaxPool', oneDnnPoolAttrs(be, size, stride), [padded.id], 2);
      // Outputs: y, the argmax workspace (uint8; TF.js calls it int32 and never reads it), the padded input.
      return [y, workspace, padded].map((meta) => be.createOutputTensor(meta));
    } finally {
      b.deleteTensor(paddings);
      b.deleteTensor(lowest);
    }
  },
});

registerGradient({
  kernelName: MAX_POOL_ONEDNN_KERNEL,
  inputsToSave: ['x'],
  outputsToSave: [true, true, true],
  gradFunc: (dys, saved, a) => {
    const dy = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor;
    const [x, y, workspace, padded] = saved;
    const { size, stride, pad } = a as unknown as PoolAttrs;
    return {
      x: () => {
        const be = current();
        const dPadded = run1(be, '_MklNativeMaxPoolGrad', oneDnnPoolAttrs(be, size, stride), [
          padded,
          y,
          dy,
          workspace,
        ]);
        const dx = tf.slice(dPadded, [0, pad, pad, 0], x.shape);
        dPadded.dispose();
        return dx;
      },
    };
  },
});

/**
 * Max-pool of x [batch, h, w, C] with a size×size window, `stride`, and `pad` on every side
 * that never wins (PyTorch's MaxPool2d padding, −∞).
 */
export function maxPool(x: tf.Tensor4D, size: number, stride: number, pad: number): tf.Tensor4D {
  if (!fusedKernelsActive()) {
    return tf.tidy(() => {
      const padded =
        pad > 0
          ? tf.pad(
              x,
              [
                [0, 0],
                [pad, pad],
                [pad, pad],
                [0, 0],
              ],
              -Infinity,
            )
          : x;
      return tf.maxPool(padded, size, stride, 'valid');
    });
  }
  const attrs = { size, stride, pad } satisfies PoolAttrs as unknown as tf.NamedAttrMap;
  if (!oneDnnPoolAvailable(current())) return tf.engine().runKernel(MAX_POOL_KERNEL, { x }, attrs) as tf.Tensor4D;
  const [y, ...rest] = tf.engine().runKernel(MAX_POOL_ONEDNN_KERNEL, { x }, attrs) as tf.Tensor[];
  tf.dispose(rest);
  return y as tf.Tensor4D;
}

// ---- cross-entropy ----------------------------------------------------------------------------

const XENT_KERNEL = 'DcfSparseCrossEntropy';

registerKernel({
  kernelName: XENT_KERNEL,
  backendName: BACKEND,
  kernelFunc: ({ inputs, backend }) => {
    const be = nativeBackend(backend);
    const at = attrs(be);
    // Outputs: per-example loss [batch] and its gradient with respect to the logits [batch, k].
    return run(
      be,
      'SparseSoftmaxCrossEntropyWithLogits',
      [at.type('T'), at.type('Tlabels', 'int32')],
      [inputs.logits as tf.TensorInfo, inputs.labels as tf.TensorInfo],
      2,
    );
  },
});

registerGradient({
  kernelName: XENT_KERNEL,
  outputsToSave: [false, true],
  gradFunc: (dys, saved) => {
    const dLoss = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor; // [batch]
    return {
      logits: () => tf.mul(saved[0], tf.expandDims(dLoss, 1)),
      labels: () => tf.zerosLike(dLoss),
    };
  },
});

/**
 * Mean cross-entropy of logits [batch, k] against integer labels [batch] (PyTorch's
 * F.cross_entropy without label smoothing): the kernel under lib/train's crossEntropy, which is
 * the loss to call.
 */
export function sparseSoftmaxCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  if (labels.dtype !== 'int32')
    throw new Error(`crossEntropy: labels must be int32 class numbers; got ${labels.dtype}`);
  if (!fusedKernelsActive()) {
    return tf.tidy(
      () => tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(labels, logits.shape[1]), tf.logSoftmax(logits)), 1))) as tf.Scalar,
    );
  }
  return tf.tidy(() => {
    const [perExample] = tf.engine().runKernel(XENT_KERNEL, { logits, labels }, {}) as tf.Tensor[];
    return tf.mean(perExample) as tf.Scalar;
  });
}

// ---- linear layers and L2 normalisation (the heads' small ops) ------------------------------------

export type LinearActivation = 'linear' | 'relu' | 'tanh';
const LINEAR_KERNEL = 'DcfLinear';
interface LinearAttrs {
  activation: LinearActivation;
}

registerKernel({
  kernelName: LINEAR_KERNEL,
  backendName: BACKEND,
  kernelFunc: ({ inputs, attrs: a, backend }) => {
    const be = nativeBackend(backend);
    const at = attrs(be);
    const { activation } = a as unknown as LinearAttrs;
    const { x, weight, bias } = inputs as Record<string, tf.TensorInfo>;
    // MatMul (oneDNN) + BiasAdd, then the activation. (tfjs-node's binding cannot pass the
    // string-list attribute _FusedMatMul needs.)
    const T = [at.type('T')];
    const z = run1(
      be,
      'MatMul',
      [at.type('T'), at.bool('transpose_a', false), at.bool('transpose_b', true)],
      [x, weight],
    );
    const zb = run1(be, 'BiasAdd', [at.type('T'), at.string('data_format', 'NHWC')], [z, bias]);
    z.dispose();
    if (activation === 'linear') return zb;
    const y = run1(be, activation === 'relu' ? 'Relu' : 'Tanh', T, [zb]);
    zb.dispose();
    return y;
  },
});

registerGradient({
  kernelName: LINEAR_KERNEL,
  inputsToSave: ['x', 'weight'],
  outputsToSave: [true],
  gradFunc: (dy, saved, a) => {
    const [x, weight, y] = saved;
    const { activation } = a as unknown as LinearAttrs;
    const be = current();
    const at = attrs(be);
    const T = [at.type('T')];
    // The gradient at the pre-activation, shared by the three inputs' gradients.
    const g =
      activation === 'relu'
        ? run1(be, 'ReluGrad', T, [dy as tf.Tensor, y])
        : activation === 'tanh'
          ? run1(be, 'TanhGrad', T, [y, dy as tf.Tensor])
          : (dy as tf.Tensor);
    const matMul = (p: tf.TensorInfo, q: tf.TensorInfo, ta: boolean, tb: boolean) =>
      run1(be, 'MatMul', [at.type('T'), at.bool('transpose_a', ta), at.bool('transpose_b', tb)], [p, q]);
    return {
      x: () => matMul(g, weight, false, false), // [n, out]·[out, in]
      weight: () => matMul(g, x, true, false), // [n, out]ᵀ·[n, in]
      bias: () => run1(be, 'BiasAddGrad', [at.type('T'), at.string('data_format', 'NHWC')], [g]),
    };
  },
});

/**
 * PyTorch's nn.Linear (+ activation): x [n, in] · weightᵀ [out, in] + bias [out] → [n, out],
 * then ReLU or tanh if asked. Weights stay in PyTorch's [out, in] layout.
 */
export function linear(
  x: tf.Tensor2D,
  weight: tf.Tensor2D,
  bias: tf.Tensor1D,
  activation: LinearActivation = 'linear',
): tf.Tensor2D {
  if (!fusedKernelsActive()) {
    return tf.tidy((): tf.Tensor2D => {
      const y = tf.fused.matMul({
        a: x,
        b: weight,
        transposeB: true,
        bias,
        activation: activation === 'relu' ? 'relu' : 'linear',
      });
      return (activation === 'tanh' ? tf.tanh(y) : y) as tf.Tensor2D;
    });
  }
  return tf.engine().runKernel(LINEAR_KERNEL, { x, weight, bias }, {
    activation,
  } satisfies LinearAttrs as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

const L2_KERNEL = 'DcfL2NormalizeRows';
/** PyTorch's F.normalize default ε: rows shorter than this are divided by ε instead. */
const L2_EPS = 1e-12;

registerKernel({
  kernelName: L2_KERNEL,
  backendName: BACKEND,
  kernelFunc: ({ inputs, backend }) => {
    const be = nativeBackend(backend);
    const at = attrs(be);
    const b = be.binding;
    const T = [at.type('T')];
    const axis = b.createTensor([1], b.TF_INT32, Int32Array.of(1));
    const eps = b.createTensor([], b.TF_FLOAT, Float32Array.of(L2_EPS));
    const temps: number[] = [];
    try {
      const [xId] = be.getInputTensorIds([inputs.x as tf.TensorInfo]);
      const op = (name: string, opAttrs: OpAttr[], ids: number[]) => b.executeOp(name, opAttrs, ids, 1)[0];
      const sq = op('Square', T, [xId]);
      temps.push(sq.id);
      const sum = op('Sum', [at.bool('keep_dims', true), at.type('T'), at.type('Tidx', 'int32')], [sq.id, axis]);
      temps.push(sum.id);
      const norm = op('Sqrt', T, [sum.id]);
      temps.push(norm.id);
      const denom = op('Maximum', T, [norm.id, eps]); // [k, 1]
      const y = op('RealDiv', T, [xId, denom.id]);
      // Outputs: the rows divided by max(‖row‖, ε), and that divisor (for the gradient).
      return [be.createOutputTensor(y), be.createOutputTensor(denom)];
    } finally {
      for (const id of [axis, eps, ...temps]) b.deleteTensor(id);
    }
  },
});

registerGradient({
  kernelName: L2_KERNEL,
  outputsToSave: [true, true],
  gradFunc: (dys, saved) => {
    const dy = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor;
    const [y, denom] = saved;
    // d(x/‖x‖) = (dy − y·Σ(dy·y)) / ‖x‖ where ‖x‖ > ε; below ε the divisor is the constant ε.
    return {
      x: () =>
        tf.tidy(() => {
          const along = tf.mul(y, tf.sum(tf.mul(dy, y), 1, true));
          const active = tf.cast(tf.greater(denom, L2_EPS), 'float32');
          return tf.div(tf.sub(dy, tf.mul(along, active)), denom);
        }),
    };
  },
});

/** Each row of x [k, d] divided by max(its L2 norm, 1e-12): PyTorch's F.normalize(x, dim=1). */
export function l2NormalizeRows(x: tf.Tensor2D): tf.Tensor2D {
  if (!fusedKernelsActive()) {
    return tf.tidy(() => tf.div(x, tf.maximum(tf.norm(x, 'euclidean', 1, true), L2_EPS)) as tf.Tensor2D);
  }
  const [y, denom] = tf.engine().runKernel(L2_KERNEL, { x }, {}) as tf.Tensor[];
  denom.dispose();
  return y as tf.Tensor2D;
}

// ---- Adam's update over flat moments --------------------------------------------------------------

export interface AdamHyper {
  beta1: number;
  beta2: number;
  eps: number;
  /** L2 penalty added to the gradient (torch's Adam weight_decay). */
  weightDecay: number;
  /** lr / (1 − β1^t). */
  stepSize: number | tf.Scalar;
  /** √(1 − β2^t). */
  bias2Sqrt: number | tf.Scalar;
}

export interface AdamResult {
  /** New flat moments [Σ sizes]. */
  m: tf.Tensor1D;
  v: tf.Tensor1D;
  /** New parameter values, each in its parameter's shape. */
  params: tf.Tensor[];
}

/**
 * One step of Adam (PyTorch's formula, eps after the bias correction) for `params` whose moments
 * `m`, `v` are stored flat, parameters one after the other in order:
 *
 *   g = concat(flatten(grad + weightDecay·param))      m' = β1·m + (1 − β1)·g
 *   v' = β2·v + (1 − β2)·g²                              param' = param − m' / (√v' / bias2Sqrt + eps) · stepSize
 *
 * Returns new tensors (the caller assigns them); reads nothing back. The same element-wise
 * arithmetic in the same order on every backend, so the results are identical.
 */
export function adamUpdate(
  params: tf.Tensor[],
  grads: tf.Tensor[],
  m: tf.Tensor1D,
  v: tf.Tensor1D,
  h: AdamHyper,
): AdamResult {
  if (grads.length !== params.length)
    throw new Error(`adamUpdate: ${params.length} parameters but ${grads.length} gradients`);
  if (!fusedKernelsActive()) return adamUpdateComposite(params, grads, m, v, h);
  return adamUpdateRaw(current(), params, grads, m, v, h);
}

function adamUpdateComposite(
  params: tf.Tensor[],
  grads: tf.Tensor[],
  m: tf.Tensor1D,
  v: tf.Tensor1D,
  h: AdamHyper,
): AdamResult {
  return tf.tidy(() => {
    const flat = params.map((p, i) =>
      tf.reshape(h.weightDecay !== 0 ? tf.add(grads[i], tf.mul(p, h.weightDecay)) : grads[i], [-1]),
    );
    const g = flat.length === 1 ? flat[0] : tf.concat(flat);
    const m2 = tf.add(tf.mul(m, h.beta1), tf.mul(g, 1 - h.beta1)) as tf.Tensor1D;
    const v2 = tf.add(tf.mul(v, h.beta2), tf.mul(tf.square(g), 1 - h.beta2)) as tf.Tensor1D;
    const update = tf.mul(tf.div(m2, tf.add(tf.div(tf.sqrt(v2), h.bias2Sqrt), h.eps)), h.stepSize);
    const parts =
      params.length === 1
        ? [update]
        : tf.split(
            update,
            params.map((p) => p.size),
          );
    return { m: m2, v: v2, params: params.map((p, i) => tf.sub(p, tf.reshape(parts[i], p.shape))) };
  });
}

/**
 * adamUpdate as raw TensorFlow ops on tfjs-node's binding: intermediate results are bare
 * TensorFlow handles, freed here; only the outputs become TF.js tensors.
 */
function adamUpdateRaw(
  be: NativeBackend,
  params: tf.Tensor[],
  grads: tf.Tensor[],
  m: tf.Tensor1D,
  v: tf.Tensor1D,
  h: AdamHyper,
): AdamResult {
  const b = be.binding;
  const at = attrs(be);
  const T = [at.type('T')];
  const temps: number[] = [];
  const scalar = (x: number) => keepId(b.createTensor([], b.TF_FLOAT, Float32Array.of(x)));
  // A per-step value given as a tensor (the caller's, not freed here): a graph input (lib/runtime/graph).
  const scalarOrTensor = (x: number | tf.Scalar) => (typeof x === 'number' ? scalar(x) : be.getInputTensorIds([x])[0]);
  const ints = (xs: number[]) => keepId(b.createTensor([xs.length], b.TF_INT32, Int32Array.from(xs)));
  const keepId = (id: number) => (temps.push(id), id);
  const outputs: number[] = []; // handles that become the results (freed only on failure)
  const op = (name: string, opAttrs: OpAttr[], inputs: number[], n = 1) => b.executeOp(name, opAttrs, inputs, n);
  const out = (meta: TensorMetadata) => (outputs.push(meta.id), meta);
  const tmp = (name: string, opAttrs: OpAttr[], inputs: number[]) => keepId(op(name, opAttrs, inputs)[0].id);
  let ok = false;
  try {
    const pIds = be.getInputTensorIds(params);
    const gIds = be.getInputTensorIds(grads);
    const [mId, vId] = be.getInputTensorIds([m, v]);
    const flatShape = ints([-1]);
    const reshapeAttrs = [at.type('T'), at.type('Tshape', 'int32')];
    const wd = h.weightDecay !== 0 ? scalar(h.weightDecay) : -1;
    const flat = gIds.map((g, i) => {
      const gi = wd >= 0 ? tmp('AddV2', T, [g, tmp('Mul', T, [pIds[i], wd])]) : g;
      return tmp('Reshape', reshapeAttrs, [gi, flatShape]);
    });
    const axis0 = keepId(b.createTensor([], b.TF_INT32, Int32Array.of(0)));
    const g =
      flat.length === 1
        ? flat[0]
        : tmp('ConcatV2', [at.int('N', flat.length), at.type('T'), at.type('Tidx', 'int32')], [...flat, axis0]);
    const mMeta = out(
      op('AddV2', T, [tmp('Mul', T, [mId, scalar(h.beta1)]), tmp('Mul', T, [g, scalar(1 - h.beta1)])])[0],
    );
    const vMeta = out(
      op('AddV2', T, [
        tmp('Mul', T, [vId, scalar(h.beta2)]),
        tmp('Mul', T, [tmp('Square', T, [g]), scalar(1 - h.beta2)]),
      ])[0],
    );
    const denom = tmp('AddV2', T, [
      tmp('RealDiv', T, [tmp('Sqrt', T, [vMeta.id]), scalarOrTensor(h.bias2Sqrt)]),
      scalar(h.eps),
    ]);
    const update = tmp('Mul', T, [tmp('RealDiv', T, [mMeta.id, denom]), scalarOrTensor(h.stepSize)]);
    const parts =
      params.length === 1
        ? [update]
        : op(
            'SplitV',
            [at.int('num_split', params.length), at.type('T'), at.type('Tlen', 'int32')],
            [update, ints(params.map((p) => p.size)), axis0],
            params.length,
          ).map((meta) => keepId(meta.id));
    const newParams = params.map((p, i) =>
      out(op('Sub', T, [pIds[i], tmp('Reshape', reshapeAttrs, [parts[i], ints(p.shape)])])[0]),
    );
    ok = true;
    return {
      m: be.createOutputTensor(mMeta) as tf.Tensor1D,
      v: be.createOutputTensor(vMeta) as tf.Tensor1D,
      params: newParams.map((meta) => be.createOutputTensor(meta)),
    };
  } finally {
    for (const id of new Set(ok ? temps : [...temps, ...outputs])) b.deleteTensor(id);
  }
}
