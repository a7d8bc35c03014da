"""The views and dialogs one by one: compute create/edit/delete, compare, about, shortcuts, theme,
the one-button sample, and --screenshot."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox

from mltrain_desktop.core import Workspace

from window_fixtures import REPO, make_workspace_with_runs, private_settings, window  # noqa: F401

pytestmark = [pytest.mark.gui]


def open_ws(qtbot, window, path):  # noqa: F811
    window.open_workspace(str(path))
    qtbot.waitUntil(lambda: window.workspace_path == str(path), timeout=15_000)


def test_compute_create_edit_and_delete(qtbot, window, tmp_path):  # noqa: F811
    Workspace.create(tmp_path / "ws").close()
    open_ws(qtbot, window, tmp_path / "ws")
    view = window.show_view("compute")
    qtbot.waitUntil(lambda: [r["name"] for r in view.model.records] == ["local"], timeout=10_000)
    assert view.model.records[0]["state"] == "Succeeded"
    # create: validation inline
    dlg = view.open_create_dialog()
    assert "local" in [dlg.kind_combo.itemText(i) for i in range(dlg.kind_combo.count())]
    qtbot.mouseClick(dlg.save_button, Qt.MouseButton.LeftButton)
    assert "Give the target a name" in dlg.error.text()
    dlg.name_edit.setText("local")
    qtbot.mouseClick(dlg.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "already exists" in dlg.error.text(), timeout=10_000)
    dlg.name_edit.setText("cluster")
    dlg.hosts_edit.setText("host1:x")
    qtbot.mouseClick(dlg.save_button, Qt.MouseButton.LeftButton)
    assert "slots must be a whole number" in dlg.error.text()
    dlg.hosts_edit.setText("")
    dlg.max_runs.setValue(3)
    qtbot.mouseClick(dlg.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=15_000)
    qtbot.waitUntil(lambda: view.selected_name() == "cluster", timeout=10_000)
    rec = next(r for r in view.model.records if r["name"] == "cluster")
    assert rec["max_concurrent_runs"] == 3 and rec["state"] == "Succeeded"
    # edit: a bad interpreter makes it unreachable, and says why
    dlg = view.open_edit_dialog()
    assert not dlg.name_edit.isEnabled() and dlg.max_runs.value() == 3
    dlg.python_edit.setText("/no/such/python")
    qtbot.mouseClick(dlg.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=15_000)
    qtbot.waitUntil(lambda: next(r for r in view.model.records if r["name"] == "cluster")["state"] == "Failed",
                    timeout=10_000)
    assert "/no/such/python" in next(r for r in view.model.records if r["name"] == "cluster")["detail"]
    # Delete (the window's Delete action; its key is checked in test_about_shortcuts_and_theme)
    # -> confirmation -> deleted
    window.delete_action.trigger()
    box = view.confirm_box
    assert box.isVisible() and "cluster" in box.text()
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: [r["name"] for r in view.model.records] == ["local"], timeout=10_000)


def test_a_local_target_with_hosts_and_an_ssh_config(qtbot, window, tmp_path):  # noqa: F811
    Workspace.create(tmp_path / "ws").close()
    open_ws(qtbot, window, tmp_path / "ws")
    view = window.show_view("compute")
    qtbot.waitUntil(lambda: [r["name"] for r in view.model.records] == ["local"], timeout=10_000)
    dlg = view.open_create_dialog()
    dlg.name_edit.setText("two-hosts")
    dlg.hosts_edit.setText("node1:2, node2:2")
    dlg.ssh_config_edit.setText(str(tmp_path / "no-such-config"))
    qtbot.mouseClick(dlg.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "ssh_config must be the path of an existing file" in dlg.error.text(), timeout=10_000)
    assert dlg.isVisible() and "two-hosts" not in [r["name"] for r in view.model.records]
    config = tmp_path / "ssh_config"
    config.write_text("Host node1\n  HostName 10.0.0.1\nHost node2\n  HostName 10.0.0.2\n")
    dlg.ssh_config_edit.setText(str(config))
    qtbot.mouseClick(dlg.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=15_000)
    qtbot.waitUntil(lambda: "two-hosts" in [r["name"] for r in view.model.records], timeout=10_000)
    ws = Workspace(tmp_path / "ws")
    cfg = ws.compute_targets["two-hosts"].config
    ws.close()
    assert cfg["ssh_config"] == str(config)
    assert cfg["hosts"] == [{"host": "node1", "slots": 2}, {"host": "node2", "slots": 2}]
    qtbot.waitUntil(lambda: view.selected_name() == "two-hosts", timeout=10_000)
    edit = view.open_edit_dialog()
    assert edit.ssh_config_edit.text() == str(config) and edit.hosts_edit.text() == "node1:2, node2:2"
    edit.reject()


def test_a_docker_target_whose_mpi_jobs_run_through_mpirun(qtbot, window, tmp_path):  # noqa: F811
    """The Docker page's "MPI jobs" choice is stored as mpi_launcher, shown again, and can be undone."""
    Workspace.create(tmp_path / "ws").close()
    open_ws(qtbot, window, tmp_path / "ws")
    view = window.show_view("compute")
    qtbot.waitUntil(lambda: [r["name"] for r in view.model.records] == ["local"], timeout=10_000)
    dlg = view.open_create_dialog()
    dlg.name_edit.setText("cluster-in-docker")
    dlg.kind_combo.setCurrentText("docker")
    assert dlg.mpi_combo.currentData() == "containers"
    dlg.mpi_combo.setCurrentIndex(1)
    assert "mpirun over SSH" in dlg.mpi_combo.currentText()
    qtbot.mouseClick(dlg.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=30_000)

    def stored():
        ws = Workspace(tmp_path / "ws")
        try:
            return ws.compute_targets["cluster-in-docker"].config
        finally:
            ws.close()
    assert stored()["mpi_launcher"] == "mpirun"
    qtbot.waitUntil(lambda: "cluster-in-docker" in [r["name"] for r in view.model.records], timeout=10_000)
    view.table.selectRow([r["name"] for r in view.model.records].index("cluster-in-docker"))
    qtbot.waitUntil(lambda: view.selected_name() == "cluster-in-docker", timeout=10_000)
    edit = view.open_edit_dialog()
    assert edit.mpi_combo.currentData() == "mpirun"
    edit.mpi_combo.setCurrentIndex(0)
    qtbot.mouseClick(edit.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not edit.isVisible(), timeout=30_000)
    assert "mpi_launcher" not in stored()  # back to one container per rank


