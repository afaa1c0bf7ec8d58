/**
 * A TF.js function run as ONE TensorFlow graph (tfjs-node), like tf.function in Python.
 *
 * Eager execution runs one op at a time from JavaScript: between ops TensorFlow waits for TF.js
 * (gradient tape, tensor bookkeeping), and small ops use one core of two. A graph runs all of a
 * training step inside TensorFlow: its executor overlaps independent ops, grappler prunes and
 * fuses, and JavaScript does nothing until the step is over.
 *
 * How: every op this project runs goes through one call of tfjs-node's binding, `executeOp`
 * (lib/runtime/binding). GraphFunction runs the function eagerly once with that call recorded,
 * which gives the step's exact dataflow in TensorFlow ops: the gradient ops TF.js chose, the
 * fused kernels of lib/runtime/kernels, everything. It writes that graph as a SavedModel (lib/formats/protobuf),
 * loads it into a TensorFlow session and runs the session, then and at every later call. The
 * second call is recorded too, to check it is the same graph with the same constants (a
 * per-step number baked into a constant would differ, and must be an input instead).
 *
 * The contract for `fn`: its result depends only on its input tensors and on the `state`
 * variables (which it may assign); nothing in JavaScript may change from one call to the next
 * (a counter incremented inside `fn` would count only the recordings); it does not read
 * tensor values (dataSync) — that is refused. A tensor computed before the call and used in it
 * must be an input or state (refused otherwise); one made from JavaScript values before the call
 * and first used in it becomes a constant (TF.js tensors never change). Shapes are fixed per
 * graph: a call with other input shapes (the last, smaller batch of an epoch) builds its own.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { ATTR, TF_DTYPE, withWrappedBinding, type OpAttr, type TensorMetadata } from './binding';
import { ProtoWriter } from '../formats/index';
import { readEnv } from '../config';
import { mixedPrecision, requireBf16Hardware, type Precision } from './precision';

// ---- tfjs-node's binding (see its dist/nodejs_kernel_backend.js) -----------------------------

type Values = Float32Array | Int32Array | Uint8Array;
interface Binding {
  createTensor(shape: number[], dtype: number, values: Values): number;
  executeOp(name: string, attrs: OpAttr[], inputIds: number[], numOutputs: number): TensorMetadata[];
  runSavedModel(id: number, inputIds: number[], inputNames: string, outputNames: string): TensorMetadata[];
  TF_ATTR_STRING: number;
}
interface NativeBackend {
  binding: Binding;
  getInputTensorIds(tensors: tf.TensorInfo[]): number[];
  createOutputTensor(meta: TensorMetadata): tf.Tensor;
  loadSavedModelMetaGraph(dir: string, tags: string): number;
  deleteSavedModel(id: number): void;
}

const BYTES_PER_ELEMENT: Record<number, number> = { [TF_DTYPE.float]: 4, [TF_DTYPE.int32]: 4, [TF_DTYPE.bool]: 1 };

function nativeBackend(): NativeBackend {
  const be = tf.backend() as unknown as Partial<NativeBackend>;
  if (tf.getBackend() !== 'tensorflow' || !be.binding || !be.loadSavedModelMetaGraph) {
    throw new Error(`graph execution needs the native backend (tfjs-node); the active backend is '${tf.getBackend()}'`);
  }
  if (be.binding.TF_ATTR_STRING !== ATTR.string)
    throw new Error('graph execution: this tfjs-node binding numbers its attribute types differently');
  return be as NativeBackend;
}

// ---- recording ------------------------------------------------------------------------------

/** One op as it ran: name, attributes, input and output tensor ids. */
export interface RecordedOp {
  op: string;
  attrs: OpAttr[];
  inputs: number[];
  outputs: TensorMetadata[];
}
/** A tensor made from JavaScript values while recording (a constant of the graph). */
export interface RecordedConst {
  shape: number[];
  dtype: number;
  values: Values;
}
export interface Recording {
  ops: RecordedOp[];
  consts: Map<number, RecordedConst>;
  /** Binding calls that read tensor values back to JavaScript (a graph cannot have them). */
  reads: string[];
}

