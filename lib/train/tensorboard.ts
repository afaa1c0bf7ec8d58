/**
 * A run's metrics as TensorBoard event files, beside its Parquet parts:
 *
 *   results/runs/<run>/tensorboard/train/events.out.tfevents.<t>.dcf-lab   batch_* and epoch_* of training
 *   results/runs/<run>/tensorboard/val/…, …/test/…                          epoch_* of each evaluation
 *
 * `tensorboard --logdir results/runs` shows every run, with train / val / test overlaid per tag
 * (the layout of Keras' TensorBoard callback). Tags: per logged step (StepRow) `batch_loss`,
 * `batch_accuracy`, `batch_learning_rate`, `batch_images_per_second`; per epoch (EpochRow)
 * `epoch_loss`, `epoch_accuracy`, `epoch_images_per_second`, and `epoch_learning_rate` under train.
 * Every value's step is the global optimizer step (epoch rows: the step the epoch ended at), so
 * batch and epoch curves share one axis, and so does a purge.
 *
 * The Parquet rows are the record; the event files are derived from them, append-only.
 * `writeTensorboard` reads what the files already hold and appends only what is missing: a second
 * call with the same rows writes nothing. After a resume from an earlier epoch the rows of the
 * epochs after it were superseded (lib/train/metrics); the files then get a SessionLog START at the
 * first step whose values differ, followed by the rows from there. That is TensorFlow's own
 * mechanism for a restarted run (`purge_step`): TensorBoard drops the file's earlier events at
 * that step and later, so no step shows twice. Appending, rather than rewriting the file, keeps a
 * TensorBoard that is already reading it consistent: it reads on from where it was.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  EVENT_FILE_VERSION,
  decodeEvent,
  encodeEvent,
  encodeRecord,
  readRecords,
  type TfEvent,
} from '../formats/index';
import type { EpochRow, Split, StepRow } from './metrics';

const TENSORBOARD_DIR = 'tensorboard';

/** The folder of a run's event files. */
export function tensorboardDir(runDir: string): string {
  return path.join(runDir, TENSORBOARD_DIR);
}

type Summary = Extract<TfEvent, { kind: 'summary' }>;

/** What one call did to one split's event file. */
export interface TensorboardSplitUpdate {
  file: string;
  /** Summary events appended. */
  appended: number;
  /** The step of the SessionLog START written (rows there and after were rolled back), if any. */
  purgedFrom?: number;
}

const seconds = (t: Date | number) => (t instanceof Date ? t.getTime() : t) / 1000;

/** The events each split's file should hold, in order: step rows, then epoch rows, by step. */
function tensorboardEvents(epochs: readonly EpochRow[], steps: readonly StepRow[]): Map<Split, Summary[]> {
  const runs = new Set([...epochs, ...steps].map((r) => r.run));
  if (runs.size > 1)
    throw new Error(`writeTensorboard: rows of several runs (${[...runs].join(', ')}); pass one run's rows`);
  const scalars = (values: Record<string, number>) =>
    Object.entries(values).map(([tag, value]) => ({ tag, value: Math.fround(value) }));
  const bySplit = new Map<Split, { order: number; event: Summary }[]>();
  const add = (split: Split, order: number, event: Summary) => {
    if (!bySplit.has(split)) bySplit.set(split, []);
    bySplit.get(split)!.push({ order, event });
  };
  for (const r of steps) {
    add('train', 0, {
      kind: 'summary',
      wallTime: seconds(r.time),
      step: r.step,
      images: [],
      scalars: scalars({
        batch_loss: r.loss,
        batch_accuracy: r.accuracy,
        batch_learning_rate: r.lr,
        batch_images_per_second: r.imagesPerSecond,
      }),
    });
  }
  for (const r of epochs) {
    const values: Record<string, number> = { epoch_loss: r.loss, epoch_accuracy: r.accuracy };
    if (r.split === 'train') values.epoch_learning_rate = r.lr;
    values.epoch_images_per_second = r.imagesPerSecond;
    add(r.split, 1, { kind: 'summary', wallTime: seconds(r.time), step: r.step, images: [], scalars: scalars(values) });
  }
  const out = new Map<Split, Summary[]>();
  for (const [split, list] of bySplit) {
    list.sort((a, b) => a.event.step - b.event.step || a.order - b.order);
    out.set(
      split,
      list.map((x) => x.event),
    );
  }
  return out;
}

