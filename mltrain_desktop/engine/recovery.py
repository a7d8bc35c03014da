"""Settling what crashed clients left: runs whose supervisor died, containers whose owner is over.

A Docker run whose container may still be alive gets a new supervisor that reattaches; any
other unfinished run whose supervisor is gone is settled in this order: every process its job
state records is stopped (the job's own, mpirun's, each parameter-server task's, and whatever
still carries the job's token), the metrics the job flushed since the supervisor's last
ingestion are ingested, and the run is marked Failed with that reason.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..store import runs, targets
from ..store.metrics import ingest_file
from ..store.runs import set_status
from ..adapters.process import is_same_process_alive, tree
from .backends.mpi import kill_job_processes, stop_processes
from ..domain.run_state import RunStatus

REATTACH_KINDS = {"docker", "slurm"}  # their job outlives a supervisor: a new one reattaches
_GRACE_SECONDS = 10.0
CLAIM_SECONDS = 30.0  # a client that claimed a run has this long to record the supervisor it starts


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
        if pid == -1 and started and time.time() - started < CLAIM_SECONDS:
            continue  # another client claimed it and is starting its new supervisor
        state = json.loads(backend_state or "{}")
        held = kind == "slurm" and status == "Queued"  # submitted, and still held by Slurm's scheduler
        if kind in REATTACH_KINDS and (status == "Running" or held) and state:
            # Claim it so that only one client restarts the supervisor.
            if runs.claim_supervisor(conn, run_id, pid):
                from .supervisor import spawn
                new_pid, ct = spawn(workspace_dir, run_id, reattach=True)
                runs.record_supervisor(conn, run_id, new_pid, ct)
                settled.append(run_id)
            continue
        stop_recorded_job(state)
        ingest_leftover_metrics(workspace_dir, conn, run_id)
        if set_status(conn, run_id, RunStatus.FAILED, "supervisor lost",
                      error=f"the run's supervisor process (pid {pid}) ended unexpectedly while the run was "
                            f"{status}; the job was stopped. Submit the run again."):
            settled.append(run_id)
    _clean_docker_orphans(workspace_dir, conn)
    return settled


def stop_recorded_job(state: dict, grace: float = 3.0) -> list[int]:
    """Stops every process tree the job's state records, then what still carries its token; returns the pids.

    A local job records ``pid`` (an MPI job: mpirun's), a parameter-server job one ``pid`` per task in
    ``tasks``; each is stopped only while it is the same process (pid and create time).
    """
    recorded = [state, *(t for t in state.get("tasks") or [] if isinstance(t, dict))]
    procs = {}
    for r in recorded:
        if r.get("pid") and is_same_process_alive(r["pid"], r.get("create_time")):
            procs.update((p.pid, p) for p in tree(r["pid"]))
    stop_processes(procs.values(), grace)
    swept = kill_job_processes(state["token"]) if state.get("token") else []
    return sorted(set(procs) | set(swept))


def ingest_leftover_metrics(workspace_dir, conn, run_id: str) -> None:
    """Ingests what the run's metrics files hold beyond the last ingestion (its supervisor died before)."""
    logs = Path(workspace_dir) / "runs" / run_id / "logs"
    for path in [logs / "metrics.jsonl", *sorted(logs.glob("metrics.*.jsonl"))]:
        try:
            ingest_file(conn, run_id, path)
        except (OSError, ValueError):
            continue  # an unreadable file: the rest still count


def _clean_docker_orphans(workspace_dir, conn) -> None:
    """Removes containers of this workspace whose owner (run or endpoint) is over, and the networks
    of finished runs (never raises)."""
    cfgs = targets.configs_of_kind(conn, "docker")
    if not cfgs:
        return
    from ..adapters.docker.cleanup import clean_workspace
    clean_workspace(workspace_dir, conn, cfgs)  # only containers whose run or endpoint is over
    live = runs.active_run_ids(conn)
    from .backends.docker_cluster import clean_orphan_networks_for_targets
    clean_orphan_networks_for_targets(workspace_dir, cfgs, live)
