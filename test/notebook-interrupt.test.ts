// A training cell run headless through the tslab kernel (lib/report/notebooks, as `npm start` runs it),
// interrupted as Ctrl-C does after its first saved epoch, then run again: the rerun resumes and
// every epoch 1..3 is recorded once. Headless, the progress display prints one line per epoch
// (not a redraw per update). 1024 train / 128 test images, batches of 64.
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../lib/config';
import { readCheckpointMeta } from '../lib/train/checkpoint';
import { readRunEpochs } from '../lib/train/metrics';
import { executeNotebook } from '../lib/report/notebooks';

// Inside the project (results/ is not in git): the kernel's TypeScript finds node_modules from there.
fs.mkdirSync(path.join(PROJECT_ROOT, 'results'), { recursive: true });
const dir = fs.mkdtempSync(path.join(PROJECT_ROOT, 'results', '.nb-interrupt-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const runsDir = path.join(dir, 'runs');

function writeNotebook(): string {
  fs.symlinkSync(path.join(PROJECT_ROOT, 'lib'), path.join(dir, 'lib'));
  const source = [
    "import * as tslab from 'tslab';",
    "import { notebookProgress, train, trainConfig } from './lib/train/index';",
    "const config = trainConfig({ run: 'nb', epochs: 3, batchSize: 64, limitTrain: 1024, limitTest: 128, logEvery: 4 });",
    'const result = await train(config, { runsDir: process.env.NB_RUNS_DIR, onProgress: notebookProgress(tslab.newDisplay()) });',
    'console.log(`cell done: epochs ${result.startEpoch + 1}-${result.epoch}`);',
  ].join('\n');
  const file = path.join(dir, '01-train.ipynb');
  fs.writeFileSync(
    file,
    JSON.stringify({
      nbformat: 4,
      nbformat_minor: 5,
      metadata: { kernelspec: { name: 'tslab', display_name: 'TypeScript', language: 'typescript' } },
      cells: [{ cell_type: 'code', id: 'train', metadata: {}, source, outputs: [], execution_count: null }],
    }),
  );
  return file;
}

describe('a training cell, interrupted and run again (tslab kernel, headless)', () => {
  it(
    'stops after Ctrl-C, resumes on the rerun, records epochs 1..3 once, one progress line per epoch',
    { timeout: 10 * 60_000 },
    async () => {
      const notebook = writeNotebook();
      const env = { NB_RUNS_DIR: runsDir };
      const abort = new AbortController();
      let first = '';
      const interrupted = await executeNotebook(notebook, {
        output: path.join(dir, 'first.ipynb'),
        env,
        onOutput: (t) => {
          first += t;
          if (/^nb epoch 1\/3 · /m.test(first)) abort.abort();
        },
        signal: abort.signal,
      });
      expect(interrupted.interrupted, first).toBe(true);
      expect(interrupted.exitCode).toBe(130);
      expect(first).toMatch(/^nb epoch 1\/3 · test acc \d+\.\d\d% · \d+ img\/s · \d+:\d\d left$/m);
      expect(first).not.toMatch(/^nb epoch 2\/3/m);
      expect(first).not.toContain('cell done');
      const run = path.join(runsDir, 'nb');
      expect(readCheckpointMeta(path.join(run, 'last.safetensors')).epoch).toBe(1);

      let second = '';
      const rerun = await executeNotebook(notebook, {
        output: path.join(dir, 'second.ipynb'),
        env,
        onOutput: (t) => (second += t),
      });
      expect(rerun.exitCode, second).toBe(0);
      expect(second).toContain('cell done: epochs 2-3');
      // One line per epoch and a single display; no echo of each in-place redraw.
      expect(second.match(/^nb epoch \d\/3 · .*$/gm)).toHaveLength(2);
      expect(second.match(/\[html\]/g)).toHaveLength(1);
      expect(readRunEpochs(run).map((r) => `${r.epoch}:${r.split}`)).toEqual([
        '1:test',
        '1:train',
        '2:test',
        '2:train',
        '3:test',
        '3:train',
      ]);
      expect(fs.existsSync(path.join(runsDir, '.nb.lock'))).toBe(false);
    },
  );
});
