"""Deploy a registered model as an endpoint: name (checked as you type), model and version,
where (a local process or a Docker target), port, optional entry script.

Deploying runs on a worker (the service loads TensorFlow: seconds); the dialog shows a busy bar
with the time spent, then the result: Healthy with its URL, or Failed with the reason and the
service's log.
"""
from __future__ import annotations

import re
import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..views.base import error_label, set_error
from ..views.endpoint_tasks import NO_CODE_FRAMEWORKS, check_endpoint_name, deploy_choices, deploy_model

LOCAL = "local"
OK_STYLE = "color: #2e9e44; font-weight: bold;"
FAIL_STYLE = "color: #d33a2c; font-weight: bold;"


def suggest_name(model: str, taken: set[str]) -> str:
    """An endpoint name from a model name: lowercase, other characters as '-', not taken."""
    base = re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-")[:28].strip("-") or "endpoint"
    name, i = base, 2
    while name in taken:
        name = f"{base}-{i}"
        i += 1
    return name


class DeployDialog(QDialog):
    deployed = Signal(str)  # endpoint name, once Healthy
    openRequested = Signal(str)  # noqa: N815 - "Open endpoint" clicked

    def __init__(self, ctx, model: str | None = None, version: int = 0, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.task = None
        self.ready = False
        self.result: dict | None = None
        self._choices: dict = {"models": {}, "targets": [], "endpoints": []}
        self._want = (model, version)
        self._name_touched = False
        self._failed_name: str | None = None
        self._t0 = 0.0
        self.setWindowTitle("Deploy model")
        self.setMinimumWidth(600)
        form = self._form()

        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumHeight(14)
        self.busy_label = QLabel("")
        busy_row = QHBoxLayout()
        busy_row.addWidget(self.busy, 1)
        busy_row.addWidget(self.busy_label, 2)
        self.busy_box = QWidget()
        self.busy_box.setLayout(busy_row)
        self.busy_box.hide()
        self._clock = QTimer(self)
        self._clock.setInterval(500)
        self._clock.timeout.connect(self._tick)

        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_label.hide()
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log_view.setMinimumHeight(160)
        self.log_view.hide()
        self.error = error_label()

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.deploy_button = self.buttons.addButton("Deploy", QDialogButtonBox.ButtonRole.ActionRole)
        self.deploy_button.setDefault(True)
        self.deploy_button.clicked.connect(self.submit)
        self.open_button = self.buttons.addButton("Open endpoint", QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button.clicked.connect(self._open_clicked)
        self.open_button.hide()
        self.buttons.rejected.connect(self.reject)

        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.busy_box)
        lay.addWidget(self.result_label)
        lay.addWidget(self.log_view, 1)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)
        self._inputs = (self.name_edit, self.model_combo, self.version_combo, self.where_combo, self.port_spin,
                        self.entry_edit, self.browse_button)
        self.deploy_button.setEnabled(False)
        ctx.bridge.run(deploy_choices, on_done=self._fill, on_error=lambda exc: set_error(self.error, str(exc)))

    def _form(self) -> QFormLayout:
        """Endpoint name, model and version, where, port and entry script, with a hint."""
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("lowercase letters, digits and '-', e.g. tf-mnist-svc")
        self.name_edit.setMaxLength(40)
        self.name_edit.textEdited.connect(lambda _t: setattr(self, "_name_touched", True))
        self.name_edit.textChanged.connect(self._check_name)
        self.name_error = error_label()
        self.model_combo = QComboBox()
        self.model_combo.currentIndexChanged.connect(self._model_changed)
        self.version_combo = QComboBox()
        self.version_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.version_combo.setMinimumContentsLength(10)
        self.version_combo.currentIndexChanged.connect(lambda _i: self._update_hint())
        self.where_combo = QComboBox()
        self.where_combo.addItem("Local process (on this machine)", LOCAL)
        self.port_spin = QSpinBox()
        self.port_spin.setRange(0, 65535)
        self.port_spin.setSpecialValueText("any free port")
        self.entry_edit = QLineEdit()
        self.entry_edit.setPlaceholderText("optional: a scoring script with init() and run(raw_data)")
        self.entry_edit.textChanged.connect(lambda _t: self._update_hint())
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._browse)
        entry_row = QHBoxLayout()
        entry_row.setContentsMargins(0, 0, 0, 0)
        entry_row.addWidget(self.entry_edit, 1)
        entry_row.addWidget(self.browse_button)
        entry = QWidget()
        entry.setLayout(entry_row)
        self.hint = QLabel("Loading the registered models…")
        self.hint.setWordWrap(True)
        self.hint.setMinimumHeight(2 * self.hint.fontMetrics().lineSpacing() + 4)

        name_box = QWidget()
        nl = QVBoxLayout(name_box)
        nl.setContentsMargins(0, 0, 0, 0)
        nl.setSpacing(2)
        nl.addWidget(self.name_edit)
        nl.addWidget(self.name_error)
        version_row = QHBoxLayout()
        version_row.setContentsMargins(0, 0, 0, 0)
        version_row.addWidget(self.model_combo, 1)
        version_row.addWidget(QLabel("version"))
        version_row.addWidget(self.version_combo)
        model_box = QWidget()
        model_box.setLayout(version_row)
        form = QFormLayout()
        form.addRow("Endpoint name", name_box)
        form.addRow("Model", model_box)
        form.addRow("Where", self.where_combo)
        form.addRow("Port", self.port_spin)
        form.addRow("Entry script", entry)
        form.addRow("", self.hint)
        return form

    # -- choices ------------------------------------------------------------------------
    def _fill(self, choices: dict) -> None:
        self._choices = choices
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for name in choices["models"]:
            self.model_combo.addItem(name, name)
        want, version = self._want
        if want and self.model_combo.findData(want) >= 0:
            self.model_combo.setCurrentIndex(self.model_combo.findData(want))
        self.model_combo.blockSignals(False)
        self._model_changed(self.model_combo.currentIndex(), version)
        for t in choices["targets"]:
            label = f"Docker: {t['name']}" + ("" if t["state"] == "Succeeded" else f" ({t['state']})")
            self.where_combo.addItem(label, t["name"])
        if not choices["targets"]:
            self.where_combo.setToolTip("No Docker compute target in this workspace (Compute → New target…)")
        if not choices["models"]:
            set_error(self.error, "No model is registered yet: register one from a completed run first "
                                  "(Runs → open a run → Register model…).")
        self.deploy_button.setEnabled(bool(choices["models"]))
        self.ready = True
        self._check_name()
        self.adjustSize()

    def _model_changed(self, _i: int, version: int = 0) -> None:
        name = self.model_combo.currentData()
        self.version_combo.blockSignals(True)
        self.version_combo.clear()
        for k, v in enumerate(self._choices["models"].get(name, [])):
            self.version_combo.addItem(f"{v['version']}" + (" (latest)" if k == 0 else ""), v["version"])
        if version and self.version_combo.findData(version) >= 0:
            self.version_combo.setCurrentIndex(self.version_combo.findData(version))
        self.version_combo.blockSignals(False)
        if name and not self._name_touched:
            self.name_edit.setText(suggest_name(name, set(self._choices["endpoints"])))
        self._update_hint()

    def _framework(self) -> str:
        name = self.model_combo.currentData()
        version = self.version_combo.currentData()
        for v in self._choices["models"].get(name, []):
            if v["version"] == version:
                return v["framework"]
        return ""

    def _update_hint(self) -> None:
        fw = self._framework()
        if self.entry_edit.text().strip():
            self.hint.setText("The entry script's init() runs once, then run(raw_data) answers each request "
                              "(POST /score and :predict).")
        elif fw in NO_CODE_FRAMEWORKS:
            self.hint.setText(f"{fw or 'A'} model served without code: TensorFlow Serving's REST API "
                              "(POST …:predict with {\"instances\": […]}).")
        else:
            self.hint.setText(f"A {fw} model needs an entry script (init() and run(raw_data)) to be served.")

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Entry script", "", "Python scripts (*.py);;All files (*)")
        if path:
            self.entry_edit.setText(path)

    # -- validation and deploying -------------------------------------------------------
    def _taken(self) -> set[str]:
        taken = set(self._choices["endpoints"])
        taken.discard(self._failed_name)  # ours, failed: deploying again replaces it
        return taken

    def _check_name(self, *_a) -> str | None:
        name = self.name_edit.text().strip()
        problem = check_endpoint_name(name, self._taken()) if (name or self.ready) else None
        set_error(self.name_error, problem)
        return problem

    def form(self) -> dict:
        name = self.name_edit.text().strip()
        return {"name": name, "model": self.model_combo.currentData(), "version": self.version_combo.currentData(),
                "where": self.where_combo.currentData(), "port": self.port_spin.value(),
                "entry_script": self.entry_edit.text().strip(), "overwrite": name == self._failed_name}

    def submit(self) -> None:
        if self.task is not None or not self.ready:
            return
        set_error(self.error, None)
        problem = check_endpoint_name(self.name_edit.text().strip(), self._taken())
        set_error(self.name_error, problem)
        if problem:
            self.name_edit.setFocus()
            return
        if not self.model_combo.currentData():
            set_error(self.error, "Choose a model to deploy.")
            return
        fw = self._framework()
        if fw not in NO_CODE_FRAMEWORKS and not self.entry_edit.text().strip():
            set_error(self.error, f"{self.model_combo.currentData()} is a {fw} model: give an entry script with "
                                  "init() and run(raw_data), or deploy a TensorFlow/Keras model.")
            return
        form = self.form()
        self.result = None
        self.result_label.hide()
        self.log_view.hide()
        self.open_button.hide()
        for w in self._inputs:
            w.setEnabled(False)
        self.deploy_button.setEnabled(False)
        self._t0 = time.monotonic()
        self.busy_box.show()
        self._tick()
        self._clock.start()
        self.task = self.ctx.bridge.run(deploy_model, form, on_done=self._done, on_error=self._failed)

    def _tick(self) -> None:
        s = time.monotonic() - self._t0
        where = "the container" if self.where_combo.currentData() != LOCAL else "the service"
        self.busy_label.setText(f"Starting {where}… {s:.0f} s (loading TensorFlow takes a few seconds)")

    def _finish(self) -> None:
        self.task = None
        self._clock.stop()
        self.busy_box.hide()
        for w in self._inputs:
            w.setEnabled(True)
        self.deploy_button.setEnabled(True)

    def _done(self, r: dict) -> None:
        self._finish()
        self.result = r
        took = time.monotonic() - self._t0
        if r["state"] == "Healthy":
            self._failed_name = None
            self._choices["endpoints"] = sorted(set(self._choices["endpoints"]) | {r["name"]})
            self.result_label.setStyleSheet(OK_STYLE)
            self.result_label.setText(f"{r['name']} is Healthy ({took:.0f} s). Scoring URI: {r['url']}")
            self.deploy_button.setEnabled(False)
            self.open_button.show()
            self.ctx.message.emit(f"Deployed {r['model']} as {r['name']}: {r['url']}")
            self.deployed.emit(r["name"])
        else:
            self._failed_name = r["name"]
            self.result_label.setStyleSheet(FAIL_STYLE)
            self.result_label.setText(f"{r['name']}: {r['state']}. {r.get('detail') or ''}\n"
                                      "Fix the cause, then Deploy again (it replaces this endpoint).")
            self.log_view.setPlainText(r.get("log") or "(the service wrote no log)")
            self.log_view.show()
            self.resize(max(self.width(), 760), max(self.height(), 560))
            self.log_view.verticalScrollBar().setValue(self.log_view.verticalScrollBar().maximum())
            self._check_name()
        self.result_label.show()

    def _failed(self, exc) -> None:
        self._finish()
        set_error(self.error, str(exc) or type(exc).__name__)

    def result_state(self) -> str | None:
        return self.result["state"] if self.result else None

    def _open_clicked(self) -> None:
        if self.result:
            self.openRequested.emit(self.result["name"])
        self.accept()
