"""The ``local`` compute kind: processes on this machine, with a cap on concurrent runs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import psutil

KIND = "local"


def list_gpus() -> list[dict]:
    """GPUs from nvidia-smi, or [] where there is none (or no driver)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=index,name,memory.total,uuid", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode != 0:
        return []
    gpus = []
    for line in out.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 4:
            gpus.append({"index": int(parts[0]), "name": parts[1], "memory_mb": int(float(parts[2])), "uuid": parts[3]})
    return gpus


def validate(config: dict) -> dict:
    n = config.get("max_concurrent_runs", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"max_concurrent_runs (max_nodes) must be a whole number of at least 1, got {n!r}")
    py = config.get("python")
    if py is not None and not (isinstance(py, str) and py):
        raise ValueError("python must be the path of an interpreter")
    hosts = config.get("hosts") or []
    if not isinstance(hosts, list):
        raise ValueError("hosts must be a list of {'host': name, 'slots': n}")
    return config


def probe(config: dict) -> dict:
    """Checks the target can run jobs: interpreter present, GPUs listed."""
    py = config.get("python") or sys.executable
    detail = []
    state = "Succeeded"
    if not os.access(py, os.X_OK):
        state = "Failed"
        detail.append(f"interpreter {py} is not an executable file; set python= to one that exists")
    gpus = list_gpus()
    detail.append(f"{psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.1f} GiB memory, "
                  f"{len(gpus)} GPU(s)" + (": " + ", ".join(g["name"] for g in gpus) if gpus else ""))
    return {"state": state, "detail": "; ".join(detail), "gpus": gpus, "python": py,
            "cpus": psutil.cpu_count(), "memory_bytes": psutil.virtual_memory().total}
