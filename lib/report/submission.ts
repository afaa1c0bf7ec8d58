/**
 * The hand-in the lab asks for: "a single zip file containing a report in pdf format and all the
 * code", the PDF named Lab_4_uXXXXXXX.pdf. buildSubmission writes Lab_4_<uid>.zip holding
 *
 *   Lab_4_<uid>.pdf   the short lab report: from your runs (PATHS.labReport, made by `npm start`),
 *                     or from the recorded suite (PATHS.recordedLabReport, committed)
 *   code/…            every file git tracks, as it is in the working tree (uncommitted edits
 *                     included), but data/ (the pretrained weights) and results/ other than
 *                     results/recorded/ (the recorded suite the report cites). node_modules, .venv,
 *                     CIFAR-10 and run checkpoints are not tracked, so never in it.
 *
 * Git decides what the code is, so the zip holds what a clone holds: no guessing from folder names.
 * Every entry is dated with the last commit's time: the same tree gives the same zip, byte for byte.
 * The zip is written to a temporary name and renamed (writeFileAtomic): a failed or interrupted run
 * leaves any earlier zip as it was, and the next run removes the temporary file of one that died.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { isAlive, writeFileAtomic, zip, type ZipEntry } from '../formats/index';
import { PATHS } from '../config';

/** A university ID: 'u' and seven digits. */
const UID_FORMAT = /^u\d{7}$/;

/** The folder inside the zip that holds the code. */
export const CODE_FOLDER = 'code';

/** `uid` when it is a university ID, else an error saying what one looks like. */
export function checkUid(uid: string): string {
  if (UID_FORMAT.test(uid)) return uid;
  throw new Error(`--uid must be your university ID, 'u' and seven digits (e.g. u1234567); got '${uid}'`);
}

/** Lab_4_<uid>: the name of the zip and of the PDF in it. */
function submissionName(uid: string): string {
  return `Lab_4_${checkUid(uid)}`;
}

/** Whether a tracked file is code to hand in: not data/, not results/ but results/recorded/. */
function isHandedIn(file: string): boolean {
  const parts = file.split('/');
  if (parts.some((p) => p === 'node_modules' || p === '.venv')) return false;
  if (parts[0] === 'data') return false;
  return parts[0] !== 'results' || parts[1] === 'recorded';
}

export interface SubmissionOptions {
  uid: string;
  /** Hand in the recorded suite's report (PATHS.recordedLabReport) instead of your runs' (PATHS.labReport). */
  recorded?: boolean;
  /** The folder the zip goes to. */
  outDir: string;
  /** The git repository whose tracked files are the code (default the project root). */
  root?: string;
  /** The PDF to hand in (default: the report `recorded` chooses). */
  report?: string;
}

export interface Submission {
  zip: string;
  /** The report handed in. */
  report: string;
  /** The code's paths in the repository (in the zip under code/). */
  code: string[];
  /** Tracked files not in the zip: deleted in the working tree, or a submodule. */
  skipped: string[];
  /** Files git does not track (and does not ignore): not in the zip until `git add`ed. */
  untracked: string[];
  bytes: number;
}

function git(root: string, args: string[]): string {
  return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: 'pipe', maxBuffer: 64 << 20 });
}

/** Throws unless `root` is the top of a git repository, saying that the code must be a git clone. */
function checkRepository(root: string): void {
  let top: string;
  try {
    top = git(root, ['rev-parse', '--show-toplevel']).trim();
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    const why = e.code === 'ENOENT' ? 'git is not installed' : `${root} is not a git repository`;
    throw new Error(
      `cannot tell which files are the code: ${why}. The submission holds the files git tracks; ` +
        'run it in a clone of the project (git clone …), not in a downloaded copy.',
    );
  }
  if (fs.realpathSync(top) !== fs.realpathSync(root)) {
    throw new Error(
      `cannot tell which files are the code: ${root} is not a clone of the project but lies in the repository ${top}`,
    );
  }
}

