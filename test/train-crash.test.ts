// A full stop (SIGKILL) in the middle of an epoch, then a rerun of the same command: the run
// continues from the last saved epoch and its metrics are intact; and the rerun may come at once,
// while the killed process is still a zombie (issue #24). Runs the real CLI in child processes on
// small slices of CIFAR-10.
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, it } from 'vitest';
import { procStat } from '../lib/formats/atomic-file';
import { readCheckpointMeta } from '../lib/train/checkpoint';
import { PROJECT_ROOT } from '../lib/config';
import { readRunEpochs, readStepRows } from '../lib/train/metrics';

const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'crash-'));
const args = [
  'tsx',
  'scripts/train.ts',
  '--run',
  'crash',
  '--epochs',
  '2',
  '--batch-size',
  '64',
  '--limit-train',
  '512',
  '--limit-test',
  '128',
  '--log-every',
  '1',
  '--progress',
  'lines',
  '--runs-dir',
  runsDir,
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
      '1:test:1:0',
      '1:train:1:0',
      '2:test:2:1',
      '2:train:2:1',
    ]);
    // Epoch 1's rows are the ones written before the kill, untouched.
    expect(rows.filter((r) => r.epoch === 1)).toEqual(afterKill);
    expect(readStepRows({ runsDir }).map((s) => s.step)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(fs.existsSync(path.join(runsDir, '.crash.lock'))).toBe(false);
  });
});

describe('npm run train killed, then run again at once', () => {
  // Each round costs a process start and an epoch (~11 s here): 3 by default, DCF_CRASH_LOOPS=20 for the 20.
  const rounds = Number(process.env.DCF_CRASH_LOOPS ?? 3);
  const epochs = rounds + 1;
  // The trainer's parent lives on without reaping it (as a container's init may): once killed, the
  // trainer stays a zombie, which process.kill(pid, 0) still finds, through the rerun.
  const parents: ChildProcess[] = [];
  let dir = '';
  afterAll(() => {
    parents.forEach((p) => p.kill('SIGKILL'));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const timeout = rounds * 60_000 + 60_000;
  it(`resumes every time (${rounds} kills in a row), the killed trainer a zombie`, { timeout }, async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crash-loop-'));
    const loopArgs = [
      'scripts/train.ts',
      '--run',
      'loop',
      '--epochs',
      String(epochs),
      '--batch-size',
      '64',
      '--limit-train',
      '128',
      '--limit-test',
      '64',
      '--log-every',
      '1',
      '--progress',
      'lines',
      '--resume',
      'last',
      '--runs-dir',
      dir,
    ];
    for (let round = 1; round <= rounds; round++) {
      const script = 'node --import tsx "$@" & echo "trainer $!"; exec sleep 600';
      const parent = spawn('sh', ['-c', script, 'sh', ...loopArgs], { cwd: PROJECT_ROOT });
      parents.push(parent);
      let log = '';
      const trainer = await new Promise<number | undefined>((resolve) => {
        const onData = (chunk: Buffer) => {
          log += chunk.toString();
          // Epoch `round` is saved once the first step of the next one is printed.
          if (new RegExp(`^epoch ${round + 1}/${epochs} .* 1/2 `, 'm').test(log)) {
            const pid = Number(/^trainer (\d+)$/m.exec(log)![1]);
            process.kill(pid, 'SIGKILL');
            resolve(pid);
          } else if (/^error: /m.test(log)) resolve(undefined);
        };
        parent.stderr!.on('data', onData);
        parent.stdout!.on('data', onData);
      });
      expect(trainer, `round ${round}:\n${log}`).toBeDefined();
      while (procStat(trainer!)?.state !== 'Z') await new Promise((r) => setTimeout(r, 10));
      const resumedFrom = round === 1 ? 'from scratch' : `resuming from its last checkpoint \\(epoch ${round - 1}\\)`;
      expect(log, `round ${round}`).toMatch(new RegExp(`^run loop: .*${resumedFrom}`, 'm'));
      const tookOver = /note: the lock of process \d+ was stale \(it has ended \(a zombie\)\): taken over/;
      if (round > 1) expect(log).toMatch(tookOver);
      expect(readCheckpointMeta(path.join(dir, 'loop', 'last.safetensors')).epoch, `round ${round}`).toBe(round);
    }
    // The last rerun, at once too, finishes the run.
    const rerun = spawnSync('node', ['--import', 'tsx', ...loopArgs], { cwd: PROJECT_ROOT, encoding: 'utf8' });
    expect(rerun.status, rerun.stderr).toBe(0);
    expect(rerun.stderr).toContain(`resuming from its last checkpoint (epoch ${rounds}), epochs ${epochs}–${epochs}`);
    const rows = readRunEpochs(path.join(dir, 'loop'));
    const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
    expect(rows.filter((r) => r.split === 'test').map((r) => r.epoch)).toEqual(upTo(epochs));
    expect(readStepRows({ runsDir: dir }).map((s) => s.step)).toEqual(upTo(2 * epochs));
    expect(fs.existsSync(path.join(dir, '.loop.lock'))).toBe(false);
  });
});
