#!/usr/bin/env bash
# One-time set-up of a fresh clone; safe to run again (each step skips what is already done).
#
#   npm run setup                 everything the lab and the tests need
#   npm run setup -- --torch      also PyTorch in .venv (golden fixtures, benchmark reference)
#   npm run setup -- --gpu        also @tensorflow/tfjs-node-gpu and the CUDA wheels (needs an NVIDIA driver)
#   npm run setup -- --no-data    skip the CIFAR-10 download/conversion
#   npm run setup -- --stock-libtensorflow
#                                 the native backend on tfjs-node's own libtensorflow 2.9.1 download
#                                 instead of the tested TensorFlow 2.21 (UNTESTED; for comparison only)
#
# Supported: Linux x86-64, Node 20.19+/22/24/26 (package.json engines), CPython 3.11 (scripts/platform.mjs).
# Steps: npm packages → native TensorFlow backend → Python venv with JupyterLab (locked, hash-checked) →
# tslab kernel → Chromium (figure export, browser tests) → CIFAR-10.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

WITH_TORCH=0 WITH_GPU=0 WITH_DATA=1 NATIVE_ARGS=()
for arg in "$@"; do
  case "$arg" in
    --torch) WITH_TORCH=1 ;;
    --gpu) WITH_GPU=1 ;;
    --no-data) WITH_DATA=0 ;;
    --stock-libtensorflow) NATIVE_ARGS+=(--stock-libtensorflow) ;;
    *) echo "setup: unknown option '$arg' (options: --torch --gpu --no-data --stock-libtensorflow)" >&2; exit 2 ;;
  esac
done

STEP=""
step() { STEP=$1; printf '\n== setup: %s\n' "$1"; }
trap 'rc=$?; [ $rc -ne 0 ] && printf "\nsetup FAILED at step: %s (exit %s). Fix the error above and run npm run setup again; finished steps are skipped.\n" "$STEP" "$rc" >&2' EXIT
sha() { sha256sum "$@" | sha256sum | cut -c1-16; }

# nodejs-polars loads its binary from an optional platform package. On Node 20, npm skips
# nodejs-polars-linux-x64-gnu (it declares Node >= 22, and npm drops optional packages whose
# engines do not match), and would remove it again at its next install; the binary works on
# Node 20 (tested). nodejs-polars first looks for the binary in its own bin/ folder, which npm
# leaves alone: put it there, from the lock's version and integrity, as npm would have fetched it.
polars_binary() {
  node -e 'require("nodejs-polars")' 2>/dev/null && return 0
  local pkg=nodejs-polars-linux-x64-gnu
  local version integrity tmp
  version=$(node -p "require('./package-lock.json').packages['node_modules/$pkg'].version")
  integrity=$(node -p "require('./package-lock.json').packages['node_modules/$pkg'].integrity")
  echo "npm skipped $pkg@$version on Node $(node --version) (the package declares Node >= 22):" \
    "putting its binary into node_modules/nodejs-polars/bin"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack "$pkg@$version" --silent >/dev/null)
  local sum
  sum=$(node -p "'sha512-' + require('crypto').createHash('sha512')
    .update(require('fs').readFileSync('$tmp/$pkg-$version.tgz')).digest('base64')")
  [ "$sum" = "$integrity" ] \
    || { echo "$pkg-$version.tgz does not match package-lock.json's integrity" >&2; rm -rf "$tmp"; exit 1; }
  tar -xzf "$tmp/$pkg-$version.tgz" -C "$tmp" package/nodejs-polars.linux-x64-gnu.node
  mv "$tmp/package/nodejs-polars.linux-x64-gnu.node" node_modules/nodejs-polars/bin/
  rm -rf "$tmp"
  node -e 'require("nodejs-polars")' || { echo "nodejs-polars does not load" >&2; exit 1; }
}

step "check platform and tools"
# Linux x86-64 and a Node line of package.json's engines, or one message saying what is supported.
node scripts/platform.mjs
PYTHON=${PYTHON:-python3}
# requirements.txt is locked with the sha256 of CPython 3.11 wheels (scripts/lock-python.py).
"$PYTHON" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "CPython 3.11 with the venv module is needed (the Python packages are locked for 3.11):" \
       "apt-get install -y python3.11 python3.11-venv, then PYTHON=python3.11 npm run setup" >&2; exit 1; }
for tool in make g++ unzip; do
  command -v $tool >/dev/null || { echo "$tool is needed to build the native backend: apt-get install -y make g++ unzip" >&2; exit 1; }
done
echo "node $(node --version), npm $(npm --version), $("$PYTHON" --version)"

step "npm packages (npm ci, install scripts off: see .npmrc)"
LOCK_SUM=$(sha package-lock.json)
if [ -f node_modules/.dcf-lock-sum ] && [ "$(cat node_modules/.dcf-lock-sum)" = "$LOCK_SUM" ]; then
  echo "node_modules matches package-lock.json"
