/**
 * npm run test:e2e: the notebooks as a user runs them, in JupyterLab in headless Chromium.
 *
 * Starts JupyterLab on 127.0.0.1 (a free port, a random token, quick mode: DCF_QUICK=1), opens
 * each notebooks/NN-*.ipynb, runs all cells from the Run menu, waits for the kernel to finish,
 * and checks that no cell failed (an error output, a tslab error on stderr, a cell left
 * unexecuted) and that every plotly output drew (an SVG `.main-svg` in the output area).
 * Screenshots of each notebook and of each figure go to results/screenshots/. The server it
 * started is always stopped, also on failure or Ctrl-C.
 *
 * Notebook 03 (training) is driven through interruption and resume first (issue #14): run all,
 * press ■ once the first epoch is saved, check that no epoch is added for 30 s, run all again
 * (it resumes and completes, each epoch recorded once), then restart the kernel and run all (it
 * completes without training again); the usual checks then apply to that last run.
 *
 * JupyterLab runs with its own temporary settings: autosave off (notebooks/ is never written;
 * the run checks that), every cell attached to the page (so off-screen figures draw), no news
 * or update checks (the machine may be offline).
 *
 *   npm run test:e2e [-- --only 04,05] [-- --keep-going]
 */
import { spawn, type ChildProcess } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import type { Browser, Page } from 'playwright-core';
import { writeFileAtomic } from '../lib/formats';
import { launchChromium, listNotebooks, type NotebookOutput } from '../lib/report';
import { PATHS } from '../lib/config';
import { readRunEpochs } from '../lib/train';

const SCREENSHOTS = path.join(PATHS.results, 'screenshots');
const NOTEBOOK_TIMEOUT_MS = 20 * 60_000;
const PLOTLY_MIME = 'application/vnd.plotly.v1+json';
/** The output node jupyterlab-plotly renders a figure into (one node, both classes). */
const PLOTLY_OUTPUT = '.jp-OutputArea-output.jp-RenderedPlotly';
/** A line that starts an error report: "Error: …", "TypeError: …", tslab's "3:7 - Cannot find name 'x'." */
const ERROR_LINE = /^(\w*(Error|Exception)\b.*|\d+:\d+ - .+)$/m;

