/**
 * npm run format: prettier (.prettierrc.json, 120 columns) over lib/, scripts/ and test/, and over
 * the notebooks' code cells, each formatted as a TypeScript module. `--check` (npm run format:check,
 * run in CI and by test/format.test.ts) writes nothing and fails naming every file that would change.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as prettier from 'prettier';
import { PATHS } from '../lib/config';

type Notebook = { cells: { cell_type: string; source: string | string[] }[] };

const FOLDERS = ['lib', 'scripts', 'test'];
const EXTENSIONS = /\.(ts|mts|mjs)$/;

/** The tracked and untracked-but-not-ignored files prettier owns. */
function sourceFiles(): string[] {
  const listed = execFileSync(
    'git',
    ['ls-files', '--cached', '--others', '--exclude-standard', '--', ...FOLDERS, 'notebooks'],
    {
      cwd: PATHS.root,
      encoding: 'utf8',
    },
  );
  return listed
    .split('\n')
    .filter((f) => (EXTENSIONS.test(f) || f.endsWith('.ipynb')) && fs.existsSync(path.join(PATHS.root, f)))
    .sort();
}

async function formatted(file: string, text: string, options: prettier.Options): Promise<string> {
  if (!file.endsWith('.ipynb')) return prettier.format(text, { ...options, filepath: file });
  const nb = JSON.parse(text) as Notebook;
  for (const cell of nb.cells.filter((c) => c.cell_type === 'code')) {
    const source = Array.isArray(cell.source) ? cell.source.join('') : cell.source;
    // A cell is a module (top-level await and imports); a cell has no trailing newline.
    const out = (await prettier.format(source, { ...options, parser: 'typescript' })).replace(/\n$/, '');
    cell.source = Array.isArray(cell.source) ? out.split(/(?<=\n)/) : out;
  }
  // The layout of notebooks/*.ipynb as Jupyter and scripts/strip-notebooks write it.
  return `${JSON.stringify(nb, null, 1)}\n`;
}

async function main(): Promise<number> {
  const check = process.argv.includes('--check');
  const options = (await prettier.resolveConfig(path.join(PATHS.root, '.prettierrc.json'))) ?? {};
  const changed: string[] = [];
  for (const file of sourceFiles()) {
    const full = path.join(PATHS.root, file);
    const text = fs.readFileSync(full, 'utf8');
    const out = await formatted(file, text, options);
    if (out === text) continue;
    changed.push(file);
    if (!check) fs.writeFileSync(full, out);
  }
  if (check && changed.length) {
    console.error(`not formatted (${changed.length}): ${changed.join(', ')}\nRun npm run format.`);
    return 1;
  }
  console.log(check ? 'every file is formatted' : `formatted ${changed.length} file(s)`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`error: ${err.message}`);
    process.exit(1);
  },
);
