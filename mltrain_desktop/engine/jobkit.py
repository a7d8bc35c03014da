"""The job kit: a copy of this package's source that jobs put on PYTHONPATH.

Jobs run in environments where the app is not installed (a virtual environment, a container),
so the engine copies the pure-Python package once per version into the workspace and points
``PYTHONPATH`` at it; ``from mltrain_desktop.core import Run`` then needs only the standard library.
A kit is named after the sources' names, sizes and modification times, so finding the current
one reads no file (it runs before every job starts).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

import mltrain_desktop


def _package_dir() -> Path:
    """The package's .py sources: next to the package, or (a packaged app, which holds only
    compiled modules) the copy the bundle ships as data in ``jobkit_src/mltrain_desktop``."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        shipped = Path(bundle) / "jobkit_src" / "mltrain_desktop"
        if (shipped / "run.py").is_file():
            return shipped
    return Path(mltrain_desktop.__file__).resolve().parent


PACKAGE_DIR = _package_dir()
_SKIP_DIRS = {"__pycache__", "gui"}


def _sources() -> list[Path]:
    out = []
    for root, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        out.extend(Path(root) / f for f in sorted(files) if f.endswith(".py"))
    return out


def _fingerprint(files: list[Path]) -> str:
    """16 hex digits from each source's path, size and modification time."""
    listing = []
    for f in files:
        st = f.stat()
        listing.append(f"{f.relative_to(PACKAGE_DIR).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}")
    data = "\n".join(listing).encode("utf-8", "surrogateescape")
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def jobkit_dir(workspace_dir: Path) -> Path:
    """Returns a folder holding ``mltrain_desktop/`` (the current source), creating it if needed."""
    files = _sources()
    dest = Path(workspace_dir) / "jobkit" / _fingerprint(files)
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
    except OSError:  # another process made it meanwhile, or an incomplete copy is in the way
        if not (dest / "mltrain_desktop" / "run.py").is_file():
            shutil.rmtree(dest, ignore_errors=True)
            try:
                os.replace(tmp, dest)
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