def test_editing_a_target_keeps_the_settings_the_form_does_not_show(qtbot, window, tmp_path):  # noqa: F811
    from mltrain_desktop.core.compute import ComputeTarget, LocalCompute
    ws = Workspace.create(tmp_path / "ws")
    mpi_args = ["--mca", "btl_tcp_if_include", "10.0.0.0/24"]
    ComputeTarget.create(ws, "hosts", LocalCompute.provisioning_configuration(
        hosts=["node1:1"], mpirun_args=mpi_args, startup_timeout_s=30, python=sys.executable))
    ws.close()
    open_ws(qtbot, window, tmp_path / "ws")
    view = window.show_view("compute")
    qtbot.waitUntil(lambda: "hosts" in [r["name"] for r in view.model.records], timeout=10_000)
    row = [r["name"] for r in view.model.records].index("hosts")
    view.table.selectRow(row)
    qtbot.waitUntil(lambda: view.selected_name() == "hosts", timeout=10_000)
    edit = view.open_edit_dialog()
    edit.hosts_edit.setText("node1:1, node2:1")
    edit.python_edit.setText("")
    qtbot.mouseClick(edit.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not edit.isVisible(), timeout=15_000)
    ws = Workspace(tmp_path / "ws")
    cfg = ws.compute_targets["hosts"].config
    ws.close()
    assert cfg["hosts"] == [{"host": "node1", "slots": 1}, {"host": "node2", "slots": 1}]
    assert cfg["mpirun_args"] == mpi_args and cfg["startup_timeout_s"] == 30
    assert "python" not in cfg  # a field the form shows and the user cleared is cleared


