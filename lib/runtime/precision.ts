/**
 * Mixed precision (bf16) inside the graphs of lib/runtime/graph, as PyTorch's
 * torch.autocast('cpu', dtype=torch.bfloat16) does it:
 *
 *   - the state stays fp32: master weights, Adam's moments, BatchNorm's running statistics;
 *   - convolutions and matrix products run in bf16 (their weights cast down at each use, their
 *     gradients cast back up for Adam);
 *   - the ops between them (BatchNorm with fp32 statistics and max-pool, which oneDNN runs; ReLU,
 *     the residual add, padding and reshapes, which TensorFlow's own kernels run) stay in bf16 when
 *     their data arrives in bf16, so that activations are not cast back and forth;
 *   - everything else stays fp32: the loss, softmax and cross-entropy, the L2 normalisation, the
 *     tanh of the generator, the bias gradients (sums over the batch) and the Adam update.
 *
 * It is a rewrite of the recorded graph (mixedPrecision): the TypeScript model and its eager
 * execution are untouched, and a graph's inputs, outputs and state keep their fp32 types.
 * resolvePrecision decides what `precision: 'auto'` means on this CPU.
 */
import * as fs from 'fs';
import { ATTR, TF_DTYPE, type OpAttr } from './binding';
// Types only: graph imports this file (a value import back would be a cycle, which tslab cannot load).
import type { GraphNode, GraphSpec, Ref, TensorType } from './graph';

export type Precision = 'fp32' | 'bf16';
export type PrecisionChoice = Precision | 'auto';
const PRECISION_CHOICES: readonly PrecisionChoice[] = ['fp32', 'bf16', 'auto'];

// ---- the rewrite ----------------------------------------------------------------------------

/**
 * The ops that may run in bf16, by TensorFlow name: `t`, which inputs have the type T (the others,
 * e.g. BatchNorm's fp32 scale and statistics or a shape, keep theirs; output 0 is always of type T).
 * `always`: the compute-bound ops, bf16 whatever their inputs. The others follow their data: bf16
 * when their largest T input arrives in bf16 (all of them, if several are that large), so a bias or
 * a padding value is cast down to join the activations, while an add of two fp32-sized tensors
 * (Adam's weight decay on a bf16 gradient) stays fp32.
 */
const BF16_OPS: Record<string, { t: number[]; always?: true }> = {
  Conv2D: { t: [0, 1], always: true },
  Conv2DBackpropInput: { t: [1, 2], always: true }, // input_sizes, filter, out_backprop
  Conv2DBackpropFilter: { t: [0, 2], always: true }, // input, filter_sizes, out_backprop
  MatMul: { t: [0, 1], always: true },
  BatchMatMulV2: { t: [0, 1], always: true },
  FusedBatchNormV3: { t: [0] }, // U (scale, offset, mean, variance and the statistics out) stays fp32
  FusedBatchNormGradV3: { t: [0, 1] },
  Relu: { t: [0] },
  ReluGrad: { t: [0, 1] },
  Add: { t: [0, 1] },
  AddV2: { t: [0, 1] },
  BiasAdd: { t: [0, 1] },
  _MklNativeMaxPool: { t: [0] },
  _MklNativeMaxPoolGrad: { t: [0, 1, 2] }, // orig_input, orig_output, grad (then the workspace)
  MaxPool: { t: [0] },
  MaxPoolGrad: { t: [0, 1, 2] },
  Pad: { t: [0] },
  PadV2: { t: [0, 2] },
  Reshape: { t: [0] },
  Transpose: { t: [0] },
  Slice: { t: [0] },
};

const elements = (t: TensorType) => t.shape.reduce((a, b) => a * b, 1);

/**
 * `spec` with the ops of BF16_OPS in bf16 where the rule above says so, and a Cast (rounding to
 * nearest) on every edge where a tensor's type changes. Inputs, constants, state and outputs keep
 * their recorded types. Pure: `spec` is not changed.
 */
