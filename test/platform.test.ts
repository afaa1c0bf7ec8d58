// Set-up's first check (scripts/platform.mjs): one clear message on a machine the lab does not run on.
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { PATHS } from '../lib/config';
import { nodeLines, platformProblem } from '../scripts/platform.mjs';

const engines = (
  JSON.parse(fs.readFileSync(path.join(PATHS.root, 'package.json'), 'utf8')) as { engines: { node: string } }
).engines.node;

describe('platformProblem', () => {
  it('accepts this machine (Linux x86-64, the Node running the tests)', () => {
    expect(
      platformProblem({ platform: process.platform, arch: process.arch, node: process.versions.node, engines }),
    ).toBeUndefined();
  });

  it('reads the Node lines of package.json engines', () => {
    expect(nodeLines('^20.19.0 || ^22.0.0 || ^24.0.0 || ^26.0.0')).toEqual([
      [20, 19],
      [22, 0],
      [24, 0],
      [26, 0],
    ]);
    expect(nodeLines(engines).map(([major]) => major)).toEqual(expect.arrayContaining([22, 24, 26]));
  });

  it('stops a Mac, Windows or an ARM Linux with what is supported and why', () => {
    for (const [platform, arch] of [
      ['darwin', 'arm64'],
      ['darwin', 'x64'],
      ['win32', 'x64'],
      ['linux', 'arm64'],
    ]) {
      const p = platformProblem({ platform, arch, node: '24.22.3', engines });
      expect(p).toContain(`This is ${platform} on ${arch}; the lab runs on Linux on x86-64 (glibc) only`);
      expect(p).toMatch(/tensorflow-cpu 2\.21 wheel, which is published for Linux x86-64 only/);
    }
  });

  it('names the Node lines when the Node is not one of them', () => {
    for (const node of ['18.20.0', '20.18.1', '23.11.0', '25.0.0']) {
      expect(
        platformProblem({ platform: 'linux', arch: 'x64', node, engines: '^20.19.0 || ^22.0.0 || ^24.0.0 || ^26.0.0' }),
      ).toContain(`Node ${node} is not one the lab is tested on: use Node 20.19+, 22, 24, 26`);
    }
    for (const node of ['20.19.0', '22.23.5', '24.22.3', '26.12.1']) {
      expect(
        platformProblem({ platform: 'linux', arch: 'x64', node, engines: '^20.19.0 || ^22.0.0 || ^24.0.0 || ^26.0.0' }),
      ).toBeUndefined();
    }
  });
});
