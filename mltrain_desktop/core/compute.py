"""Compute targets: named places where runs execute (the seed's ComputeTarget and AmlCompute).

Kinds: ``local`` (processes on this machine) and ``docker`` (a Docker engine). Creating a
target validates its configuration and probes it (engine reachable, GPUs found).
"""
from __future__ import annotations

import importlib

from ..store import runs as run_rows
from ..store import targets
from .compute_target import ComputeTargetException
from .signatures import strict_kwargs

# kind -> module that provides probe(config) -> dict and validate(config) -> dict
KIND_MODULES = {
    "local": "mltrain_desktop.core.compute_local",
    "docker": "mltrain_desktop.core.compute_docker",
    "slurm": "mltrain_desktop.core.compute_slurm",
}
DEFAULT_TARGET = "local"
# AmlCompute.provisioning_configuration arguments that mean nothing on this machine (one warning each).
AML_ONLY = ("admin_username", "admin_user_password", "admin_user_ssh_key", "vnet_resourcegroup_name", "vnet_name",
            "subnet_name", "tags", "description", "remote_login_port_public_access", "identity_type", "identity_id",
            "location", "enable_node_public_ip")


def _kind_module(kind: str):
    if kind not in KIND_MODULES:
        raise ComputeTargetException(f"unknown compute kind {kind!r}; known kinds: {', '.join(KIND_MODULES)}")
    return importlib.import_module(KIND_MODULES[kind])


class ComputeTargetProvisioningConfiguration:
    def __init__(self, kind: str, **config):
        self.kind = kind
        self.config = config

    def to_dict(self) -> dict:
        return dict(self.config)

    def __repr__(self) -> str:
        return f"ProvisioningConfiguration(kind={self.kind!r}, {self.config!r})"


class LocalCompute:
    """Processes on this machine. ``max_concurrent_runs`` bounds how many run at once."""

    @staticmethod
    def provisioning_configuration(max_concurrent_runs: int = 1, python: str | None = None,
                                   hosts: list | str | None = None, oversubscribe: bool = False,
                                   slots: int | None = None, startup_timeout_s: float | None = None,
                                   base_port: int | None = None, mpirun: str | None = None,
                                   mpirun_args: list | None = None, ssh_connect_timeout_s: int | None = None,
                                   ssh_config: str | None = None, ssh_key: str | None = None,
                                   ) -> ComputeTargetProvisioningConfiguration:
        """``hosts`` (SSH-reachable, for MPI jobs): [{'host': 'h1', 'slots': 2}], ['h1:2'] or hostfile text;
        ``ssh_config`` / ``ssh_key``: the ssh_config file and private key mpirun's ssh uses for them."""
        cfg = {"max_concurrent_runs": max_concurrent_runs}
        optional = {"python": python, "hosts": hosts, "slots": slots, "startup_timeout_s": startup_timeout_s,
                    "base_port": base_port, "mpirun": mpirun, "mpirun_args": mpirun_args,
                    "ssh_connect_timeout_s": ssh_connect_timeout_s, "ssh_config": ssh_config, "ssh_key": ssh_key}
        cfg.update({k: v for k, v in optional.items() if v is not None and v != []})
        if oversubscribe:
            cfg["oversubscribe"] = True
        return ComputeTargetProvisioningConfiguration("local", **cfg)


class AmlCompute:
    """The seed's cluster, here a local target: ``max_nodes`` bounds concurrent runs; vm_size is recorded."""

    @staticmethod
    @strict_kwargs(ignored=AML_ONLY)
    def provisioning_configuration(vm_size: str = "", max_nodes: int = 1, min_nodes: int = 0,
                                   vm_priority: str = "dedicated", idle_seconds_before_scaledown=None,
                                   **_azure_only) -> ComputeTargetProvisioningConfiguration:
        return ComputeTargetProvisioningConfiguration("local", max_concurrent_runs=max_nodes, vm_size=vm_size,
                                                      azure_type="AmlCompute")


