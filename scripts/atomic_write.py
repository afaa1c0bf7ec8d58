"""Atomic file writes for the Python helpers (execute_notebook.py, render_report.py).

The file is written under a temporary name in its own folder and renamed over the target, so a
reader sees the old file or the new one, never half of one, and a failed write leaves the old one.
"""
import os
import tempfile
from typing import Callable, TextIO


def write_atomic(path: str, write: Callable[[TextIO], None]) -> None:
    """Calls write(f) on a temporary file beside `path`, then renames it to `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are ordinary files
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
