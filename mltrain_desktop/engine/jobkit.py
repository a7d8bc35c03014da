"""The job kit: a copy of this package's source that jobs put on PYTHONPATH.

Jobs run in environments where the app is not installed (a virtual environment, a container),
so the engine copies the pure-Python package once per version into the workspace and points
``PYTHONPATH`` at it; ``from mltrain_desktop.core import Run`` then needs only the standard library.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import mltrain_desktop

PACKAGE_DIR = Path(mltrain_desktop.__file__).resolve().parent
_SKIP_DIRS = {"__pycache__", "gui"}


def _sources() -> list[Path]:
    out = []
    for root, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        out.extend(Path(root) / f for f in sorted(files) if f.endswith(".py"))
    return out


def jobkit_dir(workspace_dir: Path) -> Path:
    """Returns a folder holding ``mltrain_desktop/`` (the current source), creating it if needed."""
    files = _sources()
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(PACKAGE_DIR)).encode())
        h.update(f.read_bytes())
    dest = Path(workspace_dir) / "jobkit" / h.hexdigest()[:16]
    if (dest / "mltrain_desktop" / "run.py").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".kit-"))
    for f in files:
        target = tmp / "mltrain_desktop" / f.relative_to(PACKAGE_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
    try:
        os.replace(tmp, dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
