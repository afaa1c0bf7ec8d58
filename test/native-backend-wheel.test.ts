// The TensorFlow wheel set-up builds against is checked against its pinned sha256 before use, and
// the GPU wheel's own metadata names the CUDA wheels set-up installs (tensorflow[and-cuda]).
import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { PATHS } from '../lib/config';
import { TF_VERSION, WHEELS, cudaRequirements, wheelProblem } from '../scripts/native-backend-plan.mjs';

describe('wheelProblem', () => {
  it('accepts the pinned hash only', () => {
    expect(wheelProblem(WHEELS.cpu, WHEELS.cpu.sha256!)).toBeUndefined();
    expect(wheelProblem(WHEELS.cpu, '0'.repeat(64))).toMatch(
      new RegExp(
        `${WHEELS.cpu.file.replace(/\./g, '\\.')} has sha256 0{64}, ` +
          `not the pinned ${WHEELS.cpu.sha256}: a damaged or different file`,
      ),
    );
  });

  it('refuses a wheel with no pinned hash, printing the one it got', () => {
    expect(wheelProblem(WHEELS.gpu, 'ab'.repeat(32))).toMatch(
      /no sha256 is pinned for tensorflow-2\.21\.0-.*\(its sha256 here: (ab){32}\).*PyPI/,
    );
  });

  it('pins the file that set-up downloads (the cached wheel, where this machine has it)', () => {
    expect(WHEELS.cpu.file).toBe(`tensorflow_cpu-${TF_VERSION}-cp311-cp311-manylinux_2_27_x86_64.whl`);
    const cached = path.join(PATHS.cache, 'wheels', WHEELS.cpu.file);
    if (!fs.existsSync(cached)) return;
    const hash = createHash('sha256').update(fs.readFileSync(cached)).digest('hex');
    expect(wheelProblem(WHEELS.cpu, hash)).toBeUndefined();
  });

  it('set-up stops at "check wheel" on a wheel that is not the pinned one, before touching node_modules', () => {
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'wheel-cache-'));
    fs.mkdirSync(path.join(cache, 'wheels'));
    fs.writeFileSync(path.join(cache, 'wheels', WHEELS.cpu.file), 'not a wheel');
    const deps = path.join(PATHS.root, 'node_modules/@tensorflow/tfjs-node/deps/dcf-manifest.json');
    const before = fs.readFileSync(deps, 'utf8');
    const r = spawnSync(process.execPath, ['scripts/native-backend.mjs', '--force'], {
      cwd: PATHS.root,
      encoding: 'utf8',
      env: { ...process.env, DCF_CACHE_DIR: cache },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /FAILED at step "check wheel": tensorflow_cpu-2\.21\.0-.*has sha256 [0-9a-f]{64}, not the pinned/,
    );
    expect(fs.readFileSync(deps, 'utf8')).toBe(before);
    expect(fs.existsSync(path.join(cache, `libtensorflow-${TF_VERSION}-cpu`))).toBe(false);
  });
});

describe('cudaRequirements', () => {
  it("reads the and-cuda extra of a wheel's METADATA, nothing else", () => {
    const metadata = [
      'Metadata-Version: 2.1',
      'Name: tensorflow',
      'Requires-Dist: numpy<2.2.0,>=1.26.0',
      'Provides-Extra: and-cuda',
      'Requires-Dist: nvidia-cublas-cu12<13.0,>=12.5.3.2; extra == "and-cuda"',
      "Requires-Dist: nvidia-cudnn-cu12 <10.0,>=9.3.0.75 ; extra == 'and-cuda'",
      'Requires-Dist: tensorflow-io-gcs-filesystem>=0.23.1; python_version < "3.12"',
    ].join('\n');
    expect(cudaRequirements(metadata)).toEqual([
      'nvidia-cublas-cu12<13.0,>=12.5.3.2',
      'nvidia-cudnn-cu12<10.0,>=9.3.0.75',
    ]);
  });
});
