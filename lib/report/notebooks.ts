/**
 * The lab's notebooks as files: which ones there are, running them headless through the tslab
 * kernel (scripts/execute_notebook.py, nbclient), finding error outputs, and stripping outputs
 * so that notebooks/ is committed clean. `npm start`, the notebook tests and the browser test
 * use these.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../formats/index';
import { PATHS } from '../config';

export const NOTEBOOKS_DIR = path.join(PATHS.root, 'notebooks');
/**
 * Where `npm start` keeps the executed copies (never notebooks/ itself): <results>/notebooks, so
 * results/quick/notebooks in quick mode. A function, read at each call: setEnv({ quick }) from an
 * entry point's flag may come after this module loads.
 */
export function executedDir(): string {
  return path.join(PATHS.results, 'notebooks');
}
const KERNEL_NAME = 'tslab';

/** The notebooks in `dir` named NN-*.ipynb, in order. */
export function listNotebooks(dir: string = NOTEBOOKS_DIR): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => /^\d\d-.+\.ipynb$/.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

export interface NotebookOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}
export interface NotebookCell {
  cell_type: 'code' | 'markdown' | 'raw';
  id?: string;
  source: string | string[];
  metadata: Record<string, unknown>;
  outputs?: NotebookOutput[];
  execution_count?: number | null;
}
export interface NotebookJson {
  cells: NotebookCell[];
  metadata: Record<string, unknown>;
  nbformat: number;
  nbformat_minor: number;
}

export function readNotebook(file: string): NotebookJson {
  let nb: NotebookJson;
  try {
    nb = JSON.parse(fs.readFileSync(file, 'utf8')) as NotebookJson;
  } catch (err) {
    throw new Error(`${file} is not a readable notebook: ${(err as Error).message}`);
  }
  if (!Array.isArray(nb.cells) || nb.nbformat !== 4) throw new Error(`${file} is not an nbformat-4 notebook`);
  return nb;
}

export function cellSource(cell: NotebookCell): string {
  return Array.isArray(cell.source) ? cell.source.join('') : cell.source;
}

export interface CellError {
  /** 0-based index among all cells. */
  cell: number;
  ename: string;
  evalue: string;
}

/** How scripts/execute_notebook.py records the end of a run in the executed copy's metadata. */
interface ExecutionRecord {
  status: 'ok' | 'error';
  failed_cell?: number;
  message?: string;
  failure?: string;
}

/**
 * Every error of an executed notebook: `error` outputs, and the cell the runner saw fail. tslab
 * sends no `error` output for a throwing cell (it prints the error to stderr and replies with
 * status 'error'), so the runner's record is what catches those.
 */
export function errorOutputs(nb: NotebookJson): CellError[] {
  const errors: CellError[] = [];
  nb.cells.forEach((cell, i) => {
    for (const o of cell.outputs ?? []) {
      if (o.output_type === 'error') errors.push({ cell: i, ename: o.ename ?? 'Error', evalue: o.evalue ?? '' });
    }
  });
  const record = nb.metadata.dcf_execution as ExecutionRecord | undefined;
  if (record?.status === 'error' && !errors.some((e) => e.cell === record.failed_cell)) {
    const message = record.message ?? record.failure ?? 'the run failed';
    const m = /^(\w*(?:Error|Exception))\b:?\s*(.*)$/.exec(message);
    errors.push({ cell: record.failed_cell ?? -1, ename: m ? m[1] : 'Error', evalue: m ? m[2] : message });
  }
  return errors;
}

/** What a committed notebook must not hold: outputs and execution counts (index, what). */
export function committedProblems(nb: NotebookJson): string[] {
  const problems: string[] = [];
  nb.cells.forEach((cell, i) => {
    if (cell.cell_type !== 'code') return;
    if ((cell.outputs ?? []).length > 0) problems.push(`cell ${i} has ${cell.outputs!.length} output(s)`);
    if (cell.execution_count !== null && cell.execution_count !== undefined)
      problems.push(`cell ${i} has execution_count ${cell.execution_count}`);
  });
  const kernel = (nb.metadata.kernelspec as { name?: string } | undefined)?.name;
  if (kernel !== KERNEL_NAME) problems.push(`kernelspec is '${kernel ?? 'missing'}', expected '${KERNEL_NAME}'`);
  return problems;
}

