"""A Docker endpoint survives other clients, and the clean-up removes only what is ours and over (real engine).

Issue 11: opening a workspace (recovery, any CLI command) used to force-remove every container of
the workspace without a live run label, endpoint containers included. The clean-up now removes a
container only when it carries this workspace's label and an owner whose life is over.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from docker_helpers import BASE_IMAGE, TF_IMAGE, make_ctx, workspace_containers
from mltrain_desktop.adapters.docker import labels as lb
from mltrain_desktop.adapters.docker.cleanup import clean_containers, clean_workspace, owner_is_over_in
from mltrain_desktop.core import ComputeTarget, InferenceConfig, Model, Webservice, Workspace
from mltrain_desktop.core.compute_docker import DockerCompute
from mltrain_desktop.core.webservice import DockerWebservice, deploy
from mltrain_desktop.engine.backends.docker import container_run_kwargs
from mltrain_desktop.store import endpoints as endpoint_rows
from mltrain_desktop.store import experiments, runs as run_rows

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftovers")]

SCORE = "def init():\n    pass\n\n\ndef run(raw):\n    return {'ok': 1}\n"


def _sleeper(api, labels: dict, name: str | None = None) -> str:
    c = api.create_container(BASE_IMAGE, command=["sleep", "120"], labels=labels, name=name,
                             host_config=api.create_host_config(init=True))
    api.start(c["Id"])
    return c["Id"]


def _ids(api, workspace_dir) -> set[str]:
    return {c["Id"] for c in workspace_containers(api, workspace_dir)}


def _exists(api, cid: str) -> bool:
    return bool(api.containers(all=True, filters={"id": cid}))


def _run_row(ws, run_id: str, terminal: bool) -> None:
    exp = experiments.ensure(ws.db.conn, "survival")
    run_rows.insert(ws.db.conn, run_id, exp, "docker1", {}, {}, "queued", {})
    if terminal:
        assert run_rows.set_status(ws.db.conn, run_id, "Canceled")


@pytest.fixture
def endpoint(ws, docker_api, tmp_path):
    """A Docker endpoint deployed on docker1 and Healthy; deleted afterwards."""
    ComputeTarget.create(ws, "docker1", DockerCompute.provisioning_configuration(image=TF_IMAGE))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w").write_text("1")
    (tmp_path / "score.py").write_text(SCORE)
    model = Model.register(ws, str(tmp_path / "m"), "m")
    svc = deploy(ws, "ep1", [model], inference_config=InferenceConfig("score.py", str(tmp_path)),
                 deployment_config=DockerWebservice.deploy_configuration(compute_target="docker1"))
    assert str(svc.state) == "Healthy", svc.get_logs()
    yield svc
    Webservice(ws, "ep1").delete()


def test_recovery_in_a_second_client_keeps_a_healthy_docker_endpoint(ws, endpoint, docker_api):
    cid = endpoint._row()["container_id"]
    other = Workspace(ws.path)  # a second client of the same workspace
    other.recover()
    assert _exists(docker_api, cid)
    assert Webservice(other, "ep1").run({"x": 1}) == {"ok": 1}
    assert str(Webservice(ws, "ep1").state) == "Healthy"


def test_a_cli_command_while_a_docker_endpoint_runs_keeps_it(ws, endpoint, docker_api):
    gone = _sleeper(docker_api, lb.endpoint_labels(ws.path, "deleted-ep"))  # shows the clean-up did run
    env = dict(os.environ)
    env.pop("MLTRAIN_WORKSPACE", None)
    r = subprocess.run([sys.executable, "-m", "mltrain_desktop.cli", "--workspace", str(ws.path), "run", "list"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert not _exists(docker_api, gone)
    assert _exists(docker_api, endpoint._row()["container_id"])
    assert Webservice(ws, "ep1").run({"x": 1}) == {"ok": 1}


def test_a_deleted_endpoints_container_is_removed_and_the_live_ones_kept(ws, endpoint, docker_api):
    live = endpoint._row()["container_id"]
    # a container of an endpoint that was deleted while its engine did not answer
    gone = _sleeper(docker_api, lb.endpoint_labels(ws.path, "deleted-ep"))
    name = docker_api.inspect_container(gone)["Name"].lstrip("/")
    assert not endpoint_rows.exists(ws.db.conn, "deleted-ep")
    assert clean_workspace(ws.path, ws.db.conn, [{}]) == [name]
    assert not _exists(docker_api, gone) and _ids(docker_api, ws.path) == {live}


def test_the_endpoint_container_gets_the_job_containers_hardening(ws, endpoint, docker_api, tmp_path):
    ep = docker_api.inspect_container(endpoint._row()["container_id"])
    ctx = make_ctx(tmp_path / "job", "print('x')\n", run_id="exp_1_hard")
    from mltrain_desktop.adapters.docker.engine import client_over
    job = client_over(docker_api).containers.create(**container_run_kwargs(ctx, TF_IMAGE))
    try:
        jb = docker_api.inspect_container(job.id)
    finally:
        job.remove(force=True)
    for info in (ep, jb):
        assert info["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
        hc = info["HostConfig"]
        assert hc["Init"] is True and not hc["Privileged"]
        assert hc["SecurityOpt"] == ["no-new-privileges"]
        assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "100m", "max-file": "3"}}
    labels = ep["Config"]["Labels"]
    assert lb.owner_of(labels) == ("endpoint", "ep1") and labels[lb.WORKSPACE] == str(ws.path.resolve())
    assert lb.owner_of(jb["Config"]["Labels"]) == ("run", "exp_1_hard")


def test_the_clean_up_removes_only_what_it_owns_and_whose_owner_is_over(ws, docker_api, tmp_path):
    endpoint_rows.insert(ws.db.conn, "kept-ep", "docker", ["m:1"], {}, key="k")
    _run_row(ws, "live_1", terminal=False)
    _run_row(ws, "done_1", terminal=True)
    other_ws = tmp_path / "other-ws"
    made = {
        "live endpoint": _sleeper(docker_api, lb.endpoint_labels(ws.path, "kept-ep")),
        "deleted endpoint": _sleeper(docker_api, lb.endpoint_labels(ws.path, "never-was")),
        "live run": _sleeper(docker_api, lb.run_labels(ws.path, "live_1", "docker1", "job")),
        "terminal run": _sleeper(docker_api, lb.run_labels(ws.path, "done_1", "docker1", "job")),
        "unknown run": _sleeper(docker_api, lb.run_labels(ws.path, "deleted_1", "docker1", "job")),
        "build": _sleeper(docker_api, lb.owner_labels(ws.path, lb.OWNER_BUILD, "abc123")),
        "no owner": _sleeper(docker_api, {lb.WORKSPACE: lb.workspace_value(ws.path)}),
        "older run label only": _sleeper(docker_api, {lb.WORKSPACE: lb.workspace_value(ws.path), lb.RUN: "done_1"}),
        "other workspace": _sleeper(docker_api, lb.run_labels(other_ws, "done_1", "docker1", "job")),
        "unlabelled": _sleeper(docker_api, {}),
    }
    try:
        clean_containers(docker_api, ws.path, owner_is_over_in(ws.db.conn))
        kept = {what for what, cid in made.items() if _exists(docker_api, cid)}
        assert kept == {"live endpoint", "live run", "build", "no owner", "other workspace", "unlabelled"}
    finally:
        for cid in made.values():
            if _exists(docker_api, cid):
                docker_api.remove_container(cid, force=True)


def test_recovery_runs_the_clean_up(ws, docker_api):
    ComputeTarget.create(ws, "docker1", DockerCompute.provisioning_configuration(image=TF_IMAGE))
    _run_row(ws, "done_2", terminal=True)
    endpoint_rows.insert(ws.db.conn, "kept-ep", "docker", ["m:1"], {}, key="k")
    done = _sleeper(docker_api, lb.run_labels(ws.path, "done_2", "docker1", "job"))
    kept = _sleeper(docker_api, lb.endpoint_labels(ws.path, "kept-ep"))
    try:
        Workspace(ws.path).recover()
        assert not _exists(docker_api, done) and _exists(docker_api, kept)
    finally:
        for cid in (done, kept):
            if _exists(docker_api, cid):
                docker_api.remove_container(cid, force=True)


def test_an_engine_that_does_not_answer_cleans_nothing_and_does_not_fail(ws, tmp_path):
    assert clean_workspace(ws.path, ws.db.conn, [{"base_url": f"unix://{tmp_path}/no.sock"}], timeout=1) == []


def test_bad_owner_kinds_are_refused():
    with pytest.raises(ValueError, match="owner kind 'job' is not one of run, endpoint, build"):
        lb.owner_labels("/tmp/ws", "job", "x")
    assert lb.owner_of({lb.OWNER_KIND: "job", lb.OWNER_ID: "x"}) is None
    assert lb.owner_of({}) is None and lb.owner_of(None) is None


def test_the_window_opening_the_workspace_keeps_a_healthy_docker_endpoint(ws, endpoint, docker_api, open_window,
                                                                          qtbot):
    """The window runs recovery (and its clean-up) when it opens a workspace."""
    gone = _sleeper(docker_api, lb.endpoint_labels(ws.path, "deleted-ep"))
    window = open_window(ws.path)
    view = window.show_view("endpoints")
    qtbot.waitUntil(lambda: any(r["name"] == "ep1" for r in view.model.records), timeout=20_000)
    qtbot.waitUntil(lambda: not _exists(docker_api, gone), timeout=20_000)  # its clean-up ran
    assert [r["state"] for r in view.model.records if r["name"] == "ep1"] == ["Healthy"]
    assert _exists(docker_api, endpoint._row()["container_id"])
    assert Webservice(ws, "ep1").run({"x": 1}) == {"ok": 1}


def test_a_killed_supervisor_of_a_docker_run_is_replaced_and_the_endpoint_kept(ws, endpoint, docker_api, tmp_path):
    import signal
    import time
    from mltrain_desktop.core import Experiment, ScriptRunConfig
    src = tmp_path / "src"
    src.mkdir()
    (src / "job.py").write_text("import time\nfor i in range(30):\n    print(i, flush=True)\n    time.sleep(0.5)\n")
    run = Experiment(ws, "survival").submit(ScriptRunConfig(source_directory=str(src), script="job.py",
                                                            compute_target="docker1"))
    deadline = time.time() + 120
    while run.get_status() != "Running" and time.time() < deadline:
        time.sleep(0.3)
    assert run.get_status() == "Running"
    old = run_rows.get(ws.db.conn, run.id)["supervisor_pid"]
    os.kill(old, signal.SIGKILL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            os.kill(old, 0)
            time.sleep(0.1)
        except ProcessLookupError:
            break
    other = Workspace(ws.path)
    assert run.id in other.recover()
    assert run_rows.get(ws.db.conn, run.id)["supervisor_pid"] not in (old, -1)
    assert Webservice(other, "ep1").run({"x": 1}) == {"ok": 1}
    assert run.wait_for_completion(timeout=180, raise_on_error=False)["status"] == "Completed"
    assert _exists(docker_api, endpoint._row()["container_id"])
