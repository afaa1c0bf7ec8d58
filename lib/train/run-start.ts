/**
 * Where a training call starts: repairs what an interrupted session left (an unfinished --fresh
 * restart, a damaged metrics block), then picks the checkpoint the run continues from — its best
 * (default) or its last — or none (a new run, or --fresh).
 */
import * as fs from 'fs';
import { readCheckpoint, readCheckpointMeta, type CheckpointContent, type CheckpointKind } from './checkpoint';
import { findDamagedTail, setAsideDamaged, type DamagedEpoch } from './metrics';
import type { RunDir } from './run-dir';
import { configConflicts, validateConfig, type TrainConfig } from './train-config';

/** The checkpoint a run continues from. */
export interface RunStart {
  content: CheckpointContent;
  file: string;
  kind: CheckpointKind;
  /** Its last checkpoint finished every epoch asked: evaluate, train nothing. */
  complete: boolean;
}

export interface StartOptions {
  resume?: CheckpointKind;
  evalOnly?: boolean;
  fresh?: boolean;
}

/**
 * Prepares the run for a session (lock held unless evalOnly, which writes nothing) and picks its
 * start. `notes` say what was repaired.
 */
export function openRun(store: RunDir, config: TrainConfig, opts: StartOptions): { start?: RunStart; notes: string[] } {
  if (opts.fresh && opts.evalOnly) throw new Error('evalOnly and fresh contradict each other: there is nothing to evaluate after starting over');
  const notes = opts.evalOnly ? [] : prepareRunDir(store, !!opts.fresh);
  const damaged = opts.evalOnly || opts.fresh ? undefined : findDamagedTail(store.dir);
  const start = chooseStart(store, config, opts, damaged);
  if (opts.evalOnly && !start) throw new Error(`run '${config.run}' has no checkpoint to evaluate under ${store.runsDir}`);
  if (damaged) {
    setAsideDamaged(damaged);
    notes.push(`the metrics of epoch ${damaged.epoch} could not be read: set aside as *.damaged; epoch ${damaged.epoch} is trained again`);
  }
  return { start, notes };
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

/**
 * Picks the checkpoint a run continues from, or none (a new run). Reads, never writes. With a
 * `damaged` latest metrics block, only a checkpoint from before that epoch will do (the epoch is
 * retrained, so that every epoch keeps its rows).
 */
function chooseStart(store: RunDir, config: TrainConfig, opts: StartOptions, damaged?: DamagedEpoch): RunStart | undefined {
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
