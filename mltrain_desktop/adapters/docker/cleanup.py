"""The one Docker clean-up: removes only this workspace's containers whose owner is over.

A container is removed when it carries this workspace's label and an owner (see ``labels``) whose
life has ended: a run that is not active any more (or no longer exists), an endpoint that was
deleted. Containers of live runs and endpoints, of image builds, of other workspaces, and
containers without mltrain's labels are never touched.
"""
from __future__ import annotations

from . import labels as lb
from .engine import for_each_engine
from ...store import endpoints as endpoint_rows
from ...store import runs as run_rows


def owner_is_over_in(conn):
    """A ``(kind, id) -> bool`` test reading the workspace database once: is that owner's life over?"""
    live_runs = set(run_rows.active_run_ids(conn))
    endpoints = set(endpoint_rows.names(conn))

    def is_over(kind: str, owner_id: str) -> bool:
        if kind == lb.OWNER_RUN:
            return owner_id not in live_runs
        if kind == lb.OWNER_ENDPOINT:
            return owner_id not in endpoints
        return False  # a build's container ends with its build
    return is_over


def clean_containers(api, workspace_dir, owner_is_over) -> list[str]:
    """Removes this workspace's containers whose owner ``owner_is_over(kind, id)``; returns their names."""
    ws = lb.workspace_value(workspace_dir)
    removed = []
    for c in api.containers(all=True, filters=lb.workspace_filters(workspace_dir)):
        labels = c.get("Labels") or {}
        owner = lb.owner_of(labels)
        if labels.get(lb.WORKSPACE) != ws or owner is None or not owner_is_over(*owner):
            continue
        try:
            api.remove_container(c["Id"], force=True)
            removed.append((c.get("Names") or [c["Id"][:12]])[0].lstrip("/"))
        except Exception:  # noqa: BLE001 - gone already, or the engine went away
            continue
    return removed


def clean_workspace(workspace_dir, conn, target_configs: list[dict], timeout: float = 3.0) -> list[str]:
    """:func:`clean_containers` on each distinct engine of the workspace's docker targets; never raises.

    Meant for recovery, after unfinished runs were settled (reattached or failed). An engine that
    does not answer within ``timeout`` seconds is skipped.
    """
    is_over = owner_is_over_in(conn)
    return for_each_engine(target_configs, lambda api: clean_containers(api, workspace_dir, is_over), timeout)


__all__ = ["clean_containers", "clean_workspace", "owner_is_over_in"]
