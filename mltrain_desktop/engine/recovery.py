"""Settling what crashed clients left: runs whose supervisor died, containers whose owner is over.

A Docker run whose container may still be alive gets a new supervisor that reattaches; any
other unfinished run whose supervisor is gone is marked Failed with that reason, and what is
left of its job is stopped.
"""
from __future__ import annotations

import json

from ..store import runs, targets
from ..store.runs import set_status
from ..adapters.process import is_same_process_alive, stop_tree
from ..domain.run_state import RunStatus

REATTACH_KINDS = {"docker"}
_GRACE_SECONDS = 10.0


def recover_orphaned_runs(workspace_dir, conn) -> list[str]:
    """Settles every unfinished run whose supervisor is gone; returns the ids it settled."""
    import time
    rows = runs.active_runs_with_target_kind(conn)
    settled = []
    for run_id, status, pid, started, backend_state, created, kind in rows:
        if is_same_process_alive(pid, started):
            continue
        if pid is None and time.time() - created < _GRACE_SECONDS:
            continue  # a submitter is about to record the supervisor it just started
        state = json.loads(backend_state or "{}")
        if kind in REATTACH_KINDS and status == "Running" and state:
            # Claim it so that only one client restarts the supervisor.
            if runs.claim_supervisor(conn, run_id, pid):
                from .supervisor import spawn
                new_pid, ct = spawn(workspace_dir, run_id, reattach=True)
                runs.record_supervisor(conn, run_id, new_pid, ct)
                settled.append(run_id)
            continue
        if state.get("pid"):
            if is_same_process_alive(state.get("pid"), state.get("create_time")):
                stop_tree(state["pid"], grace=3.0)
        if set_status(conn, run_id, RunStatus.FAILED, "supervisor lost",
                      error=f"the run's supervisor process (pid {pid}) ended unexpectedly while the run was "
                            f"{status}; the job was stopped. Submit the run again."):
            settled.append(run_id)
    _clean_docker_orphans(workspace_dir, conn)
    return settled


def _clean_docker_orphans(workspace_dir, conn) -> None:
    """Removes containers of this workspace whose runs are already over (never raises)."""
    cfgs = targets.configs_of_kind(conn, "docker")
    if not cfgs:
        return
    from .backends.docker import clean_orphans_for_targets
    live = runs.active_run_ids(conn)
    clean_orphans_for_targets(workspace_dir, cfgs, live)
    from .backends.docker_cluster import clean_orphan_networks_for_targets
    clean_orphan_networks_for_targets(workspace_dir, cfgs, live)
