// notebooks/ is committed without outputs: executed copies live in results/notebooks.
// `npm run notebooks:strip` fixes a notebook this test rejects.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import {
  committedProblems,
  isStripped,
  listNotebooks,
  readNotebook,
  stripNotebook,
  stripNotebookFile,
  type NotebookJson,
} from '../lib/report/notebooks';

describe('committed notebooks', () => {
  it('hold no outputs or execution counts and use the tslab kernel', () => {
    const notebooks = listNotebooks();
    expect(notebooks.length).toBeGreaterThan(0);
    const problems = notebooks.flatMap((f) =>
      committedProblems(readNotebook(f)).map((p) => `${path.basename(f)}: ${p}`),
    );
    expect(problems, 'run `npm run notebooks:strip`').toEqual([]);
  });

  it('hold no run metadata either (what notebooks:strip removes)', () => {
    const dirty = listNotebooks()
      .filter((f) => !isStripped(readNotebook(f)))
      .map((f) => path.basename(f));
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
        cell_type: 'code',
        id: 'c',
        metadata: { execution: { t: 1 }, tags: ['keep'] },
        source: ['x\n', 'y'],
        execution_count: 3,
        outputs: [{ output_type: 'error', ename: 'Error', evalue: 'boom', traceback: [] }],
      },
    ],
  };

  it('removes outputs, counts and run metadata, keeping sources, ids and tags', () => {
    expect(committedProblems(executed)).toEqual(['cell 1 has 1 output(s)', 'cell 1 has execution_count 3']);
    const clean = stripNotebook(executed);
    expect(committedProblems(clean)).toEqual([]);
    expect(clean.cells[1]).toEqual({
      cell_type: 'code',
      id: 'c',
      metadata: { tags: ['keep'] },
      source: ['x\n', 'y'],
      execution_count: null,
      outputs: [],
    });
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

/** A notebook's code cells as text, in order. */
const codeCells = (nb: NotebookJson) =>
  nb.cells.filter((c) => c.cell_type === 'code').map((c) => (Array.isArray(c.source) ? c.source.join('') : c.source));

/**
 * Where a notebook's code breaks the house rules: an import anywhere but the first code cell, and a
 * function or class defined in a cell (a declaration, a method, or a variable bound to an arrow or
 * function expression; helpers live in lib/report). Callbacks written inline as arguments (map,
 * filter) are expressions, not definitions, and are allowed.
 */
function codeProblems(nb: NotebookJson): string[] {
  const problems: string[] = [];
  codeCells(nb).forEach((source, i) => {
    const file = ts.createSourceFile(`cell${i}.ts`, source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
    const line = (node: ts.Node) => file.getLineAndCharacterOfPosition(node.getStart()).line + 1;
    const where = (node: ts.Node) => `code cell ${i + 1} line ${line(node)}`;
    const defines = (node: ts.Node, name: string) =>
      problems.push(`${where(node)} defines ${name} (move it to lib/report)`);
    const unwrap = (e: ts.Expression): ts.Expression =>
      ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e) ? unwrap(e.expression) : e;
    const isFunction = (e?: ts.Expression) =>
      !!e && (ts.isArrowFunction(unwrap(e)) || ts.isFunctionExpression(unwrap(e)));
    const isImport = (node: ts.Node) =>
      ts.isImportDeclaration(node) ||
      ts.isImportEqualsDeclaration(node) ||
      (ts.isCallExpression(node) &&
        (node.expression.kind === ts.SyntaxKind.ImportKeyword ||
          (ts.isIdentifier(node.expression) && node.expression.text === 'require')));
    const visit = (node: ts.Node): void => {
      if (i > 0 && isImport(node)) problems.push(`${where(node)} imports (every import goes in the first code cell)`);
      if (ts.isFunctionDeclaration(node) || ts.isClassDeclaration(node) || ts.isMethodDeclaration(node)) {
        defines(node, node.name?.getText() ?? 'a function');
      }
      if (ts.isVariableDeclaration(node) && isFunction(node.initializer)) defines(node, node.name.getText());
      const assigns = ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.EqualsToken;
      if (assigns && isFunction(node.right)) defines(node, node.left.getText());
      ts.forEachChild(node, visit);
    };
    visit(file);
  });
  return problems;
}

describe('notebook code', () => {
  it('imports only in the first code cell and defines no function', () => {
    const problems = listNotebooks().flatMap((f) =>
      codeProblems(readNotebook(f)).map((p) => `${path.basename(f)}: ${p}`),
    );
    expect(problems).toEqual([]);
  });

  it('finds a late import, a function, a helper bound to a variable and a class (the check can fail)', () => {
    const code = (...lines: string[]) => ({
      cell_type: 'code' as const,
      source: lines.join('\n'),
      metadata: {},
      outputs: [],
    });
    const nb: NotebookJson = {
      nbformat: 4,
      nbformat_minor: 5,
      metadata: {},
      cells: [
        code("import { x } from './lib/x';", 'const ys = [1, 2].map((v) => v + x);'),
        { cell_type: 'markdown', source: 'import nothing', metadata: {} },
        code(
          "import { y } from './lib/y';",
          'function f() {}',
          'const g = async (a: number) => a;',
          'let h;',
          'h = function () {};',
        ),
        code(
          'class C {}',
          "const z = require('z');",
          'const o = { m() {} };',
          'console.log([1].filter((v) => v > 0), C, z, o);',
        ),
      ],
    };
    expect(codeProblems(nb)).toEqual([
      'code cell 2 line 1 imports (every import goes in the first code cell)',
      'code cell 2 line 2 defines f (move it to lib/report)',
      'code cell 2 line 3 defines g (move it to lib/report)',
      'code cell 2 line 5 defines h (move it to lib/report)',
      'code cell 3 line 1 defines C (move it to lib/report)',
      'code cell 3 line 2 imports (every import goes in the first code cell)',
      'code cell 3 line 3 defines m (move it to lib/report)',
    ]);
  });

  it('keeps code lines within 120 columns', () => {
    const long = listNotebooks().flatMap((f) =>
      codeCells(readNotebook(f)).flatMap((source, i) =>
        source
          .split('\n')
          .filter((l) => l.length > 120)
          .map((l) => `${path.basename(f)} code cell ${i + 1}: ${l.length} columns`),
      ),
    );
    expect(long).toEqual([]);
  });
});

describe('the notebooks are the report', () => {
  const code = (name: string) => {
    const file = listNotebooks().find((f) => path.basename(f).startsWith(name));
    if (!file) throw new Error(`no notebook ${name}-*.ipynb`);
    return codeCells(readNotebook(file)).join('\n');
  };

  it('read typed results from lib, never the report renderers', () => {
    const renderer = /from '\.\/lib\/report\/(report|lab-report)'/;
    const offending = listNotebooks().filter((f) => renderer.test(codeCells(readNotebook(f)).join('\n')));
    expect(offending.map((f) => path.basename(f))).toEqual([]);
  });

  it("state the lab's answers with the short report's generated sentences, from the results table", () => {
    expect(code('04')).toMatch(/showAnswer\(compareAnswer\(compareFacts\(t\)\)\)/);
    expect(code('05')).toMatch(/showAnswer\(responseMapAnswer\(/);
    expect(code('06')).toMatch(/showAnswer\(freezeAnswer\(/);
    expect(code('06')).toMatch(/showAnswer\(prosConsAnswer\(costFacts\(t, recordedMeasurements\(\)\)\)\)/);
    for (const nb of ['04', '06']) expect(code(nb)).toMatch(/const t = loadResults\(\)/);
  });
});
