#!/usr/bin/env bash
# One-time set-up of a fresh clone; safe to run again (each step skips what is already done).
#
#   npm run setup                 everything the lab and the tests need
#   npm run setup -- --torch      also PyTorch in .venv (golden fixtures, benchmark reference)
#   npm run setup -- --gpu        also @tensorflow/tfjs-node-gpu (needs NVIDIA driver, CUDA, cuDNN)
#   npm run setup -- --no-data    skip the CIFAR-10 download/conversion
#   npm run setup -- --stock-libtensorflow
#                                 the native backend on tfjs-node's own libtensorflow 2.9.1 download
#                                 instead of the tested TensorFlow 2.21 (UNTESTED; for comparison only)
#
# Steps: npm packages → native TensorFlow backend → Python venv with JupyterLab → tslab kernel →
# Chromium (figure export, browser tests) → CIFAR-10.
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

step "check tools"
# The Node range package.json's engines states: the one the project is tested on.
node -e 'const [M, m] = process.versions.node.split(".").map(Number); if (M < 20 || (M === 20 && m < 19)) { console.error(`Node ${process.version} is too old: the lab is tested on Node 20.19 and newer`); process.exit(1) }'
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 9), "Python 3.9+ needed"; import venv' \
  || { echo "python3 (3.9+) with the venv module is needed: apt-get install -y python3 python3-venv" >&2; exit 1; }
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

step "native TensorFlow backend (CPU)"
node scripts/native-backend.mjs "${NATIVE_ARGS[@]}"
if [ $WITH_GPU = 1 ]; then
  step "native TensorFlow backend (GPU)"
  [ -d node_modules/@tensorflow/tfjs-node-gpu ] || npm install --no-save --no-audit --no-fund @tensorflow/tfjs-node-gpu@4.22.0
  node scripts/native-backend.mjs --gpu "${NATIVE_ARGS[@]}"
fi

step "Python environment .venv (JupyterLab, nbclient, plotly$([ $WITH_TORCH = 1 ] && echo ', torch'))"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
REQS=(requirements.txt)
[ $WITH_TORCH = 1 ] && REQS+=(requirements-torch.txt)
REQ_SUM=$(sha "${REQS[@]}")
if [ -f .venv/.dcf-req-sum ] && grep -qx "$REQ_SUM" .venv/.dcf-req-sum; then
  echo ".venv already has ${REQS[*]}"
else
  PIP_RETRIES=${PIP_RETRIES:-0} .venv/bin/python -m pip install --quiet --disable-pip-version-check $(printf -- '-r %s ' "${REQS[@]}")
  echo "$REQ_SUM" >> .venv/.dcf-req-sum
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
