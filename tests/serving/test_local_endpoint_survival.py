"""A running local endpoint survives other clients (issue 11): a second SDK client's recovery,
a CLI command in another process, the window opening the workspace, and the recovery of a run
whose supervisor was killed. Real server process (an entry-script service), real database."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from mltrain_desktop.core import Experiment, Model, ScriptRunConfig, Workspace
from mltrain_desktop.core.webservice import InferenceConfig, Webservice, deploy
from mltrain_desktop.store import runs as run_rows

SCORE = "def init():\n    pass\n\ndef run(raw):\n    return {'ok': 1}\n"


@pytest.fixture
def ws(tmp_path):
    w = Workspace.create(tmp_path / "ws")
    yield w
    w.close()


@pytest.fixture
def endpoint(ws, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w").write_text("1")
    (tmp_path / "score.py").write_text(SCORE)
    model = Model.register(ws, str(tmp_path / "m"), "m")
    svc = deploy(ws, "local-ep", [model], inference_config=InferenceConfig("score.py", str(tmp_path)))
    assert str(svc.state) == "Healthy", svc.get_logs()
    pid = svc._row()["pid"]
    yield svc, pid
    Webservice(ws, "local-ep").delete()


def _answers(ws) -> bool:
    return Webservice(ws, "local-ep").run({"x": 1}) == {"ok": 1}


def test_a_second_sdk_client_and_a_cli_command_keep_a_local_endpoint(ws, endpoint):
    svc, pid = endpoint
    other = Workspace(ws.path)
    other.recover()
    assert _answers(other)
    env = {k: v for k, v in os.environ.items() if k != "MLTRAIN_WORKSPACE"}
    for args in (["run", "list"], ["endpoint", "list"]):
        r = subprocess.run([sys.executable, "-m", "mltrain_desktop.cli", "--workspace", str(ws.path), *args],
                           capture_output=True, text=True, timeout=120, env=env)
        assert r.returncode == 0, r.stderr
    assert "local-ep" in r.stdout and "Healthy" in r.stdout
    assert svc._row()["pid"] == pid and _answers(ws)
    assert str(Webservice(ws, "local-ep").refresh()) == "Healthy"


def test_the_window_opening_the_workspace_keeps_a_local_endpoint(ws, endpoint, qtbot, open_window):
    window = open_window(ws.path)
    view = window.show_view("endpoints")
    qtbot.waitUntil(lambda: any(r["name"] == "local-ep" for r in view.model.records), timeout=20_000)
    assert [r["state"] for r in view.model.records if r["name"] == "local-ep"] == ["Healthy"]
    assert _answers(ws)


def test_recovering_a_run_whose_supervisor_was_killed_keeps_a_local_endpoint(ws, endpoint, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "job.py").write_text("import time\ntime.sleep(60)\n")
    run = Experiment(ws, "survival").submit(ScriptRunConfig(source_directory=str(src), script="job.py"))
    deadline = time.time() + 60
    while run.get_status() != "Running" and time.time() < deadline:
        time.sleep(0.2)
    sup = run_rows.get(ws.db.conn, run.id)["supervisor_pid"]
    os.kill(sup, signal.SIGKILL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            os.kill(sup, 0)
            time.sleep(0.1)
        except ProcessLookupError:
            break
    assert run.id in Workspace(ws.path).recover()
    assert run.get_status() == "Failed"
    assert _answers(ws)
