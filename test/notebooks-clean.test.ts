// notebooks/ is committed without outputs: executed copies live in results/notebooks.
// `npm run notebooks:strip` fixes a notebook this test rejects.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { committedProblems, isStripped, listNotebooks, readNotebook, stripNotebook, stripNotebookFile, type NotebookJson } from '../lib/report/notebooks';

describe('committed notebooks', () => {
  it('hold no outputs or execution counts and use the tslab kernel', () => {
    const notebooks = listNotebooks();
    expect(notebooks.length).toBeGreaterThan(0);
    const problems = notebooks.flatMap((f) => committedProblems(readNotebook(f)).map((p) => `${path.basename(f)}: ${p}`));
    expect(problems, 'run `npm run notebooks:strip`').toEqual([]);
  });

  it('hold no run metadata either (what notebooks:strip removes)', () => {
    const dirty = listNotebooks().filter((f) => !isStripped(readNotebook(f))).map((f) => path.basename(f));
    expect(dirty, 'run `npm run notebooks:strip`').toEqual([]);
  });
});

describe('stripNotebook', () => {
  const executed: NotebookJson = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'tslab', display_name: 'TypeScript', language: 'typescript' }, widgets: { x: 1 } },
    cells: [
      { cell_type: 'markdown', id: 'm', metadata: {}, source: '# title' },
      {
        cell_type: 'code', id: 'c', metadata: { execution: { t: 1 }, tags: ['keep'] }, source: ['x\n', 'y'], execution_count: 3,
        outputs: [{ output_type: 'error', ename: 'Error', evalue: 'boom', traceback: [] }],
      },
    ],
  };

  it('removes outputs, counts and run metadata, keeping sources, ids and tags', () => {
    expect(committedProblems(executed)).toEqual(['cell 1 has 1 output(s)', 'cell 1 has execution_count 3']);
    const clean = stripNotebook(executed);
    expect(committedProblems(clean)).toEqual([]);
    expect(clean.cells[1]).toEqual({ cell_type: 'code', id: 'c', metadata: { tags: ['keep'] }, source: ['x\n', 'y'], execution_count: null, outputs: [] });
    expect(clean.metadata).toEqual({ kernelspec: executed.metadata.kernelspec });
    expect(executed.cells[1].outputs).toHaveLength(1); // the input is not modified
  });

  it('rewrites a file only when it changes', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nb-strip-')), '01-x.ipynb');
    fs.writeFileSync(file, JSON.stringify(executed));
    expect(stripNotebookFile(file)).toBe(true);
    expect(committedProblems(readNotebook(file))).toEqual([]);
    expect(stripNotebookFile(file)).toBe(false);
    // A clean notebook is left alone, whatever its key order.
    const clean = JSON.stringify(stripNotebook(executed));
    fs.writeFileSync(file, clean);
    expect(stripNotebookFile(file)).toBe(false);
    expect(fs.readFileSync(file, 'utf8')).toBe(clean);
    fs.rmSync(path.dirname(file), { recursive: true });
  });
});

describe('the notebooks are the report', () => {
  it('read typed results from lib, never the report renderer or prose built in lib', () => {
    const sources = listNotebooks().map((f) => ({ name: path.basename(f), code: readNotebook(f).cells.filter((c) => c.cell_type === 'code').map((c) => (Array.isArray(c.source) ? c.source.join('') : c.source)).join('\n') }));
    const offending = sources.filter((s) => /from '\.\/lib\/report\/(report|answers)'/.test(s.code)).map((s) => s.name);
    expect(offending).toEqual([]);
    expect(fs.existsSync(path.join(__dirname, '..', 'lib', 'report', 'answers.ts'))).toBe(false);
  });
});
