"""Distribution settings for the estimator and ScriptRunConfig (the seed's runconfig module).

The rules live in :mod:`mltrain_desktop.domain.distribution`; these are the seed's names for them.
"""
from __future__ import annotations

import dataclasses

from ..domain import distribution as dd


@dataclasses.dataclass
class MpiConfiguration:
    """An MPI (Horovod-style) job: Open MPI's mpirun starts node_count x process_count_per_node ranks."""

    process_count_per_node: int = 1
    node_count: int = 1

    def __post_init__(self):
        self.checked()

    def checked(self) -> dd.MpiDistribution:
        return dd.MpiDistribution(self.process_count_per_node, self.node_count)

    def to_dict(self) -> dict:
        return self.checked().to_dict()


@dataclasses.dataclass
class TensorflowConfiguration:
    """A TensorFlow parameter-server cluster: ps tasks, workers and one chief, each with TF_CONFIG."""

    worker_count: int = 1
    parameter_server_count: int = 1

    def __post_init__(self):
        self.checked()

    def checked(self) -> dd.PsDistribution:
        return dd.PsDistribution(self.worker_count, self.parameter_server_count)

    def to_dict(self) -> dict:
        return self.checked().to_dict()


def distribution_from_dict(d: dict | None):
    """A run spec's distribution settings as MpiConfiguration / TensorflowConfiguration (None: one process)."""
    dist = dd.validate_distribution(d)
    if isinstance(dist, dd.MpiDistribution):
        return MpiConfiguration(dist.process_count_per_node, dist.node_count)
    if isinstance(dist, dd.PsDistribution):
        return TensorflowConfiguration(dist.worker_count, dist.parameter_server_count)
    return None
