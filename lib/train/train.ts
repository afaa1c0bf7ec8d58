/**
 * The lab's training loop, readable top to bottom:
 *
 *   open the run (lib/train run: its lock, repairs, the checkpoint it continues from); then for
 *   each epoch: shuffled (optionally augmented) batches → one step each (forward in training
 *   mode, cross-entropy, gradients, Adam; lib/train train-step); then evaluate on the official
 *   test set (and the validation split if configured; lib/train evaluate); append the epoch to
 *   the run: its metrics (metrics-recorder), `best` if the selection accuracy improved, `last`.
 *
 * Re-running a run resumes it: from its best checkpoint (default) or its last, continuing with
 * the next epoch until `epochs` are done. A run whose last checkpoint already finished all
 * epochs is only evaluated (rerunning a finished notebook cell does not retrain), unless a
 * checkpoint is asked for explicitly. `fresh` starts over without destroying the old run until
 * the new one has saved its first epoch.
 *
 * The loop never reads from the device except every `logEvery` steps (loss, accuracy and a
 * NaN/Inf check: divergence), creates the same number of tensors at every step, and reports
 * progress only through the `onProgress` callback (events).
 *
 * Interruption (interrupt): while train() runs it listens for SIGINT (■ in JupyterLab, Ctrl-C in
 * a terminal) and stops at the next step or evaluation batch, throwing TrainingInterrupted with
 * one line saying where it stopped and what is saved. One run trains at most once at a time, in
 * this process or any other (the run's lock).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Adam, learningRate } from './adam';
import { describeBackend, resolvePrecision, trainingBackend } from '../runtime/index';
import { architectureOf, createNet } from '../model/index';
import { BatchPrefetcher, numBatches } from '../data/index';
import { PATHS, pretrainedFile } from '../config';
import { restoreCheckpoint, type CheckpointKind } from './checkpoint';
import { checkEvaluationFinite } from './divergence';
import { EvalForward, evaluateRun, yieldToEventLoop, type EvalResult } from './evaluate';
import { ProgressClock, type EpochSummary, type ProgressCallback } from './events';
import { InterruptRequest } from './interrupt';
import { MetricsRecorder } from './metrics-recorder';
import { openRun, type SavedEpoch } from './run';
import { loadTrainData, type TrainData } from './train-data';
import { validateConfig, type TrainConfig } from './train-config';
import { TrainStep } from './train-step';

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
  data?: Pick<TrainData, 'train' | 'test'>;
  /** Allow the pure-JS backend (tiny experiments only). */
  allowSlowBackend?: boolean;
  /** Called after each epoch is saved: where a derived view of the metrics (TensorBoard) is written. */
  onEpochSaved?: (epoch: SavedEpoch) => void;
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
  /** What opening the run repaired (also in the 'start' event when it trains). */
  notes: string[];
}

/**
 * Trains (or resumes, or evaluates) the run `config.run`. See the module comment for what
 * happens on a rerun. Throws DivergedError on a NaN/Inf loss, keeping every saved file.
 */
