#!/usr/bin/env bash
# npm run lab [-- jupyter options]: JupyterLab on the project with the tslab kernel ready.
cd "$(dirname "$0")/.."
extra=()
[ "$(id -u)" = 0 ] && extra+=(--allow-root)
exec .venv/bin/jupyter lab --notebook-dir="$PWD" --ServerApp.default_url=/lab/tree/notebooks "${extra[@]}" "$@"
