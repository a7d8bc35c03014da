"""MPI across real hosts: the sample with node_count=2 through mpirun over SSH to two hosts.

The hosts are the containers of conftest.py (sshd + Open MPI, keys made for the session); mpirun
runs on this machine, the head, and starts one rank on each host.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "distributed"))
from dist_helpers import DATA, SAMPLES, needs_mpirun, needs_tf  # noqa: E402
from ssh_hosts_helpers import docker, refresh_addresses  # noqa: E402

from mltrain_desktop import ComputeTarget, Experiment, LocalCompute, MpiConfiguration, TensorFlow  # noqa: E402
from mltrain_desktop.core import Workspace  # noqa: E402
from mltrain_desktop.core.compute_target import ComputeTargetException  # noqa: E402
from mltrain_desktop.core.runs import Run  # noqa: E402

pytestmark = [pytest.mark.mpi, pytest.mark.docker, needs_mpirun]

SAMPLE_PARAMS = {"--data-folder": str(DATA), "--epochs": 1, "--max-train-samples": 1000,
                 "--first-layer-neurons": 32, "--second-layer-neurons": 16, "--learning-rate": 0.1}


@pytest.fixture
def hws(ssh_hosts, tmp_path):
    """A workspace in the folder the hosts see at the same path; unfinished runs cancelled after."""
    w = Workspace.create(Path(ssh_hosts.shared) / tmp_path.name)
    yield w
    rows = w.db.execute("SELECT id FROM runs WHERE status NOT IN ('Completed','Failed','Canceled')").fetchall()
    for (rid,) in rows:
        Run.get(w, rid).cancel(wait_seconds=30)
    w.close()


def two_hosts(ws, ssh_hosts, name="two-hosts", **over):
    cfg = dict(hosts=[f"{h}:1" for h in ssh_hosts.hosts], ssh_config=ssh_hosts.ssh_config,
               mpirun_args=ssh_hosts.mpirun_args(), startup_timeout_s=180)
    cfg.update(over)
    return ComputeTarget.create(ws, name, LocalCompute.provisioning_configuration(**cfg))


def task_records(run) -> list[dict]:
    tasks = run.run_dir / "logs" / ".tasks"
    return sorted((json.loads(p.read_text()) for p in tasks.glob("*.json")), key=lambda r: r["rank"])


def test_the_hosts_answer_over_ssh_with_the_session_key(ssh_hosts):
    for host in ssh_hosts.hosts:
        out = subprocess.run(["ssh", "-F", ssh_hosts.ssh_config, host, "hostname; command -v orted"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [host, "/usr/bin/orted"]


@needs_tf
@pytest.mark.slow
def test_the_sample_runs_on_two_hosts_and_the_ranks_agree_on_the_weights(hws, ssh_hosts):
    target = two_hosts(hws, ssh_hosts)
    est = TensorFlow(source_directory=str(SAMPLES), entry_script="mwms_mnist.py", script_params=SAMPLE_PARAMS,
                     compute_target=target, node_count=2,
                     distributed_training=MpiConfiguration(process_count_per_node=1))
    run = Experiment(hws, "mwms-ssh").submit(est)
    details = run.wait_for_completion(raise_on_error=False, timeout=420)
    driver = (run.run_dir / "logs" / "driver.log").read_text()
    assert details["status"] == "Completed", (details.get("error"), driver[-3000:])
    assert "checking host mpihost1 answers over SSH" in driver and "checking host mpihost2" in driver
    records = task_records(run)
    assert [(r["rank"], r["host"]) for r in records] == [(0, "mpihost1"), (1, "mpihost2")]
    m0, m1 = run.get_metrics(rank=0), run.get_metrics(rank=1)
    assert m0["weights_checksum"] == m1["weights_checksum"]
    assert len(m0["loss"]) == len(m1["loss"]) > 0
    assert "outputs/model/model.keras" in run.get_file_names()


def test_a_host_name_ssh_cannot_reach_fails_before_anything_starts(hws, ssh_hosts):
    """Without the target's ssh_config the names do not resolve here: the SSH check says so."""
    target = two_hosts(hws, ssh_hosts, name="no-config", ssh_config=None, ssh_connect_timeout_s=3)
    est = TensorFlow(source_directory=str(SAMPLES), entry_script="mwms_mnist.py", script_params=SAMPLE_PARAMS,
                     compute_target=target, node_count=2,
                     distributed_training=MpiConfiguration(process_count_per_node=1))
    run = Experiment(hws, "mwms-ssh").submit(est)
    details = run.wait_for_completion(raise_on_error=False, timeout=120)
    assert details["status"] == "Failed"
    assert "host 'mpihost1' did not answer over SSH" in details["error"]["message"]
    assert "key-based SSH login" in details["error"]["message"]
    assert not task_records(run)


