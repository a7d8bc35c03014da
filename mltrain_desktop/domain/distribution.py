"""The distribution settings of a run (MPI ranks, parameter-server tasks) and their one validation.

Every layer that takes these settings (the SDK's MpiConfiguration / TensorflowConfiguration, the
run spec, the process and container backends) asks this module, so one rule and one wording hold
everywhere. Errors are ``DistributionError``, a ``ValueError``; a backend turns one into its
PrepareError. Standard library only.
"""
from __future__ import annotations

import dataclasses

from .errors import UserErrorException

MPI = "mpi"
PARAMETER_SERVER = "parameter_server"
KINDS = (MPI, PARAMETER_SERVER)
DEFAULT_STARTUP_TIMEOUT_S = 120.0


class DistributionError(UserErrorException):
    """Distribution settings that cannot run; the message names the setting and the value given."""


def whole_count(name: str, value) -> int:
    """``value`` when it is a whole number of at least 1 (not a bool), else DistributionError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DistributionError(f"{name} must be a whole number of at least 1, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class MpiDistribution:
    """node_count x process_count_per_node ranks, rank 0 first."""

    process_count_per_node: int = 1
    node_count: int = 1
    kind = MPI

    def __post_init__(self):
        whole_count("process_count_per_node", self.process_count_per_node)
        whole_count("node_count", self.node_count)

    @classmethod
    def from_settings(cls, settings: dict | None) -> MpiDistribution:
        d = settings or {}
        return cls(d.get("process_count_per_node", 1), d.get("node_count", 1))

    @property
    def rank_count(self) -> int:
        return self.node_count * self.process_count_per_node

    def tasks(self) -> list[tuple[None, int]]:
        """``(None, rank)`` for every rank: an MPI rank has no task type."""
        return [(None, r) for r in range(self.rank_count)]

    def to_dict(self) -> dict:
        return {"kind": MPI, "process_count_per_node": self.process_count_per_node, "node_count": self.node_count}


@dataclasses.dataclass(frozen=True)
class PsDistribution:
    """parameter_server_count ps tasks, worker_count workers and one chief."""

    worker_count: int = 1
    parameter_server_count: int = 1
    kind = PARAMETER_SERVER

    def __post_init__(self):
        whole_count("worker_count", self.worker_count)
        whole_count("parameter_server_count", self.parameter_server_count)

    @classmethod
    def from_settings(cls, settings: dict | None) -> PsDistribution:
        d = settings or {}
        return cls(d.get("worker_count", 1), d.get("parameter_server_count", 1))

    def tasks(self) -> list[tuple[str, int]]:
        """``(type, index)`` in start order: the ps tasks, the workers, then the chief."""
        return ([("ps", i) for i in range(self.parameter_server_count)]
                + [("worker", i) for i in range(self.worker_count)] + [("chief", 0)])

    def to_dict(self) -> dict:
        return {"kind": PARAMETER_SERVER, "worker_count": self.worker_count,
                "parameter_server_count": self.parameter_server_count}


Distribution = MpiDistribution | PsDistribution


def validate_distribution(settings: dict | None) -> Distribution | None:
    """The settings of a run spec (``{"kind": "mpi", ...}``) as a checked value; None: one process.

    Missing counts are 1. Raises DistributionError for an unknown kind or a bad count.
    """
    if not settings:
        return None
    if not isinstance(settings, dict):
        raise DistributionError(f"distribution settings must be a dict such as {{'kind': 'mpi', "
                                f"'process_count_per_node': 2}}, got {settings!r}")
    kind = settings.get("kind")
    if kind == MPI:
        return MpiDistribution.from_settings(settings)
    if kind == PARAMETER_SERVER:
        return PsDistribution.from_settings(settings)
    raise DistributionError(f"unknown distribution kind {kind!r}; use 'mpi' or 'parameter_server'")


def _given(count) -> bool:
    return count not in (None, 1)


def with_counts(distribution: Distribution | None, node_count=1, process_count_per_node=1) -> Distribution | None:
    """The estimator's own ``node_count`` / ``process_count_per_node`` arguments applied to its distribution.

    They override an MPI distribution's counts (when other than 1), are ignored by a parameter-server
    one, and are refused without a distribution.
    """
    if distribution is None:
        if _given(node_count) or _given(process_count_per_node):
            raise DistributionError("node_count/process_count_per_node need distributed_training=MpiConfiguration() "
                                    "or TensorflowConfiguration()")
        return None
    if isinstance(distribution, MpiDistribution):
        return MpiDistribution(
            process_count_per_node if _given(process_count_per_node) else distribution.process_count_per_node,
            node_count if _given(node_count) else distribution.node_count)
    return distribution


def startup_timeout_s(config: dict | None) -> float:
    """A compute target's ``startup_timeout_s`` (default 120): how long every task has to join its cluster."""
    value = (config or {}).get("startup_timeout_s", DEFAULT_STARTUP_TIMEOUT_S)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise DistributionError(f"startup_timeout_s in the compute target's config must be a positive "
                                f"number of seconds, got {value!r}")
    return float(value)


__all__ = ["DEFAULT_STARTUP_TIMEOUT_S", "KINDS", "MPI", "PARAMETER_SERVER", "Distribution", "DistributionError",
           "MpiDistribution", "PsDistribution", "startup_timeout_s", "validate_distribution", "whole_count",
           "with_counts"]
