"""The ``local`` compute kind: processes on this machine, with a cap on concurrent runs."""
from __future__ import annotations

import os

import psutil

from ..adapters.gpus import list_gpus

KIND = "local"


def validate(config: dict) -> dict:
    n = config.get("max_concurrent_runs", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"max_concurrent_runs (max_nodes) must be a whole number of at least 1, got {n!r}")
    py = config.get("python")
    if py is not None and not (isinstance(py, str) and py):
        raise ValueError("python must be the path of an interpreter")
    from ..adapters.mpirun import parse_hosts
    parse_hosts(config.get("hosts"))  # HostsError is a ValueError naming the bad entry
    for key in ("slots", "ssh_connect_timeout_s"):
        v = config.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{key} must be a whole number of at least 1, got {v!r}")
    v = config.get("startup_timeout_s")
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
        raise ValueError(f"startup_timeout_s must be a positive number of seconds, got {v!r}")
    v = config.get("base_port")
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1024 <= v < 65536):
        raise ValueError(f"base_port must be a port number from 1024 to 65535, got {v!r}")
    if not isinstance(config.get("oversubscribe", False), bool):
        raise ValueError("oversubscribe must be True or False")
    if config.get("mpirun") is not None and not isinstance(config["mpirun"], str):
        raise ValueError("mpirun must be the path of Open MPI's mpirun")
    args = config.get("mpirun_args")
    if args is not None and not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
        raise ValueError("mpirun_args must be a list of strings")
    for key in ("ssh_config", "ssh_key"):
        v = config.get(key)
        if v is not None and not (isinstance(v, str) and os.path.isfile(os.path.expanduser(v))):
            raise ValueError(f"{key} must be the path of an existing file on this machine, got {v!r}")
    return config


def probe(config: dict) -> dict:
    """Checks the target can run jobs: interpreter present (and whether it has TensorFlow), GPUs listed."""
    from ..adapters import interpreters
    detail = []
    state = "Succeeded"
    tf = {"tensorflow": False, "tensorflow_version": None, "make_python": interpreters.make_command()}
    py = config.get("python")
    if not py:
        try:
            py = interpreters.default_python()  # from source: this interpreter; packaged: one with TensorFlow
        except interpreters.NoTensorFlowInterpreter as exc:
            py = None
            state = "Failed"
            detail.append(str(exc).replace("\n", " "))
    if py and not os.access(py, os.X_OK):
        state = "Failed"
        detail.append(f"interpreter {py} is not an executable file; set python= to one that exists")
    elif py:
        found = interpreters.check(py, "target")
        tf.update(tensorflow=found.has_tensorflow, tensorflow_version=found.tensorflow_version)
        if not found.runs:
            state = "Failed"
            detail.append(f"interpreter {found.describe()}; set python= to a working interpreter")
        elif found.has_tensorflow:
            detail.append(f"Python {found.python_version} with TensorFlow {found.tensorflow_version or ''}".rstrip())
        else:
            detail.append(f"interpreter {py} has no TensorFlow (jobs that import it will fail); make one with: "
                          f"{tf['make_python']}")
    gpus = list_gpus()
    detail.append(f"{psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.1f} GiB memory, "
                  f"{len(gpus)} GPU(s)" + (": " + ", ".join(g["name"] for g in gpus) if gpus else ""))
    return {"state": state, "detail": "; ".join(detail), "gpus": gpus, "python": py, **tf,
            "cpus": psutil.cpu_count(), "memory_bytes": psutil.virtual_memory().total}
