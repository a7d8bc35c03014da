"""The real Slurm cluster of scripts/slurm_cluster.sh (Docker containers), started once per session.

It is stopped at the end only when this session started it. Workspaces are made inside the
cluster's shared folder, which every node mounts at the same path.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "slurm_cluster.sh"
HOME = Path("/var/tmp/mltrain-slurm")


def _state() -> dict:
    out = {}
    for line in (HOME / "state.env").read_text().splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return out


@pytest.fixture(scope="session")
def slurm_cluster():
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker engine: the test Slurm cluster runs in containers (scripts/ensure_dockerd.sh)")
    running = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True).returncode == 0
    if not running:
        done = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"scripts/slurm_cluster.sh start failed:\n{done.stdout}\n{done.stderr}"
    st = _state()
    yield {"login_host": st["LOGIN_HOST"], "ssh_config": st["SSH_CONFIG"], "shared": st["SHARED"],
           "scratch": st["SCRATCH"]}
    if not running:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, timeout=300)


@pytest.fixture
def shared_dir(slurm_cluster):
    d = Path(tempfile.mkdtemp(prefix="test-", dir=slurm_cluster["shared"]))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sws(shared_dir):
    """A workspace on the cluster's shared folder; unfinished runs are cancelled afterwards."""
    from mltrain_desktop.core import Workspace
    from mltrain_desktop.core.runs import Run
    w = Workspace.create(shared_dir / "ws")
    yield w
    rows = w.db.execute("SELECT id FROM runs WHERE status NOT IN ('Completed','Failed','Canceled')").fetchall()
    for (rid,) in rows:
        try:
            Run.get(w, rid).cancel(wait_seconds=30)
        except Exception:  # noqa: BLE001
            pass


@pytest.fixture
def slurm_config(slurm_cluster):
    def make(**changes):
        from mltrain_desktop.core.compute_slurm import SlurmCompute
        base = {"login_host": slurm_cluster["login_host"], "ssh_config": slurm_cluster["ssh_config"],
                "shared_workspace": slurm_cluster["shared"]}
        return SlurmCompute.provisioning_configuration(**{**base, **changes})
    return make


def slurm(cluster: dict, *argv: str) -> str:
    """Runs a Slurm command on the login host (for checks the SDK does not make)."""
    done = subprocess.run(["ssh", "-F", cluster["ssh_config"], cluster["login_host"], "--", *argv],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def replace_supervisor(ws, run) -> None:
    """Kills the run's supervisor (SIGKILL) and starts one that reattaches, as the next client would."""
    from mltrain_desktop.engine.supervisor import spawn
    from mltrain_desktop.store import runs as run_rows
    row = run_rows.get(ws.db.conn, run.id)
    os.kill(row["supervisor_pid"], signal.SIGKILL)
    pid, started = spawn(ws.path, run.id, reattach=True)
    run_rows.record_supervisor(ws.db.conn, run.id, pid, started)
