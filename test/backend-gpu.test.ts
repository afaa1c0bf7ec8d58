// The device comes from TensorFlow, not from the package name: a GPU package with no GPU behind it.
// There is no GPU here; the GPU package is stood in for by a fake @tensorflow/tfjs-node-gpu that
// loads the CPU build (on NODE_PATH), so TensorFlow itself answers "no GPU" through the -gpu
// package, and the real decision code (planBackend, loadNative, gpuFacts) runs in a child process.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { PATHS } from '../lib/config';
import {
  CUDA_LIBRARIES,
  gpuFacts,
  initBackend,
  planBackend,
  whyNoGpu,
  type BackendEnvironment,
  type GpuFacts,
} from '../lib/runtime/backend';

const GPU_PKG = '@tensorflow/tfjs-node-gpu';
const NO_GPU_NOTE =
  '@tensorflow/tfjs-node-gpu is installed but TensorFlow sees no GPU, so @tensorflow/tfjs-node runs on the CPU\\. ' +
  'Missing: the NVIDIA driver';
const noDriver: GpuFacts = { kernelDriver: false, libcuda: false, cudaFound: [], venvDirs: [] };
const driverOnly: GpuFacts = { kernelDriver: true, libcuda: true, cudaFound: [], venvDirs: [] };

describe('the device', () => {
  it("is TensorFlow's answer for the backend these tests run on (no GPU here: CPU)", () => {
    const binding = (tf.backend() as unknown as { binding: { isUsingGpuDevice(): boolean } }).binding;
    expect(initBackend().device).toBe(binding.isUsingGpuDevice() ? 'GPU' : 'CPU');
    expect(initBackend().device).toBe('CPU');
  });
});

