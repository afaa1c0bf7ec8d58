/**
 * Chooses the TensorFlow backend once per process and says which one runs.
 *
 * Order for `auto`: the GPU package (@tensorflow/tfjs-node-gpu) when it is installed AND TensorFlow
 * sees a GPU through it (asked in a child process, since one process cannot load both packages'
 * TensorFlow), else the native CPU package (@tensorflow/tfjs-node). The device reported is
 * TensorFlow's own answer (the binding's device query), never guessed from the package name.
 * A native package that is installed but fails to load is an error, never a silent fall-back:
 * the pure-JS `cpu` backend trains this network about 200 times slower. Everything else in lib/
 * uses @tensorflow/tfjs-core and does not care which backend is active.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { PATHS, parseChoice, readEnv } from '../config';
import { REMOVED_UTIL_FUNCTIONS, restoreRemovedUtilFunctions } from './node-compat';

export type BackendChoice = 'auto' | 'gpu' | 'native' | 'cpu';
const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'gpu', 'native', 'cpu'];

export interface BackendInfo {
  /** tf.getBackend(): 'tensorflow' for both native packages, 'cpu' for pure JS. */
  name: string;
  /** The npm package that provides it. */
  package: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node' | '@tensorflow/tfjs-backend-cpu';
  /** Version of the TensorFlow C library behind it ('n/a' for pure JS). */
  tensorflowVersion: string;
  tfjsVersion: string;
  /** 'GPU' or 'CPU': where TensorFlow runs the ops (the binding's device query). */
  device: 'GPU' | 'CPU';
  /** True for the native backends; training refuses anything else unless asked. */
  fast: boolean;
  /** Why `auto` did not take the GPU package, when it is installed. */
  note?: string;
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

/** The part of tfjs-node's binding read here (binding/tfjs_binding.cc). */
interface NativeBinding {
  TF_Version?: string;
  /** True when TensorFlow's device list had a GPU when the binding started (else it runs on the CPU). */
  isUsingGpuDevice?: () => boolean;
}

/** TensorFlow's device for a loaded binding. */
function deviceOf(binding: NativeBinding): 'GPU' | 'CPU' {
  return binding.isUsingGpuDevice?.() ? 'GPU' : 'CPU';
}

