"""Register a model from a run's outputs: name, path, framework and version, resources, tags."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
)

from ...app import queries
from ..views.base import error_label, set_error

FRAMEWORKS = ("TensorFlow", "Keras", "ScikitLearn", "Onnx", "PyTorch", "Custom")


def parse_tags(text: str) -> dict:
    """'area=mnist, type=dnn' -> {'area': 'mnist', 'type': 'dnn'}; raises ValueError."""
    tags = {}
    for part in (p.strip() for p in text.replace("\n", ",").split(",")):
        if not part:
            continue
        k, sep, v = part.partition("=")
        if not sep or not k.strip():
            raise ValueError(f"tag {part!r} must be key=value")
        tags[k.strip()] = v.strip()
    return tags


def register_model(ws, state, run_id: str, form: dict) -> dict:
    """Worker: run.register_model(...) after checking the path is inside the run's outputs."""
    from ...core.errors import ModelError
    from ...core.resource_configuration import ResourceConfiguration
    from ...core.runs import Run
    run = Run.get(ws, run_id)
    path = form["path"].strip().strip("/")
    if not (path == "outputs" or path.startswith("outputs/")):
        raise ModelError(f"{form['path']!r} is not in the run's outputs: choose a path that starts with outputs/ "
                         "(the files the script wrote to ./outputs)")
    outputs = [n for n in run.get_file_names() if n.startswith("outputs/")]
    if not any(n == path or n.startswith(path + "/") for n in outputs):
        tops = sorted({"/".join(n.split("/")[:2]) for n in outputs})
        raise ModelError(f"run {run.id} has no {path!r} in its outputs; its outputs are: {', '.join(tops) or 'none'}")
    rc = None
    if form.get("cpu") or form.get("memory_in_gb"):
        rc = ResourceConfiguration(cpu=form.get("cpu") or None, memory_in_gb=form.get("memory_in_gb") or None)
    model = run.register_model(model_name=form["name"].strip(), model_path=path, tags=form.get("tags") or {},
                               model_framework=form.get("framework") or None,
                               model_framework_version=form.get("framework_version") or None,
                               description=form.get("description", ""), resource_configuration=rc)
    return {"name": model.name, "version": model.version, "id": model.id}


class RegisterModelDialog(QDialog):
    registered = Signal(str, int)

    def __init__(self, ctx, run_id: str, default_name: str = "", parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.run_id = run_id
        self.task = None
        self.setWindowTitle("Register model")
        self.setMinimumWidth(520)
        self.name_edit = QLineEdit(default_name)
        self.name_edit.setPlaceholderText("e.g. tf-dnn-mnist")
        self.path_combo = QComboBox()
        self.path_combo.setEditable(True)
        self.path_combo.setCurrentText("outputs/model")
        self.framework = QComboBox()
        self.framework.setEditable(True)
        self.framework.addItems(FRAMEWORKS)
        self.framework_version = QLineEdit()
        self.framework_version.setPlaceholderText("e.g. 2.21.0")
        self.cpu = QDoubleSpinBox()
        self.cpu.setRange(0, 512)
        self.cpu.setSingleStep(0.5)
        self.cpu.setSpecialValueText("not set")
        self.memory = QDoubleSpinBox()
        self.memory.setRange(0, 4096)
        self.memory.setSingleStep(0.5)
        self.memory.setSuffix(" GB")
        self.memory.setSpecialValueText("not set")
        self.tags_edit = QLineEdit()
        self.tags_edit.setPlaceholderText("key=value, key2=value2")
        self.description = QPlainTextEdit()
        self.description.setMaximumHeight(70)
        self.error = error_label()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.register_button = self.buttons.addButton("Register", QDialogButtonBox.ButtonRole.AcceptRole)
        self.register_button.setDefault(True)
        self.register_button.clicked.connect(self.submit)
        self.buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.addRow("Run", QLabel(run_id))
        form.addRow("Model name", self.name_edit)
        form.addRow("Path in outputs", self.path_combo)
        form.addRow("Framework", self.framework)
        form.addRow("Framework version", self.framework_version)
        form.addRow("CPU", self.cpu)
        form.addRow("Memory", self.memory)
        form.addRow("Tags", self.tags_edit)
        form.addRow("Description", self.description)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)
        self.ready = False
        ctx.bridge.run(queries.register_model_defaults, run_id, on_done=self._defaults,
                       on_error=lambda exc: set_error(self.error, str(exc)))

    def _defaults(self, d: dict) -> None:
        typed = self.path_combo.currentText()
        self.path_combo.clear()
        self.path_combo.addItems(d["choices"])
        self.path_combo.setCurrentText(d["default"] if typed == "outputs/model" and d["default"] else typed)
        if d.get("framework"):
            self.framework.setCurrentText(d["framework"])
        if d.get("framework_version") and not self.framework_version.text():
            self.framework_version.setText(d["framework_version"])
        self.ready = True

    def form(self) -> dict:
        return {"name": self.name_edit.text(), "path": self.path_combo.currentText(),
                "framework": self.framework.currentText().strip(),
                "framework_version": self.framework_version.text().strip(),
                "cpu": self.cpu.value() or None, "memory_in_gb": self.memory.value() or None,
                "tags": parse_tags(self.tags_edit.text()), "description": self.description.toPlainText()}

    def submit(self) -> None:
        if self.task is not None:
            return
        name = self.name_edit.text().strip()
        if not name:
            set_error(self.error, "Give the model a name.")
            return
        if "/" in name or ":" in name:
            set_error(self.error, "A model name cannot contain '/' or ':'.")
            return
        if not self.path_combo.currentText().strip():
            set_error(self.error, "Choose the path of the model inside the run's outputs (e.g. outputs/model).")
            return
        try:
            form = self.form()
        except ValueError as exc:
            set_error(self.error, str(exc))
            return
        set_error(self.error, None)
        self.register_button.setEnabled(False)
        self.task = self.ctx.bridge.run(register_model, self.run_id, form, on_done=self._done, on_error=self._failed)

    def _done(self, d: dict) -> None:
        self.task = None
        self.register_button.setEnabled(True)
        self.ctx.message.emit(f"Registered model {d['id']}")
        self.registered.emit(d["name"], d["version"])
        self.accept()

    def _failed(self, exc) -> None:
        self.task = None
        self.register_button.setEnabled(True)
        set_error(self.error, str(exc))