class ComputeTarget:
    """``ComputeTarget(workspace=ws, name=...)`` finds a target or raises ComputeTargetException."""

    def __init__(self, workspace, name: str):
        row = targets.get(workspace.db.conn, name)
        if row is None:
            known = targets.names(workspace.db.conn)
            raise ComputeTargetException(
                f"no compute target named {name!r} in this workspace (targets: {', '.join(known) or 'none'}); "
                "create it with ComputeTarget.create(ws, name, config)")
        self.workspace = workspace
        self.name, self.kind = row["name"], row["kind"]
        self.config = row["config"]
        self.provisioning_state = row["state"]
        self.state_detail = row["detail"]
        self.probe_result = row["probe"]
        self.created = row["created"]

    @property
    def type(self) -> str:
        """'AmlCompute' for a target made with AmlCompute.provisioning_configuration, else its kind."""
        return self.config.get("azure_type") or self.kind

    @property
    def gpus(self) -> list:
        return self.probe_result.get("gpus") or (self.probe_result.get("engine") or {}).get("gpus") or []

    @property
    def max_concurrent_runs(self) -> int:
        return int(self.config.get("max_concurrent_runs", 1) or 1)

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "config": self.config, "probe": self.probe_result,
                "state": self.provisioning_state, "detail": self.state_detail}

    @staticmethod
    def create(workspace, name: str, provisioning_configuration, overwrite: bool = False) -> "ComputeTarget":
        """Creates and probes a target. A target of that name with the same configuration is returned as it
        is; with another configuration it is refused unless ``overwrite=True`` (or use ``ct.update(...)``)."""
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise ComputeTargetException("a compute target needs a name of 1 to 64 characters")
        cfg = provisioning_configuration
        kind = cfg.kind
        module = _kind_module(kind)
        try:
            config = module.validate(cfg.to_dict())
        except ValueError as exc:
            raise ComputeTargetException(f"compute target {name!r}: {exc}") from exc
        existing = targets.get(workspace.db.conn, name)
        if existing is not None and not overwrite:
            if existing["kind"] == kind and existing["config"] == config:
                same = ComputeTarget(workspace, name)
                if same.provisioning_state == "Failed":  # probed again: the engine or interpreter may be back
                    same.refresh_state()
                return same
            raise ComputeTargetException(
                f"a compute target named {name!r} already exists with another configuration "
                f"({existing['kind']} {existing['config']}, asked: {kind} {config}); change it with "
                f"ComputeTarget(ws, {name!r}).update(...), pass overwrite=True to replace it, or choose another name")
        targets.put_creating(workspace.db.conn, name, kind, config)
        target = ComputeTarget(workspace, name)
        target.refresh_state()
        return target

    def refresh_state(self) -> dict:
        """Probes the target again (engine reachable, GPUs) and stores the result."""
        try:
            result = _kind_module(self.kind).probe(self.config)
        except Exception as exc:  # noqa: BLE001 - a probe failure is a state, not a crash
            result = {"state": "Failed", "detail": f"probe failed: {exc}"}
        targets.record_probe(self.workspace.db.conn, self.name, result.get("state", "Failed"),
                             result.get("detail", ""), result)
        self.provisioning_state = result.get("state", "Failed")
        self.state_detail = result.get("detail", "")
        self.probe_result = result
        return result

    def wait_for_completion(self, show_output: bool = False, min_node_count=None, timeout_in_minutes: int = 20,
                            is_delete_operation: bool = False) -> None:
        if show_output:
            print(f"Compute target {self.name} ({self.kind}): {self.provisioning_state}. {self.state_detail}",
                  flush=True)
        if self.provisioning_state == "Failed":
            raise ComputeTargetException(f"compute target {self.name!r} is not usable: {self.state_detail}")

    def get_status(self) -> "ComputeStatus":
        """The provisioning state (compares and prints as before) with ``.serialize()`` as Azure gives it."""
        return ComputeStatus(self)

    def update(self, **changes) -> "ComputeTarget":
        config = {**self.config, **changes}
        return ComputeTarget.create(self.workspace, self.name,
                                    ComputeTargetProvisioningConfiguration(self.kind, **config), overwrite=True)

    def delete(self) -> None:
        conn = self.workspace.db.conn
        # a sweep on this target holds it between two children too
        busy = run_rows.unfinished_on(conn, self.name) + run_rows.unfinished_on(conn, "hyperdrive:" + self.name)
        if busy:
            raise ComputeTargetException(f"compute target {self.name!r} has {busy} unfinished run(s); "
                                         "cancel them first")
        targets.delete(self.workspace.db.conn, self.name)

    @staticmethod
    def list(workspace) -> dict[str, "ComputeTarget"]:
        return {n: ComputeTarget(workspace, n) for n in targets.names(workspace.db.conn)}

    def __repr__(self) -> str:
        return f"ComputeTarget(name={self.name!r}, kind={self.kind!r}, state={self.provisioning_state!r})"


class ComputeStatus(str):
    """A target's provisioning state as a str, plus ``serialize()``: the dict the seed's notebooks print."""

    def __new__(cls, target: "ComputeTarget"):
        obj = super().__new__(cls, target.provisioning_state)
        obj._target = target
        return obj

    @property
    def provisioning_state(self) -> str:
        return str(self)

    def serialize(self) -> dict:
        t = self._target
        nodes = t.max_concurrent_runs
        busy = min(nodes, run_rows.unfinished_on(t.workspace.db.conn, t.name))
        return {"currentNodeCount": nodes, "targetNodeCount": nodes, "provisioningState": str(self),
                "nodeStateCounts": {"idleNodeCount": nodes - busy, "runningNodeCount": busy, "preparingNodeCount": 0,
                                    "unusableNodeCount": 0 if str(self) != "Failed" else nodes,
                                    "leavingNodeCount": 0, "preemptedNodeCount": 0},
                "vmSize": t.config.get("vm_size") or "local", "type": t.type, "detail": t.state_detail,
                "gpus": len(t.gpus)}


def ensure_default_local_target(workspace) -> None:
    """Every workspace starts with a ``local`` target (one run at a time, the current interpreter)."""
    if not targets.exists(workspace.db.conn, DEFAULT_TARGET):
        ComputeTarget.create(workspace, DEFAULT_TARGET, LocalCompute.provisioning_configuration(max_concurrent_runs=2))


__all__ = ["ComputeTarget", "AmlCompute", "LocalCompute", "ComputeTargetException", "ComputeStatus",
           "ComputeTargetProvisioningConfiguration", "ensure_default_local_target"]