/** Runs `fn` with every op and tensor creation it makes through the binding recorded. */
export function record<T>(fn: () => T): { result: T; recording: Recording } {
  nativeBackend();
  const recording: Recording = { ops: [], consts: new Map(), reads: [] };
  const recordCalls = (binding: Record<string, unknown>) => {
    const b = binding as unknown as Binding;
    const calls: Record<string, unknown> = {
      executeOp: (op: string, attrs: OpAttr[], inputs: number[], n: number) => {
        const outputs = b.executeOp(op, attrs, inputs, n);
        recording.ops.push({ op, attrs, inputs: [...inputs], outputs });
        return outputs;
      },
      createTensor: (shape: number[], dtype: number, values: Values) => {
        const id = b.createTensor(shape, dtype, values);
        recording.consts.set(id, { shape: [...shape], dtype, values: values.slice() });
        return id;
      },
    };
    for (const read of ['tensorDataSync', 'runSavedModel']) {
      const f = binding[read] as ((...args: unknown[]) => unknown) | undefined;
      if (f) calls[read] = (...args: unknown[]) => (recording.reads.push(read), f.apply(binding, args));
    }
    return calls;
  };
  return { result: withWrappedBinding('graph execution', recordCalls, fn), recording };
}

// ---- the graph ------------------------------------------------------------------------------

/**
 * Type attributes TF.js leaves to eager TensorFlow's inference, per op: [attribute, the input
 * whose dtype it is]. (A graph op without them fails to load with "No attr named 'T'".)
 */
const INFERRED_TYPE_ATTRS: Record<string, Array<[string, number]>> = {
  ExpandDims: [
    ['T', 0],
    ['Tdim', 1],
  ],
};

/** Where a node input comes from: an earlier node's output, an input slot, or a constant. */
export type Ref = { node: number; output: number } | { input: number } | { const: number };

/** Shape and TF dtype of a tensor of the graph. */
export interface TensorType {
  shape: number[];
  dtype: number;
}

export interface GraphNode {
  op: string;
  attrs: OpAttr[];
  inputs: Ref[];
  /** Each output's shape and dtype as recorded. */
  outputs: TensorType[];
}
export interface GraphSpec {
  nodes: GraphNode[];
  consts: RecordedConst[];
  /** Shape and TF dtype of each input slot the graph uses, by slot number. */
  inputs: Map<number, TensorType>;
  outputs: Ref[];
  /** TF dtype of each output. */
  outputDtypes: number[];
}

/**
 * The recorded ops that `outputIds` depend on, with tensor ids replaced by references: `inputIds`
 * are the slots fed at each run ({shape, dtype} of each, by slot); tensors made from JavaScript
 * during the recording are constants. Any other tensor from outside is an error.
 */
export function graphSpec(rec: Recording, inputIds: number[], inputMeta: TensorType[], outputIds: number[]): GraphSpec {
  if (rec.reads.length > 0) {
    throw new Error(
      `graph execution: the function reads tensor values back to JavaScript (${rec.reads[0]}); a graph cannot: return them as outputs instead`,
    );
  }
  const producer = new Map<number, { op: number; output: number }>();
  rec.ops.forEach((o, i) => o.outputs.forEach((m, k) => producer.set(m.id, { op: i, output: k })));
  const slotOf = new Map<number, number>();
  inputIds.forEach((id, slot) => {
    if (!slotOf.has(id)) slotOf.set(id, slot);
  });

  /** The recorded op that made `id`, unless it is fed as an input. */
  const producerOp = (id: number): number[] => (producer.has(id) && !slotOf.has(id) ? [producer.get(id)!.op] : []);

  // Keep only the ops the outputs need (TF.js computes gradients nobody asked for, and statistics).
  const needed = new Set<number>();
  const stack = outputIds.flatMap(producerOp);
  while (stack.length) {
    const i = stack.pop()!;
    if (needed.has(i)) continue;
    needed.add(i);
    stack.push(...rec.ops[i].inputs.flatMap(producerOp));
  }

  const nodeIndex = new Map<number, number>();
  const constIndex = new Map<number, number>();
  const spec: GraphSpec = { nodes: [], consts: [], inputs: new Map(), outputs: [], outputDtypes: [] };
  const ref = (id: number): Ref => {
    const slot = slotOf.get(id);
    if (slot !== undefined) {
      spec.inputs.set(slot, inputMeta[slot]);
      return { input: slot };
    }
    const p = producer.get(id);
    if (p) return { node: nodeIndex.get(p.op)!, output: p.output };
    const c = rec.consts.get(id);
    if (c) {
      if (!constIndex.has(id)) constIndex.set(id, spec.consts.push(c) - 1);
      return { const: constIndex.get(id)! };
    }
    throw new Error(
      `graph execution: the function uses tensor #${id}, made before it was called, that is neither an input nor a state variable; ` +
        'pass it as an input (or make it inside the function)',
    );
  };
  const dtypeOf = (id: number): number => {
    const slot = slotOf.get(id);
    if (slot !== undefined) return inputMeta[slot].dtype;
    const p = producer.get(id);
    return p ? rec.ops[p.op].outputs[p.output].dtype : rec.consts.get(id)!.dtype;
  };
  [...needed]
    .sort((a, b) => a - b)
    .forEach((i) => {
      const o = rec.ops[i];
      const inputs = o.inputs.map(ref);
      // Eager TensorFlow infers type attributes the caller left out from the inputs; a graph does not.
      const missing = (INFERRED_TYPE_ATTRS[o.op] ?? []).filter(([name]) => !o.attrs.some((a) => a.name === name));
      const attrs = [
        ...o.attrs,
        ...missing.map(([name, k]): OpAttr => ({ name, type: ATTR.type, value: dtypeOf(o.inputs[k]) })),
      ];
      spec.nodes.push({
        op: o.op,
        attrs,
        inputs,
        outputs: o.outputs.map((m) => ({ shape: [...m.shape], dtype: m.dtype })),
      });
      nodeIndex.set(i, spec.nodes.length - 1);
    });
  spec.outputs = outputIds.map(ref);
  spec.outputDtypes = outputIds.map(dtypeOf);
  return spec;
}

