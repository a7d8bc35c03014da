"""The chaos suite's short version, as CI runs it: 6 real runs, seed 1, local + docker + mpi.

``benchmarks/chaos.py --runs 6 --seed 1 --targets local,docker,mpi`` in a subprocess (about a
minute on 2 cores): a local run with no fault, SIGKILL of the main process of a local run and
of two Docker runs, SIGKILL of an MPI run's supervisor, ``docker kill`` of a rank container of
an MPI run on Docker; SIGKILL of the window and of ``mltrain run logs --follow``, a second
client, both endpoints hit throughout. It must exit 0 with every count that must be 0 at 0.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from chaos_helpers import CHAOS, REPO

pytestmark = [pytest.mark.docker, pytest.mark.mpi, pytest.mark.slow]


def _docker_ready() -> str | None:
    try:
        import docker
        docker.APIClient(timeout=10).inspect_image("mltrain-tf:2.21")
    except Exception as exc:  # noqa: BLE001
        return f"needs a Docker engine with mltrain-tf:2.21 (scripts/docker_base_image.sh): {exc}"
    return None


def test_short_chaos_run_loses_nothing_and_leaves_nothing(tmp_path):
    why = _docker_ready() or (None if shutil.which("mpirun") else "needs Open MPI's mpirun")
    if why:
        pytest.skip(why)
    proc = subprocess.run([sys.executable, str(CHAOS), "--runs", "6", "--seed", "1", "--targets", "local,docker,mpi",
                           "--workdir", str(tmp_path / "chaos")], cwd=REPO, capture_output=True, text=True,
                          timeout=400)
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-3000:]
    summary = json.loads(lines[-1])
    print("\n".join(lines[-30:]))
    assert summary["runs"] == 6
    assert summary["faults"] >= 6, summary           # 4 run faults + window, follow, second client
    assert summary["faults_by_kind"].get("kill_main", 0) >= 2
    assert summary["metric_points_flushed"] > 500
    assert summary["endpoint_requests_ok"] > 50
    assert summary["recovery_s_max"] is not None and summary["recovery_s_max"] < 30
    zero = {k: summary[k] for k in ("metrics_lost", "metrics_duplicated", "orphan_processes", "orphan_containers",
                                    "orphan_networks", "stuck_runs", "wrong_final_state", "endpoint_errors",
                                    "unexpected_outcomes", "client_errors")}
    assert zero == dict.fromkeys(zero, 0), "\n".join(lines[-40:])
    assert proc.returncode == 0, proc.stderr[-3000:]