else
  npm ci --no-audit --no-fund
  echo "$LOCK_SUM" > node_modules/.dcf-lock-sum
fi
polars_binary

step "native TensorFlow backend (CPU)"
node scripts/native-backend.mjs "${NATIVE_ARGS[@]}"
if [ $WITH_GPU = 1 ]; then
  step "native TensorFlow backend (GPU)"
  GPU_PKG=node_modules/@tensorflow/tfjs-node-gpu
  if [ -d $GPU_PKG ]; then
    node scripts/native-backend.mjs --gpu "${NATIVE_ARGS[@]}"
  else
    npm install --no-save --no-audit --no-fund @tensorflow/tfjs-node-gpu@4.22.0
    # A GPU package left without its addon would only slow every start (auto asks it for a GPU): take it out again.
    node scripts/native-backend.mjs --gpu "${NATIVE_ARGS[@]}" \
      || { rm -rf $GPU_PKG; echo "removed $GPU_PKG again: set-up could not build its backend (above)" >&2; exit 1; }
  fi
fi

step "Python environment .venv (JupyterLab, nbclient, plotly$([ $WITH_TORCH = 1 ] && echo ', torch'))"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
REQS=(requirements.txt)
[ $WITH_TORCH = 1 ] && REQS+=(requirements-torch.txt)
REQ_SUM=$(sha "${REQS[@]}")
if [ -f .venv/.dcf-req-sum ] && grep -qx "$REQ_SUM" .venv/.dcf-req-sum; then
  echo ".venv already has ${REQS[*]}"
else
  # Locked: every package pinned with its sha256 (scripts/lock-python.py); pip refuses any other file.
  PIP_RETRIES=${PIP_RETRIES:-0} .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    --require-hashes --no-deps $(printf -- '-r %s ' "${REQS[@]}")
  echo "$REQ_SUM" >> .venv/.dcf-req-sum
fi

if [ $WITH_GPU = 1 ]; then
  step "CUDA wheels for TensorFlow's GPU build (tensorflow[and-cuda]: nvidia-*-cu12) in .venv"
  TF_VERSION=$(node --input-type=module \
    -e "import { TF_VERSION } from './scripts/native-backend-plan.mjs'; console.log(TF_VERSION)")
  CUDA_REQS="${DCF_CACHE_DIR:-.cache}/libtensorflow-$TF_VERSION-gpu/cuda-requirements.txt"
  # Pinned by TensorFlow's own metadata (written by native-backend.mjs from the tensorflow wheel),
  # not hash-locked: no index this project was set up from carries the cu12 wheels.
  PIP_RETRIES=${PIP_RETRIES:-0} .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$CUDA_REQS" \
    || { echo "pip could not install the CUDA wheels of $CUDA_REQS:" \
         "the pip index must carry the nvidia-*-cu12 wheels" >&2; exit 1; }
  CUDA_DIRS=$(ls -d "$ROOT"/.venv/lib/python3*/site-packages/nvidia/*/lib | paste -sd:)
  echo "TensorFlow finds the CUDA libraries only on LD_LIBRARY_PATH; before npm start / npm test / npm run lab:"
  echo "  export LD_LIBRARY_PATH=$CUDA_DIRS\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
fi

step "tslab kernel 'tslab' registered in .venv"
KERNEL=.venv/share/jupyter/kernels/tslab/kernel.json
if [ -f "$KERNEL" ] && grep -q "\"$ROOT/node_modules/.bin/tslab\"" "$KERNEL"; then
  echo "kernel 'tslab' already registered ($KERNEL)"
else
  PATH="$ROOT/.venv/bin:$PATH" node_modules/.bin/tslab install --sys-prefix --python .venv/bin/python --binary "$ROOT/node_modules/.bin/tslab"
fi
[ -L notebooks/lib ] || ln -sfn ../lib notebooks/lib

step "Chromium (figure export, report PDF, browser tests)"
if command -v chromium >/dev/null; then
  echo "$(chromium --version 2>/dev/null)"
elif [ "${DCF_SKIP_BROWSER:-0}" = 1 ]; then
  echo "skipped (DCF_SKIP_BROWSER=1): figure export and npm run test:e2e will not work"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  chromium --version
else
  echo "Chromium is missing. Install it (Debian/Ubuntu: sudo apt-get install -y chromium), or set DCF_SKIP_BROWSER=1 to go on without figure export." >&2
  exit 1
fi

if [ $WITH_DATA = 1 ]; then
  step "CIFAR-10 in data/cifar-10-batches-bin"
  if [ -f scripts/data.ts ]; then node_modules/.bin/tsx scripts/data.ts; else echo "(no data script yet)"; fi
fi

trap - EXIT
printf '\nsetup complete. Next: npm test | npm start (whole lab) | npm run lab (JupyterLab)\n'
