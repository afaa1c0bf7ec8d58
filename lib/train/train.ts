/**
 * The lab's training loop, readable top to bottom:
 *
 *   for each epoch: shuffled (optionally augmented) batches → forward in training mode →
 *   cross-entropy → gradients → Adam step; then evaluate on the official test set (and the
 *   validation split if configured); append the epoch's metrics (lib/metrics); save the `last`
 *   checkpoint and, when the selection accuracy improved, the `best` one (lib/checkpoint).
 *
 * Re-running a run resumes it: from its best checkpoint (default) or its last, continuing with
 * the next epoch until `epochs` are done. A run whose last checkpoint already finished all
 * epochs is only evaluated (rerunning a finished notebook cell does not retrain), unless a
 * checkpoint is asked for explicitly. `fresh` starts over without destroying the old run
 * until the new one has saved its first epoch (lib/run-dir).
 *
 * The loop never reads from the device except every `logEvery` steps (loss, accuracy and a
 * NaN/Inf check), creates the same number of tensors at every step, and reports progress only
 * through the `onProgress` callback.
 *
 * Interruption: while train() runs it listens for SIGINT (■ in JupyterLab, Ctrl-C in a terminal)
 * and stops at the next step or evaluation batch, throwing TrainingInterrupted with one line
 * saying where it stopped and what is saved; the listener is removed when the call ends. One
 * run trains at most once at a time, in this process or any other (lib/run-dir's lock).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { Adam } from './adam';
import { activeBackend, assertFastBackend, crossEntropy as sparseCrossEntropy, describeBackend, GraphFunction, graphsEnabled, initBackend } from '../runtime';
import { architectureOf, createNet, type Net } from '../model';
import { batches, type Cifar10Split, loadCifar10, numBatches, splitValidation } from '../data';
import { readCheckpoint, readCheckpointMeta, restoreCheckpoint, saveCheckpoint, type CheckpointContent, type CheckpointKind } from './checkpoint';
import { NUM_CLASSES, PATHS, pretrainedFile, type NormName } from '../config';
import { appendEpoch, findDamagedTail, nextSession, setAsideDamaged, type DamagedEpoch, type EpochRow, type Split, type StepRow } from './metrics';
import { RunDir } from './run-dir';
import { configConflicts, learningRate, validateConfig, type TrainConfig } from './train-config';

export { LAB_RECIPE, trainConfig, type TrainConfig } from './train-config';

/** Loss and accuracy of one pass over a split. */
export interface PassStats {
  loss: number;
  accuracy: number;
  /** [10] fraction correct per class (NaN for a class without images). */
  perClassAccuracy: number[];
  images: number;
  seconds: number;
  imagesPerSecond: number;
}

/** An evaluation pass (BatchNorm on running statistics), with its confusion matrix. */
export interface EvalResult extends PassStats {
  /** [10][10] counts: confusion[true class][predicted class]. */
  confusion: number[][];
}

export interface EpochSummary {
  epoch: number;
  epochs: number;
  /** Optimizer steps taken when the epoch ended. */
  step: number;
  /** Learning rate of the epoch's last step. */
  lr: number;
  train: PassStats;
  test: EvalResult;
  val?: EvalResult;
  /** Accuracy that decides the best checkpoint (test, or val with selectBy 'val'). */
  selection: number;
  improved: boolean;
  bestAccuracy: number;
  bestEpoch: number;
  seconds: number;
}

/** What the loop reports; the CLI draws a progress bar from it, notebooks one updating display. */
export type TrainEvent =
  | {
      type: 'start';
      run: string;
      dir: string;
      config: TrainConfig;
      /** Finished epochs of the checkpoint it starts from (0: from scratch). */
      startEpoch: number;
      resumedFrom: CheckpointKind | null;
      session: number;
      batchesPerEpoch: number;
      trainImages: number;
      testImages: number;
      valImages: number;
      backend: string;
      /** What the session repaired before starting (an interrupted --fresh, a damaged metrics block). */
      notes?: string[];
    }
  | {
      type: 'step';
      epoch: number;
      epochs: number;
      /** 1-based batch within the epoch. */
      batch: number;
      batches: number;
      step: number;
      /** Running means over the epoch, as of the latest read-back (every logEvery steps). */
      loss: number;
      accuracy: number;
      lr: number;
      imagesPerSecond: number;
      /** Seconds left in this epoch's training pass, and in the whole run (evaluations included). */
      epochEtaSeconds: number;
      etaSeconds: number;
    }
  | { type: 'eval'; epoch: number; split: Split; images: number; total: number }
  | { type: 'epoch'; summary: EpochSummary }
  | { type: 'checkpoint'; kind: CheckpointKind; file: string; epoch: number }
  | { type: 'interrupted'; message: string; epoch: number; step: number };

