/**
 * Adam with PyTorch's semantics (torch.optim.Adam, amsgrad=False, maximize=False), so that a
 * checkpoint's optimizer state means the same thing on both sides:
 *
 *   g      = grad + weightDecay · param            (L2 penalty, as torch's Adam, not AdamW)
 *   m      = β1 · m + (1 − β1) · g                  state `exp_avg`
 *   v      = β2 · v + (1 − β2) · g²                 state `exp_avg_sq`
 *   param -= lr / (1 − β1^t) · m / (√v / √(1 − β2^t) + ε)
 *
 * with t the step count after this step (starting at 1) and ε = 1e-8 added *after* the bias
 * correction of √v, exactly where torch adds it. tf.train.adam differs in both respects (its ε
 * sits inside a rescaled formula), which is why this file exists.
 *
 * The moments of ALL parameters live in two flat tf.Variables ([total size], parameters in
 * update order), created at zero on construction (torch creates them lazily on the first step;
 * the values are the same). One step is then about a dozen element-wise kernels over every
 * parameter at once plus one subtraction per parameter (lib/runtime/kernels adamUpdate), instead of a
 * dozen kernels per parameter: the per-parameter version spent more time dispatching small
 * kernels than computing. The arithmetic per element is unchanged.
 * state() / loadState() still speak per parameter (PyTorch's exp_avg / exp_avg_sq).
 */
import * as tf from '@tensorflow/tfjs-core';
import { adamUpdate } from '../runtime/index';

export interface AdamOptions {
  lr: number;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8 (torch's default). */
  eps?: number;
  /** L2 penalty added to the gradient (torch's Adam `weight_decay`). Default 0. */
  weightDecay?: number;
}

/** Optimizer state under PyTorch's names: `<param>.exp_avg`, `<param>.exp_avg_sq`, plus the step count. */
export interface AdamState {
  step: number;
  /** Keys `<param>.exp_avg` and `<param>.exp_avg_sq`, each of the parameter's shape. */
  tensors: Record<string, tf.Tensor>;
}

/** The two per-step numbers of the update: lr / (1 − β1^t) and √(1 − β2^t). */
export interface AdamStepFactors {
  stepSize: number;
  bias2Sqrt: number;
}

export class Adam {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** The learning rate of the next step; a schedule may change it between steps. */
  lr: number;
  private t = 0;
  private readonly params: Map<string, tf.Variable>;
  /** Element count of each parameter, in update order (the flat moments' segments). */
  private readonly sizes: number[];
  private expAvg: tf.Variable | undefined; // [Σ sizes] torch's exp_avg, all parameters
  private expAvgSq: tf.Variable | undefined; // [Σ sizes] torch's exp_avg_sq

  /** `params`: the variables to update, keyed by their PyTorch names (Net.trainable()). */
  constructor(params: Map<string, tf.Variable>, opts: AdamOptions) {
    this.lr = opts.lr;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    checkHyperparameters(this.lr, this.beta1, this.beta2, this.eps, this.weightDecay);
    if (params.size === 0) throw new Error('Adam: no parameters to optimise (is everything frozen?)');
    this.params = params;
    this.sizes = [...params.values()].map((p) => p.size);
    const total = this.sizes.reduce((a, b) => a + b, 0);
    // In tidy: tf.variable() keeps its own reference, so the zeros it was made from can go.
    tf.tidy(() => {
      this.expAvg = tf.variable(tf.zeros([total]), false, undefined, 'float32');
      this.expAvgSq = tf.variable(tf.zeros([total]), false, undefined, 'float32');
    });
  }

  private moments(): { m: tf.Variable; v: tf.Variable } {
    if (!this.expAvg || !this.expAvgSq) throw new Error('Adam: used after dispose()');
    return { m: this.expAvg, v: this.expAvgSq };
  }

  /** A flat [Σ sizes] tensor → one tensor per parameter, in its shape. */
  private unflatten(flat: tf.Tensor): tf.Tensor[] {
    const parts = this.sizes.length === 1 ? [flat] : tf.split(flat, this.sizes);
    return [...this.params.values()].map((p, i) => tf.reshape(parts[i], p.shape));
  }

  /** Steps taken so far (torch's `state['step']`). */
  get stepCount(): number {
    return this.t;
  }

  /** Parameter names in update order. */
  get names(): string[] {
    return [...this.params.keys()];
  }

  /**
   * One update from `grads` (keyed like the parameters; every parameter needs one). The caller
   * keeps ownership of `grads`; everything created here is disposed before returning.
   */
  step(grads: Record<string, tf.Tensor>, lr = this.lr): void {
    this.checkGrads(grads); // before counting a step that cannot be taken
    this.update(grads, this.advance(lr));
  }

  /**
   * The JavaScript half of a step: counts it and returns its bias-corrected factors. A step run
   * as a TensorFlow graph (lib/runtime/graph) calls this outside the graph and feeds the factors in.
   */
  advance(lr = this.lr): AdamStepFactors {
    this.t += 1;
    return { stepSize: lr / (1 - this.beta1 ** this.t), bias2Sqrt: Math.sqrt(1 - this.beta2 ** this.t) };
  }

