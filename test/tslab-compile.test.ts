// The notebooks' kernel compiles their cells and lib/ with tslab's bundled TypeScript 5.0 (non-strict,
// ES2022 libs, no DOM), not the project's 5.9: scripts/tslab-compile.mjs runs tslab's own converter
// over every code cell in order, so a lib/ change that breaks the notebooks fails here.
import { spawnSync } from 'child_process';
import { expect, it } from 'vitest';
import { PATHS } from '../lib/config';

it('every notebook cell and every lib/ file a notebook imports compiles under tslab', () => {
  const r = spawnSync(process.execPath, ['scripts/tslab-compile.mjs'], { cwd: PATHS.root, encoding: 'utf8' });
  if (r.stderr) console.warn(r.stderr);
  expect(r.stdout).toMatch(/TypeScript 5\.0\.\d+ \(tslab's\), 7 notebooks and lib\/, \d+ cells: 0 error\(s\)/);
  expect(r.status, r.stderr).toBe(0);
}, 600_000);