/** Where two specs differ (undefined when they are the same graph with the same constants). */
function specDifference(a: GraphSpec, b: GraphSpec): string | undefined {
  if (a.nodes.length !== b.nodes.length) return `${a.nodes.length} ops, then ${b.nodes.length}`;
  for (let i = 0; i < a.nodes.length; i++) {
    const x = a.nodes[i];
    const y = b.nodes[i];
    if (JSON.stringify(x) !== JSON.stringify(y))
      return `op ${i} was ${x.op} ${JSON.stringify(x.inputs)}, then ${y.op} ${JSON.stringify(y.inputs)}`;
  }
  if (JSON.stringify(a.outputs) !== JSON.stringify(b.outputs)) return 'the outputs come from other ops';
  if (JSON.stringify([...a.inputs]) !== JSON.stringify([...b.inputs])) return 'the inputs differ in shape or type';
  if (a.consts.length !== b.consts.length) return `${a.consts.length} constants, then ${b.consts.length}`;
  for (let i = 0; i < a.consts.length; i++) {
    const x = a.consts[i];
    const y = b.consts[i];
    const same =
      x.dtype === y.dtype && x.values.length === y.values.length && x.values.every((v, k) => Object.is(v, y.values[k]));
    if (!same || x.shape.join() !== y.shape.join()) {
      const show = (c: RecordedConst) =>
        `[${Array.from(c.values.slice(0, 4)).join(', ')}${c.values.length > 4 ? ', …' : ''}]`;
      const user = a.nodes.find((n) => n.inputs.some((r) => 'const' in r && r.const === i));
      return `a constant${user ? ` (input of ${user.op})` : ''} was ${show(x)}, then ${show(y)}: a value that changes between calls must be an input tensor`;
    }
  }
  return undefined;
}

// ---- encoding (tensorflow/core/framework/{graph,node_def,attr_value,tensor}.proto) -----------

function shapeProto(shape: number[]): ProtoWriter {
  const w = new ProtoWriter();
  for (const size of shape) w.message(2, new ProtoWriter().varint(1, size));
  return w;
}

function attrValue(a: OpAttr): ProtoWriter {
  const w = new ProtoWriter();
  const list = Array.isArray(a.value);
  switch (a.type) {
    case ATTR.string:
      return w.string(2, String(a.value));
    case ATTR.int:
      return list
        ? w.message(1, new ProtoWriter().packedVarints(3, a.value as number[]))
        : w.varint(3, a.value as number);
    case ATTR.float:
      return list
        ? w.message(1, new ProtoWriter().packedFloats(4, a.value as number[]))
        : w.float(4, a.value as number);
    case ATTR.bool:
      return list
        ? w.message(1, new ProtoWriter().packedVarints(5, a.value as boolean[]))
        : w.varint(5, a.value as boolean);
    case ATTR.type:
      return w.varint(6, a.value as number);
    case ATTR.shape:
      return w.message(7, shapeProto(a.value as number[]));
    default:
      throw new Error(`graph execution: attribute '${a.name}' has a type (${a.type}) this encoder does not know`);
  }
}

function tensorProto(c: RecordedConst): ProtoWriter {
  const size = BYTES_PER_ELEMENT[c.dtype];
  if (!size) throw new Error(`graph execution: a constant of TensorFlow dtype ${c.dtype} is not supported`);
  const bytes = new Uint8Array(c.values.buffer, c.values.byteOffset, c.values.byteLength);
  return new ProtoWriter().varint(1, c.dtype).message(2, shapeProto(c.shape)).bytesField(4, bytes);
}

