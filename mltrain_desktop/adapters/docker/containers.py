"""The one hardened container builder: what every container mltrain starts (a job, a task, an endpoint) gets.

It runs as the user's uid:gid (not root), under an init process that reaps children and forwards
signals, with ``no-new-privileges``, never privileged, its log rotated (json-file, 3 x 100 MB), and
the CPU and memory limits when they are configured. Callers add what is theirs (image, command,
mounts, ports) but cannot take any of that away.
"""
from __future__ import annotations

import os

LOG_MAX_SIZE = "100m"
LOG_MAX_FILES = 3
HARDENING_KEYS = frozenset({"user", "init", "privileged", "security_opt", "log_config"})


def memory_limit(memory_gb) -> str:
    """A ``mem_limit`` value in MiB for a size in GiB ("1024m" for 1)."""
    return f"{int(float(memory_gb) * 1024)}m"


def hardened_options(uid: int | None = None, gid: int | None = None, cpus=None, memory_gb=None) -> dict:
    """The ``containers.create``/``run`` keyword arguments that harden a container (pure).

    uid/gid default to this process's; cpus and memory_gb (GiB) set limits when given.
    """
    import docker
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    options = {
        "user": f"{uid}:{gid}",
        "init": True,
        "privileged": False,
        "security_opt": ["no-new-privileges"],
        "log_config": docker.types.LogConfig(type="json-file",
                                             config={"max-size": LOG_MAX_SIZE, "max-file": str(LOG_MAX_FILES)}),
    }
    if cpus:
        options["nano_cpus"] = int(float(cpus) * 1e9)
    if memory_gb:
        options["mem_limit"] = memory_limit(memory_gb)
    return options


def container_kwargs(image: str, labels: dict[str, str], *, uid: int | None = None, gid: int | None = None,
                     cpus=None, memory_gb=None, **rest) -> dict:
    """Keyword arguments of a hardened, detached container from ``image`` with ``labels`` (pure)."""
    overriding = sorted(HARDENING_KEYS & set(rest))
    if overriding:
        raise ValueError(f"container_kwargs: {', '.join(overriding)} are set by the hardening, not by callers")
    return {"image": image, "labels": dict(labels), "detach": True,
            **hardened_options(uid, gid, cpus, memory_gb), **rest}


__all__ = ["hardened_options", "container_kwargs", "memory_limit", "LOG_MAX_SIZE", "LOG_MAX_FILES"]