describe('planBackend', () => {
  const env = (over: Partial<BackendEnvironment>): BackendEnvironment => ({
    installed: () => true,
    probeGpuPackage: () => ({ ok: true, device: 'CPU', tensorflowVersion: '2.21.0' }),
    whyNoGpu: () => whyNoGpu(noDriver),
    ...over,
  });

  it('auto takes the GPU package only when TensorFlow sees a GPU through it', () => {
    expect(
      planBackend('auto', env({ probeGpuPackage: () => ({ ok: true, device: 'GPU', tensorflowVersion: '2.21.0' }) })),
    ).toEqual({ load: 'gpu' });
    const cpu = planBackend('auto', env({}));
    expect(cpu.load).toBe('native');
    expect(cpu.note).toMatch(new RegExp(NO_GPU_NOTE));
  });

  it('auto goes on without a GPU package that does not load, and says so', () => {
    const plan = planBackend(
      'auto',
      env({ probeGpuPackage: () => ({ ok: false, error: 'Error: libcudart.so.12: cannot open shared object file' }) }),
    );
    expect(plan).toEqual({
      load: 'native',
      note: expect.stringMatching(/does not load \(Error: libcudart\.so\.12.*npm run setup -- --gpu repairs it/),
    });
  });

  it('auto without the GPU package never asks for a GPU', () => {
    const plan = planBackend(
      'auto',
      env({
        installed: (pkg) => pkg !== GPU_PKG,
        probeGpuPackage: () => {
          throw new Error('probed');
        },
      }),
    );
    expect(plan).toEqual({ load: 'native', note: undefined });
  });

  it('gpu and native need their package; cpu needs nothing', () => {
    expect(() => planBackend('gpu', env({ installed: (pkg) => pkg !== GPU_PKG }))).toThrow(
      /DCF_BACKEND=gpu but @tensorflow\/tfjs-node-gpu is not installed; run `npm run setup -- --gpu`/,
    );
    expect(() => planBackend('auto', env({ installed: () => false }))).toThrow(
      /No native TensorFlow package is installed; run `npm run setup`/,
    );
    expect(planBackend('gpu', env({}))).toEqual({ load: 'gpu' });
    expect(planBackend('cpu', env({ installed: () => false }))).toEqual({ load: 'cpu' });
  });
});

describe('whyNoGpu', () => {
  it('names the missing driver first', () => {
    expect(whyNoGpu(noDriver)).toMatch(
      /^Missing: the NVIDIA driver \(the kernel module is not loaded: \/proc\/driver\/nvidia\/version is absent\)/,
    );
    expect(whyNoGpu({ ...noDriver, kernelDriver: true })).toMatch(/the NVIDIA driver \(libcuda\.so\.1 is not found\)/);
  });

  it('then the CUDA libraries missing from LD_LIBRARY_PATH, with the command that adds those set-up installed', () => {
    expect(whyNoGpu(driverOnly)).toMatch(
      new RegExp(
        `Missing: the CUDA libraries ${CUDA_LIBRARIES.join(', ').replace(/\./g, '\\.')} ` +
          'on LD_LIBRARY_PATH.*npm run setup -- --gpu',
      ),
    );
    const some = whyNoGpu({
      ...driverOnly,
      cudaFound: CUDA_LIBRARIES.filter((l) => l !== 'libcudnn.so.9'),
      venvDirs: ['/p/.venv/nvidia/cudnn/lib'],
    });
    expect(some).toMatch(
      new RegExp(
        '^Missing: the CUDA libraries libcudnn\\.so\\.9 on LD_LIBRARY_PATH.*' +
          'export LD_LIBRARY_PATH=/p/\\.venv/nvidia/cudnn/lib:\\$LD_LIBRARY_PATH',
      ),
    );
  });

  it('says where to look when nothing is missing, and reads this machine (no NVIDIA driver here)', () => {
    expect(whyNoGpu({ ...driverOnly, cudaFound: CUDA_LIBRARIES })).toMatch(
      /driver and the CUDA libraries are there, yet TensorFlow found no usable GPU.*TF_CPP_MIN_LOG_LEVEL=0/,
    );
    expect(gpuFacts().kernelDriver).toBe(fs.existsSync('/proc/driver/nvidia/version'));
  });
});

describe('a GPU package with no GPU (fake @tensorflow/tfjs-node-gpu over the CPU build, child processes)', () => {
  const fake = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-gpu-'));
  const pkgDir = path.join(fake, 'node_modules', '@tensorflow', 'tfjs-node-gpu');
  fs.mkdirSync(pkgDir, { recursive: true });
  fs.writeFileSync(
    path.join(pkgDir, 'package.json'),
    JSON.stringify({ name: GPU_PKG, version: '4.22.0', main: 'index.js' }),
  );
  fs.writeFileSync(path.join(pkgDir, 'index.js'), "module.exports = require('@tensorflow/tfjs-node');\n");

  function run(backend: string) {
    const code = `
      const { initBackend, describeBackend } = require('./lib/runtime/backend.ts');
      const info = initBackend();
      console.log('BACKEND ' + describeBackend(info));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], {
      cwd: PATHS.root,
      encoding: 'utf8',
      env: {
        ...process.env,
        DCF_BACKEND: backend,
        NODE_PATH: [path.join(fake, 'node_modules'), path.join(PATHS.root, 'node_modules')].join(path.delimiter),
      },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('auto: TensorFlow sees no GPU through it, so the CPU package runs and says why', () => {
    const r = run('auto');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('BACKEND tensorflow (@tensorflow/tfjs-node, TensorFlow 2.21');
    expect(r.stdout).toMatch(/, CPU\)/);
    expect(r.stderr).toMatch(new RegExp(`note: ${NO_GPU_NOTE}`));
  });

  it('DCF_BACKEND=gpu: an error naming what is missing, never a GPU reported', () => {
    const r = run('gpu');
    expect(r.status).not.toBe(0);
    expect(r.stdout).not.toContain('BACKEND');
    expect(r.stderr).toMatch(
      /DCF_BACKEND=gpu: @tensorflow\/tfjs-node-gpu loaded, but TensorFlow sees no GPU\. Missing: the NVIDIA driver/,
    );
  });
});
