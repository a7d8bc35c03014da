"""The GPUs of this machine as nvidia-smi lists them."""
from __future__ import annotations

import shutil
import subprocess


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
