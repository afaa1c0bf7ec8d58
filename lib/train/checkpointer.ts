/**
 * What a training session saves after each epoch, and what it has saved so far: the `best`
 * checkpoint when the selection accuracy (test, or validation with selectBy 'val') improved,
 * then the `last` one (best before last: a crash in between still resumes from the newest state);
 * each file written atomically (lib/train checkpoint). A --fresh session writes into a staging
 * folder that replaces the run once its first epoch is saved (lib/train run-dir).
 */
import type { Net } from '../model/index';
import type { Adam } from './adam';
import { saveCheckpoint, type CheckpointMeta } from './checkpoint';
import type { EvalResult } from './evaluate';
import type { ProgressCallback } from './events';
import type { RunDir } from './run-dir';
import type { TrainConfig } from './train-config';

export class Checkpointer {
  /** Best selection accuracy so far and its epoch (0: none yet). */
  bestAccuracy: number;
  bestEpoch: number;
  /** The newest saved epoch (the start's, before this session saves). */
  savedEpoch: number;
  /** Where this session writes: the run's folder, or a --fresh restart's staging folder until it commits. */
  dir: string;
  /** False while a --fresh restart has saved nothing: the old run is still the run. */
  private committed: boolean;
  private savedThisSession = false;

  constructor(
    private readonly store: RunDir,
    private readonly config: TrainConfig,
    private readonly session: { fresh: boolean; backend: string; start?: Pick<CheckpointMeta, 'epoch' | 'bestAccuracy' | 'bestEpoch'> },
  ) {
    this.bestAccuracy = session.start?.bestAccuracy ?? -Infinity;
    this.bestEpoch = session.start?.bestEpoch ?? 0;
    this.savedEpoch = session.start?.epoch ?? 0;
    this.committed = !session.fresh;
    this.dir = store.dir;
  }

  /** From here on the session writes: into the run, or into the staging folder of a fresh start. Returns the folder. */
  begin(): string {
    if (this.session.fresh) this.dir = this.store.beginFresh();
    return this.dir;
  }

  /** The epoch's selection accuracy (test, or val with selectBy 'val'), and whether it is the best so far (then recorded as such). */
  select(epoch: number, test: EvalResult, val?: EvalResult): { selection: number; improved: boolean } {
    const selection = this.config.selectBy === 'val' ? val!.accuracy : test.accuracy;
    const improved = selection > this.bestAccuracy;
    if (improved) {
      this.bestAccuracy = selection;
      this.bestEpoch = epoch;
    }
    return { selection, improved };
  }

  /**
   * Saves the epoch: the config on the session's first save, `best` when it improved, then `last`;
   * commits a --fresh restart after its first epoch. Call after the epoch's metrics rows are written.
   */
  save(epoch: number, net: Net, adam: Adam, s: { selection: number; improved: boolean; session: number }, emit: ProgressCallback): void {
    if (!this.savedThisSession) this.store.writeConfig(this.config, this.dir);
    const meta = {
      accuracy: s.selection, bestAccuracy: this.bestAccuracy, bestEpoch: this.bestEpoch, epoch, session: s.session,
      config: { ...this.config }, backend: this.session.backend,
    };
    if (s.improved) {
      saveCheckpoint(this.store.checkpoint('best', this.dir), net, adam, { ...meta, kind: 'best' });
      emit({ type: 'checkpoint', kind: 'best', file: this.store.checkpoint('best'), epoch });
    }
    saveCheckpoint(this.store.checkpoint('last', this.dir), net, adam, { ...meta, kind: 'last' });
    emit({ type: 'checkpoint', kind: 'last', file: this.store.checkpoint('last'), epoch });
    if (!this.savedThisSession && this.session.fresh) {
      this.store.commitFresh();
      this.dir = this.store.dir;
      this.committed = true;
    }
    this.savedThisSession = true;
    this.savedEpoch = epoch;
  }

  /** The line an interrupted call ends with: where it stopped (`where`: 'at batch 3/10') and what is saved. */
  describeInterrupt(signal: string, epoch: number, where: string, step: number): string {
    const { run, epochs } = this.config;
    if (epoch <= (this.session.start?.epoch ?? 0)) return `run ${run}: evaluation of its checkpoint interrupted (${signal}); nothing was written.`;
    return `run ${run} interrupted (${signal}) in epoch ${epoch}/${epochs} ${where}, step ${step}: epoch ${epoch} was not saved. ${this.describeSaved()}`;
  }

  /** What an interrupted call leaves, in one sentence, and how to go on. */
  describeSaved(): string {
    const store = this.store;
    if (!this.committed) return `The --fresh restart saved nothing; run '${store.run}' is as it was before. Rerun to restart it.`;
    if (this.savedEpoch === 0) return 'No checkpoint had been saved yet; a rerun starts from scratch.';
    return (
      `Saved: epochs 1–${this.savedEpoch} (last checkpoint: epoch ${this.savedEpoch}; best: epoch ${this.bestEpoch}, ${(this.bestAccuracy * 100).toFixed(2)}%) ` +
      `in ${store.dir}. Rerun to resume from the best checkpoint (resume 'last' / --resume last: from epoch ${this.savedEpoch}).`
    );
  }

  /** What a diverged run keeps, in one sentence. */
  readonly describeKept = (): string =>
    this.bestEpoch > 0
      ? `the best checkpoint (epoch ${this.bestEpoch}, ${(this.bestAccuracy * 100).toFixed(2)}%) is kept in ${this.store.checkpoint('best')}.`
      : 'no checkpoint had been saved yet.';
}