export function mixedPrecision(spec: GraphSpec): GraphSpec {
  const { float, bfloat16 } = TF_DTYPE;
  const nodes: GraphNode[] = [];
  const moved: number[] = []; // old node index → new
  const casts = new Map<string, Ref>();
  const typeOf = (r: Ref): TensorType =>
    'input' in r ? spec.inputs.get(r.input)! : 'const' in r ? spec.consts[r.const] : nodes[r.node].outputs[r.output];
  const move = (r: Ref): Ref => ('node' in r ? { node: moved[r.node], output: r.output } : r);
  /** `r` (new numbering) as `dtype`: itself, or a Cast of it (one per tensor and type). */
  const as = (r: Ref, dtype: number): Ref => {
    const t = typeOf(r);
    if (t.dtype === dtype) return r;
    const key = `${JSON.stringify(r)}:${dtype}`;
    if (!casts.has(key)) {
      const typeAttr = (name: string, value: number): OpAttr => ({ name, type: ATTR.type, value });
      const attrs = [
        typeAttr('SrcT', t.dtype),
        typeAttr('DstT', dtype),
        { name: 'Truncate', type: ATTR.bool, value: false },
      ];
      casts.set(key, {
        node: nodes.push({ op: 'Cast', attrs, inputs: [r], outputs: [{ shape: t.shape, dtype }] }) - 1,
        output: 0,
      });
    }
    return casts.get(key)!;
  };

  spec.nodes.forEach((n0, i) => {
    const n = asBiasAdd(n0, (r) => typeOf(move(r)));
    const inputs = n.inputs.map(move);
    const recorded = n.inputs.map((r) => ('node' in r ? spec.nodes[r.node].outputs[r.output].dtype : typeOf(r).dtype));
    const rule = BF16_OPS[n.op];
    const floatOp = n.attrs.some((a) => a.name === 'T' && a.value === float);
    let bf16 = false;
    if (rule && floatOp) {
      const ts = rule.t.map((k) => typeOf(inputs[k]));
      const largest = Math.max(...ts.map(elements));
      bf16 = !!rule.always || ts.every((t) => elements(t) < largest || t.dtype === bfloat16);
    }
    const wanted = (k: number) => (bf16 && rule!.t.includes(k) ? bfloat16 : recorded[k]);
    nodes.push(
      bf16
        ? {
            op: n.op,
            attrs: n.attrs.map((a) => (a.name === 'T' ? { ...a, value: bfloat16 } : a)),
            inputs: inputs.map((r, k) => as(r, wanted(k))),
            outputs: n.outputs.map((o, k) => (k === 0 ? { ...o, dtype: bfloat16 } : o)),
          }
        : { ...n, inputs: inputs.map((r, k) => as(r, wanted(k))) },
    );
    moved[i] = nodes.length - 1;
  });
  return { ...spec, nodes, outputs: spec.outputs.map((r, k) => as(move(r), spec.outputDtypes[k])) };
}

/**
 * An Add of a per-channel vector to an NHWC tensor as the BiasAdd it is, so that TensorFlow's
 * remapper fuses it (and a ReLU or residual add after it) into the convolution before it: one
 * oneDNN kernel instead of bf16 element-wise kernels, which TensorFlow's CPU build runs slowly.
 * (The evaluation forward adds each folded BatchNorm's shift this way.)
 */
function asBiasAdd(n: GraphNode, typeOf: (r: Ref) => TensorType): GraphNode {
  if (n.op !== 'Add' && n.op !== 'AddV2') return n;
  const [x, b] = n.inputs.map(typeOf);
  if (
    x.shape.length !== 4 ||
    b.shape.length !== 1 ||
    b.shape[0] !== x.shape[3] ||
    n.outputs[0].shape.join() !== x.shape.join()
  )
    return n;
  return { ...n, op: 'BiasAdd', attrs: [...n.attrs, { name: 'data_format', type: ATTR.string, value: 'NHWC' }] };
}

/** How many ops of `spec` run in bf16 and in fp32, and how many Casts it has. */
export function precisionCensus(spec: GraphSpec): { bf16: number; fp32: number; casts: number } {
  const casts = spec.nodes.filter((n) => n.op === 'Cast').length;
  const bf16 = spec.nodes.filter((n) => n.op !== 'Cast' && n.outputs[0]?.dtype === TF_DTYPE.bfloat16).length;
  return { bf16, fp32: spec.nodes.length - casts - bf16, casts };
}

