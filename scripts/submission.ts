/**
 * npm run submission -- --uid uXXXXXXX [--recorded] [--out DIR]
 * The hand-in the lab asks for, Lab_4_<uid>.zip: the short report as Lab_4_<uid>.pdf and all the
 * code under code/ (lib/report/submission.ts). Exit codes: 0 written, 1 failed, 2 bad flags.
 */
import * as path from 'path';
import { parseArgs } from 'util';
import { commandLinePath, PATHS, readEnv } from '../lib/config';
import { buildSubmission, checkUid, CODE_FOLDER } from '../lib/report';

const USAGE = `usage: npm run submission -- --uid uXXXXXXX [--recorded] [--out DIR]

Writes Lab_4_<uid>.zip, the hand-in the lab asks for:
  Lab_4_<uid>.pdf   the short lab report: of your runs (results/report/lab-report.pdf, written by
                    \`npm start\`), or with --recorded of the recorded suite (report/lab-report.pdf)
  ${CODE_FOLDER}/…            all the code: every file git tracks, as it is now in your working tree
                    (uncommitted edits included; a new file only once you \`git add\` it), without
                    data/ and results/ but the recorded suite (results/recorded/). node_modules, .venv,
                    CIFAR-10 and checkpoints are not tracked, so never in it.

  --uid uXXXXXXX    your university ID: 'u' and seven digits
  --recorded        hand in the report of the recorded suite instead of your runs'
  --out DIR         the folder for the zip (default results/); an earlier zip of that name is replaced`;

function main(): number {
  let uid: string, recorded: boolean, outDir: string;
  try {
    const { values: v } = parseArgs({
      args: process.argv.slice(2),
      strict: true,
      allowPositionals: false,
      options: {
        uid: { type: 'string' },
        recorded: { type: 'boolean' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (v.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (v.uid === undefined) throw new Error('--uid uXXXXXXX is required: your university ID');
    uid = checkUid(v.uid);
    recorded = v.recorded ?? false;
    if (readEnv().quick) {
      throw new Error('DCF_QUICK=1 is set: a quick run only shows that the pipeline works; unset it to hand in');
    }
    // Relative to the folder `npm run` was started from, not the project.
    outDir = v.out === undefined ? PATHS.results : commandLinePath(v.out);
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  try {
    const s = buildSubmission({ uid, recorded, outDir });
    const rel = (f: string) => path.relative(readEnv().initCwd, f) || '.';
    const lines = [
      `wrote ${rel(s.zip)} (${(s.bytes / 1e6).toFixed(1)} MB):`,
      `  Lab_4_${uid}.pdf   ${recorded ? "the recorded suite's report" : 'the report of your runs'}, ${rel(s.report)}`,
      `  ${CODE_FOLDER}/  ${s.code.length} files tracked by git, as they are in your working tree`,
    ];
    if (s.skipped.length) lines.push(`left out (tracked, but deleted in your working tree): ${s.skipped.join(', ')}`);
    if (s.untracked.length) {
      const files = s.untracked.join(', ');
      lines.push(`not in it (not tracked by git): ${files}; \`git add\` them and run again to hand them in`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return 1;
  }
}

process.exit(main());
