/**
 * Chooses the TensorFlow backend once per process and says which one runs.
 *
 * Order for `auto`: the GPU package (@tensorflow/tfjs-node-gpu) when it is installed, then the
 * native CPU package (@tensorflow/tfjs-node). A native package that is installed but fails to
 * load is an error, never a silent fall-back: the pure-JS `cpu` backend trains this network
 * about 200 times slower. Everything else in lib/ uses @tensorflow/tfjs-core and does not care
 * which backend is active.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { parseChoice, readEnv } from '../config';

export type BackendChoice = 'auto' | 'gpu' | 'native' | 'cpu';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'gpu', 'native', 'cpu'];

export interface BackendInfo {
  /** tf.getBackend(): 'tensorflow' for both native packages, 'cpu' for pure JS. */
  name: string;
  /** The npm package that provides it. */
  package: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node' | '@tensorflow/tfjs-backend-cpu';
  /** Version of the TensorFlow C library behind it ('n/a' for pure JS). */
  tensorflowVersion: string;
  tfjsVersion: string;
  /** 'GPU' or 'CPU'. */
  device: 'GPU' | 'CPU';
  /** True for the native backends; training refuses anything else unless asked. */
  fast: boolean;
}

const NATIVE_PACKAGES = {
  gpu: '@tensorflow/tfjs-node-gpu',
  native: '@tensorflow/tfjs-node',
} as const;

let active: BackendInfo | undefined;
let versionWarned = false;

/**
 * The TensorFlow release the project is tested on: `npm run setup` builds the native addon against
 * the C library of the tensorflow-cpu 2.21 wheel (scripts/native-backend-plan.mjs, TF_VERSION).
 */
export const TESTED_TENSORFLOW = '2.21';

/**
 * The warning to print when the native backend runs on another TensorFlow than the tested one
 * (say the stock 2.9.1 download of `npm run setup -- --stock-libtensorflow`), else undefined.
 * `version` is the binding's TF_Version; 'n/a' (the pure-JS backend) never warns.
 */
export function untestedTensorflowWarning(version: string, pkg: string = NATIVE_PACKAGES.native): string | undefined {
  if (version === 'n/a') return undefined;
  const m = /^\s*(\d+)\.(\d+)\.\d+/.exec(version);
  if (m && `${m[1]}.${m[2]}` === TESTED_TENSORFLOW) return undefined;
  const setup = pkg === NATIVE_PACKAGES.gpu ? 'npm run setup -- --gpu' : 'npm run setup';
  return (
    `warning: ${pkg} runs on TensorFlow ${m ? version : `of unknown version ('${version}')`}, which this project ` +
    `has not been tested with: it is tested on TensorFlow ${TESTED_TENSORFLOW} only (graph execution and ` +
    `the fused kernels included). Run \`${setup}\` to build the native backend against TensorFlow ` +
    `${TESTED_TENSORFLOW} (the C library of the tensorflow${pkg === NATIVE_PACKAGES.gpu ? '' : '-cpu'} wheel).`
  );
}

function isInstalled(pkg: string): boolean {
  try {
    require.resolve(`${pkg}/package.json`);
    return true;
  } catch {
    return false;
  }
}

/**
 * The set-up script records the sizes of the TensorFlow libraries it linked into the package's
 * deps/lib. A truncated library would kill the process inside dlopen, so check them first.
 */
export function checkLinkedLibraries(deps: string): void {
  const manifestFile = path.join(deps, 'dcf-manifest.json');
  if (!fs.existsSync(manifestFile)) return; // the package's own download: nothing recorded
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { files: Record<string, number> };
  for (const [name, size] of Object.entries(manifest.files)) {
    const file = path.join(deps, 'lib', name);
    const actual = fs.existsSync(file) ? fs.statSync(file).size : -1;
    if (actual !== size) {
      throw new Error(
        `The TensorFlow library ${file} is ${actual < 0 ? 'missing' : `damaged (${actual} bytes, expected ${size})`}. ` +
          'Run `npm run setup` to repair the native backend.',
      );
    }
  }
}

/**
 * TensorFlow reads its settings from the environment once, when its library loads: hand it ours
 * (lib/config Env: the start-up banner off, oneDNN on unless TF_ENABLE_ONEDNN_OPTS=0).
 */
function tensorflowEnvironment(): void {
  const env = readEnv();
  process.env.TF_CPP_MIN_LOG_LEVEL = env.tfLogLevel;
  process.env.TF_ENABLE_ONEDNN_OPTS = env.oneDnn ? '1' : '0';
}

