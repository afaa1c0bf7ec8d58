/**
 * npm run report: results/report/report.html and report.pdf, rendered from the executed notebooks
 * in results/notebooks (written by `npm start`); lib/report/report.ts. Trains and runs nothing:
 * a notebook that is missing, failed, or has changed since it ran is an error naming it and the
 * command that runs it.
 *
 *   npm run report                     results/notebooks → results/report (the lab book), and the
 *                                      short report from your runs beside the recorded suite
 *   npm run report -- --recorded       the short report from the recorded suite alone → report/
 *                                      (committed; trains nothing, needs no data), and README.md's
 *                                      generated key results
 *   npm run report -- --quick          results/quick/notebooks → results/quick/report
 *   npm run report -- --no-pdf         the HTML only (an earlier report.pdf is removed: it would not match)
 *   npm run report -- --allow-stale    render notebooks changed since they ran (a warning each)
 */
import * as fs from 'fs';
import { PATHS, readEnv, setEnv } from '../lib/config';
import { README, withBlock } from '../lib/experiments';
import { writeFileAtomic } from '../lib/formats';
import { buildLabReport, buildReport, executedDir, readmeKeyResults } from '../lib/report';

const USAGE = `usage: npm run report [-- --recorded] [--quick] [--no-pdf] [--allow-stale]
Writes the short lab report (the deliverable) from your runs beside the recorded suite,
results/report/lab-report.html and .pdf, and renders the executed notebooks in results/notebooks
(results/quick/notebooks with --quick) as the lab book, results/report/report.html and .pdf.
Run \`npm start\` first. With --no-pdf, an earlier report.pdf is removed (it was printed from an
earlier render).

  --recorded   only the short report, from the recorded suite alone (results/recorded/), into
               report/lab-report.html and .pdf: what the repository commits`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const known = ['--recorded', '--quick', '--no-pdf', '--allow-stale'];
  const unknown = args.filter((a) => !known.includes(a));
  if (unknown.length) throw new Error(`unknown option(s) ${unknown.join(' ')}; see npm run report -- --help`);
  const quick = args.includes('--quick') || readEnv().quick;
  // Before any path is read: PATHS.results is results/quick in quick mode.
  setEnv({ quick });
  const started = Date.now();
  const pdf = !args.includes('--no-pdf');
  if (args.includes('--recorded')) {
    const files = await buildLabReport({ mode: 'recorded', pdf });
    // The README quotes the same answers in its generated block; test/lab-report.test.ts checks it.
    writeFileAtomic(README, withBlock(fs.readFileSync(README, 'utf8'), 'answers', readmeKeyResults(files.facts)));
    console.log(
      `short report from the recorded suite: ${files.html}${files.pdf ? `, ${files.pdf} (${files.pages} pages)` : ''} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    return;
  }
  const short = await buildLabReport({ mode: 'yours', pdf });
  console.log(`short report from your runs: ${short.html}${short.pdf ? `, ${short.pdf} (${short.pages} pages)` : ''}`);
  const report = await buildReport({
    notebooksDir: executedDir(),
    outDir: PATHS.report,
    pdf: !args.includes('--no-pdf'),
    allowStale: args.includes('--allow-stale'),
    quick,
    onProgress: (m) => console.log(m),
  });
  console.log(`report: ${report.notebooks.length} notebook(s) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((err) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
});
