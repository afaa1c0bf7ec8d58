#!/usr/bin/env node
/**
 * Makes the native TensorFlow backend (@tensorflow/tfjs-node, or -gpu) usable on this machine, on
 * the one TensorFlow the project is tested on: the 2.21 C library of the tensorflow-cpu (or, for
 * --gpu, tensorflow) wheel.
 *
 *   node scripts/native-backend.mjs [--gpu] [--force] [--stock-libtensorflow]
 *
 * 1. Already working (the addon loads and runs an op in a child process) and linked against
 *    TensorFlow 2.21.0: done, in a second. An addon linked against another TensorFlow (an old
 *    stock 2.9.1 download, say) is replaced.
 * 2. A cached build for this exact package/Node combination: link it back in.
 * 3. The TensorFlow C library from the wheel through pip: its libtensorflow_cc.so.2 exports the C
 *    API and the wheel carries the C headers. Link them where the package's binding.gyp looks
 *    (deps/lib, deps/include) and build the addon with node-gyp; cache the build.
 * --stock-libtensorflow instead runs the package's own install script, which downloads
 * libtensorflow 2.9.1 from Google's storage: UNTESTED with this project, only when asked for.
 * The decisions are in native-backend-plan.mjs (tested by test/backend.test.ts). Each step says
 * what it does; a failure names the step and what to do. Uses only Node built-ins (it runs before
 * anything else is known to work).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import {
  TF_VERSION,
  USAGE,
  WHEELS,
  WHEEL_PIP_TARGET,
  cudaRequirements,
  judgeInstalled,
  parseArgs,
  planSteps,
  stockWarning,
  wheelProblem,
} from './native-backend-plan.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = process.env.DCF_CACHE_DIR ?? path.join(ROOT, '.cache');
const { gpu: GPU, force: FORCE, stock: STOCK, unknown } = parseArgs(process.argv.slice(2));
if (unknown.length) fail('arguments', `unknown argument(s) ${unknown.join(' ')}`, USAGE);

/** The wheel whose C library we build against (pip name, file, pinned sha256). Same TensorFlow for both. */
const WHEEL = GPU ? WHEELS.gpu : WHEELS.cpu;
const PKG = GPU ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';

const require = createRequire(path.join(ROOT, 'package.json'));
let pkgDir;
try {
  pkgDir = path.dirname(require.resolve(`${PKG}/package.json`));
} catch {
  fail(
    'locate package',
    `${PKG} is not installed in node_modules`,
    GPU ? `npm install --no-save ${PKG}@4.22.0 (npm run setup -- --gpu does it)` : 'npm ci',
  );
}
const pkgVersion = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
const depsLib = path.join(pkgDir, 'deps', 'lib');
const depsInclude = path.join(pkgDir, 'deps', 'include');
/** node-pre-gyp puts the addon in lib/napi-v<highest N-API the package lists that Node has>. */
const napi = Math.max(
  ...JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).binary.napi_versions.filter(
    (v) => v <= Number(process.versions.napi),
  ),
);
const addonPath = path.join(pkgDir, 'lib', `napi-v${napi}`, 'tfjs_binding.node');
const buildKey = `${PKG.replace('@tensorflow/', '')}-${pkgVersion}-napi${napi}-${process.platform}-${process.arch}`;

function say(msg) {
  console.log(`[native-backend] ${msg}`);
}

function fail(step, what, todo) {
  console.error(`\n[native-backend] FAILED at step "${step}": ${what}`);
  if (todo) console.error(`[native-backend] What to do: ${todo}`);
  process.exit(1);
}

/** Loads the package in a fresh process and runs one op: { ok: true, version } or { ok: false, error }. */
function probe() {
  // Node 23+ removed util.isNullOrUndefined / util.isArray (Node 22 warns on them), which tfjs-node
  // 4.22.0 calls on every op: put them back first, as lib/runtime/node-compat.ts does for the lab.
  const code = `
    process.env.TF_CPP_MIN_LOG_LEVEL = '2';
    const util = require('util');
    util.isNullOrUndefined = (v) => v === null || v === undefined;
    util.isArray = (v) => Array.isArray(v);
    const tf = require(${JSON.stringify(PKG)});
    const y = tf.conv2d(tf.ones([1, 4, 4, 2]), tf.ones([3, 3, 2, 1]), 1, 'valid').dataSync();
    if (tf.getBackend() !== 'tensorflow' || y[0] !== 18) throw new Error('wrong result from the native backend');
    console.log(tf.backend().binding.TF_Version);`;
  const r = spawnSync(process.execPath, ['-e', code], { cwd: ROOT, encoding: 'utf8' });
  if (r.status === 0) return { ok: true, version: r.stdout.trim().split('\n').pop() };
  if (r.signal) return { ok: false, error: `the loading process died with ${r.signal} (a damaged library?)` };
  const lines = (r.stderr || r.stdout || '').split('\n').filter((l) => /Error|error|cannot|undefined symbol/.test(l));
  return { ok: false, error: lines.slice(0, 3).join(' | ') || `exit ${r.status}` };
}