function loadNative(kind: 'gpu' | 'native'): BackendInfo {
  const pkg = NATIVE_PACKAGES[kind];
  tensorflowEnvironment();
  checkLinkedLibraries(path.join(path.dirname(require.resolve(`${pkg}/package.json`)), 'deps'));
  let binding: { TF_Version?: string };
  try {
    // The native packages register the 'tensorflow' backend into the shared tfjs-core engine.
    const mod = require(pkg) as { version: Record<string, string> };
    void mod;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    binding = (tf.findBackend('tensorflow') as any)?.binding ?? {};
  } catch (err) {
    throw new Error(
      `The native TensorFlow backend (${pkg}) is installed but failed to load:\n  ${(err as Error).message}\n` +
        'Run `npm run setup` to provision and rebuild it (scripts/native-backend.mjs). ' +
        'To run tiny experiments without it, set DCF_BACKEND=cpu (slow: not for training).',
    );
  }
  if (!tf.findBackend('tensorflow')) {
    throw new Error(`${pkg} loaded but registered no 'tensorflow' backend; run \`npm run setup\` again.`);
  }
  tf.setBackend('tensorflow');
  const tensorflowVersion = binding.TF_Version ?? 'unknown';
  const warning = untestedTensorflowWarning(tensorflowVersion, pkg);
  if (warning && !versionWarned) {
    versionWarned = true;
    console.warn(warning);
  }
  return {
    name: tf.getBackend(),
    package: pkg,
    tensorflowVersion,
    tfjsVersion: tf.version_core,
    device: kind === 'gpu' ? 'GPU' : 'CPU',
    fast: true,
  };
}

function loadPureJs(): BackendInfo {
  require('@tensorflow/tfjs-backend-cpu');
  tf.setBackend('cpu');
  return {
    name: tf.getBackend(),
    package: '@tensorflow/tfjs-backend-cpu',
    tensorflowVersion: 'n/a',
    tfjsVersion: tf.version_core,
    device: 'CPU',
    fast: false,
  };
}

/**
 * Loads and activates the backend named by `choice` (default: the DCF_BACKEND environment
 * variable, else `auto`). Idempotent: later calls return the backend chosen first, and a later
 * call asking for a different one is an error rather than a silent switch.
 */
export function initBackend(choice?: BackendChoice | string): BackendInfo {
  const wanted = parseChoice('DCF_BACKEND', choice ?? readEnv().backend, BACKEND_CHOICES);
  if (active) {
    const same =
      wanted === 'auto' ||
      (wanted === 'cpu' && !active.fast) ||
      (wanted !== 'cpu' && active.package === NATIVE_PACKAGES[wanted]);
    if (!same) throw new Error(`backend already initialised as ${describeBackend(active)}; cannot switch to '${wanted}'`);
    return active;
  }
  switch (wanted) {
    case 'cpu':
      active = loadPureJs();
      break;
    case 'gpu':
    case 'native':
      if (!isInstalled(NATIVE_PACKAGES[wanted])) {
        throw new Error(
          `DCF_BACKEND=${wanted} but ${NATIVE_PACKAGES[wanted]} is not installed; ` +
            (wanted === 'gpu' ? 'run `npm run setup -- --gpu`.' : 'run `npm run setup`.'),
        );
      }
      active = loadNative(wanted);
      break;
    case 'auto':
      if (isInstalled(NATIVE_PACKAGES.gpu)) active = loadNative('gpu');
      else if (isInstalled(NATIVE_PACKAGES.native)) active = loadNative('native');
      else throw new Error('No native TensorFlow package is installed; run `npm run setup`.');
      break;
  }
  return active!;
}

/** The backend chosen so far, if any. */
export function activeBackend(): BackendInfo | undefined {
  return active;
}

/**
 * One line for logs and reports, e.g. "tensorflow (@tensorflow/tfjs-node, TensorFlow 2.21.0, CPU)", and with
 * `precision` (lib/runtime/precision resolvePrecision) "…, CPU); bf16 (asked for)".
 */
export function describeBackend(info: BackendInfo, precision?: { precision: string; why: string }): string {
  const line = `${info.name} (${info.package}, TensorFlow ${info.tensorflowVersion}, ${info.device})`;
  return precision ? `${line}; ${precision.precision} (${precision.why})` : line;
}

/** The backend to train on: the active one (initialised when none is), refused when slow unless `allowSlow`. */
export function trainingBackend(allowSlow = false): BackendInfo {
  const info = active ?? initBackend();
  assertFastBackend(info, allowSlow);
  return info;
}

/**
 * Training on the pure-JS backend takes minutes per step; refuse unless the caller asks for it
 * explicitly (tiny unit tests do).
 */
export function assertFastBackend(info: BackendInfo, allowSlow = false): void {
  if (!info.fast && !allowSlow) {
    throw new Error(
      `refusing to train on the pure-JS '${info.name}' backend (about 200× slower than native). ` +
        'Run `npm run setup` to build the native backend, or pass allowSlowBackend for a tiny test.',
    );
  }
}
