"""Distribution settings for the estimator and ScriptRunConfig (the seed's runconfig module)."""
from __future__ import annotations

import dataclasses


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    return value


@dataclasses.dataclass
class MpiConfiguration:
    """An MPI (Horovod-style) job: Open MPI's mpirun starts node_count x process_count_per_node ranks."""

    process_count_per_node: int = 1
    node_count: int = 1

    def __post_init__(self):
        _positive("process_count_per_node", self.process_count_per_node)
        _positive("node_count", self.node_count)

    def to_dict(self) -> dict:
        return {"kind": "mpi", "process_count_per_node": self.process_count_per_node,
                "node_count": self.node_count}


@dataclasses.dataclass
class TensorflowConfiguration:
    """A TensorFlow parameter-server cluster: ps tasks, workers and one chief, each with TF_CONFIG."""

    worker_count: int = 1
    parameter_server_count: int = 1

    def __post_init__(self):
        _positive("worker_count", self.worker_count)
        _positive("parameter_server_count", self.parameter_server_count)

    def to_dict(self) -> dict:
        return {"kind": "parameter_server", "worker_count": self.worker_count,
                "parameter_server_count": self.parameter_server_count}


def distribution_from_dict(d: dict | None):
    if not d:
        return None
    kind = d.get("kind")
    if kind == "mpi":
        return MpiConfiguration(d.get("process_count_per_node", 1), d.get("node_count", 1))
    if kind == "parameter_server":
        return TensorflowConfiguration(d.get("worker_count", 1), d.get("parameter_server_count", 1))
    raise ValueError(f"unknown distribution kind {kind!r}; use 'mpi' or 'parameter_server'")