export type ProgressCallback = (event: TrainEvent) => void;

export interface TrainOptions {
  /** Folder holding the runs (default PATHS.runs). */
  runsDir?: string;
  /** Which checkpoint an existing run continues from (default best; see the module comment). */
  resume?: CheckpointKind;
  /** Load the checkpoint and evaluate; train nothing, write nothing. */
  evalOnly?: boolean;
  /** Start the run over (the old one is replaced once the new one has saved an epoch). */
  fresh?: boolean;
  onProgress?: ProgressCallback;
  /** Already loaded data (e.g. a notebook's), used instead of reading the files. */
  data?: { train: Cifar10Split; test: Cifar10Split };
  /** Allow the pure-JS backend (tiny experiments only). */
  allowSlowBackend?: boolean;
}

export interface TrainResult {
  run: string;
  dir: string;
  config: TrainConfig;
  /** trained: epochs ran; complete: the run had finished, evaluated only; evaluated: evalOnly. */
  status: 'trained' | 'complete' | 'evaluated';
  startEpoch: number;
  /** Finished epochs of the state the run ends with. */
  epoch: number;
  bestAccuracy: number;
  bestEpoch: number;
  /** This session's epochs. */
  history: EpochSummary[];
  /** Evaluation of the final state (the loaded checkpoint's, when nothing was trained). */
  test: EvalResult;
  val?: EvalResult;
}

/** Training stopped because the loss or a parameter became NaN or infinite. */
export class DivergedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DivergedError';
  }
}

/** Training stopped on SIGINT at a step (or evaluation batch) boundary; the message says what is saved. */
export class TrainingInterrupted extends Error {
  constructor(
    message: string,
    /** The epoch that was running (not saved) and the optimizer steps taken when it stopped. */
    readonly epoch: number,
    readonly step: number,
  ) {
    super(message);
    this.name = 'TrainingInterrupted';
  }
}

// ---- interruption ---------------------------------------------------------------------------

/**
 * SIGINT for the duration of one train() call. The handler only records the request (an awaited
 * promise would otherwise go on after tslab gave up on the cell); the loop checks it at every
 * step and evaluation batch. dispose() removes the handler: none outlives the call, and a Ctrl-C
 * outside training ends the process as usual.
 */
class InterruptRequest {
  signal?: NodeJS.Signals;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.signal = signal;
  };

  constructor() {
    process.on('SIGINT', this.onSignal);
  }

  dispose(): void {
    process.off('SIGINT', this.onSignal);
  }
}

/** The train() calls of this process that write a run (by run folder), to let a stopping one finish. */
const active = new Map<string, { interrupt: InterruptRequest; ended: Promise<void> }>();

/**
 * A rerun right after ■ finds the interrupted call still finishing its step: wait for it (it ends
 * within a step) instead of refusing. A call that was not interrupted is left to the lock to refuse.
 */
async function waitForInterrupted(dir: string): Promise<void> {
  const other = active.get(dir);
  if (other?.interrupt.signal) await other.ended;
}

// ---- loss and evaluation --------------------------------------------------------------------

/** Mean cross-entropy of logits [batch, 10] against labels [batch] (PyTorch's label_smoothing). */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, labelSmoothing = 0): tf.Scalar {
  // Without smoothing: one TensorFlow kernel for the loss and its gradient (lib/kernels).
  if (labelSmoothing === 0) return sparseCrossEntropy(logits, labels);
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    let target = tf.cast(tf.oneHot(labels, NUM_CLASSES), 'float32');
    if (labelSmoothing > 0) target = tf.add(tf.mul(target, 1 - labelSmoothing), labelSmoothing / NUM_CLASSES);
    return tf.neg(tf.mean(tf.sum(tf.mul(target, logp), 1))) as tf.Scalar;
  });
}

function classCounts(split: Cifar10Split): number[] {
  const counts = new Array<number>(NUM_CLASSES).fill(0);
  for (let i = 0; i < split.count; i++) counts[split.labels[i]]++;
  return counts;
}

