/**
 * npm run train -- --run NAME [options]: trains, resumes or evaluates a run (lib/train).
 * Flags: lib/train/train-cli.ts. Progress goes to stderr (a bar on a terminal, lines otherwise); the
 * outcome to stdout. Exit codes: 0 done, 1 failed, 2 bad command line, 3 training diverged, 130
 * interrupted (Ctrl-C: training stops at its next step; what it saved stays, a rerun resumes).
 */
import { describeBackend, initBackend } from '../lib/runtime';
import {
  DivergedError,
  formatResult,
  parseTrainArgs,
  resolveTrainConfig,
  terminalProgress,
  train,
  TRAIN_USAGE,
  type TrainConfig,
  TrainingInterrupted,
  UsageError,
} from '../lib/train';

async function main(): Promise<number> {
  let args: ReturnType<typeof parseTrainArgs>;
  let config: TrainConfig;
  try {
    args = parseTrainArgs(process.argv.slice(2));
    if (args.help) {
      process.stdout.write(`${TRAIN_USAGE}\n`);
      return 0;
    }
    config = resolveTrainConfig(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`error: ${err.message}\n\n${TRAIN_USAGE}\n`);
    return 2;
  }
  const backend = initBackend();
  process.stderr.write(`backend: ${describeBackend(backend)}\n`);
  const result = await train(config, {
    runsDir: args.runsDir,
    resume: args.resume,
    evalOnly: args.evalOnly,
    fresh: args.fresh,
    onProgress: terminalProgress(process.stderr, { mode: args.progress }),
  });
  process.stdout.write(`${formatResult(result)}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    // The progress callback has printed the interrupt's line: exit as a Ctrl-C'd program does.
    if (err instanceof TrainingInterrupted) process.exit(130);
    // A diverged run exits 3, any other failure 1; usage errors exit 2 above.
    process.stderr.write(`\nerror: ${err.message}\n`);
    process.exit(err instanceof DivergedError ? 3 : 1);
  },
);
