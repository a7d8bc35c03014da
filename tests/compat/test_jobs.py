"""Training scripts written the seed's way (``from azureml.core.run import Run``) run unchanged in jobs
submitted from a compat session: on a local target, an MPI target (real mpirun) and a Docker target."""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from mltrain_desktop import compat
from mltrain_desktop.core import ComputeTarget, Experiment, ScriptRunConfig
from mltrain_desktop.core.compute import LocalCompute
from mltrain_desktop.core.runconfig import MpiConfiguration
from mltrain_desktop.engine import rank_launcher as rl

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS / "docker") not in sys.path:
    sys.path.insert(0, str(_TESTS / "docker"))
# tests/docker/conftest.py's engine fixture, loaded under a name of its own (every conftest is "conftest")
_spec = importlib.util.spec_from_file_location("mltrain_docker_fixtures_compat", _TESTS / "docker" / "conftest.py")
_docker_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_docker_fixtures)
docker_api = _docker_fixtures.docker_api

SEED_TRAIN = textwrap.dedent('''
    import argparse
    import os
    from azureml.core.run import Run
    from azureml.core import Run as CoreRun

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    run = Run.get_context()
    assert Run is CoreRun
    for epoch in range(args.epochs):
        run.log("loss", 1.0 / (epoch + 1))
    run.log("rank", int(os.environ.get("MLTRAIN_RANK", "0")))
    run.log("node", os.environ.get("MLTRAIN_NODE", "-"))
    print("trained", args.epochs, "epochs", flush=True)
''')


@pytest.fixture
def compat_on():
    """A compat session, as ``%load_ext mltrain_desktop`` makes one; runs submitted now carry "compat": true."""
    compat.enable()
    yield
    compat.disable()


def _submit(ws, src, target="local", distributed=None, experiment="compat-jobs"):
    cfg = ScriptRunConfig(source_directory=str(src), script="train.py", arguments=["--epochs", 3],
                          compute_target=target, distributed_job_config=distributed)
    return Experiment(ws, experiment).submit(cfg)


def _finished(run, timeout=180):
    run.wait_for_completion(show_output=False, timeout=timeout, raise_on_error=False)
    return run


def _driver_log(run) -> str:
    return run.read_log(max_bytes=1 << 22)[0]


def test_a_seed_script_runs_on_a_local_target_and_again_on_resubmit(ws, make_script, compat_on):
    src = make_script(SEED_TRAIN, name="train.py")
    run = _finished(_submit(ws, src))
    assert run.get_status() == "Completed", (run.get_details().get("error"), _driver_log(run))
    assert run.spec["compat"] is True
    assert run.get_metrics()["loss"] == [1.0, 0.5, 1.0 / 3]
    assert "-m mltrain_desktop.compat --job train.py --epochs 3" in _driver_log(run)
    again = _finished(run.resubmit())  # the stored spec keeps "compat": the script still runs unchanged
    assert again.spec.get("compat") is True
    assert again.get_status() == "Completed", _driver_log(again)
    assert again.get_metrics()["loss"] == [1.0, 0.5, 1.0 / 3]


def test_without_compat_the_same_script_fails_with_a_clear_module_not_found_error(ws, make_script):
    assert not compat.is_enabled()
    src = make_script(SEED_TRAIN, name="train.py")
    run = _finished(_submit(ws, src))
    assert run.get_status() == "Failed"
    assert "compat" not in run.spec
    error = run.get_details()["error"]["message"]
    assert "ModuleNotFoundError" in error and "No module named 'azureml'" in error, error


def test_environment_notes_are_logged_and_kept_on_resubmit(ws, make_script, compat_on):
    from mltrain_desktop.core.environment import Environment
    src = make_script(SEED_TRAIN, name="train.py")
    env = Environment.get(ws, name="AzureML-TensorFlow-2.0-CPU")
    cfg = ScriptRunConfig(source_directory=str(src), script="train.py", arguments=["--epochs", 1],
                          compute_target="local", environment=env)
    run = _finished(Experiment(ws, "compat-notes").submit(cfg))
    assert run.get_status() == "Completed", _driver_log(run)
    notes = run.spec["environment"]["notes"]
    assert notes and any("AzureML-TensorFlow-2.0-CPU" in n for n in notes)
    assert f"[mltrain] {notes[0]}" in _driver_log(run)
    again = _finished(run.resubmit())
    assert again.spec["environment"]["notes"] == notes
    assert f"[mltrain] {notes[0]}" in _driver_log(again)


@pytest.mark.mpi
def test_a_seed_script_runs_on_every_rank_of_an_mpi_job(ws, make_script, compat_on):
    if shutil.which("mpirun") is None:
        pytest.skip("Open MPI's mpirun is not installed (apt install openmpi-bin)")
    ComputeTarget.create(ws, "mpi2", LocalCompute.provisioning_configuration(slots=2))
    src = make_script(SEED_TRAIN, name="train.py")
    run = _finished(_submit(ws, src, "mpi2", MpiConfiguration(process_count_per_node=2)))
    assert run.get_status() == "Completed", (run.get_details().get("error"), _driver_log(run))
    for rank in (0, 1):
        metrics = run.get_metrics(rank=rank)
        assert metrics["loss"] == [1.0, 0.5, 1.0 / 3] and metrics["rank"] == rank
    assert "rank_launcher --logs-dir" in _driver_log(run) and "--compat --" in _driver_log(run)