def test_compare_runs_and_workspace_overview(qtbot, window, tmp_path):  # noqa: F811
    path = make_workspace_with_runs(tmp_path, runs=2)
    open_ws(qtbot, window, path)
    over = window.views["workspace"]
    qtbot.waitUntil(lambda: over.data is not None and over.disk_bytes is not None, timeout=10_000)
    assert over.data["runs"] == 2 and over.data["datasets"] == 1 and over.data["models"] == 1
    assert over.data["runs_by_state"] == {"Completed": 2}
    assert over.recent_model.rowCount() == 2 and over.disk_bytes > 0
    runs = window.show_view("runs")
    qtbot.waitUntil(lambda: runs.model.rowCount() == 2, timeout=10_000)
    # filter and sort
    runs.state_filter.setCurrentText("Failed")
    assert runs.proxy.rowCount() == 0
    runs.state_filter.setCurrentText("Completed")
    assert runs.proxy.rowCount() == 2
    runs.filter_edit.setText(runs.model.records[0]["id"])
    assert runs.proxy.rowCount() == 1
    runs.filter_edit.setText("")
    runs.table.selectAll()
    assert runs.compare_button.isEnabled()
    qtbot.mouseClick(runs.compare_button, Qt.MouseButton.LeftButton)
    cmp = window.views["compare"]
    assert window.stack.currentWidget() is cmp
    qtbot.waitUntil(lambda: len(cmp.data) == 2 and not cmp.is_loading(), timeout=10_000)
    assert cmp.metric_combo.currentText() == "loss"
    qtbot.waitUntil(lambda: cmp.plots.point_count("loss") == 40 + 60, timeout=10_000)
    chart = cmp.plots.chart("loss")
    assert len(chart.series_keys()) == 2  # one curve per run
    labels = [cmp.table.verticalHeaderItem(r).text() for r in range(cmp.table.rowCount())]
    assert "param --steps" in labels and "final final_accuracy" in labels and "tag lr" in labels
    row = labels.index("param --steps")
    assert sorted(cmp.table.item(row, c).text() for c in range(2)) == ["40", "60"]
    assert cmp.table.item(row, 0).font().bold()  # differs between the runs
    cmp.metric_combo.setCurrentText("accuracy")
    qtbot.waitUntil(lambda: cmp.plots.point_count("accuracy") == 100, timeout=10_000)


def test_about_shortcuts_and_theme(qtbot, window, tmp_path):  # noqa: F811
    dlg = window.show_about()
    text = " ".join(lab.text() for lab in dlg.findChildren(type(window.status_label)))
    for name in ("MLTrain Desktop", "Python", "Qt", "PySide6", "pyqtgraph", "SQLite"):
        assert name in text
    dlg.reject()
    assert window.new_action.shortcut() == QKeySequence(QKeySequence.StandardKey.New)
    assert window.open_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Open)
    assert QKeySequence("F5") in window.refresh_action.shortcuts()
    assert window.delete_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Delete)
    # Ctrl+N opens the new-workspace dialog
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert window.dialog is not None and window.dialog.windowTitle() == "New workspace"
    window.dialog.reject()
    from mltrain_desktop.gui.app import apply_theme
    app = QApplication.instance()
    assert apply_theme(app, "dark") == "dark"
    assert app.palette().color(app.palette().ColorRole.Window).lightness() < 100
    assert apply_theme(app, "light") == "light"
    assert app.palette().color(app.palette().ColorRole.Window).lightness() > 150


@pytest.mark.slow
def test_train_the_sample_button(qtbot, window, tmp_path):  # noqa: F811
    Workspace.create(tmp_path / "ws").close()
    open_ws(qtbot, window, tmp_path / "ws")
    over = window.views["workspace"]
    qtbot.waitUntil(lambda: over.data is not None, timeout=10_000)
    assert over.sample_hint.isVisible()  # a fresh workspace says what to do
    qtbot.mouseClick(over.sample_button, Qt.MouseButton.LeftButton)
    detail = window.views["run"]
    qtbot.waitUntil(lambda: window.stack.currentWidget() is detail and detail.state is not None, timeout=30_000)
    detail.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: detail.plots.point_count("batch_loss") > 0, timeout=120_000)  # a live loss curve
    qtbot.waitUntil(lambda: detail.state["status"] in ("Completed", "Failed"), timeout=120_000)
    assert detail.state["status"] == "Completed", detail.state["error"]
    inputs = detail.state["inputs"]
    assert inputs == [{"input": "mnist", "mode": "mount", "dataset": "mnist dataset", "version": 1}]
    assert "--epochs 2" in detail.detail_labels["Arguments"].text()


SLOW_SCRIPT = """
import time
from mltrain_desktop.core import Run
run = Run.get_context()
for i in range(600):
    run.log('loss', 1.0 / (i + 1))
    time.sleep(0.1)
"""