function nodeDef(
  name: string,
  op: string,
  inputs: string[],
  attrs: OpAttr[],
  extra: Array<[string, ProtoWriter]> = [],
): ProtoWriter {
  const w = new ProtoWriter().string(1, name).string(2, op);
  for (const i of inputs) w.string(3, i);
  for (const a of attrs) w.message(5, new ProtoWriter().string(1, a.name).message(2, attrValue(a)));
  for (const [key, value] of extra) w.message(5, new ProtoWriter().string(1, key).message(2, value));
  return w;
}

/** Node names: inputs `input_<slot>`, constants `const_<i>`, ops `op_<i>`, results `output_<k>`. */
const inputName = (slot: number) => `input_${slot}`;
const outputName = (k: number) => `output_${k}`;

function refName(r: Ref): string {
  if ('input' in r) return inputName(r.input);
  if ('const' in r) return `const_${r.const}`;
  return r.output === 0 ? `op_${r.node}` : `op_${r.node}:${r.output}`;
}

/** The spec as a serialized GraphDef. */
function encodeGraphDef(spec: GraphSpec): Uint8Array {
  const g = new ProtoWriter();
  for (const [slot, m] of spec.inputs) {
    g.message(
      1,
      nodeDef(
        inputName(slot),
        'Placeholder',
        [],
        [],
        [
          ['dtype', new ProtoWriter().varint(6, m.dtype)],
          ['shape', new ProtoWriter().message(7, shapeProto(m.shape))],
        ],
      ),
    );
  }
  spec.consts.forEach((c, i) => {
    g.message(
      1,
      nodeDef(
        `const_${i}`,
        'Const',
        [],
        [],
        [
          ['dtype', new ProtoWriter().varint(6, c.dtype)],
          ['value', new ProtoWriter().message(8, tensorProto(c))],
        ],
      ),
    );
  });
  spec.nodes.forEach((n, i) => g.message(1, nodeDef(`op_${i}`, n.op, n.inputs.map(refName), n.attrs)));
  // Identity nodes give every result a name of its own (a result may also be an input as is).
  spec.outputs.forEach((r, k) =>
    g.message(
      1,
      nodeDef(outputName(k), 'Identity', [refName(r)], [{ name: 'T', type: ATTR.type, value: spec.outputDtypes[k] }]),
    ),
  );
  // versions: producer 1205 (a TF 2.x GraphDef), min_consumer 0.
  g.message(4, new ProtoWriter().varint(1, 1205));
  return g.finish();
}

/** A SavedModel holding one meta-graph, tagged 'serve', with that graph and no variables. */
export function encodeSavedModel(graphDef: Uint8Array): Uint8Array {
  const metaInfo = new ProtoWriter().string(4, 'serve');
  const meta = new ProtoWriter().message(1, metaInfo).bytesField(2, graphDef);
  return new ProtoWriter().varint(1, 1).message(2, meta).finish();
}

// ---- running --------------------------------------------------------------------------------

interface Built {
  session: number;
  /** Input slots fed at each run, in feed order. */
  slots: number[];
  outputs: number;
}

