"""Backends run a prepared job somewhere: local processes, Docker containers, MPI, parameter-server clusters,
Slurm batch jobs.

``backend_for`` picks one from the compute target's kind and the run's distribution; each
backend module is imported only when a run needs it.
"""
from __future__ import annotations

import importlib

from ...domain.distribution import MPI, PARAMETER_SERVER
from .base import Backend, PrepareError

# (target kind, distribution kind or None) -> "module:Class"
_BACKENDS = {
    ("local", None): "mltrain_desktop.engine.backends.local:LocalBackend",
    ("local", MPI): "mltrain_desktop.engine.backends.mpi:MpiBackend",
    ("local", PARAMETER_SERVER): "mltrain_desktop.engine.backends.parameter_server:ParameterServerBackend",
    ("docker", None): "mltrain_desktop.engine.backends.docker:DockerBackend",
    ("docker", MPI): "mltrain_desktop.engine.backends.docker_cluster:DockerMpiBackend",
    ("docker", PARAMETER_SERVER): "mltrain_desktop.engine.backends.docker_cluster:DockerParameterServerBackend",
    ("slurm", None): "mltrain_desktop.engine.backends.slurm:SlurmBackend",
    ("slurm", MPI): "mltrain_desktop.engine.backends.slurm:SlurmBackend",
    ("slurm", PARAMETER_SERVER): "mltrain_desktop.engine.backends.slurm:SlurmBackend",
}


def backend_for(target: dict, spec: dict) -> Backend:
    dist = (spec.get("distribution") or {}).get("kind")
    key = (target["kind"], dist)
    ref = _BACKENDS.get(key)
    if ref is None:
        raise PrepareError(
            f"compute target {target['name']!r} of kind {target['kind']!r} cannot run "
            f"{dist or 'single-process'} jobs; choose another target or distribution"
        )
    module_name, cls_name = ref.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise PrepareError(
                f"{dist or 'single-process'} jobs on {target['kind']} targets are not available "
                "in this build of MLTrain Desktop"
            ) from exc
        raise
    return getattr(module, cls_name)(target)
