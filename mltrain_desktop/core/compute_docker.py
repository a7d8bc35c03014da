"""The ``docker`` compute kind as the SDK offers it: ``DockerCompute.provisioning_configuration``.

Creating the target (``ComputeTarget.create``) validates the description and probes the engine
(see ``mltrain_desktop.adapters.docker.engine``).
"""
from __future__ import annotations

from ..adapters.docker.engine import DEFAULT_IMAGE, DEFAULT_SHM_SIZE, KIND, DockerEngineError, probe, validate


def _provisioning_class():
    from .compute import ComputeTargetProvisioningConfiguration
    return ComputeTargetProvisioningConfiguration


class DockerCompute:
    """A Docker engine as a compute target (the seed's AmlCompute, here containers on an engine)."""

    @staticmethod
    def provisioning_configuration(base_url: str | None = None, tls: bool | dict = False,
                                   image: str | None = None, shm_size: str = DEFAULT_SHM_SIZE,
                                   cpus: float | None = None, memory_gb: float | None = None,
                                   gpus: str | int | list = "all", ca_certificates: str | None = None,
                                   pip_index_url: str | None = None, network: str | None = None,
                                   max_concurrent_runs: int = 1, mpi_launcher: str | None = None):
        """Describes a Docker target.

        base_url: None (DOCKER_HOST or the default socket), ``unix:///path``, ``tcp://host:2376``
            (use ``tls``) or ``ssh://user@host``.
        tls: True (certificates from DOCKER_CERT_PATH) or {"ca_cert", "client_cert", "client_key",
            "verify"} file paths for a tcp:// engine.
        image: the base image runs use unless the run names one (default mltrain-tf:2.21).
        shm_size, cpus, memory_gb: container limits (a run may override them).
        gpus: what use_gpu=True runs get: "all", a count, or a list of device ids/UUIDs.
        ca_certificates: a PEM bundle the environment build trusts (networks that intercept TLS).
        pip_index_url: the index the environment build installs pip packages from.
        network: the container network; "host" only when you ask for it.
        mpi_launcher: how MPI-configured runs start their ranks: "containers" (the default: one
            container per rank, each with its TF_CONFIG; no mpirun) or "mpirun" (node_count node
            containers running sshd, and Open MPI's mpirun starting the ranks on them over SSH, as
            on a cluster, which is what Horovod needs; the image gets an OpenSSH + Open MPI layer,
            built once).
        """
        cfg: dict = {"shm_size": shm_size, "gpus": gpus, "max_concurrent_runs": max_concurrent_runs}
        for key, value in (("base_url", base_url), ("image", image), ("cpus", cpus),
                           ("memory_gb", memory_gb), ("ca_certificates", ca_certificates),
                           ("pip_index_url", pip_index_url), ("network", network),
                           ("mpi_launcher", mpi_launcher)):
            if value is not None:
                cfg[key] = value
        if tls:
            cfg["tls"] = tls
        return _provisioning_class()("docker", **cfg)


__all__ = ["DockerCompute", "DockerEngineError", "DEFAULT_IMAGE", "KIND", "probe", "validate"]
