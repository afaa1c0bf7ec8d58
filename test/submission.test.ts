// The hand-in (npm run submission, lib/report/submission.ts): Lab_4_<uid>.zip with the report as
// Lab_4_<uid>.pdf and the git-tracked code under code/, as it is in the working tree, without
// data, results (but results/recorded), node_modules or .venv. A bad uid, a missing report or a
// folder that is not a git clone is a clear error and writes nothing; a failed write leaves no
// temporary file, and the temporary file of a run that died is removed by the next one.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../lib/config';
import { buildSubmission, checkUid } from '../lib/report/submission';
import { readZipWithPython, unzipTest } from './helpers/zip-read';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-submission-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const PDF = Buffer.concat([
  Buffer.from('%PDF-1.7\n'),
  Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 37) % 256)),
]);
const reportFile = path.join(tmp, 'lab-report.pdf');

/** A small clone of a project: tracked code, tracked data and results, and ignored folders full of files. */
const repo = path.join(tmp, 'repo');
const put = (file: string, content: string | Buffer) => {
  fs.mkdirSync(path.dirname(path.join(repo, file)), { recursive: true });
  fs.writeFileSync(path.join(repo, file), content);
};
const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' });

beforeAll(() => {
  put('.gitignore', 'node_modules/\n.venv/\n/data/*\n!/data/pretrained/\n/results/*\n!/results/recorded/\n');
  put('README.md', '# lab\n');
  put('lib/model.ts', 'export const committed = 1;\n');
  put('scripts/setup.sh', '#!/bin/sh\necho setup\n');
  fs.chmodSync(path.join(repo, 'scripts/setup.sh'), 0o755);
  put('test/fixtures/tiny.safetensors', Buffer.from([1, 2, 3, 250]));
  put('data/pretrained/weights.safetensors', Buffer.alloc(1000, 7));
  put('results/recorded/paired/table.parquet', Buffer.from('PAR1 recorded PAR1'));
  put('report/lab-report.pdf', PDF);
  fs.mkdirSync(path.join(repo, 'notebooks'));
  fs.symlinkSync('../lib', path.join(repo, 'notebooks', 'lib'));
  put('lib/gone.ts', 'deleted below\n');
  git('init', '-q');
  git('add', '-A');
  git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'lab');
  // After the commit: an uncommitted edit, a deleted file, an untracked file, ignored folders.
  put('lib/model.ts', 'export const edited = 2; // not committed\n');
  fs.rmSync(path.join(repo, 'lib/gone.ts'));
  put('lib/new.ts', 'export const untracked = 3;\n');
  put('node_modules/pkg/index.js', 'module.exports = 1;\n');
  put('.venv/bin/python', '#!/bin/sh\n');
  put('data/cifar-10-batches-bin/data_batch_1.bin', Buffer.alloc(100));
  put('results/runs/lab-dynamic-s0/best.safetensors', Buffer.alloc(100));
  put('results/report/lab-report.pdf', PDF);
  fs.writeFileSync(reportFile, PDF);
});

