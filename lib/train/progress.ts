/**
 * Showing training progress (lib/train's TrainEvent) to people:
 *
 *  - terminalProgress(stream): one progress bar redrawn in place (loss, accuracy, images/s, ETA),
 *    a line per finished epoch; on a non-terminal (a log file, a test's pipe) plain lines.
 *  - notebookProgress(display): one HTML block (tslab's `newDisplay()`), updated in place, with
 *    the bar and a table of finished epochs — not thousands of printed lines. Run headless
 *    (`npm start`, the notebook tests: DCF_PROGRESS_LINES=1 from lib/report/notebooks) it prints one
 *    line per epoch instead of redrawing, since a log cannot redraw.
 *
 * The formatting functions are pure; the renderers write only to what they are given.
 */
import type { EpochSummary, ProgressCallback, TrainEvent } from './events';
import type { TrainResult } from './train';
import { readEnv } from '../config';

type StepEvent = Extract<TrainEvent, { type: 'step' }>;
type StartEvent = Extract<TrainEvent, { type: 'start' }>;

/** 75 → "1:15", 3725 → "1:02:05"; "--:--" when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** 0.4567 → "45.67%"; "  -  " when unknown. */
export function formatPercent(fraction: number, digits = 2): string {
  return Number.isFinite(fraction) ? `${(fraction * 100).toFixed(digits)}%` : '-';
}

function formatLoss(loss: number): string {
  return Number.isFinite(loss) ? loss.toFixed(4) : '-';
}

/** A text bar of `width` cells, e.g. "█████░░░░░". */
export function progressBar(fraction: number, width: number): string {
  const f = Math.min(Math.max(Number.isFinite(fraction) ? fraction : 0, 0), 1);
  const full = Math.round(f * width);
  return '█'.repeat(full) + '░'.repeat(width - full);
}

/** "run lab: dynamic, from scratch, 50000 train / 10000 test images, 782 batches per epoch". */
function formatStart(e: StartEvent): string {
  const from = e.resumedFrom ? `resuming from its ${e.resumedFrom} checkpoint (epoch ${e.startEpoch})` : 'from scratch';
  const val = e.valImages ? ` / ${e.valImages} val` : '';
  return (
    `run ${e.run}: ${e.config.variant} net, ${from}, epochs ${e.startEpoch + 1}–${e.config.epochs}; ` +
    `${e.trainImages} train${val} / ${e.testImages} test images, ${e.batchesPerEpoch} batches of ${e.config.batchSize}; ${e.backend}`
  );
}

/** "epoch 2/5 ████░░░░ 312/782 loss 1.2345 acc 56.70% 412 img/s ETA 1:02 (run 6:40)". */
export function formatStep(e: StepEvent, barWidth = 24): string {
  return (
    `epoch ${e.epoch}/${e.epochs} ${progressBar(e.batch / e.batches, barWidth)} ${e.batch}/${e.batches} ` +
    `loss ${formatLoss(e.loss)} acc ${formatPercent(e.accuracy)} ${Math.round(e.imagesPerSecond)} img/s ` +
    `ETA ${formatDuration(e.epochEtaSeconds)} (run ${formatDuration(e.etaSeconds)})`
  );
}

/** "epoch 2/5  train loss 1.0234 acc 64.10%  test loss 0.9876 acc 66.00%  ★ best  6:12". */
function formatEpoch(s: EpochSummary): string {
  const val = s.val ? `  val loss ${formatLoss(s.val.loss)} acc ${formatPercent(s.val.accuracy)}` : '';
  return (
    `epoch ${s.epoch}/${s.epochs}  train loss ${formatLoss(s.train.loss)} acc ${formatPercent(s.train.accuracy)}` +
    `  test loss ${formatLoss(s.test.loss)} acc ${formatPercent(s.test.accuracy)}${val}` +
    `  ${s.improved ? '★ best (saved)' : `best ${formatPercent(s.bestAccuracy)} @ ${s.bestEpoch}`}  ${formatDuration(s.seconds)}`
  );
}

