"""What a client does on opening a workspace: find runs whose supervisor died and settle them.

A Docker run whose container may still be alive gets a new supervisor that reattaches; any
other unfinished run whose supervisor is gone is marked Failed with that reason, and what is
left of its job is stopped.
"""
from __future__ import annotations

import json

from ..core.run_store import ACTIVE_STATES, set_status
from .process import is_same_process_alive, stop_tree
from .status import RunStatus

REATTACH_KINDS = {"docker"}
_GRACE_SECONDS = 10.0


def recover_orphaned_runs(workspace) -> list[str]:
    import time
    conn = workspace.db.conn
    rows = conn.execute(
        f"SELECT r.id, r.status, r.supervisor_pid, r.supervisor_started, r.backend_state, r.created, "
        f"COALESCE(t.kind, '') FROM runs r LEFT JOIN compute_targets t ON t.name = r.compute "
        f"WHERE r.status IN ({','.join('?' * len(ACTIVE_STATES))})", ACTIVE_STATES).fetchall()
    settled = []
    for run_id, status, pid, started, backend_state, created, kind in rows:
        if is_same_process_alive(pid, started):
            continue
        if pid is None and time.time() - created < _GRACE_SECONDS:
            continue  # a submitter is about to record the supervisor it just started
        state = json.loads(backend_state or "{}")
        if kind in REATTACH_KINDS and status == "Running" and state:
            # Claim it so that only one client restarts the supervisor.
            claimed = conn.execute("UPDATE runs SET supervisor_pid=-1 WHERE id=? AND supervisor_pid IS ?",
                                   [run_id, pid]).rowcount
            if claimed:
                from .supervisor import spawn
                new_pid, ct = spawn(workspace.path, run_id, reattach=True)
                conn.execute("UPDATE runs SET supervisor_pid=?, supervisor_started=? WHERE id=?", [new_pid, ct, run_id])
                settled.append(run_id)
            continue
        if state.get("pid"):
            if is_same_process_alive(state.get("pid"), state.get("create_time")):
                stop_tree(state["pid"], grace=3.0)
        if set_status(conn, run_id, RunStatus.FAILED, "supervisor lost",
                      error=f"the run's supervisor process (pid {pid}) ended unexpectedly while the run was "
                            f"{status}; the job was stopped. Submit the run again."):
            settled.append(run_id)
    _clean_docker_orphans(workspace, conn)
    return settled


def _clean_docker_orphans(workspace, conn) -> None:
    """Removes containers of this workspace whose runs are already over (never raises)."""
    cfgs = [json.loads(c) for (c,) in conn.execute("SELECT config FROM compute_targets WHERE kind='docker'")]
    if not cfgs:
        return
    from .backends.docker import clean_orphans_for_targets
    live = [r for (r,) in conn.execute(f"SELECT id FROM runs WHERE status IN ({','.join('?' * len(ACTIVE_STATES))})",
                                       ACTIVE_STATES)]
    clean_orphans_for_targets(workspace.path, cfgs, live)
    from .backends.docker_cluster import clean_orphan_networks_for_targets
    clean_orphan_networks_for_targets(workspace.path, cfgs, live)
