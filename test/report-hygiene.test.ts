// What a report render leaves in results/report (issue #24): the temporary files of a render that
// was interrupted or killed are removed by the next one, Ctrl-C while the PDF prints leaves none,
// and a render without the PDF removes an earlier report.pdf (which would no longer match the HTML),
// but only once the new HTML is in place.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../lib/config';
import { formatNotebook, type NotebookCell, type NotebookJson } from '../lib/report/notebooks';
import { buildReport, removeReportTempFiles } from '../lib/report/report';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-report-hygiene-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const FIGURE = {
  data: [{ type: 'bar', x: ['dynamic', 'static'], y: [0.78, 0.74] }],
  layout: { title: { text: 'Figure' } },
};

/** One notebook (01-only.ipynb) in notebooks/ and its executed copy in results/notebooks/. */
function makeLab(dir: string): { sourceDir: string; notebooksDir: string; outDir: string } {
  const cells: NotebookCell[] = [
    { cell_type: 'markdown', id: 'a', source: '# 01 · Only\n\nSome prose.', metadata: {} },
    {
      cell_type: 'code',
      id: 'b',
      source: 'show(figure)',
      metadata: {},
      execution_count: 1,
      outputs: [{ output_type: 'display_data', data: { 'application/vnd.plotly.v1+json': FIGURE } }],
    },
  ];
  const nb = (executed: boolean): NotebookJson => ({
    cells: executed
      ? cells
      : cells.map((c) => (c.cell_type === 'code' ? { ...c, outputs: [], execution_count: null } : c)),
    metadata: { kernelspec: { name: 'tslab', display_name: 'TypeScript', language: 'typescript' } },
    nbformat: 4,
    nbformat_minor: 5,
  });
  const lab = {
    sourceDir: path.join(dir, 'notebooks'),
    notebooksDir: path.join(dir, 'results', 'notebooks'),
    outDir: path.join(dir, 'results', 'report'),
  };
  for (const d of Object.values(lab)) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(lab.sourceDir, '01-only.ipynb'), formatNotebook(nb(false)));
  fs.writeFileSync(path.join(lab.notebooksDir, '01-only.ipynb'), formatNotebook(nb(true)));
  return lab;
}

/** The pid of a process that has exited. */
const deadPid = () => spawnSync('true').pid!;

describe('report hygiene', () => {
  it("removes dead renders' temporary files, and a PDF that no longer matches after a good render", async () => {
    const lab = makeLab(path.join(root, 'stale'));
    const dead = deadPid();
    const stale = [
      `.report.${dead}.1764000000000.tmp.html`,
      `..report.${dead}.1764000000000.tmp.html.k2j_x9qa.tmp`,
      `.report.pdf.${dead}.tmp`,
    ];
    // The parent process (vitest) runs: its files stay; so do files of other names.
    const kept = [`.report.${process.ppid}.1764000000000.tmp.html`, 'lab-report.pdf', 'notes.tmp'];
    for (const name of [...stale, ...kept]) fs.writeFileSync(path.join(lab.outDir, name), 'x');
    const pdf = path.join(lab.outDir, 'report.pdf');
    fs.writeFileSync(pdf, '%PDF- an earlier render');

    // A failed render keeps the earlier PDF.
    fs.writeFileSync(path.join(lab.notebooksDir, '01-only.ipynb'), '{ not json');
    await expect(buildReport({ ...lab, pdf: false })).rejects.toThrow(/01-only\.ipynb/);
    expect(fs.existsSync(pdf)).toBe(true);
    makeLab(path.join(root, 'stale'));

    const messages: string[] = [];
    await buildReport({ ...lab, pdf: false, onProgress: (m) => messages.push(m) });
    expect(fs.readdirSync(lab.outDir).sort()).toEqual([...kept, 'report.html'].sort());
    expect(messages.join('\n')).toMatch(/removed .*report\.pdf: it was printed from an earlier render/);
  });

  it("removeReportTempFiles leaves a live render's files unless told they are this process's own", () => {
    const dir = path.join(root, 'own');
    fs.mkdirSync(dir);
    const own = `.report.pdf.${process.pid}.tmp`;
    fs.writeFileSync(path.join(dir, own), 'x');
    expect(removeReportTempFiles(dir)).toEqual([]);
    expect(removeReportTempFiles(dir, true)).toEqual([own]);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('Ctrl-C while the PDF prints leaves no temporary file and the previous report as it was', async () => {
    const lab = makeLab(path.join(root, 'sigint'));
    fs.writeFileSync(path.join(lab.outDir, 'report.html'), 'previous html');
    fs.writeFileSync(path.join(lab.outDir, 'report.pdf'), '%PDF- previous');
    const script = path.join(root, 'render.ts');
    fs.writeFileSync(
      script,
      `import { buildReport } from ${JSON.stringify(path.join(PROJECT_ROOT, 'lib', 'report', 'report'))};\n` +
        `buildReport({ ...${JSON.stringify(lab)}, onProgress: (m: string) => console.log(m) })\n` +
        `  .then(() => console.log('DONE'), (e) => { console.log('FAILED ' + e.message); process.exit(1); });\n`,
    );
    // Its own process group, as a command in a terminal: Ctrl-C signals the whole group.
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: PROJECT_ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    );
    child.stderr.on('data', (d) => (output += d));
    child.stdout.on('data', (d) => {
      output += d;
      // The HTML is complete and waits, under its temporary name, for Chromium to print it.
      if (output.includes('HTML rendered')) process.kill(-child.pid!, 'SIGINT');
    });
    const { code, signal } = await ended;
    expect(output).toContain('HTML rendered');
    expect(output).not.toContain('DONE');
    expect(signal === 'SIGINT' || code === 130, `${code} ${signal} ${output}`).toBe(true);
    expect(fs.readdirSync(lab.outDir).sort()).toEqual(['report.html', 'report.pdf']);
    expect(fs.readFileSync(path.join(lab.outDir, 'report.html'), 'utf8')).toBe('previous html');
  });
});
