#!/usr/bin/env node
/**
 * Is this machine one the lab runs on? Set-up's first check (and `npm test`'s, through
 * check-setup.sh): one clear message, before anything is installed, naming what is supported.
 *
 *   node scripts/platform.mjs      exit 0 and nothing printed, or exit 1 with the message
 *
 * Supported: Linux on x86-64 (set-up builds the native TensorFlow backend from the C library of
 * the tensorflow-cpu 2.21 wheel, published for manylinux x86-64 only; the Python packages are
 * locked for CPython 3.11 there), with one of the Node lines package.json's `engines` names.
 * Uses only Node built-ins (it runs before anything is installed).
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The Node lines an `engines.node` range of carets ("^20.19.0 || ^24.0.0") allows: [[20, 19], [24, 0]]. */
export function nodeLines(range) {
  return [...String(range).matchAll(/\^(\d+)(?:\.(\d+))?/g)].map((m) => [Number(m[1]), Number(m[2] ?? 0)]);
}

export const SUPPORTED = 'Linux on x86-64 (glibc)';

/**
 * What keeps this machine from running the lab, or undefined. `node` is process.versions.node,
 * `engines` package.json's engines.node.
 */
export function platformProblem({ platform, arch, node, engines }) {
  if (platform !== 'linux' || arch !== 'x64') {
    return (
      `This is ${platform} on ${arch}; the lab runs on ${SUPPORTED} only: set-up builds its native TensorFlow ` +
      'backend from the C library of the tensorflow-cpu 2.21 wheel, which is published for Linux x86-64 only. ' +
      'Use a Linux x86-64 machine (a cloud VM, or a Linux x86-64 container with Docker).'
    );
  }
  const lines = nodeLines(engines);
  const [major, minor] = node.split('.').map(Number);
  if (!lines.some(([M, m]) => major === M && minor >= m)) {
    return (
      `Node ${node} is not one the lab is tested on: ` +
      `use Node ${lines.map(([M, m]) => (m ? `${M}.${m}+` : M)).join(', ')} ` +
      `(package.json engines: ${engines}; ` +
      'Node 24 or 26 preferred: Node 20 reached its end of life in April 2026).'
    );
  }
  return undefined;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const problem = platformProblem({
    platform: process.platform,
    arch: process.arch,
    node: process.versions.node,
    engines: pkg.engines.node,
  });
  if (problem) {
    console.error(`error: ${problem}`);
    process.exit(1);
  }
}
