"""Distributed runs on a Docker target through the SDK (submit -> supervisor -> backend), then the
samples with real TensorFlow in containers."""
from __future__ import annotations

import re
import subprocess
import time

import pytest

from dc_helpers import FAKE_JOB, log_has, run_containers, run_networks, wait_for
from dist_helpers import SAMPLES
from docker_helpers import BASE_IMAGE, TF_IMAGE, ca_bundle
from mltrain_desktop import Experiment, MpiConfiguration, TensorFlow, TensorflowConfiguration
from mltrain_desktop.core import ComputeTarget
from mltrain_desktop.core.compute_docker import DockerCompute
from mltrain_desktop.core.script_run_config import ScriptRunConfig
from mltrain_desktop.engine import rank_launcher as rl
from mltrain_desktop.engine.backends.docker_cluster import task_container_name

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftovers")]


def docker_target(ws, name, image):
    t = ComputeTarget.create(ws, name, DockerCompute.provisioning_configuration(
        image=image, ca_certificates=ca_bundle(), shm_size="512m"))
    assert t.provisioning_state == "Succeeded", t.state_detail
    return t


@pytest.fixture
def small_target(ws, docker_api):
    return docker_target(ws, "docker-small", BASE_IMAGE)


def submit(ws, src, target, dist, arguments):
    cfg = ScriptRunConfig(source_directory=str(src), script="job.py", compute_target=target, arguments=arguments,
                          distributed_job_config=dist)
    return Experiment(ws, "docker-dist").submit(cfg)


def error_of(details) -> str:
    return (details.get("error") or {}).get("message", "")


def nothing_left(docker_api, run, timeout=10.0):
    wait_for(lambda: not run_containers(docker_api, run.id) and not run_networks(docker_api, run.id), timeout,
             "the run's containers and network to be gone")


def test_an_mpi_run_completes_with_metrics_per_rank(ws, small_target, make_script, docker_api):
    run = submit(ws, make_script(FAKE_JOB), small_target, MpiConfiguration(process_count_per_node=2),
                 ["*=probe:0.5"])
    details = run.wait_for_completion(raise_on_error=False, timeout=120)
    assert details["status"] == "Completed", error_of(details)
    assert run.get_metrics(rank=0)["reached"] == 1 and run.get_metrics(rank=1)["reached"] == 1
    state = details["backendState"]
    assert state["kind"] == "docker_mpi" and [t["tag"] for t in state["tasks"]] == ["rank_0", "rank_1"]
    assert {"logs/rank_0.log", "logs/rank_1.log", "logs/metrics.rank1.jsonl"} <= set(run.get_file_names())
    assert run.get_tags()["docker.network"] == state["network_name"]
    nothing_left(docker_api, run)


def test_a_killed_task_container_fails_the_run_naming_the_task(ws, small_target, make_script, docker_api):
    run = submit(ws, make_script(FAKE_JOB), small_target,
                 TensorflowConfiguration(worker_count=2, parameter_server_count=1), ["chief:0=sleep:120"])
    logs = run.run_dir / "logs"
    wait_for(lambda: log_has(logs / "worker_0.log", "listening"), 90, "worker 0 to serve")
    name = task_container_name(run.id, "worker_0")
    subprocess.run(["docker", "kill", name], check=True, capture_output=True)
    t0 = time.monotonic()
    details = run.wait_for_completion(raise_on_error=False, timeout=60)
    took = time.monotonic() - t0
    assert details["status"] == "Failed"
    message = error_of(details)
    assert message.startswith(f"worker 0 was killed by signal 9 (SIGKILL) (container {name}, exit code 137"), message
    assert "last lines of logs/worker_0.log" in message
    assert took < 10, took
    nothing_left(docker_api, run)


def test_cancel_a_run_stops_all_its_containers(ws, small_target, make_script, docker_api):
    run = submit(ws, make_script(FAKE_JOB), small_target, MpiConfiguration(process_count_per_node=2),
                 ["*=stubborn"])
    wait_for(lambda: run.get_status() == "Running", 90, "the run to start")
    assert run.cancel(wait_seconds=30) == "Canceled"
    nothing_left(docker_api, run)


# -- the samples, with real TensorFlow in containers ------------------------------------------------
SMALL = {"--epochs": 1, "--max-train-samples": 1000, "--first-layer-neurons": 32, "--second-layer-neurons": 16,
         "--learning-rate": 0.1}


@pytest.fixture
def tf_target(ws, docker_api):
    return docker_target(ws, "docker-tf", TF_IMAGE)


@pytest.fixture
def mnist(ws):
    from mltrain_desktop.core.sample_flow import register_sample_dataset
    return register_sample_dataset(ws, full=False)


@pytest.mark.slow
def test_mwms_sample_two_rank_containers_agree_on_the_final_weights(ws, tf_target, mnist, docker_api):
    est = TensorFlow(source_directory=str(SAMPLES), entry_script="mwms_mnist.py", compute_target=tf_target,
                     script_params={"--data-folder": mnist.as_named_input("mnist").as_mount(), **SMALL},
                     distributed_training=MpiConfiguration(process_count_per_node=2))
    run = Experiment(ws, "mwms-docker").submit(est)
    details = run.wait_for_completion(raise_on_error=False, timeout=300)
    log = run.read_log(max_bytes=1 << 22)[0]
    assert details["status"] == "Completed", error_of(details) + log[-3000:]
    digests = {int(r): d for r, d in re.findall(r"\[rank (\d)\] weights sha256 ([0-9a-f]{64})", log)}
    assert set(digests) == {0, 1} and digests[0] == digests[1]
    assert "[rank 1] rank 1 of 2: TensorFlow 2.21" in log
    m0, m1 = run.get_metrics(rank=0), run.get_metrics(rank=1)
    assert m0["weights_checksum"] == m1["weights_checksum"]
    assert len(m0["loss"]) == len(m1["loss"]) == 10
    assert "final_test_accuracy" in m0 and "final_test_accuracy" not in m1
    assert "outputs/model/model.keras" in run.get_file_names()
    nothing_left(docker_api, run)


