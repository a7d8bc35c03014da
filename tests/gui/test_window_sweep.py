"""A real sweep (4 children of a tiny script on the local target) in the real window: the Runs
view shows it as one row with its children folded under it, the sweep view shows every child
with its hyperparameters, marks the best one as the SDK picks it, brushing selects children,
and "Register model…" registers the best child's model."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from mltrain_desktop.gui.views.table_model import RECORD_ROLE

from window_fixtures import private_settings, tiny_source, window  # noqa: F401

pytestmark = [pytest.mark.gui]


@pytest.fixture
def sweep_ws(tmp_path):
    from mltrain_desktop.core import Experiment, ScriptRunConfig, Workspace
    from mltrain_desktop.train.hyperdrive import (BanditPolicy, HyperDriveConfig, PrimaryMetricGoal,
                                                  RandomParameterSampling, choice, uniform)
    path = tmp_path / "ws-sweep"
    ws = Workspace.create(path)
    src = ScriptRunConfig(source_directory=str(tiny_source(tmp_path)), script="train.py", arguments=["--steps", 20])
    sampling = RandomParameterSampling({"--lr": uniform(0.05, 0.5), "--batch-size": choice(16, 32)})
    htc = HyperDriveConfig(run_config=src, hyperparameter_sampling=sampling, primary_metric_name="accuracy",
                           primary_metric_goal=PrimaryMetricGoal.MAXIMIZE, max_total_runs=4, max_concurrent_runs=2,
                           policy=BanditPolicy(evaluation_interval=5, slack_factor=0.5))
    htr = Experiment(ws, "sweepy").submit(htc)
    htr.wait_for_completion(timeout=240)
    best = htr.get_best_run_by_primary_metric()
    info = {"path": path, "sweep": htr.id, "best": best.id, "children": sorted(c.id for c in htr.get_children())}
    ws.close()
    return info


def _visible_ids(view):
    proxy = view.proxy
    return [proxy.index(r, 0).data(RECORD_ROLE)["id"] for r in range(proxy.rowCount())]


def test_a_sweep_folds_in_the_runs_view_and_opens_in_the_sweep_view(qtbot, window, sweep_ws, tmp_path):  # noqa: F811
    window.open_workspace(str(sweep_ws["path"]))
    qtbot.waitUntil(lambda: window.workspace_path == str(sweep_ws["path"]), timeout=15_000)
    runs = window.show_view("runs")
    qtbot.waitUntil(lambda: len(runs.model.records) == 5, timeout=15_000)
    assert _visible_ids(runs) == [sweep_ws["sweep"]]  # the children are folded under it
    row = runs.model.records[runs.model.row_of(sweep_ws["sweep"])]
    state, metric = runs.model.columns[3].text(row), runs.model.columns[7].text(row)
    assert state.startswith("Completed (") and "Completed" in state[len("Completed ("):]
    assert metric.startswith("best accuracy = ")

    id_index = runs.proxy.index(0, 2)
    qtbot.mouseClick(runs.table.viewport(), Qt.MouseButton.LeftButton, pos=runs.table.visualRect(id_index).center())
    qtbot.waitUntil(lambda: len(_visible_ids(runs)) == 5, timeout=5_000)
    ids = _visible_ids(runs)
    assert ids[0] == sweep_ws["sweep"] and sorted(ids[1:]) == sweep_ws["children"]  # right under their sweep
    assert runs.model.columns[2].text(runs.model.records[runs.model.row_of(ids[1])]).strip().startswith("↳")

    runs.select_run(sweep_ws["sweep"])
    runs.open_selected()
    view = window.views["sweep"]
    qtbot.waitUntil(lambda: window.stack.currentWidget() is view and view.detail is not None, timeout=15_000)
    assert view.best_run_id() == sweep_ws["best"]
    starred = [r["run_id"] for r in view.panels.model.records if view.panels.model.columns[0].text(r).startswith("★")]
    assert starred == [sweep_ws["best"]]
    assert sorted(r["run_id"] for r in view.panels.model.records) == sweep_ws["children"]
    assert {"--lr", "--batch-size"} <= {c.title for c in view.panels.model.columns}
    assert view.register_button.isEnabled() and not view.cancel_button.isEnabled()

    view.panels.coords.set_brush("--batch-size", 0.0, 0.1)
    small = {r["run_id"] for r in view.panels.model.records if r["hyperparameters"]["--batch-size"] == 16}
    assert view.panels.selection == small

    view.grab().save(str(tmp_path / "sweep_view.png"))
    dlg = view.open_register_dialog()
    qtbot.waitUntil(lambda: dlg.ready, timeout=10_000)
    dlg.name_edit.setText("best-of-sweep")
    qtbot.mouseClick(dlg.register_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=30_000)
    from mltrain_desktop.core import Model, Workspace
    ws = Workspace(sweep_ws["path"])
    try:
        assert Model(ws, "best-of-sweep").run_id == sweep_ws["best"]
    finally:
        ws.close()


def test_opening_on_a_sweep_shows_it_once_the_workspace_is_open(qtbot, window, sweep_ws):  # noqa: F811
    """What ``mltrain-desktop --workspace WS --sweep ID`` (and RunDetails outside Jupyter) does."""
    from mltrain_desktop.gui.app import build_parser
    args = build_parser().parse_args(["--workspace", str(sweep_ws["path"]), "--sweep", sweep_ws["sweep"]])
    window.after_open = lambda: window.show_sweep(args.sweep)
    window.open_workspace(args.workspace)
    view = window.views["sweep"]
    qtbot.waitUntil(lambda: window.stack.currentWidget() is view and view.detail is not None, timeout=15_000)
    assert view.run_id == sweep_ws["sweep"] and window.after_open is None


def test_a_sweep_submitted_from_the_dialog_runs_and_opens(qtbot, window, tmp_path):  # noqa: F811
    from mltrain_desktop.core import Workspace
    path = tmp_path / "ws-dialog"
    Workspace.create(path).close()
    window.open_workspace(str(path))
    qtbot.waitUntil(lambda: window.workspace_path == str(path), timeout=15_000)
    dlg = window.open_submit_dialog()
    qtbot.waitUntil(lambda: dlg.ready, timeout=10_000)
    dlg.experiment.setCurrentText("dialog-sweep")
    dlg.source_edit.setText(str(tiny_source(tmp_path)))
    dlg._refresh_scripts()
    dlg.script.setCurrentText("train.py")
    dlg.add_argument("--steps", value="10")
    dlg.sweep.setChecked(True)
    dlg.sweep.add_parameter("--lr", "uniform", "0.05, 0.5")
    dlg.sweep.metric_edit.setText("accuracy")
    dlg.sweep.total.setValue(2)
    # a tuned argument that is also fixed is named before anything is submitted
    dlg.sweep.add_parameter("--steps", "choice", "5, 10")
    qtbot.mouseClick(dlg.submit_button, Qt.MouseButton.LeftButton)
    assert "also a fixed script argument" in dlg.error.text()
    dlg.sweep.space.removeRow(1)
    qtbot.mouseClick(dlg.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=30_000)
    sweep_id = dlg.run_id
    assert "_HD_" in sweep_id
    runs = window.show_view("runs")
    qtbot.waitUntil(lambda: runs.model.row_of(sweep_id) >= 0, timeout=15_000)
    runs.select_run(sweep_id)
    runs.open_selected()
    view = window.views["sweep"]
    qtbot.waitUntil(lambda: view.detail is not None and view.detail["sweep"]["status"] == "Completed",
                    timeout=120_000)
    assert len(view.panels.model.records) == 2 and view.best_run_id()
