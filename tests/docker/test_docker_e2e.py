"""Docker runs through the public SDK: Workspace, ComputeTarget, Experiment.submit, the estimator."""
from __future__ import annotations

import os
import signal
import time

import pytest

from docker_helpers import TF_IMAGE, ca_bundle, workspace_containers
from mltrain_desktop.core import ComputeTarget, Experiment, Model, ScriptRunConfig, Workspace
from mltrain_desktop.core.compute_docker import DEFAULT_IMAGE, DockerCompute
from mltrain_desktop.core.compute_target import ComputeTargetException
from mltrain_desktop.core.runs import Run
from mltrain_desktop.core.script_run_config import Environment
from mltrain_desktop.adapters.docker.images import environment_spec, environment_tag

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftovers")]

TICKER = """
import signal, sys, time
from mltrain_desktop.core import Run
run = Run.get_context()
def on_term(signum, frame):
    print("got SIGTERM", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
for i in range({n}):
    print(f"tick {{i}}", flush=True)
    run.log("tick", i)
    time.sleep({pause})
"""


@pytest.fixture
def target(ws, docker_api):
    t = ComputeTarget.create(ws, "docker1", DockerCompute.provisioning_configuration(
        image=TF_IMAGE, ca_certificates=ca_bundle(), shm_size="1g"))
    assert t.provisioning_state == "Succeeded", t.state_detail
    return t


def submit(ws, src, target="docker1", environment=None, use_gpu=False, arguments=None):
    cfg = ScriptRunConfig(source_directory=str(src), script="job.py", compute_target=target,
                          environment=environment, use_gpu=use_gpu, arguments=arguments)
    return Experiment(ws, "docker-tests").submit(cfg)


def wait_for(pred, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def log_of(run) -> str:
    return run.read_log(max_bytes=1 << 22)[0]


def statuses(run) -> list[str]:
    return [e["status"] for e in run.get_events()]


def error_of(run) -> str:
    return (run.get_details().get("error") or {}).get("message", "")


def kill_supervisor(ws, run) -> None:
    pid = ws.db.execute("SELECT supervisor_pid FROM runs WHERE id=?", [run.id]).fetchone()[0]
    os.kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)  # our child: reap it so it does not linger as a zombie
    except ChildProcessError:
        pass


def test_the_sample_trains_in_a_container_and_registers_a_model(ws, target, tmp_path):
    from mltrain_desktop.core.sample_flow import register_sample_dataset, sample_estimator
    ds = register_sample_dataset(ws, full=False)
    run = Experiment(ws, "tf-mnist").submit(sample_estimator(ws, ds, epochs=1, compute_target=target))
    details = run.wait_for_completion(raise_on_error=False)
    log = log_of(run)
    assert details["status"] == "Completed", error_of(run) + log[-3000:]
    assert statuses(run) == ["Queued", "Preparing", "Running", "Finalizing", "Completed"]
    assert "TensorFlow 2.21" in log and "Data folder: /mltrain/inputs/mnist" in log
    m = run.get_metrics()
    assert run.get_metric_series("loss")[0] == [0] and run.get_metric_series("val_accuracy")[0] == [0]
    assert len(m["batch_loss"]) == 2000 // 50 and 0.0 <= m["final_test_accuracy"] <= 1.0
    assert run.get_tags()["docker.image"] == TF_IMAGE
    model = run.register_model(model_name="tf-dnn-mnist", model_path="outputs/model",
                               model_framework=Model.Framework.TENSORFLOW, model_framework_version="2.21")
    assert model.version == 1
    dest = model.download(str(tmp_path / "dl"))
    assert os.path.isfile(os.path.join(dest, "model.keras"))


def test_an_environment_is_built_once_then_found_in_cache(ws, target, docker_api, make_script):
    env = Environment(pip_packages=["six"])
    spec = environment_spec({"environment": {"pip_packages": ["six"]}}, target.config, DEFAULT_IMAGE)
    tag = environment_tag(spec, docker_api.inspect_image(TF_IMAGE)["Id"])
    try:
        docker_api.remove_image(tag)
    except Exception:  # noqa: BLE001 - not built yet
        pass
    src = make_script("import six; print('six', six.__version__)")
    first = submit(ws, src, environment=env)
    assert first.wait_for_completion(raise_on_error=False)["status"] == "Completed", log_of(first)
    log1 = log_of(first)
    assert f"building environment image {tag}" in log1 and f"Successfully tagged {tag}" in log1
    assert "six 1." in log1
    second = submit(ws, src, environment=env)
    assert second.wait_for_completion(raise_on_error=False)["status"] == "Completed", log_of(second)
    log2 = log_of(second)
    assert f"environment image {tag} found in cache" in log2 and "Step 1/" not in log2
    assert first.get_tags()["docker.image"] == second.get_tags()["docker.image"] == tag
    docker_api.remove_image(tag)


