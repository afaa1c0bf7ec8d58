#!/usr/bin/env bash
# Fails fast, with the command to run, when `npm run setup` has not been run in this clone.
cd "$(dirname "$0")/.."
node scripts/platform.mjs || exit 1
missing=()
[ -d node_modules/@tensorflow/tfjs-node ] || missing+=("node_modules")
# npm ci (install scripts off) leaves the package without its native addon: set-up builds it.
[ ! -d node_modules/@tensorflow/tfjs-node ] || compgen -G 'node_modules/@tensorflow/tfjs-node/lib/napi-v*/tfjs_binding.node' >/dev/null \
  || missing+=("the native TensorFlow addon")
# nodejs-polars' binary: its platform package, or (Node 20, see setup.sh) the file set-up put in its bin/.
[ -d node_modules/nodejs-polars ] && ! [ -d node_modules/nodejs-polars-linux-x64-gnu ] \
  && ! [ -f node_modules/nodejs-polars/bin/nodejs-polars.linux-x64-gnu.node ] && missing+=("the nodejs-polars binary")
[ -x .venv/bin/jupyter ] || missing+=(".venv (JupyterLab)")
[ -x .venv/bin/tensorboard ] || missing+=(".venv's tensorboard")
[ -f data/cifar-10-batches-bin/test_batch.bin ] || missing+=("CIFAR-10 in data/cifar-10-batches-bin")
if [ ${#missing[@]} -gt 0 ]; then
  echo "error: set-up is incomplete (missing: ${missing[*]}). Run: npm run setup" >&2
  exit 1
fi