function loadNative(kind: 'gpu' | 'native'): BackendInfo {
  const pkg = NATIVE_PACKAGES[kind];
  tensorflowEnvironment();
  restoreRemovedUtilFunctions();
  checkLinkedLibraries(path.join(path.dirname(require.resolve(`${pkg}/package.json`)), 'deps'));
  let binding: NativeBinding;
  try {
    // The native packages register the 'tensorflow' backend into the shared tfjs-core engine.
    require(pkg);
    const backend = tf.findBackend('tensorflow') as unknown as { binding?: NativeBinding } | undefined;
    binding = backend?.binding ?? {};
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
  const device = deviceOf(binding);
  if (kind === 'gpu' && device !== 'GPU') {
    throw new Error(`DCF_BACKEND=gpu: ${pkg} loaded, but TensorFlow sees no GPU. ${whyNoGpu(gpuFacts())}`);
  }
  const tensorflowVersion = binding.TF_Version ?? 'unknown';
  const warning = untestedTensorflowWarning(tensorflowVersion, pkg);
  if (warning && !versionWarned) {
    versionWarned = true;
    console.warn(warning);
  }
  return { name: tf.getBackend(), package: pkg, tensorflowVersion, tfjsVersion: tf.version_core, device, fast: true };
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

// ---- Is there a GPU? ----------------------------------------------------------------------------

/**
 * The shared libraries TensorFlow 2.21's GPU build opens when it starts (CUDA 12, cuDNN 9): the
 * `nvidia-*-cu12` wheels of `tensorflow[and-cuda]` carry them (`npm run setup -- --gpu`).
 */
export const CUDA_LIBRARIES: readonly string[] = [
  'libcudart.so.12',
  'libcublas.so.12',
  'libcublasLt.so.12',
  'libcufft.so.11',
  'libcusolver.so.11',
  'libcusparse.so.12',
  'libcudnn.so.9',
];

/** What the machine has of what TensorFlow needs to see a GPU. */
export interface GpuFacts {
  /** The NVIDIA kernel driver is loaded (/proc/driver/nvidia/version exists). */
  kernelDriver: boolean;
  /** The driver's user-space library libcuda.so.1 is where the dynamic loader finds it. */
  libcuda: boolean;
  /** CUDA_LIBRARIES that the dynamic loader finds (LD_LIBRARY_PATH or the ldconfig cache). */
  cudaFound: readonly string[];
  /** Folders in .venv (the nvidia-*-cu12 wheels) holding CUDA_LIBRARIES that the loader does not find. */
  venvDirs: readonly string[];
}

/** The message that says what is missing for TensorFlow to see a GPU, and what to do. */
export function whyNoGpu(f: GpuFacts): string {
  if (!f.kernelDriver || !f.libcuda) {
    const what = !f.kernelDriver
      ? 'the kernel module is not loaded: /proc/driver/nvidia/version is absent'
      : 'libcuda.so.1 is not found';
    return (
      `Missing: the NVIDIA driver (${what}). ` +
      'Install the NVIDIA driver (nvidia-smi must work), or use DCF_BACKEND=native.'
    );
  }
  const missing = CUDA_LIBRARIES.filter((lib) => !f.cudaFound.includes(lib));
  if (missing.length > 0) {
    const fix = f.venvDirs.length
      ? 'They are in .venv (npm run setup -- --gpu installed them): ' +
        `export LD_LIBRARY_PATH=${f.venvDirs.join(':')}:$LD_LIBRARY_PATH`
      : 'Run `npm run setup -- --gpu` (installs them into .venv as the nvidia-*-cu12 wheels), ' +
        'then add their lib/ folders to LD_LIBRARY_PATH';
    return (
      `Missing: the CUDA libraries ${missing.join(', ')} on LD_LIBRARY_PATH (nor in the ldconfig cache). ` +
      `${fix}, or use DCF_BACKEND=native.`
    );
  }
  return (
    'The NVIDIA driver and the CUDA libraries are there, yet TensorFlow found no usable GPU (a GPU older than ' +
    "TensorFlow's CUDA 12 build supports, or a driver too old for CUDA 12?). " +
    "Run with TF_CPP_MIN_LOG_LEVEL=0 to see TensorFlow's own messages."
  );
}

/** The folders the dynamic loader searches: LD_LIBRARY_PATH, then the ldconfig cache's. */
function loaderFinds(lib: string, ldconfigCache: string): boolean {
  const dirs = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  return dirs.some((d) => fs.existsSync(path.join(d, lib))) || ldconfigCache.includes(`${lib} `);
}

/** Reads GpuFacts from this machine (files and `ldconfig -p`; loads nothing). */
export function gpuFacts(): GpuFacts {
  const ldconfig = ['/sbin/ldconfig', 'ldconfig']
    .map((cmd) => spawnSync(cmd, ['-p'], { encoding: 'utf8' }))
    .find((r) => r.status === 0);
  const cache = ldconfig?.stdout ?? '';
  const cudaFound = CUDA_LIBRARIES.filter((lib) => loaderFinds(lib, cache));
  const venvDirs: string[] = [];
  const venvLib = path.join(PATHS.root, '.venv', 'lib');
  for (const py of fs.existsSync(venvLib) ? fs.readdirSync(venvLib) : []) {
    const nvidia = path.join(venvLib, py, 'site-packages', 'nvidia');
    for (const pkg of fs.existsSync(nvidia) ? fs.readdirSync(nvidia) : []) {
      const dir = path.join(nvidia, pkg, 'lib');
      const helps = CUDA_LIBRARIES.some((lib) => !cudaFound.includes(lib) && fs.existsSync(path.join(dir, lib)));
      if (helps) venvDirs.push(dir);
    }
  }
  return {
    kernelDriver: fs.existsSync('/proc/driver/nvidia/version'),
    libcuda: loaderFinds('libcuda.so.1', cache),
    cudaFound,
    venvDirs,
  };
}

/** TensorFlow's answer through a native package, from a fresh process: does it run on a GPU? */
export type DeviceProbe = { ok: true; device: 'GPU' | 'CPU'; tensorflowVersion: string } | { ok: false; error: string };

/**
 * Loads `pkg` in a child process and asks its binding for the device. A child, because a process
 * that loaded one native package cannot load the other (two TensorFlow libraries in one process).
 */
function probeNativeDevice(pkg: string): DeviceProbe {
  const shim = Object.entries(REMOVED_UTIL_FUNCTIONS).map(([name, fn]) => `u.${name} = ${fn.toString()};`);
  const code = [
    `const u = require('util'); ${shim.join(' ')}`,
    `const tf = require(${JSON.stringify(pkg)});`,
    `const b = tf.backend().binding;`,
    `console.log(JSON.stringify({ gpu: b.isUsingGpuDevice(), version: b.TF_Version }));`,
  ].join('\n');
  const r = spawnSync(process.execPath, ['-e', code], { cwd: PATHS.root, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) {
    const why = (r.stderr || '').split('\n').find((l) => /Error|error/.test(l)) ?? `exit ${r.status ?? r.signal}`;
    return { ok: false, error: why.trim() };
  }
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { gpu: boolean; version: string };
  return { ok: true, device: out.gpu ? 'GPU' : 'CPU', tensorflowVersion: out.version };
}

// ---- The choice ---------------------------------------------------------------------------------

/** What the choice depends on: what is installed, and what TensorFlow sees through the GPU package. */
export interface BackendEnvironment {
  installed(pkg: string): boolean;
  probeGpuPackage(): DeviceProbe;
  /** Why there is no GPU (asked only when there is none). */
  whyNoGpu(): string;
}

/** The package `wanted` resolves to here, and why `auto` passed over the GPU package. */
export type BackendPlan = { load: 'gpu' | 'native' | 'cpu'; note?: string };

const realEnvironment: BackendEnvironment = {
  installed: isInstalled,
  probeGpuPackage: () => probeNativeDevice(NATIVE_PACKAGES.gpu),
  whyNoGpu: () => whyNoGpu(gpuFacts()),
};

/** Decides which package to load for `wanted`; throws when it cannot be what was asked for. */
export function planBackend(wanted: BackendChoice, env: BackendEnvironment = realEnvironment): BackendPlan {
  if (wanted === 'cpu') return { load: 'cpu' };
  if (wanted === 'gpu' || wanted === 'native') {
    if (!env.installed(NATIVE_PACKAGES[wanted])) {
      throw new Error(
        `DCF_BACKEND=${wanted} but ${NATIVE_PACKAGES[wanted]} is not installed; ` +
          (wanted === 'gpu' ? 'run `npm run setup -- --gpu`.' : 'run `npm run setup`.'),
      );
    }
    return { load: wanted };
  }
  let note: string | undefined;
  if (env.installed(NATIVE_PACKAGES.gpu)) {
    const probe = env.probeGpuPackage();
    // `in`, not `probe.ok`: tslab's non-strict TypeScript 5.0 does not narrow on a boolean discriminant.
    if ('error' in probe) {
      note =
        `${NATIVE_PACKAGES.gpu} is installed but does not load (${probe.error}), ` +
        `so ${NATIVE_PACKAGES.native} runs on the CPU; npm run setup -- --gpu repairs it.`;
    } else if (probe.device === 'GPU') {
      return { load: 'gpu' };
    } else {
      note =
        `${NATIVE_PACKAGES.gpu} is installed but TensorFlow sees no GPU, ` +
        `so ${NATIVE_PACKAGES.native} runs on the CPU. ${env.whyNoGpu()}`;
    }
  }
  if (!env.installed(NATIVE_PACKAGES.native)) {
    throw new Error('No native TensorFlow package is installed; run `npm run setup`.');
  }
  return { load: 'native', note };
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
    if (!same)
      throw new Error(`backend already initialised as ${describeBackend(active)}; cannot switch to '${wanted}'`);
    return active;
  }
  const plan = planBackend(wanted);
  active = plan.load === 'cpu' ? loadPureJs() : loadNative(plan.load);
  if (plan.note) {
    active.note = plan.note;
    console.warn(`note: ${plan.note}`);
  }
  return active;
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
