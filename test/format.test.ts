// One formatter: lib/, scripts/, test/ and the notebooks' code cells are as prettier (.prettierrc.json,
// 120 columns) writes them; scripts/format.ts --check says which file is not.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { PATHS } from '../lib/config';

describe('npm run format:check', () => {
  it('finds every file formatted', () => {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', path.join(PATHS.root, 'scripts', 'format.ts'), '--check'],
      { cwd: PATHS.root, encoding: 'utf8' },
    );
    expect(r.stderr, r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('every file is formatted');
  });
});