@pytest.mark.slow
def test_ps_sample_one_container_per_task(ws, tf_target, mnist, docker_api):
    est = TensorFlow(source_directory=str(SAMPLES), entry_script="ps_mnist.py", compute_target=tf_target,
                     script_params={"--data-folder": mnist.as_named_input("mnist").as_mount(), **SMALL,
                                    "--max-train-samples": 2000},
                     distributed_training=TensorflowConfiguration(worker_count=2, parameter_server_count=1))
    run = Experiment(ws, "ps-docker").submit(est)
    details = run.wait_for_completion(raise_on_error=False, timeout=300)
    log = run.read_log(max_bytes=1 << 22)[0]
    assert details["status"] == "Completed", error_of(details) + log[-3000:]
    ps_name = next(t["container_name"] for t in details["backendState"]["tasks"] if t["tag"] == "ps_0")
    assert f"[ps 0] ps 0: serving at grpc://{ps_name}:2222" in log
    assert "[chief 0] test accuracy" in log
    metrics = run.get_metrics()
    # Asynchronous ps training varies run to run: 20 steps ended near 0.3 once, 40 land around 0.5-0.6.
    assert len(metrics["loss"]) == 40 and metrics["final_test_accuracy"] > 0.3
    assert sum(metrics["loss"][-10:]) < sum(metrics["loss"][:10])
    names = set(run.get_file_names())
    assert {"logs/chief_0.log", "logs/ps_0.log", "logs/worker_0.log", "logs/worker_1.log"} <= names
    assert "outputs/model/model.keras" in names
    nothing_left(docker_api, run)


@pytest.mark.slow
def test_mwms_rank_container_killed_mid_training(ws, tf_target, mnist, docker_api):
    """The surviving rank blocks in a collective and ignores SIGTERM: the engine's own bound ends it."""
    est = TensorFlow(source_directory=str(SAMPLES), entry_script="mwms_mnist.py", compute_target=tf_target,
                     script_params={"--data-folder": mnist.as_named_input("mnist").as_mount(), **SMALL,
                                    "--epochs": 500},
                     distributed_training=MpiConfiguration(process_count_per_node=2))
    run = Experiment(ws, "mwms-docker").submit(est)
    wait_for(lambda: log_has(run.run_dir / "logs" / "rank_1.log", "epoch 1/500"), 180, "rank 1 to train")
    name = task_container_name(run.id, "rank_1")
    subprocess.run(["docker", "kill", name], check=True, capture_output=True)
    t0 = time.monotonic()
    details = run.wait_for_completion(raise_on_error=False, timeout=60)
    took = time.monotonic() - t0
    assert details["status"] == "Failed"
    message = error_of(details)
    assert message.startswith(f"rank 1 was killed by signal 9 (SIGKILL) (container {name}, exit code 137"), message
    assert "the engine stopped rank 0" in message and "epoch 1/500" in message
    assert took < 12, took
    nothing_left(docker_api, run)


@pytest.mark.slow
def test_mwms_sample_on_two_node_containers_through_mpirun_over_ssh(ws, mnist, docker_api):
    """node_count=2 on a Docker target with mpi_launcher="mpirun": mpirun starts one rank on each
    node container over SSH, the ranks train together and agree on the weights."""
    target = ComputeTarget.create(ws, "docker-mpirun", DockerCompute.provisioning_configuration(
        image=TF_IMAGE, ca_certificates=ca_bundle(), shm_size="512m", mpi_launcher="mpirun"))
    assert target.provisioning_state == "Succeeded", target.state_detail
    est = TensorFlow(source_directory=str(SAMPLES), entry_script="mwms_mnist.py", compute_target=target,
                     script_params={"--data-folder": mnist.as_named_input("mnist").as_mount(), **SMALL},
                     distributed_training=MpiConfiguration(process_count_per_node=1, node_count=2))
    run = Experiment(ws, "mwms-docker-mpirun").submit(est)
    details = run.wait_for_completion(raise_on_error=False, timeout=300)
    log = run.read_log(max_bytes=1 << 22)[0]
    assert details["status"] == "Completed", error_of(details) + log[-3000:]
    state = details["backendState"]
    assert state["kind"] == "docker_mpirun" and [t["tag"] for t in state["tasks"]] == ["node-0", "node-1", "mpirun"]
    nodes = [t["container_name"] for t in state["tasks"][:2]]
    assert "every node answers SSH" in log and f"--host {nodes[0]}:1,{nodes[1]}:1" in log
    digests = {int(r): d for r, d in re.findall(r"\[rank (\d)\] weights sha256 ([0-9a-f]{64})", log)}
    assert set(digests) == {0, 1} and digests[0] == digests[1]
    m0, m1 = run.get_metrics(rank=0), run.get_metrics(rank=1)
    assert m0["weights_checksum"] == m1["weights_checksum"]
    records = rl.read_statuses(run.run_dir / "logs")
    assert [records[f"rank_{r}"]["host"] for r in (0, 1)] == nodes
    assert "outputs/model/model.keras" in run.get_file_names()
    assert run.get_tags()["docker.image"].startswith("mltrain-mpi:")
    nothing_left(docker_api, run)