/**
 * Evaluation-mode logits [batch, 10] of `net` (BatchNorm on running statistics), run as a
 * TensorFlow graph per batch shape (lib/graph) on the native backend unless `graph: false` or
 * DCF_GRAPH=0. Keep one for many batches: the first two calls per shape also record the forward.
 */
export class EvalForward {
  private readonly graphs?: { plain: GraphFunction; cached: GraphFunction };

  constructor(
    private readonly net: Net,
    opts: { graph?: boolean } = {},
  ) {
    if (opts.graph ?? graphsEnabled()) {
      this.graphs = {
        plain: new GraphFunction(([x]) => [net.forward(x as tf.Tensor4D, false)], net.variables()),
        cached: new GraphFunction(([x, filters]) => [net.forward(x as tf.Tensor4D, false, { filters: filters as tf.Tensor2D })], net.variables()),
      };
    }
  }

  /**
   * Logits of x [batch, 32, 32, 3] (the caller disposes them). `filters`: the head's filters
   * [10, 64] from net.headFilters(), made once for many batches instead of at every one.
   */
  run(x: tf.Tensor4D, opts: { filters?: tf.Tensor2D } = {}): tf.Tensor2D {
    if (!this.graphs) return this.net.forward(x, false, opts);
    const out = opts.filters ? this.graphs.cached.call([x, opts.filters]) : this.graphs.plain.call([x]);
    return out[0] as tf.Tensor2D;
  }

  /** Frees the graphs' TensorFlow sessions (not the net). */
  dispose(): void {
    this.graphs?.plain.dispose();
    this.graphs?.cached.dispose();
  }
}

/**
 * Evaluates `net` on a whole split (BatchNorm on running statistics): loss, accuracy, per-class
 * accuracy, confusion matrix. Reads from the device once, at the end. `onBatch` may throw to stop
 * the pass (train() does on an interrupt).
 */
export async function evaluate(
  net: Net,
  split: Cifar10Split,
  opts: { norm: NormName; batchSize?: number; onBatch?: (images: number, total: number) => void; forward?: EvalForward },
): Promise<EvalResult> {
  const t0 = performance.now();
  const forward = opts.forward ?? new EvalForward(net);
  let lossSum = tf.scalar(0);
  let confusion = tf.zeros([NUM_CLASSES, NUM_CLASSES], 'int32') as tf.Tensor2D;
  let done = 0;
  let complete = false;
  try {
    for (const batch of batches(split, { batchSize: opts.batchSize ?? 500, norm: opts.norm })) {
      const [nextLoss, nextConfusion] = tf.tidy(() => {
        const logits = forward.run(batch.x);
        const loss = tf.mul(crossEntropy(logits, batch.y), batch.indices.length);
        const pred = tf.argMax(logits, 1) as tf.Tensor1D;
        return [tf.add(lossSum, loss), tf.add(confusion, tf.math.confusionMatrix(batch.y, pred, NUM_CLASSES))];
      });
      tf.dispose([lossSum, confusion, batch.x, batch.y]);
      lossSum = nextLoss as tf.Scalar;
      confusion = nextConfusion as tf.Tensor2D;
      done += batch.indices.length;
      opts.onBatch?.(done, split.count);
      await yieldToEventLoop();
    }
    complete = true;
  } finally {
    if (!opts.forward) forward.dispose();
    if (!complete) tf.dispose([lossSum, confusion]); // stopped (onBatch threw): free the sums too
  }
  const [loss, flat] = await Promise.all([lossSum.data(), confusion.data()]);
  tf.dispose([lossSum, confusion]);
  const matrix = Array.from({ length: NUM_CLASSES }, (_, t) => Array.from(flat.slice(t * NUM_CLASSES, (t + 1) * NUM_CLASSES)));
  const correct = matrix.reduce((s, row, t) => s + row[t], 0);
  const seconds = (performance.now() - t0) / 1000;
  return {
    loss: loss[0] / Math.max(split.count, 1),
    accuracy: correct / Math.max(split.count, 1),
    perClassAccuracy: matrix.map((row, t) => row[t] / row.reduce((a, b) => a + b, 0)),
    images: split.count,
    seconds,
    imagesPerSecond: split.count / seconds,
    confusion: matrix,
  };
}

/** Lets timers and I/O run (notebook display updates, signals) between steps. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

// ---- one training step ----------------------------------------------------------------------

/** Per-step statistics kept on the device: [loss · batch, correct, correct per class × 10]. */
const STATS = 2 + NUM_CLASSES;