/** The libtensorflow version the package's own install script downloads (2.9.1 for 4.22.0). */
function stockVersion() {
  const constants = fs.readFileSync(path.join(pkgDir, 'scripts', 'deps-constants.js'), 'utf8');
  return /LIBTENSORFLOW_VERSION\s*=\s*'([^']+)'/.exec(constants)?.[1] ?? 'unknown';
}

function sha256File(file) {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 22);
  for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  fs.closeSync(fd);
  return hash.digest('hex');
}

function relLink(target, linkPath) {
  fs.rmSync(linkPath, { force: true, recursive: true });
  fs.symlinkSync(path.relative(path.dirname(linkPath), target), linkPath);
}

/** Step 4a: the C library and headers from the wheel, unpacked once into the cache. */
function provisionFromWheel() {
  const libDir = path.join(CACHE, `libtensorflow-${TF_VERSION}-${GPU ? 'gpu' : 'cpu'}`);
  const stamp = path.join(libDir, 'COMPLETE');
  if (fs.existsSync(stamp)) {
    say(`TensorFlow ${TF_VERSION} C library: cached in ${path.relative(ROOT, libDir)}`);
    return libDir;
  }
  const wheelDir = path.join(CACHE, 'wheels');
  fs.mkdirSync(wheelDir, { recursive: true });
  const wheel = path.join(wheelDir, WHEEL.file);
  if (!fs.existsSync(wheel)) {
    say(`downloading ${WHEEL.file} through pip (for its C library; ~270 MB, once)`);
    const python = process.env.PYTHON ?? 'python3';
    const args = ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', ...WHEEL_PIP_TARGET, '-d', wheelDir];
    args.push(`${WHEEL.name}==${TF_VERSION}`);
    const env = { PIP_RETRIES: '0', ...process.env };
    const r = spawnSync(python, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    if (r.status !== 0 || !fs.existsSync(wheel)) {
      fail(
        'download wheel',
        `pip could not download ${WHEEL.name}==${TF_VERSION} (${WHEEL.file})` +
          (GPU ? ': the pip index must carry the tensorflow wheel, not only tensorflow-cpu' : ''),
        `check that \`${python} ${args.join(' ')}\` works (a pip index or mirror that has it must be reachable), ` +
          `or put ${WHEEL.file} in ${wheelDir}`,
      );
    }
  }
  say(`checking the sha256 of ${WHEEL.file}`);
  const problem = wheelProblem(WHEEL, sha256File(wheel));
  if (problem) fail('check wheel', problem);
  say(`unpacking libtensorflow_cc.so.2, libtensorflow_framework.so.2 and the C headers from ${path.basename(wheel)}`);
  const tmp = `${libDir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  // The C API headers and the few non-C headers they include (status, tstring).
  const members = [
    'tensorflow/libtensorflow_cc.so.2',
    'tensorflow/libtensorflow_framework.so.2',
    'tensorflow/include/tensorflow/c/*',
    'tensorflow/include/xla/tsl/c/*',
    'tensorflow/include/tensorflow/core/platform/ctstring*',
    'tensorflow/include/tsl/platform/ctstring*',
  ];
  // The GPU wheel's metadata: the CUDA wheels it asks for as tensorflow[and-cuda].
  const metadata = `tensorflow-${TF_VERSION}.dist-info/METADATA`;
  if (GPU) members.push(metadata);
  try {
    execFileSync('unzip', ['-q', '-o', wheel, ...members, '-d', tmp], { stdio: 'inherit' });
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    fail(
      'unpack wheel',
      `unzip failed on ${wheel}: ${err.message}`,
      `delete ${wheel} and run again (apt-get install unzip if it is missing)`,
    );
  }
  fs.renameSync(path.join(tmp, 'tensorflow', 'include'), path.join(tmp, 'include'));
  fs.mkdirSync(path.join(tmp, 'lib'));
  for (const so of ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'])
    fs.renameSync(path.join(tmp, 'tensorflow', so), path.join(tmp, 'lib', so));
  fs.rmSync(path.join(tmp, 'tensorflow'), { recursive: true });
  if (GPU) {
    const reqs = cudaRequirements(fs.readFileSync(path.join(tmp, metadata), 'utf8'));
    fs.writeFileSync(path.join(tmp, 'cuda-requirements.txt'), `${reqs.join('\n')}\n`);
    fs.rmSync(path.join(tmp, path.dirname(metadata)), { recursive: true });
  }
  fs.writeFileSync(path.join(tmp, 'COMPLETE'), `${WHEEL.name}==${TF_VERSION} from ${WHEEL.file} (sha256 checked)\n`);
  fs.rmSync(libDir, { recursive: true, force: true });
  fs.renameSync(tmp, libDir);
  return libDir;
}

/** Step 4b: link the library where binding.gyp (-ltensorflow) and the addon's rpath look. */
function linkLibrary(libDir) {
  say(`linking the C library into ${path.relative(ROOT, path.join(pkgDir, 'deps'))}`);
  fs.rmSync(path.join(pkgDir, 'deps'), { recursive: true, force: true });
  fs.mkdirSync(depsLib, { recursive: true });
  relLink(path.join(libDir, 'include'), depsInclude);
  for (const so of ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'])
    relLink(path.join(libDir, 'lib', so), path.join(depsLib, so));
  // Build-time names (-ltensorflow -ltensorflow_framework) and the name install.js checks for.
  relLink(path.join(depsLib, 'libtensorflow_cc.so.2'), path.join(depsLib, 'libtensorflow.so'));
  relLink(path.join(depsLib, 'libtensorflow_framework.so.2'), path.join(depsLib, 'libtensorflow_framework.so'));
  relLink(path.join(depsLib, 'libtensorflow_cc.so.2'), path.join(depsLib, 'libtensorflow.so.2.9.1'));
  // Sizes of what was linked: lib/runtime/backend.ts checks them before loading, because a truncated
  // library kills the process in dlopen instead of throwing an error it could report.
  const manifest = { source: `${WHEEL.name}==${TF_VERSION}`, files: {} };
  for (const so of ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'])
    manifest.files[so] = fs.statSync(path.join(libDir, 'lib', so)).size;
  fs.writeFileSync(path.join(pkgDir, 'deps', 'dcf-manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Step 4c: compile the addon against the linked library. */
function buildAddon() {
  say('building the tfjs-node addon with node-gyp (about 30 s)');
  const preGyp = require.resolve('@mapbox/node-pre-gyp/bin/node-pre-gyp', { paths: [pkgDir] });
  // Build against the headers of the running Node where they are installed (as Debian's nodejs
  // and the official tarballs do), instead of node-gyp downloading them.
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const env = { ...process.env };
  if (!env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')))
    env.npm_config_nodedir = prefix;
  const r = spawnSync(process.execPath, [preGyp, 'install', '--build-from-source'], {
    cwd: pkgDir,
    encoding: 'utf8',
    env,
  });
  if (r.status !== 0) {
    const log = path.join(CACHE, 'native-build.log');
    fs.mkdirSync(CACHE, { recursive: true });
    fs.writeFileSync(log, `${r.stdout}\n${r.stderr}`);
    fail(
      'build addon',
      `node-gyp failed (log: ${path.relative(ROOT, log)})`,
      'it needs python3, make and g++ (apt-get install -y python3 make g++)',
    );
  }
}

function cacheAddon() {
  const dir = path.join(CACHE, 'addons', buildKey);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(addonPath, path.join(dir, 'tfjs_binding.node.tmp'));
  fs.renameSync(path.join(dir, 'tfjs_binding.node.tmp'), path.join(dir, 'tfjs_binding.node'));
}

function restoreCachedAddon(libDir) {
  const cached = path.join(CACHE, 'addons', buildKey, 'tfjs_binding.node');
  if (!fs.existsSync(cached) || !fs.existsSync(path.join(libDir, 'COMPLETE'))) return false;
  say(`restoring the cached addon build (${buildKey})`);
  linkLibrary(libDir);
  fs.mkdirSync(path.dirname(addonPath), { recursive: true });
  fs.copyFileSync(cached, addonPath);
  return true;
}

/** --stock-libtensorflow: the package's own install script (downloads from Google's storage). */
function stockInstall(wanted) {
  say(
    `--stock-libtensorflow: running ${PKG}'s own install (downloads libtensorflow ${wanted} from Google's storage; UNTESTED with this project)`,
  );
  // Our links in deps/ and an addon built against another library must not survive into it:
  // node-pre-gyp keeps an addon that is already there.
  fs.rmSync(path.join(pkgDir, 'deps'), { recursive: true, force: true });
  fs.rmSync(addonPath, { force: true });
  const r = spawnSync(process.execPath, ['scripts/install.js', GPU ? 'gpu' : 'cpu', 'download'], {
    cwd: pkgDir,
    encoding: 'utf8',
    timeout: Number(process.env.DCF_STOCK_INSTALL_TIMEOUT_MS ?? 600_000),
  });
  const installed = probe();
  if (r.status === 0 && judgeInstalled(installed, wanted).keep) return installed;
  const why =
    r.status === 0
      ? judgeInstalled(installed, wanted).reason
      : (
          (r.stderr || '').split('\n').find((l) => /Error|ENOTFOUND|ECONN|ETIMEDOUT|failed/.test(l)) ??
          `exit ${r.status ?? r.signal}`
        ).trim();
  fail(
    'stock download',
    `${PKG}'s own install did not give a working libtensorflow ${wanted}: ${why}`,
    'run `npm run setup` without --stock-libtensorflow: it builds against the tested TensorFlow ' +
      TF_VERSION +
      ' from the wheel',
  );
}

