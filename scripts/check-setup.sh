#!/usr/bin/env bash
# Fails fast, with the command to run, when `npm run setup` has not been run in this clone.
cd "$(dirname "$0")/.."
missing=()
[ -d node_modules/@tensorflow/tfjs-node ] || missing+=("node_modules")
[ -x .venv/bin/jupyter ] || missing+=(".venv (JupyterLab)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "error: set-up is incomplete (missing: ${missing[*]}). Run: npm run setup" >&2
  exit 1
fi