/** "lab-dynamic-s0 epoch 2/5 · test acc 70.46% · 912 img/s · 3:12 left": one log line per epoch. */
export function formatEpochLine(run: string, s: EpochSummary): string {
  const left = (s.epochs - s.epoch) * s.seconds; // this epoch's time, training and evaluation
  return (
    `${run} epoch ${s.epoch}/${s.epochs} · test acc ${formatPercent(s.test.accuracy)}${s.val ? ` · val acc ${formatPercent(s.val.accuracy)}` : ''}` +
    ` · ${Math.round(s.train.imagesPerSecond)} img/s · ${s.epoch === s.epochs ? 'done' : `${formatDuration(left)} left`}`
  );
}

/** One sentence about a finished call of train(). */
export function formatResult(r: TrainResult): string {
  const test = `test accuracy ${formatPercent(r.test.accuracy)} (loss ${formatLoss(r.test.loss)})`;
  const best = `best ${formatPercent(r.bestAccuracy)} at epoch ${r.bestEpoch}`;
  switch (r.status) {
    case 'trained':
      return `run ${r.run}: trained ${r.startEpoch + 1 === r.epoch ? `epoch ${r.epoch}` : `epochs ${r.startEpoch + 1}–${r.epoch}`}; ${best}; final ${test}. Checkpoints in ${r.dir}`;
    case 'complete':
      return (
        `run ${r.run} had already finished ${r.epoch} of ${r.config.epochs} epochs: ` +
        'nothing to train (raise epochs, or --fresh to start over). ' +
        `${best}; its checkpoint gives ${test}.${r.notes.map((n) => `\n  note: ${n}`).join('')}`
      );
    case 'evaluated':
      return `run ${r.run}, checkpoint of epoch ${r.epoch}: ${test}${r.val ? `, val ${formatPercent(r.val.accuracy)}` : ''}.`;
  }
}

/** What terminalProgress writes to (process.stderr, or a test's fake). */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export type TerminalMode = 'bar' | 'lines' | 'none';

/**
 * A progress callback for a terminal. `bar` (default on a TTY) redraws one line in place;
 * `lines` (default otherwise) prints the start of each epoch and a step line every
 * `lineSeconds` (default 15 s); `none` prints only epoch lines.
 */
export function terminalProgress(
  out: ProgressStream,
  opts: { mode?: TerminalMode; lineSeconds?: number } = {},
): ProgressCallback {
  const mode = opts.mode ?? (out.isTTY ? 'bar' : 'lines');
  const lineMs = (opts.lineSeconds ?? 15) * 1000;
  let lastDraw = 0;
  let barShown = false;
  const clearBar = () => {
    if (barShown) out.write('\r\x1b[K');
    barShown = false;
  };
  const draw = (text: string) => {
    const width = Math.max((out.columns ?? 120) - 1, 20);
    out.write(`\r${text.length > width ? text.slice(0, width - 1) + '…' : text}\x1b[K`);
    barShown = true;
  };
  return (e) => {
    const now = Date.now();
    switch (e.type) {
      case 'start':
        out.write(`${formatStart(e)}\n`);
        for (const note of e.notes ?? []) out.write(`  note: ${note}\n`);
        break;
      case 'step':
        if (mode === 'bar') {
          if (now - lastDraw >= 100 || e.batch === e.batches) {
            draw(formatStep(e));
            lastDraw = now;
          }
        } else if (mode === 'lines' && (e.batch === 1 || now - lastDraw >= lineMs)) {
          out.write(`${formatStep(e, 10)}\n`);
          lastDraw = now;
        }
        break;
      case 'eval':
        if (mode === 'bar' && (now - lastDraw >= 100 || e.images === e.total)) {
          draw(`epoch ${e.epoch} evaluating ${e.split} ${progressBar(e.images / e.total, 24)} ${e.images}/${e.total}`);
          lastDraw = now;
        }
        break;
      case 'epoch':
        clearBar();
        out.write(`${formatEpoch(e.summary)}\n`);
        break;
      case 'checkpoint':
        break;
      case 'interrupted':
        clearBar();
        out.write(`${e.message}\n`);
        break;
    }
  };
}