def test_the_estimators_framework_version_is_checked_in_the_image(ws, target, docker_api, make_script):
    from mltrain_desktop.train.dnn import TensorFlow
    spec = environment_spec({"framework": "TensorFlow", "environment": {"framework_version": "2.21"}},
                            target.config, DEFAULT_IMAGE)
    tag = environment_tag(spec, docker_api.inspect_image(TF_IMAGE)["Id"])
    try:
        docker_api.remove_image(tag)
    except Exception:  # noqa: BLE001 - not built yet
        pass
    src = make_script("import tensorflow as tf; print('tf', tf.__version__)")
    est = TensorFlow(source_directory=str(src), entry_script="job.py", compute_target=target,
                     framework_version="2.21", shm_size="512m")
    run = Experiment(ws, "tf-version").submit(est)
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Completed", log_of(run)[-3000:]
    log = log_of(run)
    assert "TensorFlow 2.21.0 is in the base image" in log and "tf 2.21.0" in log
    assert run.get_tags()["docker.image"] == tag
    docker_api.remove_image(tag)


def test_cancel_stops_the_container_and_leaves_none(ws, target, docker_api, make_script):
    run = submit(ws, make_script(TICKER.format(n=600, pause=0.1)))
    wait_for(lambda: "tick 3" in log_of(run), what="the job to tick")
    t0 = time.monotonic()
    assert run.cancel(wait_seconds=30) == "Canceled"
    assert time.monotonic() - t0 < 15
    assert workspace_containers(docker_api, ws.path) == []
    assert "got SIGTERM" in log_of(run)  # the init process passed the stop signal on
    assert statuses(run) == ["Queued", "Preparing", "Running", "Canceled"]


def test_a_new_client_reattaches_after_the_supervisor_is_killed(ws, target, make_script):
    run = submit(ws, make_script(TICKER.format(n=30, pause=0.2)))
    wait_for(lambda: len(run.get_metric_series("tick")[0]) >= 3, what="the first metrics")
    kill_supervisor(ws, run)
    ws2 = Workspace(ws.path)
    assert ws2.recover() == [run.id]  # finds the run and restarts its supervisor
    run2 = Run.get(ws2, run.id)
    details = run2.wait_for_completion(raise_on_error=False, timeout=120)
    log = log_of(run2)
    assert details["status"] == "Completed", error_of(run2) + log[-2000:]
    assert "reattached to the running job" in log
    assert run2.get_metrics()["tick"] == list(range(30))
    assert [l for l in log.splitlines() if l.startswith("tick ")] == [f"tick {i}" for i in range(30)]


def test_a_container_removed_by_hand_while_the_app_was_closed(ws, target, docker_api, make_script):
    run = submit(ws, make_script(TICKER.format(n=600, pause=0.1)))
    wait_for(lambda: "tick 2" in log_of(run), what="the job to tick")
    kill_supervisor(ws, run)
    for c in workspace_containers(docker_api, ws.path):
        docker_api.remove_container(c["Id"], force=True)
    run2 = Run.get(Workspace(ws.path), run.id)  # waiting on it settles it: a new supervisor finds no container
    details = run2.wait_for_completion(raise_on_error=False, timeout=60)
    assert details["status"] == "Failed"
    assert "could not be found again" in error_of(run2)
    assert "is gone" in log_of(run2)


def test_a_container_killed_from_outside(ws, target, docker_api, make_script):
    run = submit(ws, make_script(TICKER.format(n=600, pause=0.1)))
    wait_for(lambda: "tick 2" in log_of(run), what="the job to tick")
    (c,) = workspace_containers(docker_api, ws.path)
    docker_api.kill(c["Id"])
    assert run.wait_for_completion(raise_on_error=False, timeout=60)["status"] == "Failed"
    err = error_of(run)
    assert "stopped from outside (SIGKILL, exit code 137)" in err and "docker kill" in err
    assert "tick 2" in err  # the last lines of its log


