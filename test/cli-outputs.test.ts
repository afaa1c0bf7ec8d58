// npm run predict / npm run export on bad inputs (issue #14): a damaged weights file is an error
// (exit 1), an --out that would overwrite the input or another run's checkpoint is refused and
// nothing is written, and a negative --limit is a range error.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Adam } from '../lib/train/adam';
import { saveCheckpoint } from '../lib/train/checkpoint';
import { PROJECT_ROOT } from '../lib/config';
import { createNet } from '../lib/model/model';
import { trainConfig } from '../lib/train/train-config';
import { readRecorded } from '../lib/experiments/recorded';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcf-cli-out-'));
const runs = path.join(dir, 'runs');
const ckpt = (run: string) => path.join(runs, run, 'best.safetensors');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

beforeAll(() => {
  const net = createNet('static', { seed: 3, pretrained: false });
  const adam = new Adam(net.trainable(), { lr: 1e-3 });
  for (const run of ['a', 'b']) {
    const config = { ...trainConfig({ run, variant: 'static' }) };
    saveCheckpoint(ckpt(run), net, adam, {
      kind: 'best',
      epoch: 1,
      accuracy: 0.1,
      bestAccuracy: 0.1,
      bestEpoch: 1,
      session: 1,
      config,
      backend: 'test',
    });
  }
  adam.dispose();
  net.dispose();
});

/** A script run as npm runs it: in the project, INIT_CWD the folder npm was started from (default: the project). */
function run(script: string, args: string[], initCwd = PROJECT_ROOT) {
  const tsx = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');
  const env = { ...process.env, INIT_CWD: initCwd };
  return spawnSync(tsx, [`scripts/${script}.ts`, ...args], { cwd: PROJECT_ROOT, encoding: 'utf8', env });
}

describe('npm run predict', () => {
  it('refuses --out equal to --weights (even spelled differently) and writes nothing', () => {
    const before = fs.readFileSync(ckpt('a'));
    const same = path.join(runs, 'a', '..', 'a', 'best.safetensors');
    const r = run('predict', ['--weights', ckpt('a'), '--out', same, '--limit', '2']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`refusing to write ${same}: it is the input file ${ckpt('a')}`);
    expect(fs.readFileSync(ckpt('a')).equals(before)).toBe(true);
  });

  it('exits 1 naming a damaged weights file (a flipped byte), and writes no predictions', () => {
    const flipped = path.join(dir, 'flipped.safetensors');
    const bytes = fs.readFileSync(ckpt('a'));
    bytes[bytes.length - 2001] ^= 0x10;
    fs.writeFileSync(flipped, bytes);
    const out = path.join(dir, 'preds.json');
    const r = run('predict', ['--weights', flipped, '--out', out, '--limit', '2']);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/flipped\.safetensors is damaged: its bytes do not match the file_sha256 checksum/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('a negative --limit is a range error, not "ambiguous"', () => {
    const r = run('predict', ['--weights', ckpt('a'), '--out', path.join(dir, 'x.json'), '--limit', '-1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--limit must be a whole number from 1 to 10000; got '-1'");
  });
});

describe('relative paths on a command line', () => {
  it('are read from the folder npm was started in, not the project (export, predict, experiments)', () => {
    const exported = run('export', ['--run', 'a', '--runs-dir', 'runs', '--out', 'a-rel.safetensors'], dir);
    expect(exported.status, exported.stderr).toBe(0);
    expect(exported.stdout).toContain(`wrote ${path.join(dir, 'a-rel.safetensors')}:`);
    expect(fs.existsSync(path.join(PROJECT_ROOT, 'a-rel.safetensors'))).toBe(false);
    const predicted = run('predict', ['--weights', 'a-rel.safetensors', '--out', 'p.json', '--limit', '2'], dir);
    expect(predicted.status, predicted.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'p.json'), 'utf8')).labels).toHaveLength(2);
    const listed = run('experiments', ['--list', '--results-dir', 'rel'], dir);
    expect(listed.status, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(`runs in ${path.join(dir, 'rel', 'runs')}`);
  });
});

describe('npm run export', () => {
  it("refuses to write onto another run's checkpoint and leaves it as it was", () => {
    const before = fs.readFileSync(ckpt('b'));
    const r = run('export', ['--run', 'a', '--runs-dir', runs, '--out', ckpt('b')]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toContain(`refusing to write ${ckpt('b')}: the best checkpoint of run 'b' in ${runs}`);
    expect(fs.readFileSync(ckpt('b')).equals(before)).toBe(true);
    const ok = run('export', ['--run', 'a', '--runs-dir', runs, '--out', path.join(dir, 'a.safetensors')]);
    expect(ok.status, ok.stderr).toBe(0);
  });
});

describe('npm run experiments -- --list --recorded', () => {
  it('lists every recorded run of the paired suite with its status, from the committed files (no run folder needed)', () => {
    const r = run('experiments', ['--suite', 'paired', '--list', '--recorded']);
    expect(r.status, r.stderr).toBe(0);
    const { rows } = readRecorded('paired');
    for (const row of rows)
      expect(r.stdout).toMatch(new RegExp(`^${row.name}\\s+${row.group}\\s+${row.arm}\\s+${row.status}\\s`, 'm'));
    expect(r.stdout).toContain(
      `${rows.filter((x) => x.status === 'done').length} of ${rows.length} recorded runs done`,
    );
  });

  it('--recorded without --list is a usage error', () => {
    const r = run('experiments', ['--recorded']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--recorded goes with --list');
  });
});
