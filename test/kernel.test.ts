// The notebooks' runtime: the tslab kernel registered in .venv runs a notebook from notebooks/
// headless, imports lib/ through the notebooks/lib link, and gets the native backend.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { CLASS_NAMES, PATHS } from '../lib/config';

interface Output {
  output_type: string;
  text?: string | string[];
  ename?: string;
  evalue?: string;
}

describe('tslab kernel', () => {
  it('executes notebooks/00-kernel-check.ipynb with lib/ and the native backend', () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nb-')), 'out.ipynb');
    execFileSync(
      path.join(PATHS.root, '.venv', 'bin', 'jupyter'),
      [
        'execute',
        '--kernel_name=tslab',
        `--output=${out}`,
        path.join(PATHS.root, 'notebooks', '00-kernel-check.ipynb'),
      ],
      { stdio: 'pipe', timeout: 90_000 },
    );
    const nb = JSON.parse(fs.readFileSync(out, 'utf8')) as { cells: { outputs?: Output[] }[] };
    const outputs = nb.cells.flatMap((c) => c.outputs ?? []);
    expect(outputs.filter((o) => o.output_type === 'error')).toEqual([]);
    const text = outputs.map((o) => [o.text ?? ''].flat().join('')).join('');
    expect(text).toContain(`project: ${PATHS.root}`);
    expect(text).toContain(`classes: ${CLASS_NAMES.join(', ')}`);
    expect(text).toMatch(/backend: tensorflow \(@tensorflow\/tfjs-node(-gpu)?, TensorFlow \d/);
  });
});
