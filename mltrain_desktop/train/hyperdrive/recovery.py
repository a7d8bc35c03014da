"""Settling sweeps whose driver died: a new driver continues the sweep, or it ends saying why.

Called explicitly, like the runs' recovery (``Workspace.recover``): a sweep whose driver process is
gone gets a new driver started with ``--resume`` (only one client does it: the parent's
supervisor_pid is claimed first); a sweep that was being cancelled is ended Canceled, and one whose
settings cannot be read back is ended Failed; either way its unfinished children are cancelled.
"""
from __future__ import annotations

import json
import time

from ...adapters.process import is_same_process_alive
from ...domain.run_state import ACTIVE, RunStatus
from ...store import runs as run_rows
from ...store import sweeps

_GRACE_SECONDS = 10.0
_ACTIVE = {s.value for s in ACTIVE}


def end_sweep_without_driver(workspace, run_id: str, status: RunStatus, detail: str, error: str | None = None) -> None:
    """Ends a sweep that has no driver: cancels its unfinished children, then the parent gets ``status``."""
    from ...core.experiment import Experiment
    from ...core.runs import Run
    conn = workspace.db.conn
    name = run_rows.experiment_of(conn, run_id)
    exp = Experiment(workspace, name, _create=False)
    for child in sweeps.children(conn, run_id):
        if child["status"] in _ACTIVE:
            Run(exp, child["id"]).cancel(wait_seconds=0)
    fields = {"error": error} if error else {}
    run_rows.set_status(conn, run_id, status, detail, **fields)


def _settings_readable(conn, run_id: str) -> str | None:
    """None when the sweep's settings load again, else why not."""
    from .config import SweepSettings
    try:
        SweepSettings.from_dict(json.loads(run_rows.get(conn, run_id)["spec"])["hyperdrive"])
    except Exception as exc:  # noqa: BLE001 - any reason the sweep cannot go on is reported
        return f"{type(exc).__name__}: {exc}"
    return None


def recover_sweeps(workspace) -> list[str]:
    """Settles every unfinished sweep whose driver is gone; returns the ids of the sweeps it settled."""
    from .submit import spawn_driver
    conn = workspace.db.conn
    settled = []
    for run_id, _status, pid, started, created in sweeps.active_sweeps(conn):
        if is_same_process_alive(pid, started):
            continue
        if pid is None and time.time() - created < _GRACE_SECONDS:
            continue  # its submitter is about to record the driver it just started
        if pid == -1 or not run_rows.claim_supervisor(conn, run_id, pid):
            continue  # another client is starting a new driver
        if run_rows.cancel_requested(conn, run_id):
            end_sweep_without_driver(workspace, run_id, RunStatus.CANCELED, "canceled by the user")
        elif (why := _settings_readable(conn, run_id)) is not None:
            end_sweep_without_driver(workspace, run_id, RunStatus.FAILED, "sweep driver lost",
                                     error=f"the sweep's driver (pid {pid}) ended unexpectedly and the sweep could "
                                           f"not be continued: {why}. Its unfinished children were cancelled.")
        else:
            new_pid, create_time = spawn_driver(workspace.path, run_id, resume=True)
            run_rows.record_supervisor(conn, run_id, new_pid, create_time)
        settled.append(run_id)
    return settled