def test_the_launcher_starts_the_script_the_compat_way():
    assert rl.script_argv("train.py", ["--epochs", "1"]) == ["train.py", "--epochs", "1"]
    assert rl.script_argv("train.py", ["--epochs", "1"], compat=True) == [
        "-m", "mltrain_desktop.compat", "--job", "train.py", "--epochs", "1"]
    cmd = rl._script_command(["train.py", "--x"], under_mpirun=False, env={}, compat=True)
    assert cmd == [sys.executable, "-m", "mltrain_desktop.compat", "--job", "train.py", "--x"]


def test_docker_cluster_tasks_pass_compat_to_their_launcher(tmp_path):
    sys.path.insert(0, str(_TESTS / "docker"))
    from docker_helpers import TF_IMAGE, make_ctx
    from mltrain_desktop.engine.backends.docker_cluster_specs import cluster_spec, mpi_tasks, task_container_kwargs
    ctx = make_ctx(tmp_path, SEED_TRAIN, spec={"environment": {}, "compat": True}, arguments=["--epochs", "1"])
    cluster = cluster_spec(ctx.run_id, mpi_tasks({"kind": "mpi", "process_count_per_node": 2, "node_count": 1}))
    kw = task_container_kwargs(ctx, TF_IMAGE, None, 1, cluster, token="t", world_size=2)
    assert kw["command"] == ["-m", "mltrain_desktop.engine.rank_launcher", "--logs-dir", "/mltrain/run/logs",
                             "--rank", "1", "--compat", "--", "job.py", "--epochs", "1"]


@pytest.mark.docker
def test_a_seed_script_runs_on_a_docker_target(ws, make_script, compat_on, docker_api):
    from docker_helpers import TF_IMAGE, ca_bundle
    from mltrain_desktop.core.compute_docker import DockerCompute
    t = ComputeTarget.create(ws, "docker1", DockerCompute.provisioning_configuration(
        image=TF_IMAGE, ca_certificates=ca_bundle(), shm_size="1g"))
    assert t.provisioning_state == "Succeeded", t.state_detail
    src = make_script(SEED_TRAIN, name="train.py")
    run = _finished(_submit(ws, src, "docker1"), timeout=300)
    assert run.get_status() == "Completed", (run.get_details().get("error"), _driver_log(run))
    assert run.get_metrics()["loss"] == [1.0, 0.5, 1.0 / 3]
    assert "trained 3 epochs" in _driver_log(run)
    assert json.loads(json.dumps(run.spec))["compat"] is True


def test_the_job_kit_serves_azureml_core_run_with_the_standard_library_only(tmp_path):
    """The kit (what every job has on PYTHONPATH) carries compat/; its --job path needs nothing installed."""
    import subprocess
    from mltrain_desktop.engine.jobkit import jobkit_dir
    kit = jobkit_dir(tmp_path / "ws")
    assert (kit / "mltrain_desktop" / "compat" / "__main__.py").is_file()
    (tmp_path / "train.py").write_text(textwrap.dedent('''
        import sys
        from azureml.core.run import Run
        run = Run.get_context()
        run.log("loss", 0.5)
        outside = sorted(m for m in sys.modules if m.split(".")[0] not in sys.stdlib_module_names
                         and m.split(".")[0] not in ("__main__", "azureml", "mltrain_desktop"))
        ours = sorted(m for m in sys.modules if m.startswith("mltrain_desktop"))
        print("OUTSIDE", outside)
        print("OURS", ours)
    '''))
    metrics = tmp_path / "metrics.jsonl"
    env = {"PYTHONPATH": str(kit), "MLTRAIN_METRICS_FILE": str(metrics), "MLTRAIN_RUN_ID": "r1",
           "PATH": "/usr/bin:/bin"}
    # -S: no site-packages at all (as in a bare image); the kit alone is on the path
    proc = subprocess.run([sys.executable, "-S", "-m", "mltrain_desktop.compat", "--job", "train.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "OUTSIDE []" in proc.stdout, proc.stdout
    ours = eval(proc.stdout.split("OURS ", 1)[1].strip())  # noqa: S307 - our own script's printed list
    assert set(ours) <= {"mltrain_desktop", "mltrain_desktop.compat", "mltrain_desktop.compat.__main__",
                         "mltrain_desktop.compat.finder", "mltrain_desktop.compat.tree", "mltrain_desktop.domain",
                         "mltrain_desktop.domain.errors", "mltrain_desktop.run"}, ours
    assert json.loads(metrics.read_text().splitlines()[0])["v"] == 0.5
