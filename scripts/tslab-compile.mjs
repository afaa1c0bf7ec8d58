#!/usr/bin/env node
/**
 * Compiles the notebooks' code cells, and with them lib/, the way the notebooks' kernel does: with
 * tslab's own converter and the TypeScript it bundles (@tslab/typescript-for-tslab, 5.0), cell by
 * cell in order (each cell sees the declarations of the cells before it), from notebooks/ as the
 * kernel's working folder. `npm run typecheck` uses the project's newer TypeScript, which accepts
 * what 5.0 rejects (NoInfer, say: commit c1ac6ec); this finds it before JupyterLab does.
 *
 *   node scripts/tslab-compile.mjs      prints each error as tslab would, exit 1 if any
 *
 * A last cell imports every .ts file of lib/, so files no notebook imports are compiled too: their
 * errors are printed as warnings (they break no notebook until one imports them); errors in the
 * notebooks' cells and in the lib/ files they import (directly or not) fail. Nothing is run.
 * test/tslab-compile.test.ts runs it in `npm test`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NOTEBOOKS = path.join(ROOT, 'notebooks');

/** The code cells of a notebook, as the kernel receives them. */
function codeCells(file) {
  const nb = JSON.parse(fs.readFileSync(file, 'utf8'));
  return nb.cells
    .filter((c) => c.cell_type === 'code')
    .map((c) => (Array.isArray(c.source) ? c.source.join('') : c.source));
}

/** A cell that imports (types only: nothing runs) every .ts file under lib/. */
function libCell() {
  const files = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(dir, e.name));
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) files.push(path.join(dir, e.name));
    }
  };
  walk(path.join(ROOT, 'lib'));
  // Through notebooks/lib (a link to ../lib), as the notebooks import it.
  const specifier = (f) =>
    `./lib/${path.relative(path.join(ROOT, 'lib'), f).replace(/\.ts$/, '')}`.split(path.sep).join('/');
  return files
    .sort()
    .map((f, i) => `import type * as lib${i} from '${specifier(f)}';`)
    .join('\n');
}

/** lib/ files (relative to notebooks/, e.g. 'lib/train/train.ts') that the cells import, directly or not. */
function reachableLibFiles(cellSources) {
  const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]*)['"]/gm;
  const seen = new Set();
  const visit = (fromDir, text) => {
    for (const m of text.matchAll(SPECIFIER)) {
      const base = path.resolve(fromDir, m[1]);
      const file = [`${base}.ts`, path.join(base, 'index.ts')].find((f) => fs.existsSync(f));
      const rel = file && path.relative(NOTEBOOKS, file);
      if (!rel || seen.has(rel)) continue;
      seen.add(rel);
      visit(path.dirname(file), fs.readFileSync(file, 'utf8'));
    }
  };
  for (const src of cellSources) visit(NOTEBOOKS, src);
  return seen;
}

// tslab resolves './lib/...' and writes paths relative to the working folder, like the kernel.
process.chdir(NOTEBOOKS);
const require = createRequire(path.join(ROOT, 'package.json'));
const { createConverter } = require('tslab/dist/converter');
const ts = require(
  require.resolve('@tslab/typescript-for-tslab', { paths: [path.dirname(require.resolve('tslab/package.json'))] }),
);

const LIB_CELL = 'lib/ (every file)';
const notebooks = fs
  .readdirSync(NOTEBOOKS)
  .filter((f) => f.endsWith('.ipynb'))
  .sort();
const sources = [
  ...notebooks.map((nb) => ({ name: nb, cells: codeCells(path.join(NOTEBOOKS, nb)) })),
  { name: LIB_CELL, cells: [libCell()] },
];
const reachable = reachableLibFiles(sources.slice(0, -1).flatMap((s) => s.cells));
let errors = 0;
let warnings = 0;
let cells = 0;
// One converter (it keeps lib/ compiled between notebooks); each notebook starts from no declarations,
// as a fresh kernel (or tslab's restart) does.
const converter = createConverter({ isJS: false, isBrowser: false });
for (const { name, cells: srcs } of sources) {
  let prevDecl = '';
  srcs.forEach((src, i) => {
    cells++;
    const r = converter.convert(prevDecl, src);
    for (const d of r.diagnostics) {
      const where = d.fileName ? `${d.fileName} ` : '';
      const line = `${name} cell ${i + 1}: ${where}${d.start.line + 1}:${d.start.character + 1} - ${d.messageText}`;
      if (name === LIB_CELL && d.fileName && !reachable.has(d.fileName)) {
        warnings++;
        console.error(`warning (no notebook imports ${d.fileName}): ${line}`);
      } else {
        errors++;
        console.error(line);
      }
    }
    if (r.diagnostics.length === 0) prevDecl = r.declOutput ?? '';
  });
}
converter.close();
console.log(
  `tslab-compile: TypeScript ${ts.version} (tslab's), ${notebooks.length} notebooks and lib/, ${cells} cells: ` +
    `${errors} error(s), ${warnings} warning(s) in lib/ files no notebook imports`,
);
process.exit(errors ? 1 : 0);
