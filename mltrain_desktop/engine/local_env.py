"""Python environments for local jobs: the base interpreter, or a venv per distinct package list.

A venv is built once per (interpreter, sorted pip packages) hash under ``<workspace>/envs`` and
reused. It is layered over the base interpreter's site-packages with a ``.pth`` file, so
TensorFlow from the base is visible and only the extra packages are installed.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from ..store import environments
from .backends.base import PrepareError


def env_hash(python: str, pip_packages: list[str]) -> str:
    import hashlib
    spec = {"python": os.path.realpath(python), "pip": sorted(pip_packages)}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _site_packages(python: str) -> list[str]:
    out = subprocess.run([python, "-c", "import site,sys; print('\\n'.join(site.getsitepackages()))"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise PrepareError(f"interpreter {python} does not run: {out.stderr.strip()[-500:]}")
    return [l for l in out.stdout.splitlines() if l.strip()]


def resolve_interpreter(workspace_dir: Path, db_conn, python: str | None, pip_packages: list[str],
                        log: Callable[[str], None], cancelled: Callable[[], bool] = lambda: False) -> tuple[str, str | None]:
    """Returns (interpreter path, environment hash or None for the bare interpreter)."""
    if not python and not getattr(sys, "frozen", False):
        python = sys.executable  # what default_python() says from source, without importing interpreters
    if not python:
        from ..adapters.interpreters import NoTensorFlowInterpreter, default_python
        try:
            python = default_python()  # from source: sys.executable; a packaged app: one with TensorFlow
        except NoTensorFlowInterpreter as exc:
            raise PrepareError(str(exc)) from exc
    base = python
    if not os.access(base, os.X_OK):
        raise PrepareError(f"interpreter {base} does not exist or is not executable; "
                           "set the compute target's python to a working interpreter")
    if not pip_packages:
        log(f"environment: interpreter {base} (no extra packages)")
        return base, None
    h = env_hash(base, pip_packages)
    root = Path(workspace_dir) / "envs"
    root.mkdir(parents=True, exist_ok=True)
    venv = root / h
    py = venv / "bin" / "python"
    with open(root / f"{h}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".complete").is_file():
            log(f"environment {h}: found in cache ({venv}), packages {pip_packages}")
            environments.touch(db_conn, h)
            return str(py), h
        shutil.rmtree(venv, ignore_errors=True)
        log(f"environment {h}: building a virtual environment with {pip_packages} over {base}")
        environments.start_build(db_conn, h, "venv", json.dumps({"python": base, "pip": sorted(pip_packages)}),
                                 str(venv))
        _run([base, "-m", "venv", "--without-pip", str(venv)], log, cancelled, "creating the virtual environment")
        site = _site_packages(str(py))[0]
        Path(site, "_mltrain_base.pth").write_text("\n".join(_site_packages(base)) + "\n")
        _run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
              "--progress-bar", "off", *pip_packages], log, cancelled,
             f"pip install {' '.join(pip_packages)}", cleanup=venv)
        (venv / ".complete").write_text(json.dumps({"built": time.time()}))
        environments.mark_ready(db_conn, h)
        log(f"environment {h}: ready")
        return str(py), h


def _run(argv: list[str], log, cancelled, what: str, cleanup: Path | None = None) -> None:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", start_new_session=True)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        log(line)
        tail = (tail + [line])[-15:]
        if cancelled():
            proc.kill()
            proc.wait()
            if cleanup:
                shutil.rmtree(cleanup, ignore_errors=True)
            raise PrepareError(f"canceled while {what}")
    rc = proc.wait()
    if rc != 0:
        if cleanup:
            shutil.rmtree(cleanup, ignore_errors=True)
        raise PrepareError(f"{what} failed (exit code {rc}):\n" + "\n".join(tail))
