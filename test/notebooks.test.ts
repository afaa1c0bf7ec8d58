// Every notebook in notebooks/ runs top to bottom, headless, through the registered tslab kernel
// in quick mode (DCF_QUICK=1: small real slices, one short epoch), with no error output.
// The executed copies go to a temporary folder: results/notebooks keeps the full lab's.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { executeNotebook, listNotebooks } from '../lib/report/notebooks';

const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-notebooks-'));
afterAll(() => fs.rmSync(outDir, { recursive: true, force: true }));

describe('the notebook runner', () => {
  it('reports a failing cell, keeps the executed copy, and stops there', { timeout: 120_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(outDir, 'failing-'));
    const cell = (id: string, source: string) => ({
      cell_type: 'code',
      id,
      metadata: {},
      source,
      outputs: [],
      execution_count: null,
    });
    fs.writeFileSync(
      path.join(dir, '01-fails.ipynb'),
      JSON.stringify({
        nbformat: 4,
        nbformat_minor: 5,
        metadata: { kernelspec: { name: 'tslab', display_name: 'TypeScript', language: 'typescript' } },
        cells: [
          cell('a', 'console.log(`quick=${process.env.DCF_QUICK}`);'),
          cell('b', "throw new Error('boom from cell b');"),
          cell('c', "console.log('never');"),
        ],
      }),
    );
    let log = '';
    const result = await executeNotebook(path.join(dir, '01-fails.ipynb'), {
      output: path.join(dir, 'out.ipynb'),
      quick: true,
      onOutput: (t) => (log += t),
    });
    expect(result.exitCode).toBe(1);
    expect(result.errors).toEqual([{ cell: 1, ename: 'Error', evalue: 'boom from cell b' }]);
    expect(log).toContain('quick=1'); // streamed as it ran, with DCF_QUICK passed to the kernel
    expect(log).not.toContain('never');
    expect(fs.existsSync(result.output)).toBe(true);
  });
});

describe('notebooks (quick mode, tslab kernel)', () => {
  const notebooks = listNotebooks();
  it('exist', () => {
    expect(notebooks.length).toBeGreaterThan(0);
  });
  for (const notebook of notebooks) {
    const name = path.basename(notebook);
    it(`${name} runs without an error output`, { timeout: 15 * 60_000 }, async () => {
      let log = '';
      const result = await executeNotebook(notebook, {
        output: path.join(outDir, name),
        quick: true,
        cellTimeout: 600,
        onOutput: (t) => (log += t),
      });
      const why = `${name} failed (exit ${result.exitCode}). Last output:\n${log.slice(-3000)}`;
      expect(result.errors, why).toEqual([]);
      expect(result.exitCode, why).toBe(0);
    });
  }
});
