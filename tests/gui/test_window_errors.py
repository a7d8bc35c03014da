"""Bad input, each shown in the window (inline in dialogs), with nothing done behind the user's back."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from PySide6.QtCore import Qt

from mltrain_desktop.core import ComputeTarget, Experiment, ScriptRunConfig, Workspace
from mltrain_desktop.core.compute import LocalCompute
from mltrain_desktop.core.samples import SUBSET_DIR

from window_fixtures import cancel_leftovers, private_settings, tiny_source, window  # noqa: F401

pytestmark = [pytest.mark.gui]


def open_ws(qtbot, window, path):  # noqa: F811
    window.open_workspace(str(path))
    qtbot.waitUntil(lambda: window.workspace_path == str(path), timeout=15_000)


def finished_run(ws, tmp_path, steps: int = 20):
    src = tiny_source(tmp_path)
    run = Experiment(ws, "tiny").submit(ScriptRunConfig(source_directory=str(src), script="train.py",
                                                       arguments=["--steps", steps]))
    run.wait_for_completion(timeout=120)
    return run


def runs_in(path) -> int:
    conn = sqlite3.connect(str(path / "workspace.db"))
    try:
        return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    finally:
        conn.close()


# -- workspaces ------------------------------------------------------------------------------

def test_create_workspace_where_one_exists_or_folder_not_writable(qtbot, window, tmp_path):  # noqa: F811
    Workspace.create(tmp_path / "taken").close()
    dlg = window.open_new_workspace_dialog()
    dlg.path_edit.setText(str(tmp_path / "taken"))
    qtbot.mouseClick(dlg.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.error.isVisible(), timeout=10_000)
    assert "already exists" in dlg.error.text()
    assert dlg.isVisible() and window.workspace_path is None
    # a folder that cannot be created or written (its parent is a file: even root cannot)
    (tmp_path / "afile").write_text("x")
    dlg.path_edit.setText(str(tmp_path / "afile" / "ws"))
    qtbot.mouseClick(dlg.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "cannot create a workspace" in dlg.error.text(), timeout=10_000)
    assert dlg.path_edit.text() == str(tmp_path / "afile" / "ws")  # what the user typed is kept
    dlg.reject()
    # from the welcome page too
    window.welcome.path_edit.setText(str(tmp_path / "taken"))
    qtbot.mouseClick(window.welcome.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.welcome.error.isVisible(), timeout=10_000)
    assert "already exists" in window.welcome.error.text()


def test_open_a_folder_that_is_not_a_workspace(qtbot, window, tmp_path):  # noqa: F811
    (tmp_path / "plain").mkdir()
    window.open_workspace(str(tmp_path / "plain"))
    qtbot.waitUntil(lambda: window.ctx.last_error is not None, timeout=10_000)
    assert "is not an MLTrain workspace" in window.ctx.last_error
    assert window.workspace_path is None and window.stack.currentWidget() is window.welcome
    assert "is not an MLTrain workspace" in window.welcome.error.text()
    # a file that is not a database, named workspace.db
    (tmp_path / "plain" / "workspace.db").write_bytes(b"this is not sqlite" * 100)
    window.ctx.last_error = None
    window.open_workspace(str(tmp_path / "plain"))
    qtbot.waitUntil(lambda: window.ctx.last_error is not None, timeout=10_000)
    assert "not an MLTrain workspace database" in window.ctx.last_error
    assert window.workspace_path is None


def test_settings_remember_the_workspace(qtbot, window, tmp_path, private_settings):  # noqa: F811
    from mltrain_desktop.gui.main_window import initial_workspace
    path = tmp_path / "ws"
    Workspace.create(path).close()
    open_ws(qtbot, window, path)
    assert window.recent_workspaces()[0] == str(path)
    assert initial_workspace(None) == str(path)
    assert (private_settings / "settings").is_dir()  # QSettings went under MLTRAIN_HOME


# -- datasets ---------------------------------------------------------------------------------

def test_register_empty_selection_or_failing_url(qtbot, window, tmp_path):  # noqa: F811
    Workspace.create(tmp_path / "ws").close()
    open_ws(qtbot, window, tmp_path / "ws")
    view = window.show_view("datasets")
    dlg = view.open_register_dialog()
    dlg.name_edit.setCurrentText("data")
    qtbot.mouseClick(dlg.register_button, Qt.MouseButton.LeftButton)
    assert dlg.error.isVisible() and "Nothing to register" in dlg.error.text()
    # a URL that fails: nothing listens on port 9
    url = "http://127.0.0.1:9/train-images-idx3-ubyte.gz"
    dlg.url_edit.setText(url)
    dlg.add_url()
    dlg.description_edit.setText("my description")
    qtbot.mouseClick(dlg.register_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "downloading" in dlg.error.text(), timeout=30_000)
    assert "failed" in dlg.error.text()
    assert dlg.isVisible() and dlg.register_button.isEnabled()
    assert dlg.source_list() == [url]  # kept
    assert dlg.name_edit.currentText() == "data" and dlg.description_edit.text() == "my description"
    # fixing it registers: remove the URL, add a real file
    dlg.sources.clear()
    dlg.add_sources([str(SUBSET_DIR / "train-labels-idx1-ubyte.gz")])
    qtbot.mouseClick(dlg.register_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=20_000)
    qtbot.waitUntil(lambda: len(view.model.records) == 1, timeout=10_000)


# -- submitting -------------------------------------------------------------------------------

def test_submit_errors_are_inline_and_submit_nothing(qtbot, window, tmp_path):  # noqa: F811
    path = tmp_path / "ws"
    ws = Workspace.create(path)
    ComputeTarget.create(ws, "broken", LocalCompute.provisioning_configuration(python="/nonexistent/python3"))
    ws.close()
    open_ws(qtbot, window, path)
    src = tiny_source(tmp_path)
    dlg = window.open_submit_dialog()
    qtbot.waitUntil(lambda: dlg.ready, timeout=10_000)
    dlg.experiment.setCurrentText("exp")
    dlg.source_edit.setText(str(src))
    dlg.script.setCurrentText("missing.py")
    qtbot.mouseClick(dlg.submit_button, Qt.MouseButton.LeftButton)
    assert dlg.error.isVisible() and "missing.py was not found" in dlg.error.text()
    # an argument without a name
    dlg.script.setCurrentText("train.py")
    r = dlg.add_argument("", value="5")
    qtbot.mouseClick(dlg.submit_button, Qt.MouseButton.LeftButton)
    assert "has a value but no name" in dlg.error.text()
    dlg.args_table.item(r, 0).setText("--steps")
    # an unreachable compute target
    dlg.target.setCurrentIndex(dlg.target.findData("broken"))
    assert "Not reachable" in dlg.target_detail.text()
    qtbot.mouseClick(dlg.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "not reachable" in dlg.error.text(), timeout=15_000)
    assert "/nonexistent/python3" in dlg.error.text()
    assert dlg.isVisible() and runs_in(path) == 0
    # and an invalid experiment name
    dlg.target.setCurrentIndex(dlg.target.findData("local"))
    dlg.experiment.setCurrentText("bad name!")
    qtbot.mouseClick(dlg.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "is not valid" in dlg.error.text(), timeout=15_000)
    assert runs_in(path) == 0
    # all fixed: it is submitted, with the argument
    dlg.experiment.setCurrentText("exp")
    qtbot.mouseClick(dlg.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=15_000)
    assert runs_in(path) == 1
    detail = window.views["run"]
    qtbot.waitUntil(lambda: detail.state is not None and detail.state["status"] == "Completed", timeout=60_000)
    qtbot.waitUntil(lambda: detail.point_count("loss") == 5, timeout=10_000)


def test_resubmit_with_the_same_settings(qtbot, window, tmp_path):  # noqa: F811
    path = tmp_path / "ws"
    ws = Workspace.create(path)
    run = finished_run(ws, tmp_path, steps=7)
    ws.close()
    open_ws(qtbot, window, path)
    runs = window.show_view("runs")
    qtbot.waitUntil(lambda: runs.select_run(run.id), timeout=10_000)
    runs.resubmit_selected()
    qtbot.waitUntil(lambda: window.dialog is not None and window.dialog.windowTitle() == "Submit a run"
                    and window.dialog.ready, timeout=10_000)
    dlg = window.dialog
    form = dlg.form()
    assert form["experiment"] == "tiny" and form["entry_script"] == "train.py"
    assert [(a["name"], a["value"]) for a in form["arguments"]] == [("--steps", "7")]
    qtbot.mouseClick(dlg.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=15_000)
    assert runs_in(path) == 2


# -- models -----------------------------------------------------------------------------------

def test_register_model_from_a_path_not_in_outputs(qtbot, window, tmp_path):  # noqa: F811
    path = tmp_path / "ws"
    ws = Workspace.create(path)
    run = finished_run(ws, tmp_path)
    ws.close()
    open_ws(qtbot, window, path)
    detail = window.show_run(run.id)
    qtbot.waitUntil(lambda: detail.register_button.isEnabled(), timeout=10_000)
    dlg = detail.open_register_dialog()
    qtbot.waitUntil(lambda: dlg.ready, timeout=10_000)
    assert "outputs/model" in [dlg.path_combo.itemText(i) for i in range(dlg.path_combo.count())]
    dlg.name_edit.setText("m")
    for bad, message in (("logs/driver.log", "not in the run's outputs"), ("../../etc", "not in the run's outputs"),
                         ("outputs/nothing", "has no 'outputs/nothing' in its outputs")):
        dlg.path_combo.setCurrentText(bad)
        qtbot.mouseClick(dlg.register_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda m=message: m in dlg.error.text(), timeout=10_000)
        assert dlg.isVisible()
    dlg.tags_edit.setText("novalue")
    dlg.path_combo.setCurrentText("outputs/model")
    qtbot.mouseClick(dlg.register_button, Qt.MouseButton.LeftButton)
    assert "must be key=value" in dlg.error.text()
    dlg.tags_edit.setText("k=v")
    qtbot.mouseClick(dlg.register_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=10_000)
    models = window.views["models"]
    qtbot.waitUntil(lambda: models.selected() is not None and models.selected()["name"] == "m", timeout=10_000)


# -- concurrency and vanishing runs -----------------------------------------------------------

WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1] + "/workspace.db", timeout=30, isolation_level=None)
conn.execute("PRAGMA busy_timeout=30000")
end = time.time() + float(sys.argv[2])
i = 0
while time.time() < end:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO experiments (name, created) VALUES (?, ?)", (f"writer-{i}", time.time()))
    time.sleep(0.05)  # hold the write lock a while
    conn.execute("COMMIT")
    i += 1
print(i, flush=True)
"""


