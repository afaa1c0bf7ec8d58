#!/usr/bin/env python3
"""Locks the Python requirements: every package, transitive ones included, pinned with its sha256.

    python3 scripts/lock-python.py        requirements.in -> requirements.txt,
                                          requirements-torch.in -> requirements-torch.txt

What `pip-compile --generate-hashes` does, with pip alone (pip-tools is not on every index): pip
resolves the top-level requirements without installing anything (`pip install --dry-run
--ignore-installed --report`) and its report names each package's file and sha256. The two .in
files are resolved together first, so that a package both need gets one version; requirements.txt
is then requirements.in's share of that resolution and requirements-torch.txt the rest.
`npm run setup` installs the locks with `pip install --require-hashes --no-deps`.

The hashes are those of the files pip picked here: CPython 3.11 wheels for Linux x86-64 (what set-up
supports; scripts/platform.mjs). Standard library only; runs the pip of the Python that runs it.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCKS = [("requirements.in", "requirements.txt"), ("requirements-torch.in", "requirements-torch.txt")]


def resolve(requirement_files, constraints=None):
    """{normalised name: (name, version, sha256)} of everything pip would install for these files."""
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", report]
        for f in requirement_files:
            cmd += ["-r", os.path.join(ROOT, f)]
        if constraints:
            cfile = os.path.join(tmp, "constraints.txt")
            with open(cfile, "w") as out:
                out.writelines(f"{name}=={version}\n" for name, version, _ in constraints.values())
            cmd += ["-c", cfile]
        subprocess.run(cmd, check=True, env={**os.environ, "PIP_RETRIES": "0"})
        with open(report) as f:
            installs = json.load(f)["install"]
    out = {}
    for item in installs:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        info = item["download_info"]
        sha = info.get("archive_info", {}).get("hashes", {}).get("sha256")
        if sha is None:
            sha = file_sha256(info["url"], name)
        out[normalise(name)] = (name, version, sha)
    return out


def file_sha256(url, name):
    """The sha256 of a local file pip found without a hash (a --find-links folder)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "file":
        sys.exit(f"lock-python: the index gave no sha256 for {name} ({url}); cannot lock it")
    h = hashlib.sha256()
    with open(urllib.request.url2pathname(parsed.path), "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def normalise(name):
    return name.lower().replace("_", "-").replace(".", "-")


def write_lock(lock, source, packages):
    lines = [
        f"# The lock of {source}: every package pinned with its sha256. Do not edit: change {source} and run",
        "# `python3 scripts/lock-python.py`. Made for CPython 3.11 on Linux x86-64; set-up installs it with",
        "# `pip install --require-hashes --no-deps`.",
    ]
    for key in sorted(packages):
        name, version, sha = packages[key]
        lines += [f"{name}=={version} \\", f"    --hash=sha256:{sha}"]
    with open(os.path.join(ROOT, lock), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"lock-python: {lock}: {len(packages)} packages")


def main():
    if sys.version_info[:2] != (3, 11):
        sys.exit("lock-python: run it with CPython 3.11 (the Python set-up supports): "
                 "the hashes are those of 3.11 wheels")
    everything = resolve([src for src, _ in LOCKS])
    base = resolve([LOCKS[0][0]], constraints=everything)
    write_lock(LOCKS[0][1], LOCKS[0][0], base)
    write_lock(LOCKS[1][1], LOCKS[1][0], {k: v for k, v in everything.items() if k not in base})


if __name__ == "__main__":
    main()
