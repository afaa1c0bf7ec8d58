/**
 * Interruption of a training call: while train() runs it listens for SIGINT (■ in JupyterLab,
 * Ctrl-C in a terminal) and SIGTERM (kill; a batch system stopping a job); the loop checks at
 * every step and evaluation batch and stops there, throwing TrainingInterrupted with one line
 * saying where it stopped and what is saved. The listeners are removed when the call ends: none
 * outlives it, and a Ctrl-C outside training ends the process as usual.
 */
import * as path from 'path';
import type { ProgressCallback } from './events';

/** Training stopped on SIGINT or SIGTERM at a step (or evaluation batch) boundary; the message says what is saved. */
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

/** The train() calls of this process that write a run (by run folder), to let a stopping one finish. */
const active = new Map<string, { interrupt: InterruptRequest; ended: Promise<void> }>();

/** The signals that stop a training call at its next step. */
export const INTERRUPT_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

/**
 * SIGINT / SIGTERM for the duration of one training call on a run (which holds its lock). The
 * handler only records the request (an awaited promise would otherwise go on after tslab gave up
 * on the cell); the loop reads `signal`.
 */
export class InterruptRequest {
  signal?: NodeJS.Signals;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.signal = signal;
  };
  private ended!: () => void;

  private constructor(private readonly key: string) {
    for (const s of INTERRUPT_SIGNALS) process.on(s, this.onSignal);
    active.set(key, { interrupt: this, ended: new Promise<void>((resolve) => (this.ended = resolve)) });
  }

  /** Starts listening for the training call on run folder `dir`. */
  static async listen(dir: string): Promise<InterruptRequest> {
    // Listen only after the caller's synchronous part has returned. tslab runs a cell's code in
    // vm.runInThisContext({ breakOnSigint: true }), whose SIGINT watchdog restores the process's
    // handler when the code returns: a listener added before that is left without a native
    // handler, and the next ■ kills the kernel instead of stopping the run.
    await new Promise<void>((resolve) => setImmediate(resolve));
    return new InterruptRequest(path.resolve(dir));
  }

  /**
   * Resolves once no interrupted call of this process is still finishing its step on run folder
   * `dir` (it ends within a step): a rerun right after ■ waits for it instead of being refused;
   * a call that was not interrupted is left to the lock to refuse.
   */
  static async settled(dir: string): Promise<void> {
    const other = active.get(path.resolve(dir));
    if (other?.interrupt.signal) await other.ended;
  }

  /**
   * Throws TrainingInterrupted, after an 'interrupted' event, once a signal arrived; `describe` says
   * where it stopped and what is saved.
   */
  stopIfRequested(
    emit: ProgressCallback,
    epoch: number,
    step: number,
    describe: (signal: NodeJS.Signals) => string,
  ): void {
    if (!this.signal) return;
    const message = describe(this.signal);
    emit({ type: 'interrupted', message, epoch, step });
    throw new TrainingInterrupted(message, epoch, step);
  }

  /** Stops listening and lets a waiting rerun go (call after the run's lock is released). */
  dispose(): void {
    for (const s of INTERRUPT_SIGNALS) process.off(s, this.onSignal);
    active.delete(this.key);
    this.ended();
  }
}