def test_a_script_that_exits_non_zero(ws, target, make_script):
    run = submit(ws, make_script("print('about to fail', flush=True)\nraise ValueError('boom in a container')"))
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Failed"
    assert statuses(run) == ["Queued", "Preparing", "Running", "Finalizing", "Failed"]
    assert run.get_details().get("exit_code", 1) == 1 or "exit code 1" in error_of(run)
    assert "ValueError: boom in a container" in error_of(run)


def test_an_image_that_does_not_exist(ws, target, make_script):
    run = submit(ws, make_script("print('never')"), environment=Environment(docker_image="mltrain-no-such-image:0.1"))
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Failed"
    assert statuses(run) == ["Queued", "Preparing", "Failed"]
    assert "'mltrain-no-such-image:0.1' is not on the Docker engine and could not be pulled" in error_of(run)


def test_a_pip_package_that_does_not_exist(ws, target, docker_api, make_script):
    images_before = set(docker_api.images(all=True, quiet=True))
    run = submit(ws, make_script("print('never')"),
                 environment=Environment(pip_packages=["mltrain-no-such-package-xyz==1.0"]))
    assert run.wait_for_completion(raise_on_error=False, timeout=240)["status"] == "Failed"
    assert statuses(run) == ["Queued", "Preparing", "Failed"]
    err = error_of(run)
    assert "building the environment image mltrain-env:" in err and "pip install mltrain-no-such-package-xyz" in err
    assert "No matching distribution found for mltrain-no-such-package-xyz==1.0" in err
    assert set(docker_api.images(all=True, quiet=True)) <= images_before
    assert not [c for c in docker_api.containers(all=True) if "mltrain-env" in (c.get("Image") or "")]


def test_use_gpu_on_an_engine_without_gpu_support(ws, target, docker_api, make_script):
    if target.probe_result["engine"]["nvidia"]:
        pytest.skip("this engine has GPU support")
    run = submit(ws, make_script("print('never')"), use_gpu=True)
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Failed"
    assert statuses(run) == ["Queued", "Preparing", "Failed"]
    err = error_of(run)
    assert "use_gpu=True" in err and "no GPU support" in err and "NVIDIA Container Toolkit" in err
    assert workspace_containers(docker_api, ws.path) == []


def test_cancel_during_the_image_build(ws, docker_api, hanging_index, make_script):
    ComputeTarget.create(ws, "slowindex", DockerCompute.provisioning_configuration(
        image=TF_IMAGE, pip_index_url=hanging_index))
    images_before = set(docker_api.images(all=True, quiet=True))
    run = submit(ws, make_script("print('never')"), target="slowindex",
                 environment=Environment(pip_packages=["mltrain-test-hangs==1.0"]))
    wait_for(lambda: "Running in" in log_of(run).split("pip install")[-1], what="the pip step to start")
    assert run.cancel(wait_seconds=30) == "Canceled"
    assert statuses(run) == ["Queued", "Preparing", "Canceled"]
    assert "build canceled" in log_of(run)
    assert set(docker_api.images(all=True, quiet=True)) <= images_before
    assert not [c for c in docker_api.containers(all=True) if "mltrain-env" in (c.get("Image") or "")]


def test_orphans_of_finished_runs_are_removed_when_the_workspace_opens(ws, target, docker_api, make_script):
    run = submit(ws, make_script("print('done')"))
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Completed"
    # a container of that finished run, as a crash at the wrong moment could leave behind
    c = docker_api.create_container(TF_IMAGE, command=["sleep", "60"], labels={
        "mltrain.workspace": str(ws.path.resolve()), "mltrain.run": run.id, "mltrain.role": "job"})
    docker_api.start(c["Id"])
    Workspace(ws.path).recover()
    assert workspace_containers(docker_api, ws.path) == []


def test_an_engine_that_is_not_running(ws, tmp_path, make_script):
    t = ComputeTarget.create(ws, "nodocker", DockerCompute.provisioning_configuration(
        base_url=f"unix://{tmp_path}/docker.sock"))
    assert t.provisioning_state == "Failed"
    assert "not running" in t.state_detail and "DOCKER_HOST" in t.state_detail
    with pytest.raises(ComputeTargetException, match="not running"):
        submit(ws, make_script("print('never')"), target="nodocker")
