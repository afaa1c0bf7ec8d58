/**
 * npm run report: rebuilds results/report/report.html and report.pdf (and the report's figures in
 * results/figures) from what is in results/. Trains nothing; missing results show as "no run yet".
 */
import * as path from 'path';
import { writeExperimentTable } from '../lib/experiments';
import { buildReport } from '../lib/report';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help')) {
    console.log('usage: npm run report [-- --no-pdf]\nRebuilds results/report/report.html and report.pdf from results/.');
    return;
  }
  const unknown = args.filter((a) => a !== '--no-pdf');
  if (unknown.length) throw new Error(`unknown option(s) ${unknown.join(' ')}; see npm run report -- --help`);
  const started = Date.now();
  // results/experiments.parquet from results/runs (lib/experiments' table; trains nothing).
  const table = writeExperimentTable();
  console.log(`experiment table: ${path.relative(process.cwd(), table.file)} (${table.rows.filter((r) => r.status === 'done').length} of ${table.rows.length} experiments done)`);
  const result = await buildReport({ pdf: !args.includes('--no-pdf'), onProgress: (m) => console.log(m) });
  const open = result.answers.filter((a) => a.status !== 'answered').map((a) => `${a.id} (${a.status})`);
  console.log(`report: ${result.figures.length} figure(s), ${result.runs} run(s), ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (open.length) console.log(`questions not fully answered yet: ${open.join(', ')}`);
}

main().catch((err) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
});