/** The notebook without outputs, execution counts or per-run metadata (a pure copy). */
export function stripNotebook(nb: NotebookJson): NotebookJson {
  return {
    ...nb,
    cells: nb.cells.map((cell) => {
      const metadata = { ...cell.metadata };
      delete metadata.execution;
      delete metadata.scrolled;
      delete metadata.collapsed;
      if (cell.cell_type !== 'code') return { ...cell, metadata };
      return { ...cell, metadata, outputs: [], execution_count: null };
    }),
    metadata: Object.fromEntries(Object.entries(nb.metadata).filter(([k]) => k !== 'widgets' && k !== 'dcf_execution')),
  };
}

/** JSON as nbformat writes it (sorted keys, one-space indent, final newline): small diffs. */
export function formatNotebook(nb: NotebookJson): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return `${JSON.stringify(sort(nb), null, 1)}\n`;
}

/** True when the notebook holds nothing that stripNotebook would remove (key order aside). */
export function isStripped(nb: NotebookJson): boolean {
  return formatNotebook(stripNotebook(nb)) === formatNotebook(nb);
}

/** Strips a notebook file in place (atomic) when it holds outputs or run metadata; true when it changed. */
export function stripNotebookFile(file: string): boolean {
  const nb = readNotebook(file);
  if (isStripped(nb)) return false;
  writeFileAtomic(file, formatNotebook(stripNotebook(nb)));
  return true;
}

export interface ExecuteOptions {
  /** Where the executed copy goes. */
  output: string;
  /** DCF_QUICK=1 for the kernel (small slices, one short epoch). Default: inherit. */
  quick?: boolean;
  /** Seconds per cell (default: no limit). */
  cellTimeout?: number;
  /** Receives what the cells print, as it arrives (default: discarded). */
  onOutput?: (text: string) => void;
  /** Extra environment for the kernel. */
  env?: Record<string, string>;
  /** Aborting it interrupts the run as Ctrl-C does (the runner passes SIGINT on to the kernel). */
  signal?: AbortSignal;
}

export interface ExecuteResult {
  notebook: string;
  output: string;
  seconds: number;
  /** The runner's exit status (0: every cell ran). */
  exitCode: number;
  errors: CellError[];
  /** What the runner wrote to stderr (why it failed). */
  stderr: string;
  /** The run was interrupted (Ctrl-C, or `signal`): exit status 130. */
  interrupted: boolean;
}

/** The project's Python (.venv: nbclient, nbconvert, JupyterLab); a clear error when set-up has not made it. */
export function venvPython(): string {
  const python = path.join(PATHS.root, '.venv', 'bin', 'python');
  if (!fs.existsSync(python)) throw new Error(`no Python environment at ${python}: run \`npm run setup\``);
  return python;
}

/** Runs a notebook headless through the tslab kernel and reads back its error outputs. */
export function executeNotebook(notebook: string, opts: ExecuteOptions): Promise<ExecuteResult> {
  const python = venvPython();
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env, PYTHONUNBUFFERED: '1' };
  if (opts.quick !== undefined) env.DCF_QUICK = opts.quick ? '1' : '0';
  // Headless, progress displays print a line per epoch instead of redrawing (lib/train/progress).
  env.DCF_PROGRESS_LINES = '1';
  // The kernel must find the project's node and tslab, whatever PATH the caller has.
  env.PATH = `${path.join(PATHS.root, 'node_modules', '.bin')}:${path.dirname(process.execPath)}:${env.PATH ?? ''}`;
  const args = [
    path.join(PATHS.root, 'scripts', 'execute_notebook.py'),
    notebook,
    opts.output,
    '--kernel',
    KERNEL_NAME,
  ];
  if (opts.cellTimeout !== undefined) args.push('--timeout', String(Math.ceil(opts.cellTimeout)));
  // A copy left by an earlier run must not be read as this run's result.
  fs.rmSync(opts.output, { force: true });
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => opts.onOutput?.(chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      opts.onOutput?.(chunk);
    });
    const interrupt = () => child.kill('SIGINT');
    opts.signal?.addEventListener('abort', interrupt, { once: true });
    child.on('error', reject);
    child.on('close', (code) => {
      opts.signal?.removeEventListener('abort', interrupt);
      const errors = fs.existsSync(opts.output) ? errorOutputs(readNotebook(opts.output)) : [];
      const exitCode = code ?? 1;
      resolve({
        notebook,
        output: opts.output,
        seconds: (Date.now() - started) / 1000,
        exitCode,
        errors,
        stderr,
        interrupted: exitCode === 130,
      });
    });
  });
}