// ---------------------------------------------------------------------------------------------

const libDir = path.join(CACHE, `libtensorflow-${TF_VERSION}-${GPU ? 'gpu' : 'cpu'}`);
const wanted = STOCK ? stockVersion() : TF_VERSION;
say(
  `${PKG}@${pkgVersion}, Node ${process.version} (N-API ${napi}); wanted: TensorFlow ${wanted} ${STOCK ? "(the package's stock download, UNTESTED)" : `(the ${WHEEL.name} wheel's C library, tested)`}`,
);

const installed = FORCE ? null : probe();
if (installed) {
  const { keep, reason } = judgeInstalled(installed, wanted);
  if (!keep && (fs.existsSync(addonPath) || fs.existsSync(depsLib)))
    say(`the installed backend is not right: ${reason}; replacing it`);
}
const cached =
  fs.existsSync(path.join(CACHE, 'addons', buildKey, 'tfjs_binding.node')) &&
  fs.existsSync(path.join(libDir, 'COMPLETE'));

for (const step of planSteps({ stock: STOCK, force: FORCE, installed, wanted, cached })) {
  if (step === 'keep') {
    say(`ready: native backend loads, TensorFlow ${installed.version}`);
    if (STOCK) console.warn(`[native-backend] ${stockWarning(installed.version)}`);
    process.exit(0);
  }
  if (step === 'stock-download') {
    const done = stockInstall(wanted);
    say(`ready: native backend loads, TensorFlow ${done.version} (stock download)`);
    console.warn(`[native-backend] ${stockWarning(done.version)}`);
    process.exit(0);
  }
  if (step === 'restore-cache') {
    restoreCachedAddon(libDir);
    const restored = probe();
    const { keep, reason } = judgeInstalled(restored, wanted);
    if (keep) {
      say(`ready: native backend loads, TensorFlow ${restored.version}`);
      process.exit(0);
    }
    say(`the cached build is not right: ${reason}; rebuilding from the wheel`);
    fs.rmSync(libDir, { recursive: true, force: true });
    fs.rmSync(path.join(CACHE, 'addons', buildKey), { recursive: true, force: true });
  }
  if (step === 'build-from-wheel') {
    linkLibrary(provisionFromWheel());
    buildAddon();
    const built = probe();
    const { keep, reason } = judgeInstalled(built, wanted);
    if (!keep)
      fail(
        'verify',
        `the freshly built addon is not right: ${reason}`,
        `run with --force after deleting ${path.relative(ROOT, libDir)}`,
      );
    cacheAddon();
    say(`ready: native backend loads, TensorFlow ${built.version} (built against the ${WHEEL.name} wheel's C library)`);
    process.exit(0);
  }
}