/**
 * One optimisation step: forward in training mode, cross-entropy, gradients, Adam update.
 * On the native backend it runs as one TensorFlow graph per batch size (lib/graph): the same
 * ops, without JavaScript between them; results equal the eager step's up to float rounding.
 * `graph: false` (or DCF_GRAPH=0 in the environment) keeps every step eager.
 */
export class TrainStep {
  private readonly params: tf.Variable[];
  /** TF.js variable name → PyTorch name (variableGrads keys its gradients by the former). */
  private readonly torchName: Map<string, string>;
  private readonly graph?: GraphFunction;

  constructor(
    private readonly net: Net,
    private readonly adam: Adam,
    private readonly labelSmoothing = 0,
    opts: { graph?: boolean } = {},
  ) {
    this.params = [...net.trainable().values()];
    this.torchName = new Map([...net.trainable()].map(([name, v]) => [v.name, name]));
    if (opts.graph ?? graphsEnabled()) {
      this.graph = new GraphFunction(
        ([x, y, stepSize, bias2Sqrt]) => [this.tensors(x as tf.Tensor4D, y as tf.Tensor1D, stepSize as tf.Scalar, bias2Sqrt as tf.Scalar)],
        [...net.variables(), ...adam.variables()],
      );
    }
  }

  /** One step on the batch x [batch, 32, 32, 3], y [batch]. Returns its statistics [12] (see STATS; the caller disposes them). */
  run(x: tf.Tensor4D, y: tf.Tensor1D, lr: number): tf.Tensor1D {
    const f = this.adam.advance(lr); // counts the step (JavaScript state stays outside the graph)
    if (!this.graph) return this.tensors(x, y, f.stepSize, f.bias2Sqrt);
    const factors = [tf.scalar(f.stepSize), tf.scalar(f.bias2Sqrt)];
    try {
      return this.graph.call([x, y, ...factors])[0] as tf.Tensor1D;
    } finally {
      tf.dispose(factors);
    }
  }

  /** Frees the graph's TensorFlow sessions (not the net or the optimizer). */
  dispose(): void {
    this.graph?.dispose();
  }

  /** The step's tensor work: what the graph holds. */
  private tensors(x: tf.Tensor4D, y: tf.Tensor1D, stepSize: number | tf.Scalar, bias2Sqrt: number | tf.Scalar): tf.Tensor1D {
    let stats: tf.Tensor1D | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const logits = this.net.forward(x, true);
      const loss = crossEntropy(logits, y, this.labelSmoothing);
      stats = tf.keep(
        tf.tidy(() => {
          const hit = tf.cast(tf.equal(tf.argMax(logits, 1), y), 'float32'); // [batch]
          const perClass = tf.sum(tf.mul(tf.cast(tf.oneHot(y, NUM_CLASSES), 'float32'), tf.expandDims(hit, 1)), 0); // [10]
          return tf.concat([tf.reshape(tf.mul(loss, y.shape[0]), [1]), tf.reshape(tf.sum(hit), [1]), perClass]) as tf.Tensor1D;
        }),
      );
      return loss;
    }, this.params);
    const named: Record<string, tf.Tensor> = {};
    for (const [id, g] of Object.entries(grads)) named[this.torchName.get(id)!] = g;
    this.adam.apply(named, { stepSize, bias2Sqrt });
    tf.dispose([value, ...Object.values(grads)]);
    return stats!;
  }
}

// ---- the run --------------------------------------------------------------------------------

interface Data {
  train: Cifar10Split;
  test: Cifar10Split;
  val?: Cifar10Split;
}

function loadData(config: TrainConfig, given?: TrainOptions['data']): Data {
  const limit = (n: number) => (n > 0 ? n : undefined);
  let train = given?.train ?? loadCifar10('train', { limit: limit(config.limitTrain) });
  let test = given?.test ?? loadCifar10('test', { limit: limit(config.limitTest) });
  if (given && config.limitTrain > 0 && train.count > config.limitTrain) train = slice(train, config.limitTrain);
  if (given && config.limitTest > 0 && test.count > config.limitTest) test = slice(test, config.limitTest);
  if (config.val > 0) {
    const parts = splitValidation(train, config.val); // the fixed split, the same for every run
    return { train: parts.train, val: parts.val, test };
  }
  return { train, test };
}