def test_a_key_the_hosts_do_not_accept_is_refused_at_the_ssh_check(hws, ssh_hosts, tmp_path):
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    config = tmp_path / "ssh_config"
    config.write_text(Path(ssh_hosts.ssh_config).read_text().replace(
        f"IdentityFile {ssh_hosts.ssh_key}", f"IdentityFile {other}"))
    target = two_hosts(hws, ssh_hosts, name="wrong-key", ssh_config=str(config))
    est = TensorFlow(source_directory=str(SAMPLES), entry_script="mwms_mnist.py", script_params=SAMPLE_PARAMS,
                     compute_target=target, node_count=2,
                     distributed_training=MpiConfiguration(process_count_per_node=1))
    details = Experiment(hws, "mwms-ssh").submit(est).wait_for_completion(raise_on_error=False, timeout=120)
    assert details["status"] == "Failed"
    assert "did not answer over SSH" in details["error"]["message"] and "Permission denied" in details["error"]["message"]


@pytest.mark.parametrize("key", ["ssh_config", "ssh_key"])
def test_ssh_files_that_do_not_exist_are_refused_when_the_target_is_made(hws, key, tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(ComputeTargetException, match=f"{key} must be the path of an existing file"):
        ComputeTarget.create(hws, "bad", LocalCompute.provisioning_configuration(hosts=["h1:1"], **{key: missing}))
    assert "bad" not in hws.compute_targets


def _restart(ssh_hosts, index: int) -> None:
    """Brings a killed host back with its sshd (its address on the network may change)."""
    docker("start", ssh_hosts.containers[index])
    refresh_addresses(ssh_hosts)


@needs_tf
@pytest.mark.slow
def test_a_host_that_dies_mid_run_fails_the_run_naming_it(hws, ssh_hosts):
    target = two_hosts(hws, ssh_hosts, name="dies")
    params = dict(SAMPLE_PARAMS, **{"--epochs": 50, "--max-train-samples": 2000})
    est = TensorFlow(source_directory=str(SAMPLES), entry_script="mwms_mnist.py", script_params=params,
                     compute_target=target, node_count=2,
                     distributed_training=MpiConfiguration(process_count_per_node=1))
    run = Experiment(hws, "mwms-ssh").submit(est)
    try:
        deadline = time.monotonic() + 240
        while "epoch 2/50" not in _read(run.run_dir / "logs" / "rank_1.log"):
            assert time.monotonic() < deadline and run.get_status() in ("Preparing", "Queued", "Running"), \
                _read(run.run_dir / "logs" / "driver.log")[-2000:]
            time.sleep(0.5)
        docker("kill", ssh_hosts.containers[1])
        t0 = time.monotonic()
        details = run.wait_for_completion(raise_on_error=False, timeout=120)
        assert time.monotonic() - t0 < 60
    finally:
        _restart(ssh_hosts, 1)
    assert details["status"] == "Failed"
    message = details["error"]["message"]
    assert message.startswith("host mpihost2 (rank 1) was lost mid-run"), message
    assert "check that mpihost2 is up and answers ssh" in message


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