describe('npm run submission', () => {
  it('writes Lab_4_<uid>.zip: the report as Lab_4_<uid>.pdf, the tracked code under code/ as in the tree', () => {
    const out = path.join(tmp, 'out');
    const s = buildSubmission({ uid: 'u1234567', root: repo, report: reportFile, outDir: out });
    expect(s.zip).toBe(path.join(out, 'Lab_4_u1234567.zip'));
    expect(fs.readdirSync(out)).toEqual(['Lab_4_u1234567.zip']);
    expect(unzipTest(s.zip).status).toBe(0);

    const entries = readZipWithPython(s.zip);
    const byName = new Map(entries.map((e) => [e.name, e]));
    expect(entries.map((e) => e.name).sort()).toEqual([
      'Lab_4_u1234567.pdf',
      'code/.gitignore',
      'code/README.md',
      'code/lib/model.ts',
      'code/notebooks/lib',
      'code/report/lab-report.pdf',
      'code/results/recorded/paired/table.parquet',
      'code/scripts/setup.sh',
      'code/test/fixtures/tiny.safetensors',
    ]);
    expect(entries[0].name).toBe('Lab_4_u1234567.pdf');
    expect(byName.get('Lab_4_u1234567.pdf')!.data.equals(PDF)).toBe(true);
    for (const file of ['lib/model.ts', 'test/fixtures/tiny.safetensors', 'results/recorded/paired/table.parquet']) {
      expect(byName.get(`code/${file}`)!.data.equals(fs.readFileSync(path.join(repo, file))), file).toBe(true);
    }
    // The working tree, not the commit: the uncommitted edit is handed in.
    expect(byName.get('code/lib/model.ts')!.data.toString()).toContain('edited = 2');
    expect(byName.get('code/scripts/setup.sh')!.mode).toBe(0o100755);
    expect(byName.get('code/notebooks/lib')!.mode).toBe(0o120777);
    expect(byName.get('code/notebooks/lib')!.data.toString()).toBe('../lib');
    expect(s.skipped).toEqual(['lib/gone.ts']);
    expect(s.untracked).toEqual(['lib/new.ts']);

    // Dated with the last commit: the same tree gives the same zip, byte for byte.
    const commit = new Date(Number(git('log', '-1', '--format=%ct')) * 1000);
    expect(entries[1].dateTime.slice(0, 5)).toEqual([
      commit.getFullYear(),
      commit.getMonth() + 1,
      commit.getDate(),
      commit.getHours(),
      commit.getMinutes(),
    ]);
    const first = fs.readFileSync(s.zip);
    buildSubmission({ uid: 'u1234567', root: repo, report: reportFile, outDir: out });
    expect(fs.readFileSync(s.zip).equals(first)).toBe(true);
  });

  it('from this project: the code, and no node_modules, .venv, data, results runs or checkpoints', () => {
    const out = path.join(tmp, 'project');
    const s = buildSubmission({ uid: 'u7654321', report: reportFile, outDir: out });
    const names = readZipWithPython(s.zip).map((e) => e.name);
    for (const file of ['package.json', 'lib/config.ts', 'lib/report/submission.ts', 'notebooks/01-data.ipynb']) {
      expect(names, file).toContain(`code/${file}`);
    }
    expect(names.filter((n) => /(^|\/)(node_modules|\.venv|\.cache)\//.test(n))).toEqual([]);
    expect(names.filter((n) => n.startsWith('code/data/'))).toEqual([]);
    expect(names.filter((n) => n.startsWith('code/results/') && !n.startsWith('code/results/recorded/'))).toEqual([]);
    // Checkpoints and exported states of runs: only the small test fixtures are tracked.
    expect(names.filter((n) => n.endsWith('.safetensors') && !n.startsWith('code/test/fixtures/'))).toEqual([]);
    expect(names.some((n) => n.startsWith('code/results/recorded/'))).toBe(true);
    expect(fs.statSync(s.zip).size).toBeLessThan(20e6);
  });

  it('refuses a malformed uid, in the CLI too, and writes nothing', () => {
    for (const uid of ['u123456', 'u12345678', 'U1234567', '1234567', 'u123456a', ' u1234567', 'u1234567\n', '']) {
      expect(() => checkUid(uid), JSON.stringify(uid)).toThrow(/must be your university ID, 'u' and seven digits/);
    }
    const out = path.join(tmp, 'bad-uid');
    const bad = () => buildSubmission({ uid: 'u12345', root: repo, report: reportFile, outDir: out });
    expect(bad).toThrow(/got 'u12345'/);
    const tsx = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');
    const args = ['scripts/submission.ts', '--uid', 'x1234567', '--out', out];
    const r = spawnSync(tsx, args, { cwd: PROJECT_ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(
      "--uid must be your university ID, 'u' and seven digits (e.g. u1234567); got 'x1234567'",
    );
    expect(fs.existsSync(out)).toBe(false);
  });

  it('a missing report says what to run, and writes nothing', () => {
    const out = path.join(tmp, 'no-report');
    const missing = path.join(tmp, 'none.pdf');
    expect(() => buildSubmission({ uid: 'u1234567', root: repo, report: missing, outDir: out })).toThrow(
      /no lab report of your runs at .*none\.pdf: run `npm start` first .*or pass --recorded/,
    );
    const opts = { uid: 'u1234567', root: repo, report: missing, outDir: out };
    expect(() => buildSubmission({ ...opts, recorded: true })).toThrow(
      /no recorded lab report at .*: .*`npm run report -- --recorded`/,
    );
    const notPdf = path.join(tmp, 'not.pdf');
    fs.writeFileSync(notPdf, '<html>');
    expect(() => buildSubmission({ uid: 'u1234567', root: repo, report: notPdf, outDir: out })).toThrow(/is not a PDF/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('refuses a folder that is not a git clone (a downloaded copy), and writes nothing', () => {
    const copy = path.join(tmp, 'download');
    fs.cpSync(repo, copy, { recursive: true, verbatimSymlinks: true, filter: (f) => !f.endsWith('.git') });
    const out = path.join(tmp, 'no-git');
    expect(() => buildSubmission({ uid: 'u1234567', root: copy, report: reportFile, outDir: out })).toThrow(
      /download is not a git repository\. The submission holds the files git tracks; run it in a clone/,
    );
    expect(fs.existsSync(out)).toBe(false);
  });

  it('a failed write leaves no temporary file; the next run removes the one of a run that died', () => {
    const out = path.join(tmp, 'fail');
    // A folder where the zip should go: the rename fails.
    fs.mkdirSync(path.join(out, 'Lab_4_u1234567.zip'), { recursive: true });
    expect(() => buildSubmission({ uid: 'u1234567', root: repo, report: reportFile, outDir: out })).toThrow(
      /cannot write .*Lab_4_u1234567\.zip/,
    );
    expect(fs.readdirSync(out)).toEqual(['Lab_4_u1234567.zip']);
    fs.rmdirSync(path.join(out, 'Lab_4_u1234567.zip'));

    // A run killed while writing left its temporary file; another file of that form but of a live process stays.
    const dead = spawnSync('true').pid!;
    const left = `.Lab_4_u1234567.zip.${dead}.tmp`;
    const live = `.Lab_4_u7654321.zip.${process.ppid}.tmp`;
    fs.writeFileSync(path.join(out, left), 'half a zip');
    fs.writeFileSync(path.join(out, live), 'being written');
    buildSubmission({ uid: 'u1234567', root: repo, report: reportFile, outDir: out });
    expect(fs.readdirSync(out).sort()).toEqual([live, 'Lab_4_u1234567.zip']);
  });
});