function slice(split: Cifar10Split, n: number): Cifar10Split {
  return { images: split.images.subarray(0, n * 32 * 32 * 3), labels: split.labels.subarray(0, n), count: n };
}

/**
 * Picks the checkpoint a run continues from, or none (a new run). Reads, never writes. With a
 * `damaged` latest metrics block, only a checkpoint from before that epoch will do (the epoch is
 * retrained, so that every epoch keeps its rows).
 */
function chooseStart(
  store: RunDir,
  config: TrainConfig,
  opts: TrainOptions,
  damaged?: DamagedEpoch,
): { content: CheckpointContent; file: string; kind: CheckpointKind; complete: boolean } | undefined {
  if (opts.fresh || !store.hasCheckpoint()) return undefined;
  const last = store.checkpoint('last');
  const best = store.checkpoint('best');
  const epochOf = (file: string) => (fs.existsSync(file) ? readCheckpointMeta(file).epoch : undefined);
  const usable = (file: string) => fs.existsSync(file) && (!damaged || epochOf(file)! < damaged.epoch);
  // A run whose last epoch finished everything asked is complete: evaluate its best, train nothing.
  let complete = false;
  if (!opts.resume && usable(last)) {
    complete = epochOf(last)! >= config.epochs;
  }
  let kind: CheckpointKind = opts.resume ?? (fs.existsSync(best) ? 'best' : 'last');
  if (damaged && !usable(kind === 'best' ? best : last)) {
    const other: CheckpointKind = kind === 'best' ? 'last' : 'best';
    if (opts.resume || !usable(other === 'best' ? best : last)) {
      throw new Error(
        `run '${config.run}': the metrics of its latest epoch ${damaged.epoch} cannot be read (${damaged.reason}), and ` +
          `${opts.resume ? `its ${kind} checkpoint is` : 'both checkpoints are'} from epoch ${damaged.epoch} or later: resuming would leave ` +
          `epoch ${damaged.epoch} without its rows. ${opts.resume ? `Resume from the other checkpoint (--resume ${other}), or s` : 'S'}tart over with --fresh.`,
      );
    }
    kind = other;
  }
  const file = kind === 'best' ? best : last;
  if (!fs.existsSync(file)) {
    throw new Error(`run '${config.run}' has no ${kind} checkpoint (${file}); use --resume ${kind === 'best' ? 'last' : 'best'}`);
  }
  const content = readCheckpoint(file);
  const saved = validateConfig(content.meta.config, `the config saved in ${file}`);
  const conflicts = configConflicts(saved, config);
  if (conflicts.length) {
    throw new Error(
      `run '${config.run}' was trained with other settings; a resumed run can only change ` +
        `epochs, lr, logEvery and evalBatchSize:\n  ${conflicts.join('\n  ')}\n` +
        'Use another --run name for a new experiment, or --fresh to start this run over.',
    );
  }
  return { content, file, kind, complete };
}

/**
 * Trains (or resumes, or evaluates) the run `config.run`. See the module comment for what
 * happens on a rerun. Throws DivergedError on a NaN/Inf loss, keeping every saved file.
 */