function loadGraph(spec: GraphSpec): Built {
  const be = nativeBackend();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-graph-'));
  try {
    fs.writeFileSync(path.join(dir, 'saved_model.pb'), encodeSavedModel(encodeGraphDef(spec)));
    let session: number;
    try {
      session = be.loadSavedModelMetaGraph(dir, 'serve');
    } catch (err) {
      // Name the TF.js-level op behind TensorFlow's node names (op_12 → op_12 (ExpandDims)).
      const msg = (err as Error).message.replace(
        /\bop_(\d+)\b/g,
        (m, i) => `${m} (${spec.nodes[Number(i)]?.op ?? '?'})`,
      );
      throw new Error(
        `graph execution: TensorFlow refused the recorded graph: ${msg} (DCF_GRAPH=0 runs eagerly instead)`,
      );
    }
    return { session, slots: [...spec.inputs.keys()].sort((a, b) => a - b), outputs: spec.outputs.length };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export type GraphMode = 'build' | 'check' | 'graph';

/**
 * `fn(inputs) → outputs` run as a TensorFlow graph (see the top of this file). The first call
 * per input shapes records `fn` (putting the state back as it was afterwards) and builds the
 * graph; the second records again and checks it gets the same graph; every call runs the
 * graph, so that every result comes from it however many calls a process makes (a resumed
 * training reproduces an uninterrupted one). `state`: the variables `fn` reads or assigns;
 * after a call they hold the new values, exactly as after an eager call of `fn`. The caller
 * owns the inputs and the returned tensors.
 */
export class GraphFunction {
  private readonly graphs = new Map<string, { built: Built; assigned: number[]; unchecked?: GraphSpec }>();
  /** 'bf16': the graph runs with lib/runtime/precision's mixed precision (fp32 state, inputs and outputs). */
  readonly precision: Precision;

  constructor(
    private readonly fn: (inputs: tf.Tensor[]) => tf.Tensor[],
    private readonly state: tf.Variable[],
    opts: { precision?: Precision } = {},
  ) {
    this.precision = opts.precision ?? 'fp32';
    if (this.precision === 'bf16') requireBf16Hardware();
  }

  /** What a call with these inputs' shapes does before it runs the graph. */
  modeFor(inputs: tf.Tensor[]): GraphMode {
    const g = this.graphs.get(signature(inputs));
    return !g ? 'build' : g.unchecked ? 'check' : 'graph';
  }

  call(inputs: tf.Tensor[]): tf.Tensor[] {
    const key = signature(inputs);
    let g = this.graphs.get(key);
    if (!g) {
      const { spec, assigned } = this.recordOnce(inputs);
      g = { built: loadGraph(this.precision === 'bf16' ? mixedPrecision(spec) : spec), assigned, unchecked: spec };
      this.graphs.set(key, g);
    } else if (g.unchecked) {
      const { spec, assigned } = this.recordOnce(inputs);
      const diff =
        specDifference(g.unchecked, spec) ??
        (assigned.join() !== g.assigned.join() ? 'other state variables were assigned' : undefined);
      if (diff) throw new Error(`graph execution: two calls of the same function ran different graphs (${diff})`);
      g.unchecked = undefined;
    }
    return this.runGraph(g.built, g.assigned, inputs);
  }

  /** Runs `fn` eagerly with its ops recorded, then puts every state variable back as it was. */
  private recordOnce(inputs: tf.Tensor[]): { spec: GraphSpec; assigned: number[] } {
    const be = nativeBackend();
    const all = [...inputs, ...this.state];
    const saved = this.state.map((v) => tf.clone(v)); // keeps each variable's value alive
    try {
      const before = be.getInputTensorIds(all); // also gives TensorFlow handles to tensors still in JS
      const { result, recording } = record(() => this.fn(inputs));
      try {
        const after = be.getInputTensorIds(this.state);
        const assigned = this.state.flatMap((_, j) => (after[j] !== before[inputs.length + j] ? [j] : []));
        const spec = graphSpec(
          recording,
          before,
          all.map((t) => ({ shape: t.shape, dtype: tfDtype(t.dtype) })),
          [...be.getInputTensorIds(result), ...assigned.map((j) => after[j])],
        );
        return { spec, assigned };
      } finally {
        tf.dispose(result);
      }
    } finally {
      this.state.forEach((v, j) => v.assign(saved[j]));
      tf.dispose(saved);
    }
  }

  private runGraph(built: Built, assigned: number[], inputs: tf.Tensor[]): tf.Tensor[] {
    const be = nativeBackend();
    const all = [...inputs, ...this.state];
    const ids = be.getInputTensorIds(built.slots.map((s) => all[s]));
    const metas = be.binding.runSavedModel(
      built.session,
      ids,
      built.slots.map(inputName).join(','),
      Array.from({ length: built.outputs }, (_, k) => outputName(k)).join(','),
    );
    const outs = metas.map((m) => be.createOutputTensor(m));
    const results = outs.slice(0, outs.length - assigned.length);
    assigned.forEach((j, k) => {
      const t = outs[results.length + k];
      this.state[j].assign(t);
      t.dispose();
    });
    return results;
  }

  /** Frees the TensorFlow sessions. */
  dispose(): void {
    const be = nativeBackend();
    for (const g of this.graphs.values()) be.deleteSavedModel(g.built.session);
    this.graphs.clear();
  }
}

function signature(inputs: tf.Tensor[]): string {
  return inputs.map((t) => `${t.dtype}[${t.shape}]`).join(' ');
}

function tfDtype(dtype: tf.DataType): number {
  if (dtype === 'float32' || dtype === 'int32' || dtype === 'bool')
    return TF_DTYPE[dtype === 'float32' ? 'float' : dtype];
  throw new Error(`graph execution: inputs of dtype ${dtype} are not supported`);
}

/** Whether lib/ runs its training steps as graphs: on the native backend, unless DCF_GRAPH=0. */
export function graphsEnabled(): boolean {
  return tf.getBackend() === 'tensorflow' && readEnv().graph;
}
