"""Prints (or returns) a hash of everything that goes into the bundle, to skip rebuilding it.

``packaging/build.sh`` stores it next to the bundle (``dist/mltrain-desktop.source-hash``) and
``tests/packaging/test_bundle.py`` rebuilds only when it changed. Standard library only.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INPUTS = ("mltrain_desktop", "resources", "packaging", "pyproject.toml")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
SKIP_FILES = {"_build_info.py"}
SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", "~")


def files(repo: Path = REPO) -> list[Path]:
    out = []
    for name in INPUTS:
        top = repo / name
        if top.is_file():
            out.append(top)
            continue
        for root, dirs, fnames in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
            for f in sorted(fnames):
                if f in SKIP_FILES or f.endswith(SKIP_SUFFIXES) or f.startswith("."):
                    continue
                out.append(Path(root) / f)
    return out


def source_hash(repo: Path = REPO) -> str:
    h = hashlib.sha256()
    for f in files(repo):
        rel = f.relative_to(repo).as_posix()
        h.update(rel.encode() + b"\0")
        try:
            h.update(f.read_bytes())
        except OSError:  # a file removed while hashing: the hash is stale anyway
            continue
        h.update(b"\0")
    return h.hexdigest()[:32]


if __name__ == "__main__":
    print(source_hash(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO))
