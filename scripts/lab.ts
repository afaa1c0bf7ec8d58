/**
 * npm start: the whole lab, headless. Runs notebooks/NN-*.ipynb in order through the tslab
 * kernel (full configuration unless --quick), saves the executed copies to results/notebooks/
 * (notebooks/ itself is never written), stops at the first notebook with an error, then renders
 * them as the report (results/report/report.html and report.pdf; lib/report/report.ts).
 *
 *   npm start                      everything, full lab
 *   npm start -- --quick           DCF_QUICK=1: small slices, one short epoch (minutes); executed
 *                                  copies in results/quick/notebooks, report in results/quick/report
 *   npm start -- --from 04         start at notebook 04 (earlier results are reused)
 *   npm start -- --only 05         run just notebook 05, then the report
 *   npm start -- --no-report       skip the report
 */
import * as path from 'path';
import { PATHS, readEnv, setEnv } from '../lib/config';
import { buildLabReport, buildReport, executedDir, executeNotebook, listNotebooks } from '../lib/report';

const USAGE = `usage: npm start [-- options]
  --quick        DCF_QUICK=1: small slices, one short epoch (minutes, not the lab's numbers)
  --from NN      start at notebook NN (earlier notebooks' results are reused)
  --only NN,MM   run only these notebooks
  --no-report    skip the report (npm run report builds it later)`;

interface Options {
  quick: boolean;
  from?: string;
  only?: string[];
  report: boolean;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { quick: readEnv().quick, report: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (!v) throw new Error(`${a} needs a value, e.g. ${a} 04`);
      return v;
    };
    if (a === '--quick') opts.quick = true;
    else if (a === '--no-report') opts.report = false;
    else if (a === '--from') opts.from = value();
    else if (a === '--only') opts.only = value().split(',');
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option '${a}'; see npm start -- --help`);
  }
  return opts;
}

function formatSeconds(s: number): string {
  return s < 90 ? `${s.toFixed(0)} s` : s < 5400 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(2)} h`;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  // Before any path is read: this process's PATHS, the kernels (setEnv writes DCF_QUICK back to
  // process.env, which they inherit) and the report all use results/quick in quick mode.
  setEnv({ quick: opts.quick });
  const notebooksOut = executedDir();
  const all = listNotebooks();
  if (all.length === 0) throw new Error('no notebooks found in notebooks/');
  const prefix = (f: string) => path.basename(f).slice(0, 2);
  let notebooks = all;
  if (opts.only) {
    notebooks = all.filter((f) => opts.only!.includes(prefix(f)));
    const missing = opts.only.filter((p) => !all.some((f) => prefix(f) === p));
    if (missing.length)
      throw new Error(`no notebook numbered ${missing.join(', ')}; have ${all.map(prefix).join(', ')}`);
  } else if (opts.from) {
    notebooks = all.filter((f) => prefix(f) >= opts.from!);
  }
  console.log(
    `lab: ${notebooks.length} notebook(s), ${opts.quick ? "QUICK mode (DCF_QUICK=1: small slices, not the lab's numbers)" : 'full configuration'}; executed copies in ${path.relative(process.cwd(), notebooksOut)}/`,
  );
  const timings: string[] = [];
  for (const notebook of notebooks) {
    const name = path.basename(notebook);
    console.log(`\n━━ ${name} ━━`);
    // Ctrl-C reaches the runner too (same terminal): it stops the kernel's cell at a step
    // boundary and exits 130. Wait for that instead of dying before it.
    const onSigint = () =>
      console.log('\nlab: Ctrl-C: letting the notebook stop at its next step (Ctrl-C again ends it at once)');
    process.on('SIGINT', onSigint);
    const result = await executeNotebook(notebook, {
      output: path.join(notebooksOut, name),
      quick: opts.quick,
      onOutput: (text) => process.stdout.write(text),
    }).finally(() => process.off('SIGINT', onSigint));
    timings.push(`${name} ${formatSeconds(result.seconds)}`);
    if (result.interrupted) {
      console.error(
        `\nlab: interrupted in ${name}; saved runs are kept. \`npm start -- --from ${name.slice(0, 2)}\` continues (training resumes from its best checkpoint).`,
      );
      process.exit(130);
    }
    if (result.exitCode !== 0 || result.errors.length) {
      const where =
        result.errors.map((e) => `cell ${e.cell}: ${e.ename}: ${e.evalue}`).join('; ') ||
        result.stderr.trim().split('\n').pop();
      throw new Error(
        `${name} failed (${where}). The executed copy with the error is ${path.relative(process.cwd(), result.output)}`,
      );
    }
    console.log(`✓ ${name} in ${formatSeconds(result.seconds)}`);
  }
  if (opts.report) {
    console.log('\n━━ report ━━');
    const report = await buildReport({
      notebooksDir: notebooksOut,
      outDir: PATHS.report,
      quick: opts.quick,
      onProgress: (m) => console.log(m),
    });
    console.log(
      `lab book: ${path.relative(process.cwd(), report.html)}, ${report.pdf ? path.relative(process.cwd(), report.pdf) : 'no PDF'}`,
    );
    const short = await buildLabReport({ mode: 'yours' });
    console.log(
      `the short report (your runs beside the recorded suite): ${path.relative(process.cwd(), short.html)}, ${short.pdf ? `${path.relative(process.cwd(), short.pdf)} (${short.pages} pages)` : 'no PDF'}`,
    );
  }
  console.log(`\nlab done: ${timings.join(', ')}`);
}

main().catch((err) => {
  console.error(`\nerror: ${(err as Error).message}`);
  process.exit(1);
});
