"""Webservice.state reads, refresh() probes: with a real server process (an entry-script
service, so no TensorFlow is loaded) and the real workspace database."""
from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from mltrain_desktop.core import Model, Workspace
from mltrain_desktop.core.webservice import InferenceConfig, Webservice, deploy
from mltrain_desktop.domain.endpoint_state import EndpointState as S

SCORE = "def init():\n    pass\n\ndef run(raw):\n    return {'ok': True, 'got': raw}\n"
SLOW = "import time\n\ndef init():\n    time.sleep(120)\n\ndef run(raw):\n    return raw\n"
BROKEN = "def init():\n    raise RuntimeError('no weights here')\n\ndef run(raw):\n    return raw\n"


def _deploy(ws, tmp_path, name, script=SCORE):
    mdir = tmp_path / f"model-{name}"
    mdir.mkdir()
    (mdir / "weights.txt").write_text("not read by the entry script")
    model = Model.register(ws, str(mdir), f"m-{name}", model_framework="TensorFlow")
    (tmp_path / f"score_{name}.py").write_text(script)
    ic = InferenceConfig(entry_script=f"score_{name}.py", source_directory=str(tmp_path))
    return deploy(ws, name, [model], inference_config=ic, wait=False)


def _stored(ws, name):
    return ws.db.execute("SELECT state, state_detail, port, updated FROM endpoints WHERE name=?",
                         [name]).fetchone()


def _refresh_until(svc, leave: S, timeout=60.0) -> S:
    deadline = time.monotonic() + timeout
    while (st := svc.refresh()) is leave and time.monotonic() < deadline:
        time.sleep(0.1)
    return st


def _kill(pid):
    os.kill(pid, signal.SIGKILL)
    try:
        psutil.Process(pid).wait(10)
    except psutil.NoSuchProcess:
        pass


def test_reading_writes_nothing_and_refresh_records_what_it_finds(ws, tmp_path):
    svc = _deploy(ws, tmp_path, "probe")
    ready = svc.folder / "ready.json"
    deadline = time.monotonic() + 60
    while not ready.is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ready.is_file(), svc.get_logs()
    # The service is up, but nobody has looked: every read still says Transitioning.
    other = Webservice(Workspace(ws.path), "probe")        # another client, as after a restart
    before = _stored(ws, "probe")
    for _ in range(3):
        assert other.state is S.TRANSITIONING and other.as_dict()["state"] is S.TRANSITIONING
        assert "Transitioning" in repr(other) and other.state_detail == before[1]
    assert _stored(ws, "probe") == before
    # refresh() settles it from the ready file (the deploying client may be gone)
    assert other.refresh() is S.HEALTHY
    assert svc.state is S.HEALTHY and svc.port and svc.run("{}") == {"ok": True, "got": "{}"}
    # the process dies: reading still says Healthy and writes nothing; refresh() finds it
    _kill(svc._row()["pid"])
    before = _stored(ws, "probe")
    assert other.state is S.HEALTHY and svc.as_dict()["state"] is S.HEALTHY
    assert _stored(ws, "probe") == before
    assert other.refresh() is S.UNHEALTHY
    assert svc.state is S.UNHEALTHY and "no longer running" in svc.state_detail
    assert svc.refresh() is S.UNHEALTHY                       # stays, and writes nothing more
    # start() brings it back; stop() and delete() are recorded; a stopped service is not probed
    assert svc.start() is S.HEALTHY, svc.get_logs()
    assert svc.run("[1]")["got"] == "[1]"
    svc.stop()
    assert svc.state is S.STOPPED and svc.refresh() is S.STOPPED
    svc.delete()
    assert svc.state is S.DELETED and svc.refresh() is S.DELETED


def test_a_service_that_fails_to_start_is_recorded_failed_by_refresh(ws, tmp_path):
    svc = _deploy(ws, tmp_path, "broken", script=BROKEN)
    assert _refresh_until(svc, S.TRANSITIONING) is S.FAILED, svc.get_logs()
    assert "entry_script" in svc.state_detail and "no weights here" in svc.state_detail
    before = _stored(ws, "broken")
    assert svc.refresh() is S.FAILED and _stored(ws, "broken") == before
    svc.delete()


def test_a_dead_service_before_ready_is_failed_not_unhealthy(ws, tmp_path):
    svc = _deploy(ws, tmp_path, "early", script=SLOW)
    _kill(svc._row()["pid"])
    assert svc.wait_for_deployment(timeout_sec=30) is S.FAILED
    assert "ended before it was ready" in svc.state_detail
    svc.delete()


def test_a_stopped_endpoint_is_not_revived_by_a_late_ready_file(ws, tmp_path):
    svc = _deploy(ws, tmp_path, "late", script=SLOW)
    row = svc._row()
    svc.stop()                        # another client stops it before anyone settled it
    (svc.folder / "ready.json").write_text('{"port": 1, "pid": %d}' % row["pid"])
    assert svc.refresh() is S.STOPPED and svc.wait_for_deployment(timeout_sec=1) is S.STOPPED
    svc.delete()