export async function train(configIn: TrainConfig, opts: TrainOptions = {}): Promise<TrainResult> {
  const config = validateConfig(configIn);
  // config.precision 'auto' becomes bf16 only where this CPU was measured faster in it (lib/runtime/precision).
  const precision = resolvePrecision(config.precision);
  const backend = describeBackend(trainingBackend(opts.allowSlowBackend), precision);
  const emit = opts.onProgress ?? (() => {});
  const { runsDir = PATHS.runs, resume, evalOnly, fresh, onEpochSaved } = opts;
  // Takes the run's lock (unless evaluating only), repairs or refuses what a crash or a hand edit left.
  const run = await openRun(config, { runsDir, resume, evalOnly, fresh, backend, onEpochSaved });
  const disposables: { dispose(): void }[] = [];
  const own = <T extends { dispose(): void }>(x: T): T => (disposables.push(x), x);
  let interrupt: InterruptRequest | undefined;
  try {
    // Listens for SIGINT; evaluating only writes nothing (Ctrl-C ends it as usual).
    interrupt = evalOnly ? undefined : await InterruptRequest.listen(run.dir);
    const { start, startEpoch } = run;
    const data = loadTrainData(config, opts.data);
    const net = own(
      createNet(config.variant, {
        seed: config.seed,
        freeze: config.freeze,
        architecture: architectureOf(config),
        pretrained: start || !config.pretrained ? false : pretrainedFile(config.weights),
      }),
    );
    const adam = own(new Adam(net.trainable(), { lr: config.lr, weightDecay: config.weightDecay }));
    if (start) restoreCheckpoint(start.content, start.file, net, adam);
    // At every step and evaluation batch: SIGINT stops here, saying where and what is saved.
    const stopIfInterrupted = (epoch: number, where: string) =>
      interrupt?.stopIfRequested(emit, epoch, adam.stepCount, (signal) =>
        run.describeInterrupt(signal, epoch, where, adam.stepCount),
      );
    const forward = own(new EvalForward(net, { precision: precision.precision }));
    const evaluateSplits = (epoch: number) =>
      evaluateRun(
        net,
        data,
        { forward, norm: config.norm, batchSize: config.evalBatchSize },
        (split, images, total) => {
          emit({ type: 'eval', epoch, split, images, total });
          stopIfInterrupted(epoch, `while evaluating ${split} (${images}/${total} images)`);
        },
      );
    const { notes } = run;
    const result = { run: config.run, dir: run.dir, config, startEpoch, history: [] as EpochSummary[], notes };
    const best = () => ({ bestAccuracy: run.bestAccuracy, bestEpoch: run.bestEpoch });

    if (evalOnly || run.complete) {
      const final = await evaluateSplits(startEpoch);
      return { ...result, ...final, ...best(), status: evalOnly ? 'evaluated' : 'complete', epoch: startEpoch };
    }

    // From here on the session writes: into the run, or into the staging folder of a fresh start.
    const session = run.begin();
    const perEpoch = numBatches(data.train.count, config.batchSize);
    const totalSteps = config.epochs * perEpoch;
    const step = own(new TrainStep(net, adam, config.labelSmoothing, { precision: precision.precision }));
    const prefetch = own(new BatchPrefetcher(data.train, config.batchSize)); // the next batch is made while a step runs
    const origin = {
      run: config.run,
      session,
      resumedFrom: startEpoch,
      variant: config.variant,
      seed: config.seed,
      backend,
    };
    const metrics = own(new MetricsRecorder(origin, config, data.train, perEpoch));
    const clock = new ProgressClock(config, perEpoch, data.test.count + (data.val?.count ?? 0));
    emit({
      type: 'start',
      run: config.run,
      dir: run.dir,
      config,
      startEpoch,
      resumedFrom: start?.kind ?? null,
      session,
      batchesPerEpoch: perEpoch,
      trainImages: data.train.count,
      testImages: data.test.count,
      valImages: data.val?.count ?? 0,
      backend,
      ...(notes.length ? { notes } : {}),
    });

    let final!: { test: EvalResult; val?: EvalResult };
    for (let epoch = startEpoch + 1; epoch <= config.epochs; epoch++) {
      clock.startEpoch();
      metrics.startEpoch(epoch);
      let lr = config.lr;
      for (const batch of prefetch.batches({
        batchSize: config.batchSize,
        norm: config.norm,
        shuffle: true,
        seed: config.seed,
        augment: config.augment,
        epoch,
      })) {
        lr = learningRate(config, adam.stepCount, totalSteps);
        const due = metrics.add(step.run(batch.x, batch.y, lr), batch.indices.length);
        tf.dispose([batch.x, batch.y]);
        if (due) await metrics.readBack(adam, lr, run.describeKept); // throws DivergedError on NaN/Inf
        emit(
          clock.step({
            epoch,
            batch: metrics.batch,
            step: adam.stepCount,
            images: metrics.images,
            loss: metrics.loss,
            accuracy: metrics.accuracy,
            lr,
          }),
        );
        await yieldToEventLoop();
        stopIfInterrupted(epoch, `at batch ${metrics.batch}/${perEpoch}`);
      }
      const trainPass = metrics.pass();

      clock.startEvaluation();
      const { test, val } = (final = await evaluateSplits(epoch));
      clock.endEvaluation();
      checkEvaluationFinite({ test, val }, { epoch, lr }, run.describeKept);

      const rows = metrics.epochRows({ step: adam.stepCount, lr, train: trainPass, test, val });
      const finished = { epoch, rows, steps: metrics.stepRows, test, val };
      const { selection, improved } = run.appendEpoch(finished, net, adam, emit);
      const summary: EpochSummary = {
        epoch,
        epochs: config.epochs,
        step: adam.stepCount,
        lr,
        train: trainPass,
        test,
        val,
        selection,
        improved,
        ...best(),
        seconds: clock.epochSeconds(),
      };
      result.history.push(summary);
      emit({ type: 'epoch', summary });
    }
    return { ...result, ...final, ...best(), status: 'trained', epoch: config.epochs };
  } finally {
    for (const d of disposables.reverse()) d.dispose();
    run.close();
    interrupt?.dispose();
  }
}