/** The part of tslab's Display that notebookProgress uses (`tslab.newDisplay()` fits). */
export interface DisplayLike {
  html(html: string): void;
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** True where notebooks run headless (lib/report/notebooks sets it for the kernel): progress as log lines. */
function headlessNotebook(): boolean {
  return readEnv().progressLines;
}

/**
 * A progress callback for a notebook: pass `tslab.newDisplay()`; the one display is redrawn in
 * place (at most every `minIntervalMs`, default 500 ms, and at every epoch's end). With `lines`
 * (default: headlessNotebook()) the display is drawn only at the start and after each epoch, and
 * `print` (default console.log) gets one formatEpochLine per epoch, and the interrupt line.
 */
export function notebookProgress(
  display: DisplayLike,
  opts: { minIntervalMs?: number; lines?: boolean; print?: (line: string) => void } = {},
): ProgressCallback {
  const minMs = opts.minIntervalMs ?? 500;
  const lines = opts.lines ?? headlessNotebook();
  const print = opts.print ?? ((line: string) => console.log(line));
  let run = '';
  let header = '';
  let status = '';
  let fraction = 0;
  const epochs: EpochSummary[] = [];
  let lastDraw = 0;
  const render = () => {
    const rows = epochs
      .map(
        (s) =>
          `<tr><td>${s.epoch}</td><td>${formatLoss(s.train.loss)}</td><td>${formatPercent(s.train.accuracy)}</td>` +
          `<td>${formatLoss(s.test.loss)}</td><td>${formatPercent(s.test.accuracy)}</td>` +
          (epochs.some((x) => x.val) ? `<td>${s.val ? formatPercent(s.val.accuracy) : ''}</td>` : '') +
          `<td>${s.improved ? '★ saved' : ''}</td><td>${Math.round(s.train.imagesPerSecond)}</td><td>${formatDuration(s.seconds)}</td></tr>`,
      )
      .join('');
    const valHead = epochs.some((x) => x.val) ? '<th>val acc</th>' : '';
    const table = epochs.length
      ? `<table><thead><tr><th>epoch</th><th>train loss</th><th>train acc</th><th>test loss</th><th>test acc</th>${valHead}<th>best</th><th>img/s</th><th>time</th></tr></thead><tbody>${rows}</tbody></table>`
      : '';
    display.html(
      `<div style="font-family: monospace; font-size: 12px">` +
        `<div style="white-space: pre-wrap">${escapeHtml(header)}</div>` +
        `<div><progress value="${fraction.toFixed(4)}" max="1" style="width: 320px"></progress> ${escapeHtml(status)}</div>` +
        `${table}</div>`,
    );
    lastDraw = Date.now();
  };
  return (e) => {
    switch (e.type) {
      case 'start':
        run = e.run;
        header = [formatStart(e), ...(e.notes ?? []).map((n) => `note: ${n}`)].join('\n');
        status = 'starting…';
        render();
        return;
      case 'step':
        fraction = e.batch / e.batches;
        status =
          `epoch ${e.epoch}/${e.epochs} · batch ${e.batch}/${e.batches} · loss ${formatLoss(e.loss)} · acc ${formatPercent(e.accuracy)} · ` +
          `${Math.round(e.imagesPerSecond)} img/s · ETA ${formatDuration(e.epochEtaSeconds)} (run ${formatDuration(e.etaSeconds)})`;
        break;
      case 'eval':
        fraction = e.images / e.total;
        status = `epoch ${e.epoch} · evaluating ${e.split} ${e.images}/${e.total}`;
        break;
      case 'epoch':
        epochs.push(e.summary);
        status = formatEpoch(e.summary);
        render();
        if (lines) print(formatEpochLine(run, e.summary));
        return;
      case 'checkpoint':
        return;
      case 'interrupted':
        status = e.message;
        render();
        print(e.message);
        return;
    }
    if (!lines && Date.now() - lastDraw >= minMs) render();
  };
}
