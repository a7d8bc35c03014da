"""The bridge: work off the GUI thread, results on it, one SQLite connection per thread, the watcher."""
from __future__ import annotations

import threading
import time

import pytest

from mltrain_desktop.core import Workspace
from mltrain_desktop.gui.bridge import Bridge, DbWatcher, thread_workspace

pytestmark = [pytest.mark.gui]


def test_results_come_back_on_the_gui_thread(qtbot, tmp_path):
    Workspace.create(tmp_path / "ws").close()
    bridge = Bridge(tmp_path / "ws")
    seen = {}

    def work(ws, state, x):
        seen["worker"] = threading.current_thread()
        seen["conn"] = id(ws.db.conn)
        assert thread_workspace(tmp_path / "ws") is ws  # the same thread reuses its connection
        for i in range(5):
            state.progress(i + 1, 5, f"step {i}")
            time.sleep(0.06)
        return ws.db.execute("SELECT COUNT(*) FROM compute_targets").fetchone()[0] + x

    progress, done = [], []
    bridge.run(work, 10, on_done=lambda r: done.append((r, threading.current_thread())),
               on_progress=lambda d, t, m: progress.append((d, t, m)))
    qtbot.waitUntil(lambda: bool(done), timeout=10_000)
    assert done[0][0] == 11 and done[0][1] is threading.main_thread()
    assert seen["worker"] is not threading.main_thread()
    assert progress and progress[-1][:2] == (5, 5)
    assert bridge.busy() == 0


def test_errors_and_cancel(qtbot, tmp_path):
    bridge = Bridge()

    def boom(state):
        raise ValueError("what went wrong, and what to do")
    errors = []
    bridge.run(boom, with_workspace=False, on_error=errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=5_000)
    assert "what to do" in str(errors[0]) and "Traceback" in errors[0].traceback_text

    def long(state):
        for _ in range(200):
            if state.cancelled():
                return "stopped"
            time.sleep(0.01)
        return "ran to the end"
    done = []
    task = bridge.run(long, with_workspace=False, on_done=done.append)
    task.cancel()
    qtbot.waitUntil(lambda: bool(done), timeout=5_000)
    assert done == ["stopped"]


def test_each_worker_thread_has_its_own_connection(qtbot, tmp_path):
    Workspace.create(tmp_path / "ws").close()
    bridge = Bridge(tmp_path / "ws", max_threads=3)
    barrier = threading.Barrier(3, timeout=10)
    conns = []

    def work(ws, state):
        barrier.wait()  # three threads at once
        conns.append((threading.get_ident(), id(ws.db.conn)))
        return ws.db.execute("SELECT 1").fetchone()[0]
    done = []
    for _ in range(3):
        bridge.run(work, on_done=done.append)
    qtbot.waitUntil(lambda: len(done) == 3, timeout=10_000)
    assert len({c for _t, c in conns}) == 3 and len({t for t, _c in conns}) == 3


def test_watcher_reports_what_changed(qtbot, tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    watcher = DbWatcher(tmp_path / "ws", interval=0.05)
    got = []
    watcher.changed.connect(got.append)
    watcher.start()
    try:
        qtbot.waitUntil(lambda: bool(got), timeout=5_000)  # the first look
        got.clear()
        from mltrain_desktop.core import Experiment
        Experiment(ws, "new-experiment")
        qtbot.waitUntil(lambda: any("experiments" in t for t in got), timeout=5_000)
        assert not any("runs" in t for t in got)
        got.clear()
        from mltrain_desktop.core.sample_flow import register_sample_dataset
        register_sample_dataset(ws, full=False)
        qtbot.waitUntil(lambda: any("datasets" in t for t in got), timeout=5_000)
    finally:
        watcher.stop()
        ws.close()