def test_database_written_by_another_process_at_the_same_moment(qtbot, window, tmp_path):  # noqa: F811
    path = tmp_path / "ws"
    ws = Workspace.create(path)
    finished_run(ws, tmp_path, steps=5)
    ws.close()
    open_ws(qtbot, window, path)
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(path), "4"],
                              stdout=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        for key in ("runs", "workspace", "datasets", "compute", "models", "runs"):
            view = window.show_view(key)
            view.refresh()
            qtbot.waitUntil(lambda v=view: not v.is_loading(), timeout=15_000)
        runs = window.views["runs"]
        assert len(runs.model.records) == 1
        # the writer's experiments show up in the overview while it writes
        qtbot.waitUntil(lambda: (window.show_view("workspace").data or {}).get("experiments", 0) > 2,
                        timeout=15_000)
        assert time.monotonic() - t0 < 15
    finally:
        out, _ = writer.communicate(timeout=30)
    assert int(out.strip()) > 10
    assert window.ctx.last_error is None


def test_run_deleted_from_disk_while_its_detail_view_is_open(qtbot, window, tmp_path):  # noqa: F811
    path = tmp_path / "ws"
    ws = Workspace.create(path)
    run = finished_run(ws, tmp_path, steps=12)
    ws.close()
    open_ws(qtbot, window, path)
    detail = window.show_run(run.id)
    qtbot.waitUntil(lambda: detail.point_count("loss") == 12 and bool(detail.files), timeout=10_000)
    detail.tabs.setCurrentIndex(2)
    qtbot.waitUntil(lambda: "done 12 steps" in detail.log_view.text(), timeout=10_000)
    shutil.rmtree(path / "runs" / run.id)  # the folder goes
    qtbot.waitUntil(lambda: detail.banner.isVisible() and "deleted from disk" in detail.banner.text(),
                    timeout=10_000)
    qtbot.waitUntil(lambda: detail.files == [], timeout=10_000)
    assert not detail.register_button.isEnabled()
    assert detail.point_count("loss") == 12  # what was loaded stays
    # now the records go too (Delete in the Runs view)
    from mltrain_desktop.gui.views.runs_view import delete_runs
    done = []
    window.bridge.run(delete_runs, [run.id], on_done=done.append)
    qtbot.waitUntil(lambda: done == [1], timeout=10_000)
    detail.follower.poke()
    qtbot.waitUntil(lambda: "no longer in the workspace" in detail.banner.text(), timeout=10_000)
    assert detail.state_label.text() == "deleted"
    runs = window.show_view("runs")
    qtbot.waitUntil(lambda: not runs.is_loading() and runs.model.rowCount() == 0, timeout=10_000)
    assert window.ctx.last_error is None
    cancel_leftovers(path)
