"""The one label namespace of mltrain's Docker objects: which workspace they belong to and who owns them.

Every container (and network) mltrain makes carries the workspace label and an owner: a run, an
endpoint or an image build, named by the owner kind and id labels. The clean-up removes only what
carries an owner whose life is over; containers without these labels are never touched.
"""
from __future__ import annotations

from pathlib import Path

WORKSPACE = "mltrain.workspace"
RUN = "mltrain.run"
TARGET = "mltrain.target"
ROLE = "mltrain.role"
TASK = "mltrain.task"
ENDPOINT = "mltrain.endpoint"
OWNER_KIND = "mltrain.owner.kind"
OWNER_ID = "mltrain.owner.id"

OWNER_RUN = "run"
OWNER_ENDPOINT = "endpoint"
OWNER_BUILD = "build"
OWNER_KINDS = (OWNER_RUN, OWNER_ENDPOINT, OWNER_BUILD)


def workspace_value(workspace_dir) -> str:
    """The workspace label's value: the workspace folder's resolved path."""
    return str(Path(workspace_dir).resolve())


def owner_labels(workspace_dir, kind: str, owner_id: str) -> dict[str, str]:
    if kind not in OWNER_KINDS:
        raise ValueError(f"owner kind {kind!r} is not one of {', '.join(OWNER_KINDS)}")
    return {WORKSPACE: workspace_value(workspace_dir), OWNER_KIND: kind, OWNER_ID: str(owner_id)}


def run_labels(workspace_dir, run_id: str, target_name: str, role: str) -> dict[str, str]:
    """Labels of a run's container or network (``role``: job, task, network)."""
    return {**owner_labels(workspace_dir, OWNER_RUN, run_id), RUN: run_id, TARGET: str(target_name), ROLE: role}


def endpoint_labels(workspace_dir, name: str) -> dict[str, str]:
    """Labels of an endpoint's container."""
    return {**owner_labels(workspace_dir, OWNER_ENDPOINT, name), ENDPOINT: name}


def owner_of(labels: dict | None) -> tuple[str, str] | None:
    """(kind, id) of the owner the labels name, or None when they name none.

    Containers made before the owner labels existed are read by their run or endpoint label.
    """
    labels = labels or {}
    kind, owner_id = labels.get(OWNER_KIND), labels.get(OWNER_ID)
    if kind in OWNER_KINDS and owner_id:
        return kind, owner_id
    if kind is None and labels.get(RUN):
        return OWNER_RUN, labels[RUN]
    if kind is None and labels.get(ENDPOINT):
        return OWNER_ENDPOINT, labels[ENDPOINT]
    return None


def workspace_filters(workspace_dir, more: dict[str, str] | None = None) -> dict:
    """A ``filters`` argument selecting this workspace's objects (and those with the ``more`` labels)."""
    labels = [f"{WORKSPACE}={workspace_value(workspace_dir)}"]
    labels += [f"{key}={value}" for key, value in (more or {}).items()]
    return {"label": labels}


__all__ = ["WORKSPACE", "RUN", "TARGET", "ROLE", "TASK", "ENDPOINT", "OWNER_KIND", "OWNER_ID", "OWNER_RUN",
           "OWNER_ENDPOINT", "OWNER_BUILD", "workspace_value", "owner_labels", "run_labels", "endpoint_labels",
           "owner_of", "workspace_filters"]