  /**
   * The tensor half of a step: updates the moments and parameters with the factors of advance()
   * (numbers, or scalar tensors when they must be graph inputs). Does not count the step.
   */
  apply(
    grads: Record<string, tf.Tensor>,
    factors: { stepSize: number | tf.Scalar; bias2Sqrt: number | tf.Scalar },
  ): void {
    this.checkGrads(grads);
    this.update(grads, factors);
  }

  private update(
    grads: Record<string, tf.Tensor>,
    factors: { stepSize: number | tf.Scalar; bias2Sqrt: number | tf.Scalar },
  ): void {
    const { beta1, beta2, eps, weightDecay } = this;
    const { m, v } = this.moments();
    tf.tidy(() => {
      const params = [...this.params.values()];
      const next = adamUpdate(
        params,
        this.names.map((name) => grads[name]),
        m as tf.Tensor1D,
        v as tf.Tensor1D,
        {
          beta1,
          beta2,
          eps,
          weightDecay,
          ...factors,
        },
      );
      m.assign(next.m);
      v.assign(next.v);
      params.forEach((p, i) => p.assign(next.params[i]));
    });
  }

  /**
   * A bool scalar: whether every first moment is finite. False once any step's gradient was NaN
   * or infinite (the moment keeps a fraction of every gradient it has seen). The caller disposes it.
   */
  allFinite(): tf.Scalar {
    const { m } = this.moments();
    return tf.tidy(() => tf.all(tf.isFinite(m)));
  }

  /** The optimizer's own variables (the two flat moments): state a graph step reads and assigns. */
  variables(): tf.Variable[] {
    const { m, v } = this.moments();
    return [m, v];
  }

  private checkGrads(grads: Record<string, tf.Tensor>): void {
    for (const name of this.params.keys()) {
      if (!grads[name]) throw new Error(`Adam.step: no gradient for '${name}' (is it used by the forward pass?)`);
    }
  }

  /** Copies of the state (the caller disposes the tensors). */
  state(): AdamState {
    const { m, v } = this.moments();
    const tensors: Record<string, tf.Tensor> = {};
    tf.tidy(() => {
      const ms = this.unflatten(m);
      const vs = this.unflatten(v);
      this.names.forEach((name, i) => {
        tensors[`${name}.exp_avg`] = tf.keep(ms[i].clone());
        tensors[`${name}.exp_avg_sq`] = tf.keep(vs[i].clone());
      });
    });
    return { step: this.t, tensors };
  }

  /**
   * Restores a state saved by state(): every parameter's two moments must be present with the
   * parameter's shape, and nothing else. Checks everything before assigning anything.
   */
  loadState(state: AdamState): void {
    if (!Number.isInteger(state.step) || state.step < 0) {
      throw new Error(`Adam state: step must be a non-negative integer; got ${state.step}`);
    }
    const expected = new Set<string>();
    for (const [name, p] of this.params) {
      for (const key of [`${name}.exp_avg`, `${name}.exp_avg_sq`]) {
        expected.add(key);
        const t = state.tensors[key];
        if (!t)
          throw new Error(`Adam state: missing '${key}' (the checkpoint was saved with other trainable parameters)`);
        if (!sameShape(t.shape, p.shape)) {
          throw new Error(`Adam state: '${key}' has shape [${t.shape}] but the parameter has [${p.shape}]`);
        }
      }
    }
    const extra = Object.keys(state.tensors).filter((k) => !expected.has(k));
    if (extra.length > 0) {
      throw new Error(
        `Adam state: unexpected entries ${extra.slice(0, 3).join(', ')}${extra.length > 3 ? ' …' : ''} ` +
          '(the checkpoint was saved with other trainable parameters, e.g. another --freeze)',
      );
    }
    const { m, v } = this.moments();
    tf.tidy(() => {
      const flat = (suffix: string) =>
        tf.concat(this.names.map((name) => tf.reshape(tf.cast(state.tensors[`${name}.${suffix}`], 'float32'), [-1])));
      m.assign(flat('exp_avg'));
      v.assign(flat('exp_avg_sq'));
    });
    this.t = state.step;
  }

  /** Frees the moment variables (the parameters belong to the model). */
  dispose(): void {
    this.expAvg?.dispose();
    this.expAvgSq?.dispose();
    this.expAvg = this.expAvgSq = undefined;
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function checkHyperparameters(lr: number, beta1: number, beta2: number, eps: number, wd: number): void {
  const bad = (what: string, v: number) => {
    throw new Error(
      `Adam: ${what} must be ${what === 'lr' || what === 'eps' || what === 'weightDecay' ? '>= 0' : 'in [0, 1)'}; got ${v}`,
    );
  };
  if (!(lr >= 0) || !Number.isFinite(lr)) bad('lr', lr);
  if (!(beta1 >= 0 && beta1 < 1)) bad('beta1', beta1);
  if (!(beta2 >= 0 && beta2 < 1)) bad('beta2', beta2);
  if (!(eps >= 0)) bad('eps', eps);
  if (!(wd >= 0)) bad('weightDecay', wd);
}

/** The learning rate of 0-based global step `step` of `totalSteps`: constant, or cosine from lr down to 0. */
export function learningRate(
  config: { lr: number; schedule: 'constant' | 'cosine' },
  step: number,
  totalSteps: number,
): number {
  if (config.schedule === 'constant') return config.lr;
  const t = Math.min(step, totalSteps) / Math.max(totalSteps, 1);
  return (config.lr * (1 + Math.cos(Math.PI * t))) / 2;
}
