"""The Endpoints view and the Deploy dialog: a tiny Keras model deployed through the dialog,
answered in the test console, live figures, key rotation, deletion; a bad name refused inline;
a model that cannot load shown as Failed with its log; an endpoint deployed from the CLI
showing up by itself."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QMessageBox

from mltrain_desktop.core import Model, Workspace

from window_fixtures import mltrain_cli, private_settings, window  # noqa: F401

pytestmark = [pytest.mark.gui]

TINY_MODEL = textwrap.dedent("""
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import keras
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    m.save(os.path.join(sys.argv[1], "model.keras"))
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.25]], dtype="float32")
    print(json.dumps({"x": x.tolist(), "y": m.predict(x, verbose=0).tolist()}))
""")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A Keras model (3 inputs, 2 outputs) saved as model.keras, and its predictions for x."""
    d = tmp_path_factory.mktemp("tiny-model")
    out = subprocess.run([sys.executable, "-c", TINY_MODEL, str(d)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return {"dir": d, "x": data["x"], "y": data["y"]}


def broken_model(tmp_path):
    d = tmp_path / "broken-model"
    d.mkdir()
    (d / "model.keras").write_bytes(b"these are not the weights you are looking for")
    return d


def open_ws(qtbot, window, path):  # noqa: F811
    window.open_workspace(str(path))
    qtbot.waitUntil(lambda: window.workspace_path == str(path), timeout=15_000)


def click(qtbot, button):
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def answer_yes(qtbot, box):
    assert box.isVisible()
    click(qtbot, box.button(QMessageBox.StandardButton.Yes))


def test_deploy_test_console_stats_rotate_and_delete(qtbot, window, tmp_path, tiny_model):  # noqa: F811
    from mltrain_desktop.adapters.process import is_same_process_alive
    from mltrain_desktop.core.webservice import Webservice
    path = tmp_path / "ws"
    ws = Workspace.create(path)
    Model.register(ws, str(tiny_model["dir"]), "tiny", model_framework="TensorFlow")
    open_ws(qtbot, window, path)

    # Models view -> Deploy…: the Endpoints view with the dialog set to the selected model
    models = window.show_view("models")
    qtbot.waitUntil(lambda: models.model.rowCount() == 1 and models.selected() is not None, timeout=10_000)
    click(qtbot, models.deploy_button)
    view = window.views["endpoints"]
    assert window.current_view() is view
    dlg = window.dialog
    qtbot.waitUntil(lambda: dlg.ready, timeout=10_000)
    assert dlg.model_combo.currentData() == "tiny" and dlg.version_combo.currentData() == 1
    assert dlg.name_edit.text() == "tiny"  # suggested from the model's name
    assert dlg.where_combo.currentData() == "local"
    dlg.name_edit.setText("tiny-svc")
    assert not dlg.name_error.isVisible()
    click(qtbot, dlg.deploy_button)
    assert dlg.task is not None and dlg.busy_box.isVisible() and not dlg.deploy_button.isEnabled()
    # the new endpoint shows up (Transitioning) while the service starts
    qtbot.waitUntil(lambda: "tiny-svc" in [r["name"] for r in view.model.records], timeout=30_000)
    qtbot.waitUntil(lambda: dlg.result_state() is not None, timeout=180_000)
    assert dlg.result_state() == "Healthy", dlg.result_label.text() + "\n" + dlg.log_view.toPlainText()
    assert "Healthy" in dlg.result_label.text() and not dlg.busy_box.isVisible()
    click(qtbot, dlg.open_button)
    assert not dlg.isVisible()

    qtbot.waitUntil(lambda: view.detail is not None and view.detail["name"] == "tiny-svc"
                    and view.detail["state"] == "Healthy", timeout=15_000)
    rec = view.selected()
    assert rec["state"] == "Healthy" and rec["model"] == "tiny:1" and rec["kind"] == "local"
    assert rec["url"].startswith("http://127.0.0.1:") and rec["url"].endswith("/v1/models/tiny:predict")
    assert view.url_edit.text() == rec["url"]
    svc = Webservice(ws, "tiny-svc")
    assert view.key_edit.text() == svc.get_keys()[0]
    assert view.key_edit.echoMode() == QLineEdit.EchoMode.Password  # masked until shown
    click(qtbot, view.show_key_button)
    assert view.key_edit.echoMode() == QLineEdit.EchoMode.Normal
    click(qtbot, view.show_key_button)

    # the test console: an example from the signature, then the model's own answer
    assert json.loads(view.request_edit.toPlainText()) == {"instances": [[0.0, 0.0, 0.0]]}
    view.request_edit.setPlainText(json.dumps({"instances": tiny_model["x"]}))
    click(qtbot, view.send_button)
    qtbot.waitUntil(lambda: view.answer is not None, timeout=30_000)
    assert "error" not in view.answer, view.answer
    shown = json.loads(view.answer_edit.toPlainText())
    np.testing.assert_allclose(np.array(shown["predictions"]), np.array(tiny_model["y"]), atol=1e-5)
    assert "200 OK" in view.answer_status.text()

    # live figures: requests/s and latency follow the requests sent
    for _ in range(4):
        view.answer = None
        view.send()
        qtbot.waitUntil(lambda: view.answer is not None, timeout=30_000)
    qtbot.waitUntil(lambda: view.stats is not None and view.stats.get("requests", 0) >= 5, timeout=15_000)
    qtbot.waitUntil(lambda: view.rate_stat.value.text() not in ("–", "0.0"), timeout=5_000)
    assert view.total_stat.value.text() == str(view.stats["requests"])
    assert view.p50_stat.value.text().endswith("ms") and view.p99_stat.value.text().endswith("ms")

    # errors are shown as such: the service's 400, and JSON that does not parse (not sent)
    view.answer = None
    view.request_edit.setPlainText('{"instances": [[1.0, 2.0]]}')
    view.send()
    qtbot.waitUntil(lambda: view.answer is not None, timeout=30_000)
    assert "error" in view.answer and "400" in view.answer_status.text(), view.answer
    sent_before = view.stats["requests"]
    view.request_edit.setPlainText('{"instances": [[1.0, 2.0, 3.0]]')
    assert view.send() is None
    assert "not valid JSON" in view.answer_status.text() and "Nothing was sent" in view.answer_status.text()

    # rotate the key (asks first); the service takes the new one at once
    old = view.key_edit.text()
    click(qtbot, view.rotate_button)
    answer_yes(qtbot, view.confirm_box)
    qtbot.waitUntil(lambda: view.key_edit.text() not in ("", old), timeout=15_000)
    assert view.key_edit.text() == Webservice(ws, "tiny-svc").get_keys()[0]
    view.answer = None
    view.request_edit.setPlainText(json.dumps({"instances": tiny_model["x"][:1]}))
    view.send()
    qtbot.waitUntil(lambda: view.answer is not None, timeout=30_000)
    assert "answer" in view.answer, view.answer
    qtbot.waitUntil(lambda: view.stats["requests"] > sent_before, timeout=10_000)

    # the log
    view.tabs.setCurrentWidget(view.log_view)
    qtbot.waitUntil(lambda: "serving model 'tiny'" in view.log_view.text(), timeout=10_000)

    # delete (asks first): gone from the table, its process ended
    row = ws.db.execute("SELECT pid, pid_started FROM endpoints WHERE name='tiny-svc'").fetchone()
    click(qtbot, view.delete_button)
    answer_yes(qtbot, view.confirm_box)
    qtbot.waitUntil(lambda: view.model.rowCount() == 0, timeout=30_000)
    assert not is_same_process_alive(row[0], row[1])
    assert ws.db.execute("SELECT COUNT(*) FROM endpoints").fetchone()[0] == 0
    assert view.empty_label.isVisible()
    ws.close()


def test_bad_endpoint_name_is_refused_inline(qtbot, window, tmp_path):  # noqa: F811
    path = tmp_path / "ws"
    ws = Workspace.create(path)
    Model.register(ws, str(broken_model(tmp_path)), "m", model_framework="TensorFlow")
    open_ws(qtbot, window, path)
    dlg = window.open_deploy_dialog()
    assert window.current_view() is window.views["endpoints"]
    qtbot.waitUntil(lambda: dlg.ready, timeout=10_000)
    dlg.name_edit.setText("Bad_Name!")
    assert dlg.name_error.isVisible() and "lowercase letters, digits and '-'" in dlg.name_error.text()
    click(qtbot, dlg.deploy_button)
    assert dlg.task is None and window.bridge.busy() == 0
    for bad in ("-svc", "a" * 33, ""):
        dlg.name_edit.setText(bad)
        click(qtbot, dlg.deploy_button)
        assert dlg.name_error.isVisible() and dlg.task is None, bad
    dlg.name_edit.setText("good-name")
    assert not dlg.name_error.isVisible()
    assert ws.db.execute("SELECT COUNT(*) FROM endpoints").fetchone()[0] == 0
    dlg.reject()
    ws.close()


def test_unloadable_model_fails_with_its_log_and_cli_endpoints_show_up(qtbot, window, tmp_path):  # noqa: F811
    path = tmp_path / "ws"
    ws = Workspace.create(path)
    Model.register(ws, str(broken_model(tmp_path)), "broken", model_framework="TensorFlow")
    open_ws(qtbot, window, path)
    view = window.show_view("endpoints")
    qtbot.waitUntil(lambda: not view.is_loading() and view.empty_label.isVisible(), timeout=10_000)

    # deployed from the command line: the view shows it by itself (the database watcher)
    out = mltrain_cli("--workspace", str(path), "endpoint", "deploy", "from-cli", "broken")
    assert out.returncode != 0 and "not a loadable model" in out.stdout + out.stderr
    qtbot.waitUntil(lambda: [r["name"] for r in view.model.records] == ["from-cli"], timeout=10_000)
    assert view.model.records[0]["state"] == "Failed"
    assert "not a loadable model" in view.model.records[0]["detail"]

    # through the dialog: Failed, with the reason and the service's log
    dlg = view.open_deploy_dialog("broken", 1)
    qtbot.waitUntil(lambda: dlg.ready, timeout=10_000)
    dlg.name_edit.setText("from-cli")
    assert "already exists" in dlg.name_error.text()
    dlg.name_edit.setText("broken-svc")
    click(qtbot, dlg.deploy_button)
    qtbot.waitUntil(lambda: dlg.result_state() is not None, timeout=120_000)
    assert dlg.result_state() == "Failed"
    assert "not a loadable model" in dlg.result_label.text()
    assert dlg.log_view.isVisible() and "not a loadable model" in dlg.log_view.toPlainText()
    assert not dlg.open_button.isVisible() and dlg.deploy_button.isEnabled()
    qtbot.waitUntil(lambda: sorted(r["name"] for r in view.model.records) == ["broken-svc", "from-cli"],
                    timeout=10_000)
    # deploying again under the same name replaces the failed endpoint
    assert not dlg.name_error.isVisible()
    dlg.reject()
    view.select_endpoint("broken-svc")
    qtbot.waitUntil(lambda: view.detail is not None and view.detail["name"] == "broken-svc", timeout=10_000)
    qtbot.waitUntil(lambda: view.state_label.text().startswith("Failed: "), timeout=10_000)
    assert "not a loadable model" in view.state_label.text() and not view.send_button.isEnabled()
    assert view.start_button.isEnabled() and not view.stop_button.isEnabled()
    view.tabs.setCurrentWidget(view.log_view)
    qtbot.waitUntil(lambda: "not a loadable model" in view.log_view.text(), timeout=10_000)
    ws.close()


def test_endpoint_helpers():
    from mltrain_desktop.gui.views.endpoint_tasks import (
        check_endpoint_name,
        example_request,
        pretty_json,
        signature_from_metadata,
    )
    assert check_endpoint_name("tf-mnist-svc") is None
    assert check_endpoint_name("a") is None
    for bad in ("", "-a", "a-", "A", "a_b", "a" * 33, "é"):
        assert check_endpoint_name(bad), bad
    assert "already exists" in check_endpoint_name("x", {"x"})
    one = {"inputs": [{"name": "x", "dtype": "float32", "shape": [-1, 3]}]}
    assert json.loads(example_request(one)) == {"instances": [[0.0, 0.0, 0.0]]}
    img = {"inputs": [{"name": "img", "dtype": "float32", "shape": [-1, 28, 28]}]}
    body = example_request(img)
    assert np.array(json.loads(body)["instances"]).shape == (1, 28, 28)
    assert len(body.splitlines()) > 28  # one line per row of the image
    two = {"inputs": [{"name": "a", "dtype": "int64", "shape": [-1, 2]}, {"name": "b", "dtype": "string",
                                                                         "shape": [-1]}]}
    assert json.loads(example_request(two)) == {"instances": [{"a": [0, 0], "b": ""}]}
    assert json.loads(example_request(None)) == {"instances": [[0.0]]}
    assert json.loads(example_request(None, has_entry_script=True)) == {"data": [[0.0]]}
    huge = {"inputs": [{"name": "x", "dtype": "float32", "shape": [-1, 512, 512, 3]}]}
    assert json.loads(example_request(huge)) == {"instances": []}
    meta = {"metadata": {"signature_def": {"signature_def": {"serving_default": {
        "inputs": {"x": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1"}, {"size": "3"}],
                                                                "unknown_rank": False}}},
        "outputs": {"y": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [], "unknown_rank": True}}}}}}}}
    assert signature_from_metadata(meta) == {"inputs": [{"name": "x", "dtype": "float32", "shape": [-1, 3]}],
                                             "outputs": [{"name": "y", "dtype": "float32", "shape": None}]}
    assert signature_from_metadata({}) is None
    answer = {"predictions": [[0.25] * 10] * 3}
    assert json.loads(pretty_json(answer)) == answer and len(pretty_json(answer).splitlines()) == 7