export async function train(configIn: TrainConfig, opts: TrainOptions = {}): Promise<TrainResult> {
  const config = validateConfig(configIn);
  const info = activeBackend() ?? initBackend();
  assertFastBackend(info, opts.allowSlowBackend);
  const backend = describeBackend(info);
  const store = new RunDir(opts.runsDir ?? PATHS.runs, config.run);
  const emit = opts.onProgress ?? (() => {});
  if (opts.fresh && opts.evalOnly) throw new Error('evalOnly and fresh contradict each other: there is nothing to evaluate after starting over');

  const key = path.resolve(store.dir);
  if (!opts.evalOnly) {
    await waitForInterrupted(key);
    store.lock(); // refuses a second training of this run, here or in another process
  }
  // Evaluating only writes nothing: there Ctrl-C may end the process as usual.
  const interrupt = opts.evalOnly ? undefined : new InterruptRequest();
  let ended!: () => void;
  if (interrupt) active.set(key, { interrupt, ended: new Promise<void>((resolve) => (ended = resolve)) });
  let net: Net | undefined;
  let adam: Adam | undefined;
  let trainStep: TrainStep | undefined;
  let evalForward: EvalForward | undefined;
  try {
    const notes = opts.evalOnly ? [] : prepareRunDir(store, !!opts.fresh);
    const damaged = opts.evalOnly || opts.fresh ? undefined : findDamagedTail(store.dir);
    const start = chooseStart(store, config, opts, damaged);
    if (opts.evalOnly && !start) throw new Error(`run '${config.run}' has no checkpoint to evaluate under ${store.runsDir}`);
    if (damaged) {
      setAsideDamaged(damaged);
      notes.push(`the metrics of epoch ${damaged.epoch} could not be read: set aside as *.damaged; epoch ${damaged.epoch} is trained again`);
    }

    const data = loadData(config, opts.data);
    net = createNet(config.variant, {
      seed: config.seed,
      freeze: config.freeze,
      architecture: architectureOf(config),
      pretrained: start || !config.pretrained ? false : pretrainedFile(config.weights),
    });
    adam = new Adam(net.trainable(), { lr: config.lr, weightDecay: config.weightDecay });
    if (start) restoreCheckpoint(start.content, start.file, net, adam);
    const startEpoch = start?.content.meta.epoch ?? 0;
    let bestAccuracy = start ? start.content.meta.bestAccuracy : -Infinity;
    let bestEpoch = start ? start.content.meta.bestEpoch : 0;

    // Where things stand if an interrupt stops the call now.
    let savedEpoch = startEpoch;
    let committed = !opts.fresh;
    const stopIfInterrupted = (epoch: number, where: string) => {
      if (!interrupt?.signal) return;
      const message =
        epoch <= startEpoch
          ? `run ${config.run}: evaluation of its checkpoint interrupted (${interrupt.signal}); nothing was written.`
          : `run ${config.run} interrupted (${interrupt.signal}) in epoch ${epoch}/${config.epochs} ${where}, step ${adam!.stepCount}: ` +
            `epoch ${epoch} was not saved. ${describeSaved(store, { savedEpoch, bestAccuracy, bestEpoch, committed })}`;
      emit({ type: 'interrupted', message, epoch, step: adam!.stepCount });
      throw new TrainingInterrupted(message, epoch, adam!.stepCount);
    };

    const evalSplits = async (epoch: number) => {
      const ev = (split: Split, s: Cifar10Split) =>
        evaluate(net!, s, {
          forward: (evalForward ??= new EvalForward(net!)),
          norm: config.norm,
          batchSize: config.evalBatchSize,
          onBatch: (images, total) => {
            emit({ type: 'eval', epoch, split, images, total });
            stopIfInterrupted(epoch, `while evaluating ${split} (${images}/${total} images)`);
          },
        });
      const test = await ev('test', data.test);
      const val = data.val ? await ev('val', data.val) : undefined;
      return { test, val };
    };

    if (opts.evalOnly || start?.complete || startEpoch >= config.epochs) {
      const { test, val } = await evalSplits(startEpoch);
      return {
        run: config.run, dir: store.dir, config, status: opts.evalOnly ? 'evaluated' : 'complete', startEpoch,
        epoch: startEpoch, bestAccuracy, bestEpoch, history: [], test, val,
      };
    }

    // From here on the session writes: into the run, or into the staging folder of a fresh start.
    let dir = opts.fresh ? store.beginFresh() : store.dir;
    const session = nextSession(dir);
    const perEpoch = numBatches(data.train.count, config.batchSize);
    const totalSteps = config.epochs * perEpoch;
    trainStep = new TrainStep(net, adam, config.labelSmoothing);
    const trainCounts = classCounts(data.train);
    const identity = { run: config.run, session, resumedFrom: startEpoch, variant: config.variant, seed: config.seed, backend };
    emit({
      type: 'start', run: config.run, dir: store.dir, config, startEpoch, resumedFrom: start?.kind ?? null, session,
      batchesPerEpoch: perEpoch, trainImages: data.train.count, testImages: data.test.count, valImages: data.val?.count ?? 0, backend,
      ...(notes.length ? { notes } : {}),
    });

    const history: EpochSummary[] = [];
    let savedThisSession = false;
    let evalSecondsEstimate: number | undefined;
    let last: { test: EvalResult; val?: EvalResult } | undefined;
    for (let epoch = startEpoch + 1; epoch <= config.epochs; epoch++) {
      const epochStart = performance.now();
      // -- train pass
      const stepRows: StepRow[] = [];
      const totals = new Float64Array(STATS);
      let window = tf.zeros([STATS]) as tf.Tensor1D;
      let windowStart = performance.now();
      let windowImages = 0;
      let windowSteps = 0;
      let seen = 0;
      let lr = config.lr;
      let runningLoss = NaN;
      let runningAcc = NaN;
      let batchIndex = 0;
      for (const batch of batches(data.train, { batchSize: config.batchSize, norm: config.norm, shuffle: true, seed: config.seed, augment: config.augment, epoch })) {
        batchIndex++;
        const step = adam.stepCount; // 0-based index of this step
        lr = learningRate(config, step, totalSteps);
        const stats = trainStep.run(batch.x, batch.y, lr);
        const next = tf.add(window, stats) as tf.Tensor1D;
        tf.dispose([window, stats, batch.x, batch.y]);
        window = next;
        const n = batch.indices.length;
        seen += n;
        windowImages += n;
        windowSteps++;

        if (windowSteps === config.logEvery || batchIndex === perEpoch) {
          // The loss alone can miss a divergence: in a graph the fused convolution + ReLU turns NaN
          // activations into zeros, so NaN weights may leave it finite. A NaN or infinite gradient
          // at any step so far leaves Adam's first moment non-finite for good: check that too.
          const finiteCheck = adam.allFinite();
          const [w, finite] = await Promise.all([window.data(), finiteCheck.data()]);
          tf.dispose([window, finiteCheck]);
          window = tf.zeros([STATS]) as tf.Tensor1D;
          if (!Number.isFinite(w[0]) || !finite[0]) {
            window.dispose();
            const what = Number.isFinite(w[0]) ? 'gradients became NaN or infinite' : `loss became ${w[0]}`;
            throw new DivergedError(
              `training diverged: the ${what} in epoch ${epoch} between steps ${adam.stepCount - windowSteps + 1} and ${adam.stepCount} ` +
                `(lr ${lr}). Nothing of this epoch was saved; ${describeKept(store, bestAccuracy, bestEpoch)} ` +
                'Lower --lr (or check the data) and rerun.',
            );
          }
          for (let i = 0; i < STATS; i++) totals[i] += w[i];
          const seconds = (performance.now() - windowStart) / 1000;
          stepRows.push({
            ...identity, epoch, step: adam.stepCount, batch: batchIndex, images: windowImages, loss: w[0] / windowImages,
            accuracy: w[1] / windowImages, lr, imagesPerSecond: windowImages / seconds, time: new Date(),
          });
          runningLoss = totals[0] / seen;
          runningAcc = totals[1] / seen;
          windowStart = performance.now();
          windowImages = 0;
          windowSteps = 0;
        }
        const elapsed = (performance.now() - epochStart) / 1000;
        const perBatch = elapsed / batchIndex;
        const epochEta = perBatch * (perEpoch - batchIndex);
        const evalEta = evalSecondsEstimate ?? ((data.test.count + (data.val?.count ?? 0)) / (seen / elapsed)) / 3;
        emit({
          type: 'step', epoch, epochs: config.epochs, batch: batchIndex, batches: perEpoch, step: adam.stepCount,
          loss: runningLoss, accuracy: runningAcc, lr, imagesPerSecond: seen / elapsed, epochEtaSeconds: epochEta,
          etaSeconds: epochEta + evalEta + (config.epochs - epoch) * (perBatch * perEpoch + evalEta),
        });
        await yieldToEventLoop();
        if (interrupt?.signal) window.dispose();
        stopIfInterrupted(epoch, `at batch ${batchIndex}/${perEpoch}`);
      }
      window.dispose();
      const trainSeconds = (performance.now() - epochStart) / 1000;
      const trainStats: PassStats = {
        loss: totals[0] / seen,
        accuracy: totals[1] / seen,
        perClassAccuracy: trainCounts.map((c, k) => totals[2 + k] / c),
        images: seen,
        seconds: trainSeconds,
        imagesPerSecond: seen / trainSeconds,
      };

      // -- evaluate
      const evalStart = performance.now();
      const { test, val } = await evalSplits(epoch);
      evalSecondsEstimate = (performance.now() - evalStart) / 1000;
      for (const [name, r] of [['test', test], ['val', val]] as const) {
        if (r && !Number.isFinite(r.loss)) {
          throw new DivergedError(
            `training diverged: the ${name} loss is ${r.loss} after epoch ${epoch} (lr ${lr}). Nothing of this epoch was saved; ` +
              `${describeKept(store, bestAccuracy, bestEpoch)} Lower --lr and rerun.`,
          );
        }
      }
      const selection = config.selectBy === 'val' ? val!.accuracy : test.accuracy;
      const improved = selection > bestAccuracy;
      if (improved) {
        bestAccuracy = selection;
        bestEpoch = epoch;
      }

      // -- record: metrics first, then checkpoints (best before last: a crash in between still
      //    resumes from the newest state), so a finished epoch's rows always exist.
      const row = (split: Split, r: PassStats): EpochRow => ({
        ...identity, epoch, split, step: adam!.stepCount, images: r.images, loss: r.loss, accuracy: r.accuracy,
        perClassAccuracy: r.perClassAccuracy, lr, imagesPerSecond: r.imagesPerSecond, wallSeconds: r.seconds, time: new Date(),
      });
      const rows = [row('train', trainStats), row('test', test)];
      if (val) rows.push(row('val', val));
      appendEpoch(dir, rows, stepRows);
      if (!savedThisSession) store.writeConfig(config, dir);
      const meta = { accuracy: selection, bestAccuracy, bestEpoch, epoch, session, config: { ...config }, backend };
      if (improved) {
        saveCheckpoint(store.checkpoint('best', dir), net, adam, { ...meta, kind: 'best' });
        emit({ type: 'checkpoint', kind: 'best', file: store.checkpoint('best'), epoch });
      }
      saveCheckpoint(store.checkpoint('last', dir), net, adam, { ...meta, kind: 'last' });
      emit({ type: 'checkpoint', kind: 'last', file: store.checkpoint('last'), epoch });
      if (!savedThisSession && opts.fresh) {
        store.commitFresh();
        dir = store.dir;
        committed = true;
      }
      savedThisSession = true;
      savedEpoch = epoch;

      const summary: EpochSummary = {
        epoch, epochs: config.epochs, step: adam.stepCount, lr, train: trainStats, test, val, selection, improved,
        bestAccuracy, bestEpoch, seconds: (performance.now() - epochStart) / 1000,
      };
      history.push(summary);
      last = { test, val };
      emit({ type: 'epoch', summary });
    }
    return {
      run: config.run, dir: store.dir, config, status: 'trained', startEpoch, epoch: config.epochs, bestAccuracy, bestEpoch,
      history, test: last!.test, val: last!.val,
    };
  } finally {
    interrupt?.dispose();
    trainStep?.dispose();
    evalForward?.dispose();
    adam?.dispose();
    net?.dispose();
    store.release();
    if (interrupt) {
      active.delete(key);
      ended();
    }
  }
}

