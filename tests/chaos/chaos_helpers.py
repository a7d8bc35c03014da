"""Helpers for the chaos tests: job contexts for the pure command builders, file-system snapshots."""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHAOS = REPO / "benchmarks" / "chaos.py"


def job_context(root: Path, arguments: list[str], env: dict[str, str], run_id: str = "exp_1_abc"):
    """A JobContext as the supervisor builds one, for a run of ``job.py`` on a docker target."""
    from mltrain_desktop.engine.backends.base import JobContext
    ws = root / "ws"
    rd = ws / "runs" / run_id
    return JobContext(
        run_id=run_id, workspace_dir=ws, run_dir=rd, snapshot_dir=rd / "snapshot", outputs_dir=rd / "outputs",
        logs_dir=rd / "logs", jobkit_dir=ws / "jobkit" / "k", entry_script="job.py", arguments=list(arguments),
        environment_variables=dict(env), target={"name": "docker1", "kind": "docker", "config": {}},
        spec={"environment": {}}, raw_arguments=list(arguments))


def tree_listing(top: Path, skip: Path | None = None) -> set[str]:
    """Every path under ``top`` (relative), leaving out ``skip`` and what is under it."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(top):
        d = Path(dirpath)
        if skip is not None and (d == skip or skip in d.parents):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = d / name
            if skip is not None and p == skip:
                continue
            out.add(str(p.relative_to(top)))
    return out


def python() -> str:
    return sys.executable


def supervisor_pid(ws_path, run_id: str, timeout: float = 20.0) -> int:
    """The pid of the run's supervisor process, found from outside (its command line)."""
    import time
    import psutil
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in psutil.process_iter(["pid", "cmdline"]):
            cmd = p.info["cmdline"] or []
            if any("mltrain_desktop.engine.supervisor" in a for a in cmd) and run_id in cmd \
                    and str(ws_path) in cmd:
                return p.pid
        time.sleep(0.1)
    raise AssertionError(f"no supervisor process of {run_id} found")


def job_pids(run_id: str) -> list[int]:
    """Live processes whose environment says they belong to the run (its job)."""
    import psutil
    out = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and p.environ().get("MLTRAIN_RUN_ID") == run_id:
                out.append(p.pid)
        except psutil.Error:
            continue
    return out


def wait_for(condition, timeout: float, what: str, every: float = 0.1):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
