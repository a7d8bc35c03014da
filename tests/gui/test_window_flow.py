"""The whole flow, point and click, in the real window (offscreen): workspace, dataset, sample run
with a live chart, model with lineage; and a run started from the CLI showing up by itself."""
from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import Qt

from mltrain_desktop.core.samples import SAMPLE_DIR, SAMPLE_ENTRY_SCRIPT, SUBSET_DIR
from mltrain_desktop.gui.dialogs.submit_run import KIND_MOUNT

from window_fixtures import mltrain_cli, private_settings, tiny_source, window  # noqa: F401

pytestmark = [pytest.mark.gui]


def create_workspace_from_welcome(qtbot, window, path):  # noqa: F811
    assert window.stack.currentWidget() is window.welcome
    window.welcome.path_edit.setText(str(path))
    qtbot.mouseClick(window.welcome.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.workspace_path is not None, timeout=15_000)


@pytest.mark.slow
def test_sample_flow_through_the_dialogs(qtbot, window, tmp_path):  # noqa: F811
    # 1. a workspace, from the welcome page
    create_workspace_from_welcome(qtbot, window, tmp_path / "ws")
    assert window.stack.currentWidget() is window.views["workspace"]
    qtbot.waitUntil(lambda: window.views["workspace"].data is not None, timeout=10_000)
    assert window.views["workspace"].data["runs"] == 0

    # 2. register the shipped dataset through the dialog
    window.nav.setCurrentRow(1)
    datasets = window.views["datasets"]
    assert window.stack.currentWidget() is datasets
    dlg = datasets.open_register_dialog()
    dlg.name_edit.setCurrentText("mnist dataset")
    dlg.description_edit.setText("Fashion-MNIST subset")
    dlg.add_sources([str(p) for p in sorted(SUBSET_DIR.glob("*-ubyte.gz"))])
    qtbot.mouseClick(dlg.register_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=30_000)
    qtbot.waitUntil(lambda: any(r["name"] == "mnist dataset" for r in datasets.model.records), timeout=10_000)
    rec = datasets.model.records[0]
    assert rec["files"] == 4 and rec["version"] == 1
    qtbot.waitUntil(lambda: datasets.preview.count > 0, timeout=10_000)  # the image grid
    qtbot.waitUntil(lambda: datasets.files_model.rowCount() == 4, timeout=10_000)

    # 3. submit the sample through the submit dialog
    dlg = window.open_submit_dialog()
    qtbot.waitUntil(lambda: dlg.ready, timeout=10_000)
    dlg.experiment.setCurrentText("tf-mnist")
    dlg.source_edit.setText(str(SAMPLE_DIR))
    dlg._refresh_scripts()
    assert dlg.script.findText(SAMPLE_ENTRY_SCRIPT) >= 0
    dlg.script.setCurrentText(SAMPLE_ENTRY_SCRIPT)
    r = dlg.add_argument("--data-folder", KIND_MOUNT)
    dlg.set_argument_value(r, "mnist dataset:1")
    dlg.args_table.cellWidget(r, 3).setText("mnist")
    dlg.add_argument("--epochs", value="2")
    assert dlg.target.currentData() == "local"
    qtbot.mouseClick(dlg.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=30_000)
    run_id = dlg.run_id
    detail = window.views["run"]
    assert window.stack.currentWidget() is detail and detail.run_id == run_id

    # 4. the live chart gets points while it runs, then the run completes
    detail.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: detail.plots.point_count("batch_loss") > 0, timeout=150_000)
    chart = detail.plots.chart("batch_loss")
    qtbot.waitUntil(lambda: chart.drawn_count() > 0, timeout=5_000)
    qtbot.waitUntil(lambda: detail.state is not None and detail.state["status"] in ("Completed", "Failed"),
                    timeout=180_000)
    assert detail.state["status"] == "Completed", detail.state.get("error")
    assert [e["status"] for e in detail.state["events"]] == ["Queued", "Preparing", "Running", "Finalizing",
                                                            "Completed"]
    qtbot.waitUntil(lambda: detail.point_count("batch_loss") == 2 * 2000 // 50, timeout=10_000)
    qtbot.waitUntil(lambda: "Final test accuracy" in detail.log_view.text(), timeout=10_000)
    qtbot.waitUntil(lambda: any(p.startswith("outputs/model/") for p, _s in detail.files), timeout=10_000)

    # 5. register the model through its dialog
    dlg = detail.open_register_dialog()
    qtbot.waitUntil(lambda: dlg.ready, timeout=10_000)
    assert dlg.path_combo.currentText() == "outputs/model"
    assert dlg.framework.currentText() == "TensorFlow" and dlg.framework_version.text().startswith("2.")
    dlg.name_edit.setText("tf-dnn-mnist")
    dlg.cpu.setValue(1)
    dlg.memory.setValue(0.5)
    dlg.tags_edit.setText("area=mnist, type=dnn")
    qtbot.mouseClick(dlg.register_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=30_000)

    # 6. it is in the Models view, with lineage to the run, its experiment and dataset
    models = window.views["models"]
    qtbot.waitUntil(lambda: window.stack.currentWidget() is models and models.selected() is not None,
                    timeout=10_000)
    m = models.selected()
    assert m["name"] == "tf-dnn-mnist" and m["version"] == 1 and m["framework"] == "TensorFlow"
    assert m["tags"] == {"area": "mnist", "type": "dnn"}
    assert m["resource_configuration"] == {"cpu": 1, "memory_in_gb": 0.5}
    lin = m["lineage"]
    assert lin["run_id"] == run_id and lin["experiment"] == "tf-mnist"
    assert lin["datasets"] == [{"input": "mnist", "name": "mnist dataset", "version": 1, "mode": "mount"}]
    assert f"run:{run_id}" in models.details.toHtml()
    models._link(f"run:{run_id}")  # click the lineage link: back to the run
    assert window.stack.currentWidget() is detail and detail.run_id == run_id
    models._link("dataset:mnist dataset:1")
    assert window.stack.currentWidget() is datasets

    # the window never imported TensorFlow
    assert "tensorflow" not in sys.modules


def test_run_submitted_from_the_cli_appears_by_itself(qtbot, window, tmp_path):  # noqa: F811
    create_workspace_from_welcome(qtbot, window, tmp_path / "ws")
    runs = window.show_view("runs")
    qtbot.waitUntil(lambda: not runs.is_loading(), timeout=10_000)
    assert runs.model.rowCount() == 0
    src = tiny_source(tmp_path)
    out = mltrain_cli("--workspace", window.workspace_path, "run", "submit", "-e", "from-cli", "-s", str(src),
                      "-c", "train.py", "--", "--steps", "30")
    assert out.returncode == 0, out.stderr
    qtbot.waitUntil(lambda: any(r["experiment"] == "from-cli" for r in runs.model.records), timeout=15_000)
    qtbot.waitUntil(lambda: runs.model.records[0]["status"] == "Completed", timeout=60_000)
    qtbot.waitUntil(lambda: runs.model.records[0]["metric_name"] == "accuracy", timeout=10_000)
    # open it: metrics, log
    runs.select_run(runs.model.records[0]["id"])
    runs.open_selected()
    detail = window.views["run"]
    assert window.stack.currentWidget() is detail
    qtbot.waitUntil(lambda: detail.point_count("loss") == 30, timeout=10_000)
    detail.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: detail.plots.point_count("loss") == 30, timeout=5_000)
    assert detail.plots.chart("final_accuracy") is None  # a single value: in the table, not a chart
    detail.tabs.setCurrentIndex(2)
    qtbot.waitUntil(lambda: "done 30 steps" in detail.log_view.text(), timeout=10_000)
