// A full stop (SIGKILL) in the middle of an epoch, then a rerun of the same command: the run
// continues from the last saved epoch and its metrics are intact. Runs the real CLI in a child
// process on 512 training / 128 test images.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { readCheckpointMeta } from '../lib/train/checkpoint';
import { PROJECT_ROOT } from '../lib/config';
import { readRunEpochs, readStepRows } from '../lib/train/metrics';

const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'crash-'));
const args = [
  'tsx', 'scripts/train.ts', '--run', 'crash', '--epochs', '2', '--batch-size', '64', '--limit-train', '512',
  '--limit-test', '128', '--log-every', '1', '--progress', 'lines', '--runs-dir', runsDir,
];

describe('npm run train after SIGKILL', () => {
  it('continues from the last saved epoch with the metrics intact', async () => {
    // Its own process group, so that the kill reaches npx, tsx and node alike.
    const child = spawn('npx', args, { cwd: PROJECT_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const killed = await new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`epoch 2 never started:\n${log}`)), 90_000);
      const onData = (chunk: Buffer) => {
        log += chunk.toString();
        // The CLI prints a line when an epoch's first step is done: epoch 1 is saved by then.
        if (/^epoch 2\/2 .* 1\/8 /m.test(log)) {
          clearTimeout(timer);
          process.kill(-child.pid!, 'SIGKILL');
          resolve(true);
        }
      };
      child.stderr.on('data', onData);
      child.stdout.on('data', onData);
      child.on('exit', () => resolve(false));
    });
    expect(killed, log).toBe(true);
    await new Promise((r) => child.on('close', r));

    const dir = path.join(runsDir, 'crash');
    expect(readCheckpointMeta(path.join(dir, 'last.safetensors')).epoch).toBe(1);
    expect(readCheckpointMeta(path.join(dir, 'best.safetensors')).epoch).toBe(1);
    const afterKill = readRunEpochs(dir);
    expect(afterKill.map((r) => r.epoch)).toEqual([1, 1]);
    expect(fs.readdirSync(path.join(dir, 'metrics')).filter((n) => n.includes('e0002'))).toEqual([]);
    expect(fs.existsSync(path.join(runsDir, '.crash.lock'))).toBe(true); // stale: its process is gone

    const rerun = spawnSync('npx', args, { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 90_000 });
    expect(rerun.status, rerun.stderr).toBe(0);
    expect(rerun.stderr).toMatch(/resuming from its best checkpoint \(epoch 1\), epochs 2–2/);
    expect(rerun.stdout).toMatch(/run crash: trained epoch 2; best/);

    expect(readCheckpointMeta(path.join(dir, 'last.safetensors'))).toMatchObject({ epoch: 2, step: 16 });
    const rows = readRunEpochs(dir);
    expect(rows.map((r) => `${r.epoch}:${r.split}:${r.session}:${r.resumedFrom}`)).toEqual([
      '1:test:1:0', '1:train:1:0', '2:test:2:1', '2:train:2:1',
    ]);
    // Epoch 1's rows are the ones written before the kill, untouched.
    expect(rows.filter((r) => r.epoch === 1)).toEqual(afterKill);
    expect(readStepRows({ runsDir }).map((s) => s.step)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(fs.existsSync(path.join(runsDir, '.crash.lock'))).toBe(false);
  });
});
