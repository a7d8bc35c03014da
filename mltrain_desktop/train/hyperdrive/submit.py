"""Submitting a sweep: the parent run (a HyperDriveRun) is recorded and its detached driver started.

The parent's row holds the child template (the run_config's spec) with the sweep's settings under
``spec['hyperdrive']``; its folder holds ``sweep.json`` (the same settings), the Optuna journal and
``logs/driver.log`` (what the driver says). The parent's ``compute`` is ``hyperdrive:<target>``, not
the target itself, so the parent never takes one of the target's slots.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

from ...core.errors import UserErrorException
from ...core.runs import SNAPSHOT_IGNORE
from ...domain.run_state import RunStatus
from ...store import runs as run_rows
from ...store import sweeps

SETTINGS_FILE = "sweep.json"
COMPUTE_PREFIX = "hyperdrive:"
SAVED_PYTHONPATH = "MLTRAIN_SWEEP_SUBMITTER_PYTHONPATH"  # JSON: the submitter's PYTHONPATH or null


def _check_resume_sources(experiment, config) -> None:
    """resume_from names earlier sweeps of this workspace with a compatible primary metric."""
    from .config import SweepSettings
    conn = experiment.workspace.db.conn
    for run_id in config.settings.resume_from:
        if not sweeps.is_sweep(conn, run_id):
            raise UserErrorException(f"resume_from names {run_id!r}, which is not a sweep (HyperDriveRun) of this "
                                     "workspace; `mltrain sweep list` shows the sweeps")
        spec = json.loads(run_rows.get(conn, run_id)["spec"])
        config.settings.check_warm_start_source(SweepSettings.from_dict(spec["hyperdrive"]), f"sweep {run_id}")
    for run_id in config.settings.resume_child_runs:
        if sweeps.parent_of(conn, run_id) is None:
            raise UserErrorException(f"resume_child_runs names {run_id!r}, which is not a child run of a sweep")


def submit_sweep(experiment, config, tags: dict | None = None):
    """Records the parent run of ``config`` (a HyperDriveConfig) and starts its driver; returns a HyperDriveRun."""
    from ...core.compute import ComputeTarget
    from .run import HyperDriveRun
    ws = experiment.workspace
    template = config.run_config.to_spec()  # checks the script, the arguments and the target
    target = ComputeTarget(ws, template["compute_target"])
    _check_resume_sources(experiment, config)
    template["experiment"] = experiment.name
    template["hyperdrive"] = config.to_dict()
    run_id = f"{experiment.name}_HD_{int(time.time())}_{uuid.uuid4().hex[:8]}"
    template["run_id"] = run_id
    run_dir = ws.runs_dir / run_id
    try:
        # One snapshot for every child: a source folder changed or removed mid-sweep changes nothing.
        shutil.copytree(template["source_directory"], run_dir / "snapshot", ignore=SNAPSHOT_IGNORE, symlinks=True)
        template["source_directory"] = str(run_dir / "snapshot")
        (run_dir / "logs").mkdir(parents=True)
        (run_dir / "outputs").mkdir()
        (run_dir / SETTINGS_FILE).write_text(json.dumps(template["hyperdrive"], indent=2))
    except OSError as exc:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise UserErrorException(f"could not make the sweep's folder {run_dir}: {exc}") from exc
    all_tags = {**(tags or {}), "hyperdrive.primary_metric": config.primary_metric_name,
                "hyperdrive.target": target.name}
    with ws.transaction() as conn:
        run_rows.insert(conn, run_id, experiment.id, COMPUTE_PREFIX + target.name, template, all_tags,
                        f"sweep of {config.max_total_runs} run(s) of {template['entry_script']}", {})
        sweeps.mark_sweep(conn, run_id)
    pid, created = spawn_driver(ws.path, run_id)
    run_rows.record_first_supervisor(ws.db.conn, run_id, pid, created)
    return HyperDriveRun(experiment, run_id)


def driver_argv(workspace_dir, run_id: str, resume: bool = False) -> list[str]:
    if getattr(sys, "frozen", False):  # a packaged app: the bundle's entry point runs sweep drivers
        argv = [sys.executable, "--sweep-driver", str(workspace_dir), run_id]
    else:
        argv = [sys.executable, "-c", "from mltrain_desktop.train.hyperdrive.driver import main; "
                "raise SystemExit(main())", str(workspace_dir), run_id]
    return argv + (["--resume"] if resume else [])


def spawn_driver(workspace_dir, run_id: str, resume: bool = False) -> tuple[int, float | None]:
    """Starts the sweep's detached driver (its own session: closing the submitter does not stop it)."""
    from ...adapters.process import process_identity, start_process
    import mltrain_desktop
    logs = Path(workspace_dir) / "runs" / run_id / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    package_parent = str(Path(mltrain_desktop.__file__).resolve().parent.parent)
    env[SAVED_PYTHONPATH] = json.dumps(os.environ.get("PYTHONPATH"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p)
    proc = start_process(driver_argv(workspace_dir, run_id, resume), cwd=logs.parent, env=env,
                         log_path=logs / "sweep_driver.log")
    return proc.pid, process_identity(proc.pid)


def cancel_before_start(conn, run_id: str) -> None:
    """A sweep whose driver never started is ended here."""
    run_rows.set_status(conn, run_id, RunStatus.CANCELED, "canceled before the sweep started")