/**
 * Before a session writes (lock held): fails early on a folder it cannot write, and finishes or
 * discards what an interrupted --fresh left. Returns notes on what it repaired.
 */
function prepareRunDir(store: RunDir, fresh: boolean): string[] {
  store.assertWritable({ fresh });
  switch (store.recover()) {
    case 'committed':
      return [`an interrupted --fresh restart had saved its first epoch: finished it, the restarted run replaced the old one`];
    case 'discarded':
      return [`an interrupted --fresh restart had saved no epoch: discarded it, the run is as it was before`];
    case 'none':
      return [];
  }
}

/** What an interrupted call leaves, in one sentence, and how to go on. */
function describeSaved(store: RunDir, s: { savedEpoch: number; bestAccuracy: number; bestEpoch: number; committed: boolean }): string {
  if (!s.committed) return `The --fresh restart saved nothing; run '${store.run}' is as it was before. Rerun to restart it.`;
  if (s.savedEpoch === 0) return 'No checkpoint had been saved yet; a rerun starts from scratch.';
  return (
    `Saved: epochs 1–${s.savedEpoch} (last checkpoint: epoch ${s.savedEpoch}; best: epoch ${s.bestEpoch}, ${(s.bestAccuracy * 100).toFixed(2)}%) ` +
    `in ${store.dir}. Rerun to resume from the best checkpoint (resume 'last' / --resume last: from epoch ${s.savedEpoch}).`
  );
}

function describeKept(store: RunDir, bestAccuracy: number, bestEpoch: number): string {
  return bestEpoch > 0
    ? `the best checkpoint (epoch ${bestEpoch}, ${(bestAccuracy * 100).toFixed(2)}%) is kept in ${store.checkpoint('best')}.`
    : 'no checkpoint had been saved yet.';
}