function log(message: string): void {
  console.log(`[e2e] ${message}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function writeSetting(dir: string, plugin: string, settings: object): void {
  const [pkg, id] = plugin.split(':');
  const file = path.join(dir, pkg, `${id}.jupyterlab-settings`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(settings));
}

/** A JupyterLab server started for this run, and how to stop it. */
class LabServer {
  private exited = false;
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    readonly token: string,
    readonly logFile: string,
  ) {
    child.on('exit', () => (this.exited = true));
  }

  static async start(tmp: string): Promise<LabServer> {
    const jupyter = path.join(PATHS.root, '.venv', 'bin', 'jupyter');
    if (!fs.existsSync(jupyter)) throw new Error(`no JupyterLab at ${jupyter}: run \`npm run setup\``);
    const settings = path.join(tmp, 'settings');
    writeSetting(settings, '@jupyterlab/docmanager-extension:plugin', { autosave: false });
    writeSetting(settings, '@jupyterlab/notebook-extension:tracker', { windowingMode: 'none' });
    writeSetting(settings, '@jupyterlab/apputils-extension:notification', {
      fetchNews: 'false',
      checkForUpdates: false,
    });
    const port = await freePort();
    const token = randomBytes(24).toString('hex');
    const args = [
      'lab',
      '--no-browser',
      '--ServerApp.ip=127.0.0.1',
      `--ServerApp.port=${port}`,
      '--ServerApp.port_retries=0',
      `--IdentityProvider.token=${token}`,
      `--ServerApp.root_dir=${PATHS.root}`,
      `--LabApp.user_settings_dir=${settings}`,
      `--LabApp.workspaces_dir=${path.join(tmp, 'workspaces')}`,
      '--LabApp.expose_app_in_browser=True',
      '--LabApp.news_url=None',
    ];
    if (process.getuid?.() === 0) args.push('--allow-root');
    const logFile = path.join(tmp, 'jupyterlab.log');
    const out = fs.openSync(logFile, 'w');
    const child = spawn(jupyter, args, {
      cwd: PATHS.root,
      // Own process group: stop() can end the server and anything it left behind.
      detached: true,
      stdio: ['ignore', out, out],
      env: {
        ...process.env,
        DCF_QUICK: '1',
        JUPYTER_RUNTIME_DIR: path.join(tmp, 'runtime'),
        PATH: `${path.join(PATHS.root, 'node_modules', '.bin')}:${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`,
      },
    });
    fs.closeSync(out);
    const server = new LabServer(child, `http://127.0.0.1:${port}`, token, logFile);
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (server.exited) throw new Error(`JupyterLab exited while starting:\n${server.logTail()}`);
      try {
        const res = await fetch(`${server.url}/api/status?token=${token}`);
        if (res.ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`JupyterLab did not answer within 90 s:\n${server.logTail()}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    log(`JupyterLab ${server.url} (pid ${child.pid}) ready`);
    return server;
  }

  logTail(lines = 40): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  private async api(method: string, route: string): Promise<unknown> {
    const res = await fetch(`${this.url}${route}`, { method, headers: { Authorization: `token ${this.token}` } });
    return res.headers.get('content-type')?.includes('json') ? res.json() : undefined;
  }

  /** Shuts kernels and server down politely, then ends the process group if it lingers. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const pgid = this.child.pid!;
    try {
      const kernels = (await this.api('GET', '/api/kernels')) as { id: string }[] | undefined;
      for (const k of kernels ?? []) await this.api('DELETE', `/api/kernels/${k.id}`);
      await this.api('POST', '/api/shutdown');
    } catch {
      // the server is not answering: signals below
    }
    const gone = () => this.exited;
    for (const [signal, waitMs] of [
      [null, 15_000],
      ['SIGTERM', 10_000],
      ['SIGKILL', 5_000],
    ] as const) {
      if (signal) {
        // Kernels run in their own sessions: end the server's children first, then its group.
        for (const pid of childrenOf(pgid)) tryKill(pid, signal);
        tryKill(-pgid, signal);
      }
      const deadline = Date.now() + waitMs;
      while (!gone() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      if (gone()) break;
    }
    log(gone() ? 'JupyterLab stopped' : `could not stop JupyterLab (pid ${pgid})`);
  }
}

function tryKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Direct children of `pid` (from /proc): the kernels the server started. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

interface CellState {
  index: number;
  type: string;
  executionCount: number | null;
  running: boolean;
  outputs: NotebookOutput[];
}

/** Reads the open notebook's cells from JupyterLab's models (window.jupyterapp). */
async function cellStates(page: Page): Promise<CellState[]> {
  return page.evaluate(() => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const panel = (window as any).jupyterapp.shell.currentWidget;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    return panel.content.widgets.map((cell: any, index: number) => ({
      index,
      type: cell.model.type,
      executionCount: cell.model.type === 'code' ? cell.model.executionCount : null,
      running:
        cell.model.type === 'code' &&
        (cell.model.executionState === 'running' || cell.promptNode?.textContent?.includes('*') === true),
      outputs: cell.model.type === 'code' ? cell.model.outputs.toJSON() : [],
    }));
  });
}

async function kernelStatus(page: Page): Promise<string> {
  return page.evaluate(() => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const panel = (window as any).jupyterapp?.shell?.currentWidget;
    return panel?.sessionContext?.session?.kernel?.status ?? 'none';
  });
}

function outputText(o: NotebookOutput): string {
  if (o.output_type === 'error') return `${o.ename}: ${o.evalue}`;
  const t = o.text ?? '';
  return Array.isArray(t) ? t.join('') : t;
}

interface NotebookReport {
  notebook: string;
  seconds: number;
  cells: number;
  problems: string[];
  warnings: string[];
  figures: number;
  screenshots: string[];
}

/** Run → Run All Cells, as a user would. */
async function runAllFromMenu(page: Page): Promise<void> {
  await page.locator('.lm-MenuBar-item', { hasText: /^Run$/ }).click();
  await page.locator('.lm-Menu-item:has(.lm-Menu-itemLabel:text-is("Run All Cells"))').click();
}

/** Waits until nothing runs and the kernel has been idle for 3 s in a row; false on timeout. */
async function waitUntilIdle(page: Page, deadline: number): Promise<boolean> {
  let idleSince = 0;
  for (;;) {
    if (Date.now() > deadline) return false;
    await page.waitForTimeout(1000);
    const cells = await cellStates(page);
    const status = await kernelStatus(page);
    const busy = status !== 'idle' || cells.some((c) => c.running);
    if (busy) idleSince = 0;
    else if (!idleSince) idleSince = Date.now();
    else if (Date.now() - idleSince > 3000) return true;
  }
}

/** The quick-mode run notebook 03 trains (DCF_QUICK=1 on the server). */
const QUICK_RUN = path.join(PATHS.root, 'results', 'quick', 'runs', 'lab-dynamic-quick');
/** Finished epochs as their metrics parts (names), sorted. */
function epochParts(): string[] {
  const dir = path.join(QUICK_RUN, 'metrics');
  return fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((n) => n.startsWith('epochs-'))
        .sort()
    : [];
}
const QUIET_SECONDS = 30;

/**
 * Issue #14's path through notebook 03, up to (not including) the final wait: see the module
 * comment. Problems go to `problems`; returns when the last "restart and run all" has started,
 * with the check of step 5 to run once it is done.
 */
async function interruptAndResume(page: Page, problems: string[]): Promise<(() => void) | undefined> {
  const step = (message: string) => log(`03 resume: ${message}`);
  // A fresh quick run, so that the cell trains (results/quick holds only quick-mode scratch).
  const runsDir = path.dirname(QUICK_RUN);
  for (const name of ['lab-dynamic-quick', '.lab-dynamic-quick.fresh', '.lab-dynamic-quick.lock'])
    fs.rmSync(path.join(runsDir, name), { recursive: true, force: true });

  // 1. run the training cell (Run All: the set-up cell, then training)
  await runAllFromMenu(page);
  const deadline = Date.now() + NOTEBOOK_TIMEOUT_MS;
  while (epochParts().length === 0) {
    if (Date.now() > deadline) return void problems.push('resume: no epoch was saved');
    await page.waitForTimeout(250);
  }
  // 2. ■ after the first saved epoch
  await page.locator('.jp-NotebookPanel-toolbar [data-command="notebook:interrupt-kernel"]').first().click();
  const atStop = epochParts();
  step(`pressed ■ with ${atStop.join(', ')} saved`);
  // 3. no new epoch for 30 s
  await page.waitForTimeout(QUIET_SECONDS * 1000);
  const after = epochParts();
  if (after.join() !== atStop.join())
    problems.push(`resume: epochs kept coming after ■: ${atStop.join(', ')} → ${after.join(', ')}`);
  if (atStop.length >= 3) problems.push('resume: training had finished before ■ could interrupt it');
  step(`${QUIET_SECONDS} s after ■: ${after.length} epoch(s), none added`);
  // 4. rerun: resumes and completes
  await runAllFromMenu(page);
  if (!(await waitUntilIdle(page, deadline))) return void problems.push('resume: the rerun did not finish');
  const rows = readRunEpochs(QUICK_RUN).map((r) => `${r.epoch}:${r.split}`);
  const expected = ['1:test', '1:train', '2:test', '2:train', '3:test', '3:train'];
  if (rows.join() !== expected.join())
    problems.push(`resume: after the rerun the run's epochs are ${rows.join(', ')}, expected each of 1–3 once`);
  const text = (await cellStates(page))
    .flatMap((c) => c.outputs)
    .map(outputText)
    .join('');
  if (!/run lab-dynamic-quick: trained epochs? \d/.test(text))
    problems.push('resume: the rerun did not report training to the end');
  step(`rerun finished: ${rows.length / 2} epochs recorded once each`);
  // 5. restart the kernel and run all: completes without training again
  const parts = epochParts();
  // Not awaited in the page: the command waits for the dialog's answer, given below.
  await page.evaluate(() => void (window as any).jupyterapp.commands.execute('notebook:restart-run-all')); // eslint-disable-line @typescript-eslint/no-explicit-any
  await page.locator('.jp-Dialog .jp-mod-accept').click();
  await page
    .waitForFunction(
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      () => (window as any).jupyterapp.shell.currentWidget.sessionContext?.session?.kernel?.status !== 'idle',
      undefined,
      { timeout: 60_000, polling: 200 },
    )
    .catch(() => undefined);
  step('restarted the kernel, running all cells');
  return () => {
    if (epochParts().join() !== parts.join())
      problems.push(`resume: after restart and run all the run trained again (${epochParts().join(', ')})`);
  };
}

async function runNotebook(browser: Browser, server: LabServer, notebook: string): Promise<NotebookReport> {
  const name = path.basename(notebook);
  const rel = path.relative(PATHS.root, notebook);
  const report: NotebookReport = {
    notebook: name,
    seconds: 0,
    cells: 0,
    problems: [],
    warnings: [],
    figures: 0,
    screenshots: [],
  };
  const started = Date.now();
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  try {
    await page.goto(`${server.url}/lab/tree/${rel}?reset&token=${server.token}`);
    // The notebook is open and its kernel (tslab) is started and idle.
    await page.waitForFunction(
      (file) => {
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        const panel = (window as any).jupyterapp?.shell?.currentWidget;
        return (
          panel?.context?.path === file &&
          panel.context.isReady &&
          panel.sessionContext?.session?.kernel?.status === 'idle'
        );
      },
      rel,
      { timeout: 120_000, polling: 500 },
    );
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const kernel = await page.evaluate(
      () => (window as any).jupyterapp.shell.currentWidget.sessionContext.session.kernel.name,
    );
    // The notebook alone, full width: the file browser and side bars closed.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    await page.evaluate(() => {
      const shell = (window as any).jupyterapp.shell;
      shell.collapseLeft();
      shell.collapseRight();
    });
    if (kernel !== 'tslab') report.problems.push(`kernel is '${kernel}', expected tslab`);

    let afterRestart: (() => void) | undefined;
    if (name.startsWith('03-')) afterRestart = await interruptAndResume(page, report.problems);
    else await runAllFromMenu(page);

    // Done when nothing runs and the kernel is idle for 3 s in a row (a failing cell stops the rest).
    if (!(await waitUntilIdle(page, started + NOTEBOOK_TIMEOUT_MS))) {
      report.problems.push(`still running after ${NOTEBOOK_TIMEOUT_MS / 60_000} min`);
    }
    afterRestart?.();

    const cells = await cellStates(page);
    const code = cells.filter((c) => c.type === 'code');
    report.cells = code.length;
    for (const c of code) {
      if (c.executionCount === null)
        report.problems.push(`cell ${c.index} did not run (an earlier cell failed, or the run stopped)`);
      for (const o of c.outputs) {
        if (o.output_type === 'error') report.problems.push(`cell ${c.index}: ${outputText(o)}`);
        else if (o.output_type === 'stream' && o.name === 'stderr') {
          const text = outputText(o);
          const m = ERROR_LINE.exec(text);
          if (m) report.problems.push(`cell ${c.index} (stderr): ${m[0]}`);
          else report.warnings.push(`cell ${c.index} stderr: ${text.trim().split('\n')[0].slice(0, 200)}`);
        }
      }
    }

    // Every plotly output drew an SVG.
    const plotlyOutputs = code.flatMap((c) => c.outputs).filter((o) => o.data && PLOTLY_MIME in o.data).length;
    report.figures = plotlyOutputs;
    const areas = page.locator(PLOTLY_OUTPUT);
    if (plotlyOutputs > 0) {
      try {
        await page.waitForFunction(
          ({ selector, n }) => {
            const nodes = Array.from(document.querySelectorAll(selector));
            return nodes.length >= n && nodes.every((node) => node.querySelector('svg.main-svg'));
          },
          { selector: PLOTLY_OUTPUT, n: plotlyOutputs },
          { timeout: 60_000, polling: 500 },
        );
      } catch {
        const drawn = await page.locator(`${PLOTLY_OUTPUT} svg.main-svg`).count();
        report.problems.push(
          `${plotlyOutputs} plotly output(s), ${await areas.count()} rendered area(s), ${drawn} with an SVG`,
        );
      }
    }

    // Screenshots: each figure, then the whole notebook in one tall page.
    const base = name.replace(/\.ipynb$/, '');
    const figureCount = await areas.count();
    for (let k = 0; k < figureCount; k++) {
      const file = path.join(SCREENSHOTS, `${base}-figure-${k + 1}.png`);
      writeFileAtomic(file, await areas.nth(k).screenshot());
      report.screenshots.push(file);
    }
    const height = await page.evaluate(() => {
      const scroller =
        document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer') ??
        document.querySelector('.jp-NotebookPanel .jp-Notebook');
      return scroller ? scroller.scrollHeight : 900;
    });
    await page.setViewportSize({ width: 1400, height: Math.min(Math.max(900, height + 200), 16_000) });
    await page.evaluate(() => {
      const scroller = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
      if (scroller) scroller.scrollTop = 0;
    });
    await page.waitForTimeout(1500); // plotly re-lays out to the new size
    const file = path.join(SCREENSHOTS, `${base}.png`);
    writeFileAtomic(file, await page.screenshot());
    report.screenshots.push(file);

    // Leave no kernel behind.
    await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.sessionContext.shutdown()); // eslint-disable-line @typescript-eslint/no-explicit-any
  } catch (err) {
    report.problems.push(`browser: ${(err as Error).message.split('\n')[0]}`);
    try {
      const file = path.join(SCREENSHOTS, `${name.replace(/\.ipynb$/, '')}-failure.png`);
      writeFileAtomic(file, await page.screenshot());
      report.screenshots.push(file);
    } catch {
      // page gone
    }
  } finally {
    await page.close().catch(() => undefined);
    report.seconds = (Date.now() - started) / 1000;
  }
  return report;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const onlyAt = args.indexOf('--only');
  const only = onlyAt >= 0 ? (args[onlyAt + 1] ?? '').split(',') : undefined;
  const keepGoing = args.includes('--keep-going');
  let notebooks = listNotebooks();
  if (only) notebooks = notebooks.filter((f) => only.includes(path.basename(f).slice(0, 2)));
  if (notebooks.length === 0) throw new Error('no notebooks to run');

  // notebooks/ must come out byte for byte as it went in.
  const before = new Map(listNotebooks().map((f) => [f, fs.readFileSync(f)]));
  const checkpointsDir = path.join(PATHS.root, 'notebooks', '.ipynb_checkpoints');
  const hadCheckpoints = fs.existsSync(checkpointsDir);
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  // Screenshots of an earlier run would pass for this one's.
  for (const f of fs.readdirSync(SCREENSHOTS))
    if (f.endsWith('.png') || f === 'e2e-summary.json') fs.rmSync(path.join(SCREENSHOTS, f));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-e2e-'));
  let server: LabServer | undefined;
  let browser: Browser | undefined;
  const stopAll = async () => {
    await browser?.close().catch(() => undefined);
    browser = undefined;
    await server?.stop();
    server = undefined;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping`);
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const reports: NotebookReport[] = [];
  try {
    server = await LabServer.start(tmp);
    browser = await launchChromium();
    for (const notebook of notebooks) {
      log(`${path.basename(notebook)}: running all cells`);
      const r = await runNotebook(browser, server, notebook);
      reports.push(r);
      log(
        `${r.notebook}: ${r.problems.length ? 'FAILED' : 'ok'} in ${r.seconds.toFixed(0)} s, ${r.cells} code cells, ${r.figures} plotly figure(s)`,
      );
      for (const p of r.problems) log(`  ✗ ${p}`);
      for (const w of r.warnings) log(`  ! ${w}`);
      if (r.problems.length && !keepGoing) break;
    }
  } finally {
    await stopAll();
    if (reports.some((r) => r.problems.length) || !reports.length)
      log(
        `JupyterLab log (last lines):\n${fs.existsSync(path.join(tmp, 'jupyterlab.log')) ? fs.readFileSync(path.join(tmp, 'jupyterlab.log'), 'utf8').split('\n').slice(-25).join('\n') : '(none)'}`,
      );
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!hadCheckpoints) fs.rmSync(checkpointsDir, { recursive: true, force: true });
  }

  const problems: string[] = [];
  for (const [file, bytes] of before) {
    if (!fs.existsSync(file) || !fs.readFileSync(file).equals(bytes)) {
      fs.writeFileSync(file, bytes); // put the user's notebook back
      problems.push(`${path.basename(file)} was modified during the run (restored)`);
    }
  }
  problems.push(...reports.flatMap((r) => r.problems.map((p) => `${r.notebook}: ${p}`)));
  if (reports.length < notebooks.length)
    problems.push(`stopped after ${reports.length} of ${notebooks.length} notebooks`);
  const figures = reports.reduce((a, r) => a + r.figures, 0);
  if (figures === 0) problems.push('no notebook displayed a plotly figure');
  writeFileAtomic(path.join(SCREENSHOTS, 'e2e-summary.json'), `${JSON.stringify({ problems, reports }, null, 2)}\n`);
  log(
    `${reports.length} notebook(s), ${figures} figure(s); screenshots in ${path.relative(process.cwd(), SCREENSHOTS)}/`,
  );
  if (problems.length) {
    console.error(`e2e: FAILED\n  ${problems.join('\n  ')}`);
    return 1;
  }
  console.log('e2e: passed');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`e2e: error: ${(err as Error).message}`);
    process.exit(1);
  },
);