const sameSummary = (a: Summary, b: Summary) =>
  a.step === b.step &&
  a.scalars.length === b.scalars.length &&
  a.scalars.every((s, i) => s.tag === b.scalars[i].tag && Object.is(s.value, b.scalars[i].value)) &&
  a.images.length === b.images.length &&
  a.images.every(
    (im, i) => im.tag === b.images[i].tag && Buffer.compare(Buffer.from(im.png), Buffer.from(b.images[i].png)) === 0,
  );

/**
 * What a reader sees in these event records: the summaries left after applying each SessionLog
 * START (which drops everything at its step and later), in order.
 */
function visibleSummaries(records: readonly Uint8Array[]): Summary[] {
  let seen: Summary[] = [];
  for (const rec of records) {
    const e = decodeEvent(rec);
    if (e.kind === 'session_start') seen = seen.filter((s) => s.step < e.step);
    else if (e.kind === 'summary') seen.push(e);
  }
  return seen;
}

/**
 * The events to append so that a file showing `have` shows `want`: nothing when `have` is `want`;
 * the missing tail when `have` is a beginning of `want`; else a SessionLog START at the first step
 * where they part (everything from that step on is dropped), then `want` from that step.
 */
function eventsToAppend(
  have: readonly Summary[],
  want: readonly Summary[],
  now: number,
): { events: TfEvent[]; purgedFrom?: number } {
  let k = 0;
  while (k < have.length && k < want.length && sameSummary(have[k], want[k])) k++;
  if (k === have.length) return { events: want.slice(k) };
  const from = Math.min(have[k].step, want[k]?.step ?? Infinity);
  return {
    events: [{ kind: 'session_start', wallTime: now, step: from }, ...want.filter((e) => e.step >= from)],
    purgedFrom: from,
  };
}

function eventFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.startsWith('events.out.tfevents.'))
    .sort()
    .map((f) => path.join(dir, f));
}

/**
 * Writes or extends the run's TensorBoard event files from its metrics rows (one run's visible
 * rows, as readRunEpochs / readStepRows return them): idempotent and append-only (see the module
 * comment). Call it after each appended epoch; a crash in the middle of an append leaves a cut
 * record at the file's end, which the next call cuts off before appending.
 */
export function writeTensorboard(
  runDir: string,
  epochs: readonly EpochRow[],
  steps: readonly StepRow[] = [],
): TensorboardSplitUpdate[] {
  const updates: TensorboardSplitUpdate[] = [];
  for (const [split, want] of tensorboardEvents(epochs, steps)) {
    const dir = path.join(tensorboardDir(runDir), split);
    const files = eventFiles(dir);
    const records: Uint8Array[] = [];
    let file = files.at(-1);
    for (const f of files) {
      const buf = fs.readFileSync(f);
      const read = readRecords(buf);
      if (read.validBytes < buf.length) {
        if (f !== file)
          throw new Error(
            `TensorBoard event file ${f} is damaged before its end; move it away to rebuild it from the metrics`,
          );
        fs.truncateSync(f, read.validBytes); // the cut record of an interrupted append
      }
      records.push(...read.records);
    }
    const { events, purgedFrom } = eventsToAppend(visibleSummaries(records), want, Date.now() / 1000);
    if (!file) {
      fs.mkdirSync(dir, { recursive: true });
      const created = want[0].wallTime;
      file = path.join(dir, `events.out.tfevents.${Math.floor(created)}.${os.hostname() || 'dcf-lab'}`);
      events.unshift({ kind: 'file_version', wallTime: created, step: 0, version: EVENT_FILE_VERSION });
    }
    if (events.length > 0) {
      const fd = fs.openSync(file, 'a');
      try {
        fs.writeSync(fd, Buffer.concat(events.map((e) => encodeRecord(encodeEvent(e)))));
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    updates.push({
      file,
      appended: events.filter((e) => e.kind === 'summary').length,
      ...(purgedFrom !== undefined ? { purgedFrom } : {}),
    });
  }
  return updates;
}