/** Tracked paths with their index modes (`git ls-files --stage`), each once. */
function trackedFiles(root: string): { file: string; mode: number }[] {
  const files = new Map<string, number>();
  for (const line of git(root, ['ls-files', '--stage', '-z']).split('\0')) {
    const match = /^(\d+) [0-9a-f]+ \d\t(.+)$/s.exec(line);
    if (match) files.set(match[2], parseInt(match[1], 8));
  }
  return [...files].map(([file, mode]) => ({ file, mode }));
}

/** The last commit's time (1980, ZIP's earliest, when there is none). */
function commitTime(root: string): Date {
  try {
    return new Date(Number(git(root, ['log', '-1', '--format=%ct'])) * 1000);
  } catch {
    return new Date(1980, 0, 1);
  }
}

/** The report to hand in, checked: it exists and is a PDF; else what to run. */
function checkReport(file: string, recorded: boolean): Buffer {
  const rel = path.relative(process.cwd(), file);
  if (!fs.existsSync(file)) {
    throw new Error(
      recorded
        ? `no recorded lab report at ${rel}: it comes with the repository; restore it with ` +
            `\`git checkout -- report/lab-report.pdf\`, or rebuild it with \`npm run report -- --recorded\``
        : `no lab report of your runs at ${rel}: run \`npm start\` first (it runs the lab and writes the report), ` +
            'or pass --recorded to hand in the report of the recorded suite',
    );
  }
  const bytes = fs.readFileSync(file);
  if (bytes.subarray(0, 5).toString('latin1') !== '%PDF-') {
    throw new Error(`${rel} is not a PDF (it does not start with %PDF-): rebuild it with \`npm run report\``);
  }
  return bytes;
}

/** A tracked file as it is in the working tree, or undefined when it is gone (or a submodule). */
function workingTreeEntry(root: string, file: string): ZipEntry | undefined {
  const full = path.join(root, file);
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(full);
  } catch {
    return undefined;
  }
  const name = `${CODE_FOLDER}/${file}`;
  if (stat.isSymbolicLink()) return { name, data: Buffer.from(fs.readlinkSync(full)), mode: 0o120777 };
  if (!stat.isFile()) return undefined;
  return { name, data: fs.readFileSync(full), mode: stat.mode & 0o111 ? 0o100755 : 0o100644 };
}

/** Removes temporary zips (`.Lab_4_uNNNNNNN.zip.<pid>.tmp`) in `dir` left by runs that died. */
function removeStaleTemps(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const name of fs.readdirSync(dir)) {
    const pid = Number(/^\.Lab_4_u\d{7}\.zip\.(\d+)\.tmp$/.exec(name)?.[1]);
    if (pid && pid !== process.pid && !isAlive(pid)) fs.rmSync(path.join(dir, name), { force: true });
  }
}

/** Writes `<outDir>/Lab_4_<uid>.zip`: the report as Lab_4_<uid>.pdf and the code under code/. */
export function buildSubmission(opts: SubmissionOptions): Submission {
  const name = submissionName(opts.uid);
  const root = opts.root ?? PATHS.root;
  const recorded = opts.recorded ?? false;
  const report = opts.report ?? (recorded ? PATHS.recordedLabReport : PATHS.labReport);
  const pdf = checkReport(report, recorded);
  checkRepository(root);

  const entries: ZipEntry[] = [{ name: `${name}.pdf`, data: pdf }];
  const code: string[] = [];
  const skipped: string[] = [];
  for (const { file, mode } of trackedFiles(root)) {
    if (!isHandedIn(file)) continue;
    const entry = mode === 0o160000 ? undefined : workingTreeEntry(root, file);
    if (entry) {
      entries.push(entry);
      code.push(file);
    } else skipped.push(file);
  }
  const untracked = git(root, ['ls-files', '--others', '--exclude-standard', '-z'])
    .split('\0')
    .filter((f) => f && isHandedIn(f) && !/(^|\/)\.?Lab_4_u\d{7}\.zip/.test(f));

  const bytes = zip(entries, { mtime: commitTime(root) });
  const file = path.join(opts.outDir, `${name}.zip`);
  removeStaleTemps(opts.outDir);
  writeFileAtomic(file, bytes);
  return { zip: file, report, code, skipped, untracked, bytes: bytes.length };
}