// ---- what 'auto' means on this CPU ------------------------------------------------------------

let thisCpu: Set<string> | undefined;

/** The CPU's feature flags (the `flags` line of `cpuinfo`, default /proc/cpuinfo's); empty where there is none. */
export function cpuFlags(cpuinfo?: string): Set<string> {
  if (cpuinfo === undefined && thisCpu) return thisCpu;
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      text = '';
    }
  }
  const line = /^flags\s*:(.*)$/m.exec(text);
  const flags = new Set(line ? line[1].trim().split(/\s+/) : []);
  if (cpuinfo === undefined) thisCpu = flags;
  return flags;
}

/** The CPU's bf16 instructions in words ('AMX (amx_bf16)', 'avx512_bf16 without AMX'), or undefined. */
export function bf16Hardware(flags: ReadonlySet<string> = cpuFlags()): string | undefined {
  return flags.has('amx_bf16') ? 'AMX (amx_bf16)' : flags.has('avx512_bf16') ? 'avx512_bf16 without AMX' : undefined;
}

/**
 * Refuses bf16 on a CPU without bf16 instructions: oneDNN then has no bf16 kernel for some of the
 * ops, and TensorFlow aborts the whole process (seen with ONEDNN_MAX_CPU_ISA=AVX2: "could not
 * create a primitive descriptor for the inner product"). lib/runtime/graph checks before it builds.
 */
export function requireBf16Hardware(flags: ReadonlySet<string> = cpuFlags()): void {
  if (bf16Hardware(flags)) return;
  throw new Error(
    "precision 'bf16' needs a CPU with bf16 instructions (amx_bf16 or avx512_bf16 in /proc/cpuinfo's flags); " +
      "this one has neither: use 'fp32', or 'auto' (which picks fp32 here)",
  );
}

/**
 * The precision to run: `requested` unless it is 'auto', which picks bf16 only where bf16 was
 * measured faster than fp32 for this network:
 *
 *   - AMX (amx_bf16): oneDNN's AMX kernels; PyTorch's bf16 autocast trains about twice as fast
 *     there (issue #23): bf16.
 *   - avx512_bf16 without AMX: fp32, measured slower. 2-core Intel Xeon (family 6 model 207, avx512_bf16
 *     and avx512_fp16, no amx_* flags), the dynamic head at batch 64, fp32 and bf16 graphs alternating in
 *     one process (the machine shared with a background training, so only the ratios mean much):
 *     training step 58 → 80 ms median (CPU per step 48 → 71 ms), inference 19 → 31 ms (CPU 18 → 23 ms).
 *     oneDNN's own bf16 convolutions were no faster than its fp32 ones (ONEDNN_VERBOSE, fastest call of
 *     each: 1.58 vs 1.66 ms forward, 2.26 vs 2.07 ms backward-weights for the 3×3 convs), so the casts and
 *     TensorFlow's bf16 element-wise kernels (not vectorised in its CPU build) are pure cost there.
 *   - no bf16 instructions (AVX2, or AVX-512 without avx512_bf16): fp32.
 *
 * 'bf16' asked for on a CPU without bf16 instructions is refused (requireBf16Hardware).
 * `flags`: the CPU's (default: /proc/cpuinfo's).
 */
export function resolvePrecision(
  requested: PrecisionChoice,
  flags: ReadonlySet<string> = cpuFlags(),
): { precision: Precision; why: string } {
  if (!PRECISION_CHOICES.includes(requested)) {
    throw new Error(`precision must be one of ${PRECISION_CHOICES.join(', ')}; got '${String(requested)}'`);
  }
  const hardware = bf16Hardware(flags);
  if (requested === 'bf16') requireBf16Hardware(flags);
  if (requested !== 'auto') return { precision: requested, why: 'asked for' };
  if (flags.has('amx_bf16')) return { precision: 'bf16', why: `auto: this CPU has ${hardware}, where bf16 is faster` };
  if (hardware)
    return { precision: 'fp32', why: `auto: this CPU has ${hardware}, where bf16 measured slower than fp32` };
  return { precision: 'fp32', why: 'auto: this CPU has no bf16 instructions (amx_bf16, avx512_bf16)' };
}
