/**
 * The decisions of scripts/native-backend.mjs, as pure functions (no files, no processes), so that
 * vitest can check them (test/backend.test.ts). Uses nothing outside the language.
 */

/** The TensorFlow the project is tested on: the C library of the tensorflow-cpu / tensorflow wheel. */
export const TF_VERSION = '2.21.0';

/**
 * The wheels whose C library set-up builds against, and their sha256, checked before use. Both
 * are the CPython 3.11 manylinux x86-64 build whatever Python runs set-up (the C library inside
 * does not depend on Python), so one file and one hash each. The tensorflow (GPU) wheel's hash
 * is not pinned: no machine that set the project up could fetch it (its pip index carries only
 * tensorflow-cpu); set-up then stops, printing the hash it got, instead of using an unchecked file.
 */
export const WHEELS = {
  cpu: {
    name: 'tensorflow-cpu',
    file: `tensorflow_cpu-${TF_VERSION}-cp311-cp311-manylinux_2_27_x86_64.whl`,
    sha256: '2b847d217b02ee7731ed91431daf3250daa0196c3c94614d23be27232e6e5b6c',
  },
  gpu: { name: 'tensorflow', file: `tensorflow-${TF_VERSION}-cp311-cp311-manylinux_2_27_x86_64.whl`, sha256: null },
};

/** `pip download` flags that select exactly the WHEELS files, whatever Python runs pip. */
export const WHEEL_PIP_TARGET = [
  ['--python-version', '3.11'],
  ['--implementation', 'cp'],
  ['--abi', 'cp311'],
  ['--platform', 'manylinux_2_27_x86_64'],
].flat();

/**
 * Whether a downloaded wheel may be used: `actual` is its sha256. Returns undefined when it may,
 * else what is wrong and what to do.
 */
export function wheelProblem(wheel, actual) {
  if (wheel.sha256 === null) {
    return (
      `no sha256 is pinned for ${wheel.file} (its sha256 here: ${actual}). ` +
      'Check that hash against the one PyPI lists ' +
      `for ${wheel.name}==${TF_VERSION}, then add it to WHEELS in scripts/native-backend-plan.mjs`
    );
  }
  if (actual !== wheel.sha256) {
    return (
      `${wheel.file} has sha256 ${actual}, not the pinned ${wheel.sha256}: a damaged or different file. ` +
      'Delete it and run again'
    );
  }
  return undefined;
}

/**
 * The CUDA and cuDNN wheels TensorFlow's GPU build needs, as its own METADATA declares them for
 * `pip install tensorflow[and-cuda]` (the nvidia-*-cu12 wheels): one requirement per line.
 */
export function cudaRequirements(metadata) {
  const reqs = [];
  for (const line of String(metadata).split(/\r?\n/)) {
    const m = /^Requires-Dist:\s*(.+?)\s*;\s*extra\s*==\s*["']and-cuda["']\s*$/.exec(line);
    if (m) reqs.push(m[1].replace(/\s+/g, ''));
  }
  return reqs;
}

export const OPTIONS = ['--gpu', '--force', '--stock-libtensorflow'];
export const USAGE = 'usage: node scripts/native-backend.mjs [--gpu] [--force] [--stock-libtensorflow]';

/**
 * The command line: --gpu (the -gpu package), --force (rebuild even if the addon works),
 * --stock-libtensorflow (the package's own libtensorflow download instead of the wheel: untested).
 */
export function parseArgs(argv) {
  return {
    gpu: argv.includes('--gpu'),
    force: argv.includes('--force'),
    stock: argv.includes('--stock-libtensorflow'),
    unknown: argv.filter((a) => !OPTIONS.includes(a)),
  };
}

/** The x.y.z a version string starts with ("2.21.0-rc1" → "2.21.0"), or null. */
export function release(version) {
  const m = /^\s*(\d+)\.(\d+)\.(\d+)/.exec(String(version ?? ''));
  return m ? `${m[1]}.${m[2]}.${m[3]}` : null;
}

/**
 * Whether the backend found installed can stay. `installed` is what a probe reported:
 * { ok: true, version } (it loads and runs an op; version = the binding's TF_Version) or
 * { ok: false, error }. `wanted` is the TensorFlow this mode provides. A working addon linked
 * against another TensorFlow (say the stock 2.9.1 download) is replaced, not kept.
 */
export function judgeInstalled(installed, wanted) {
  if (!installed.ok) return { keep: false, reason: `it does not load (${installed.error})` };
  if (release(installed.version) !== release(wanted)) {
    return { keep: false, reason: `it is linked against TensorFlow ${installed.version}, not ${wanted}` };
  }
  return { keep: true, reason: `it loads, TensorFlow ${installed.version}` };
}

/**
 * The steps to try, in order, to get a working backend of the wanted TensorFlow:
 *   'keep'             the installed addon is right: nothing to do;
 *   'restore-cache'    link the cached wheel library and copy back the cached addon build;
 *   'build-from-wheel' provision the C library from the wheel and build the addon;
 *   'stock-download'   the package's own install script (libtensorflow from Google's storage).
 * The stock download is planned only when asked for (`stock`), and then nothing else is: a
 * failure there is reported, not covered by a silent switch to another TensorFlow.
 * `installed` is the probe result, or null when it was not probed (--force).
 */
export function planSteps({ stock, force, installed, wanted, cached }) {
  if (!force && installed && judgeInstalled(installed, wanted).keep) return ['keep'];
  if (stock) return ['stock-download'];
  return cached && !force ? ['restore-cache', 'build-from-wheel'] : ['build-from-wheel'];
}

/** What set-up prints after installing the stock download: it is not the tested TensorFlow. */
export function stockWarning(version) {
  return (
    `UNTESTED: the native backend now runs on the package's stock libtensorflow ${version}. The project is ` +
    `tested on TensorFlow ${TF_VERSION} only (graph execution and the fused kernels were never run on ${version}). ` +
    'Run `npm run setup` without --stock-libtensorflow to go back to the tested build.'
  );
}