def test_cancel_a_running_run(qtbot, window, tmp_path):  # noqa: F811
    from mltrain_desktop.core import Experiment, ScriptRunConfig
    path = tmp_path / "ws"
    ws = Workspace.create(path)
    src = tmp_path / "src"
    src.mkdir()
    (src / "slow.py").write_text(SLOW_SCRIPT)
    run = Experiment(ws, "slow").submit(ScriptRunConfig(source_directory=str(src), script="slow.py"))
    ws.close()
    open_ws(qtbot, window, path)
    runs = window.show_view("runs")
    qtbot.waitUntil(lambda: runs.select_run(run.id), timeout=10_000)
    detail = window.show_run(run.id)
    detail.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: detail.plots.point_count("loss") > 3, timeout=30_000)  # live, while it runs
    assert detail.state["status"] == "Running" and detail.cancel_button.isEnabled()
    qtbot.mouseClick(detail.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: detail.state["status"] == "Canceled", timeout=60_000)
    assert detail.timeline.summary()[-1][0] == "Running"
    assert not detail.cancel_button.isEnabled()
    runs = window.show_view("runs")
    qtbot.waitUntil(lambda: bool(runs.model.records) and runs.model.records[0]["status"] == "Canceled", timeout=10_000)


def test_screenshot_option_saves_each_view(tmp_path):
    path = make_workspace_with_runs(tmp_path, runs=2)
    out = tmp_path / "shots"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MLTRAIN_HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-m", "mltrain_desktop", "--workspace", str(path), "--screenshot",
                           str(out)], capture_output=True, text=True, timeout=180, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = sorted(p.stem for p in out.glob("*.png"))
    for view in ("workspace", "datasets", "compute", "runs", "run-metrics", "run-overview", "run-logs",
                 "run-outputs", "compare", "models", "submit-dialog"):
        assert view in names, (names, proc.stdout)
        assert (out / f"{view}.png").stat().st_size > 10_000
    assert "not ready" not in proc.stdout, proc.stdout
    from PySide6.QtGui import QImage
    img = QImage(str(out / "workspace.png"))
    assert img.width() == 1280 and img.height() == 820
    assert Path(out / "run-metrics.png").exists()


RANKS_SCRIPT = """
import json, os, time
from mltrain_desktop.core import Run
run = Run.get_context()
for i in range(20):
    run.log('loss', 1.0 / (i + 1))
# what rank 1 of an MPI job writes: its own records (rank 1) and its own log
with open(os.environ['MLTRAIN_METRICS_FILE'], 'a') as fh:
    for i in range(20):
        fh.write(json.dumps({'k': 'm', 'n': 'loss', 's': i, 'v': 2.0 / (i + 1), 't': time.time(), 'rank': 1}) + '\\n')
with open(os.path.join(os.path.dirname(os.environ['MLTRAIN_METRICS_FILE']), 'rank_1.log'), 'w') as fh:
    fh.write('hello from rank 1\\n')
"""


def test_distributed_run_rank_and_log_selectors(qtbot, window, tmp_path):  # noqa: F811
    from mltrain_desktop.core import Experiment, ScriptRunConfig
    path = tmp_path / "ws"
    ws = Workspace.create(path)
    src = tmp_path / "src"
    src.mkdir()
    (src / "job.py").write_text(RANKS_SCRIPT)
    run = Experiment(ws, "dist").submit(ScriptRunConfig(source_directory=str(src), script="job.py"))
    run.wait_for_completion(timeout=60)
    ws.close()
    open_ws(qtbot, window, path)
    detail = window.show_run(run.id)
    qtbot.waitUntil(lambda: detail.point_count("loss", 1) == 20 and detail.point_count("loss", 0) == 20,
                    timeout=10_000)
    detail.tabs.setCurrentIndex(1)
    assert not detail.rank_combo.isHidden()
    assert [detail.rank_combo.itemText(i) for i in range(detail.rank_combo.count())] == ["rank 0", "rank 1",
                                                                                          "all ranks"]
    qtbot.waitUntil(lambda: detail.plots.point_count("loss") == 20, timeout=5_000)  # rank 0 only
    detail.rank_combo.setCurrentText("all ranks")
    assert detail.plots.point_count("loss") == 40
    assert sorted(detail.plots.chart("loss").series_keys()) == ["rank 0", "rank 1"]
    detail.rank_combo.setCurrentText("rank 1")
    assert detail.plots.point_count("loss") == 20
    # logs: driver first, then the rank's log, selectable
    detail.tabs.setCurrentIndex(2)
    qtbot.waitUntil(lambda: "rank_1.log" in [detail.log_combo.itemText(i) for i in range(detail.log_combo.count())],
                    timeout=10_000)
    assert detail.log_combo.itemText(0) == "driver.log"
    detail.log_combo.setCurrentText("rank_1.log")
    qtbot.waitUntil(lambda: "hello from rank 1" in detail.log_view.text(), timeout=10_000)
