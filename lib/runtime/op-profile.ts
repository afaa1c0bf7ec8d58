/**
 * Where a training step's time goes, per TensorFlow op, on the native backend (tfjs-node).
 *
 * Every TensorFlow op this project runs, TF.js kernels and lib/runtime/kernels' raw ops alike, goes
 * through one call of tfjs-node's binding, `executeOp`, which runs the op synchronously (eager
 * TensorFlow on the CPU). profileOps() puts a timer around that call for a few steps and returns
 * the wall time per op name; what is left of the step (`outsideMs`) is JavaScript: TF.js's
 * engine and gradient tape, tensor creation and disposal, garbage collection.
 * Convolutions are split by output shape, so that the stem and layer1 show apart. Profile an
 * eager step (TrainStep with graph: false): a step run as a graph (lib/runtime/graph) is one call.
 */
import * as tf from '@tensorflow/tfjs-core';
import { withWrappedBinding, type ExecuteOp } from './binding';

export interface OpTime {
  /** TensorFlow op name; convolutions with their output shape, e.g. `Conv2D [64,8,8,64]`. */
  op: string;
  /** Calls per step. */
  calls: number;
  /** Wall milliseconds per step. */
  ms: number;
}

export interface OpProfile {
  /** Wall milliseconds per step, all of it. */
  stepMs: number;
  /** Of which inside TensorFlow ops. */
  opMs: number;
  /** Of which outside them (JavaScript). */
  outsideMs: number;
  /** Slowest first. */
  ops: OpTime[];
}

/**
 * Runs `step` `steps` times (after `warmup` untimed calls) with every TensorFlow op timed.
 * Only on the 'tensorflow' backend; the binding is restored afterwards, also on error.
 */
export function profileOps(step: () => void, opts: { steps?: number; warmup?: number } = {}): OpProfile {
  const steps = opts.steps ?? 10;
  if (!Number.isInteger(steps) || steps < 1)
    throw new Error(`profileOps: steps must be a positive integer; got ${steps}`);
  if (tf.getBackend() !== 'tensorflow') {
    throw new Error(
      `profileOps times TensorFlow ops and needs the native backend; the active backend is '${tf.getBackend()}'`,
    );
  }
  for (let i = 0; i < (opts.warmup ?? 2); i++) step();

  const totals = new Map<string, { calls: number; ms: number }>();
  const timeCalls = (binding: Record<string, unknown>) => {
    const execute = (binding.executeOp as ExecuteOp).bind(binding);
    const executeOp: ExecuteOp = (name, attrs, inputIds, numOutputs) => {
      const t0 = performance.now();
      const out = execute(name, attrs, inputIds, numOutputs);
      const ms = performance.now() - t0;
      const key = name.startsWith('Conv2D') ? `${name} [${out[0]?.shape.join(',')}]` : name;
      const t = totals.get(key) ?? { calls: 0, ms: 0 };
      t.calls++;
      t.ms += ms;
      totals.set(key, t);
      return out;
    };
    return { executeOp };
  };
  const t0 = performance.now();
  withWrappedBinding('profileOps', timeCalls, () => {
    for (let i = 0; i < steps; i++) step();
  });
  const stepMs = (performance.now() - t0) / steps;
  const ops = [...totals]
    .map(([op, t]) => ({ op, calls: t.calls / steps, ms: t.ms / steps }))
    .sort((a, b) => b.ms - a.ms);
  const opMs = ops.reduce((s, o) => s + o.ms, 0);
  return { stepMs, opMs, outsideMs: stepMs - opMs, ops };
}

/** The profile as text lines: the `top` slowest ops, the rest summed, and the JavaScript share. */
export function formatOpProfile(p: OpProfile, top = 15): string[] {
  const pct = (ms: number) => `${((100 * ms) / p.stepMs).toFixed(1).padStart(5)}%`;
  const line = (name: string, calls: string, ms: number) =>
    `  ${name.padEnd(38)} ${calls.padStart(6)} ${ms.toFixed(2).padStart(8)} ms ${pct(ms)}`;
  const shown = p.ops.slice(0, top);
  const rest = p.ops.slice(top);
  return [
    `  ${'TensorFlow op'.padEnd(38)} ${'calls'.padStart(6)} ${'per step'.padStart(11)} ${'share'.padStart(6)}`,
    ...shown.map((o) => line(o.op, String(o.calls), o.ms)),
    ...(rest.length
      ? [
          line(
            `${rest.length} other ops`,
            String(rest.reduce((s, o) => s + o.calls, 0)),
            rest.reduce((s, o) => s + o.ms, 0),
          ),
        ]
      : []),
    line('(outside TensorFlow: TF.js, JavaScript)', '', p.outsideMs),
    line('step', '', p.stepMs),
  ];
}
