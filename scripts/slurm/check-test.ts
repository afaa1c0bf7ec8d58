/**
 * The checks of npm run test:slurm (scripts/slurm/test.sh) on what the cluster left: every run of
 * the suite finished, each of its epochs written exactly once (superseded rows included, so an
 * epoch trained twice shows), the stopped runs resumed from a saved epoch rather than restarted,
 * and the record step's tables hold every run once. Prints one line per run; exit 1 on a problem.
 *
 *   node --import tsx scripts/slurm/check-test.ts RESULTS_DIR RECORD_DIR SUITE STOPPED_RUN… -- RUN…
 */
import * as path from 'path';
import { readRecorded, readRecordedEpochs, type Suite } from '../../lib/experiments';
import { readCheckpointMeta, readRunEpochs } from '../../lib/train';

const [resultsDir, recordDir, suite, ...rest] = process.argv.slice(2);
const cut = rest.indexOf('--');
const stopped = rest.slice(0, cut);
const runs = rest.slice(cut + 1);
const problems: string[] = [];
const check = (ok: boolean, problem: string) => ok || problems.push(problem);

/** `run:epoch:split` keys that occur other than once, and the epochs missing from 1…epochs. */
function onceEach(keys: string[], run: string, epochs: number, splits: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
  const wanted = Array.from({ length: epochs }, (_, i) => splits.map((s) => `${run}:${i + 1}:${s}`)).flat();
  return [
    ...wanted.filter((k) => !counts.has(k)).map((k) => `${k} missing`),
    ...[...counts].filter(([, n]) => n !== 1).map(([k, n]) => `${k} written ${n} times`),
  ];
}

const { rows } = readRecorded(suite as Suite, recordDir);
const recordedEpochs = readRecordedEpochs(suite as Suite, recordDir);
for (const run of runs) {
  const dir = path.join(resultsDir, 'runs', run);
  const epochs = readCheckpointMeta(path.join(dir, 'last.safetensors')).config.epochs as number;
  const last = readCheckpointMeta(path.join(dir, 'last.safetensors')).epoch;
  check(last === epochs, `${run}: its last checkpoint is of epoch ${last}, not ${epochs}`);
  const all = readRunEpochs(dir, { includeSuperseded: true });
  const splits = [...new Set(all.map((r) => r.split))].sort();
  check(splits.join() === 'test,train', `${run}: splits ${splits.join()}`);
  const keys = (rows: { epoch: number; split: string }[]) => rows.map((r) => `${run}:${r.epoch}:${r.split}`);
  for (const p of onceEach(keys(all), run, epochs, splits)) problems.push(`${run}'s metrics: ${p}`);
  const sessions = [...new Map(all.map((r) => [r.session, r.resumedFrom])).entries()].sort((a, b) => a[0] - b[0]);
  if (stopped.includes(run)) {
    const resumed = sessions.length >= 2 && sessions.slice(1).every(([, from]) => from >= 1);
    check(resumed, `${run} was stopped mid-run but not resumed from a saved epoch: ${JSON.stringify(sessions)}`);
  }
  const row = rows.filter((r) => r.name === run);
  const recordedOnce = row.length === 1 && row[0].status === 'done' && row[0].epochs_done === epochs;
  check(recordedOnce, `${run}: recorded ${JSON.stringify(row)}`);
  const rec = recordedEpochs.filter((r) => r.run === run);
  for (const p of onceEach(keys(rec), run, epochs, splits)) problems.push(`${run}'s recorded epochs: ${p}`);
  const from = sessions.map(([s, r]) => `${s} (${r})`).join(', ');
  console.log(`${run}: ${last}/${epochs} epochs, each once; sessions (resumed from) ${from}; ${row[0]?.status}`);
}
for (const p of problems) console.log(`PROBLEM: ${p}`);
process.exit(problems.length ? 1 : 0);
