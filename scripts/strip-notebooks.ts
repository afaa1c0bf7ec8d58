/**
 * npm run notebooks:strip [-- --check] [files…]: removes outputs and execution counts from the
 * notebooks (default: every notebooks/NN-*.ipynb), so they are committed clean. With --check it
 * changes nothing and exits 1 when a notebook would change (test/notebooks-clean.test.ts checks
 * the same on every `npm test`).
 */
import * as path from 'path';
import { committedProblems, isStripped, listNotebooks, readNotebook, stripNotebookFile } from '../lib/report';
import { commandLinePath } from '../lib/config';

const args = process.argv.slice(2);
const check = args.includes('--check');
const files = args.filter((a) => a !== '--check').map((f) => commandLinePath(f));
const notebooks = files.length ? files : listNotebooks();

let dirty = 0;
for (const file of notebooks) {
  const rel = path.relative(process.cwd(), file);
  if (check) {
    const nb = readNotebook(file);
    const clean = isStripped(nb);
    const problems = committedProblems(nb);
    if (!clean || problems.length) {
      dirty++;
      console.log(`${rel}: ${problems.length ? problems.join('; ') : 'holds run metadata'}`);
    }
  } else if (stripNotebookFile(file)) {
    dirty++;
    console.log(`stripped ${rel}`);
  }
}
if (check && dirty) {
  console.error(`${dirty} notebook(s) hold outputs: run \`npm run notebooks:strip\``);
  process.exit(1);
}
console.log(
  check ? `${notebooks.length} notebook(s) clean` : `${notebooks.length} notebook(s) checked, ${dirty} stripped`,
);
