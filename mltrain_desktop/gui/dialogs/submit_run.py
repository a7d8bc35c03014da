"""Submit a run: the TensorFlow estimator as a form, validated before anything is submitted.

The form becomes a plain dict (:meth:`SubmitRunDialog.form`); :func:`submit_form` (on a worker)
turns it into the SDK's ``TensorFlow(...)`` estimator, validates the spec and the compute target,
and only then calls ``Experiment(ws, name).submit(estimator)``: any error comes back to the
dialog, shown inline, with nothing submitted.
"""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...app import queries
from ..resources import icon, state_icon
from ..views.base import error_label, set_error
from .sweep_section import SweepSection, build_hyperdrive, sweep_problems

KIND_TEXT, KIND_MOUNT, KIND_DOWNLOAD = "Text", "Dataset (mount)", "Dataset (download)"
DIST_NONE, DIST_MPI, DIST_PS = "None", "MPI (Horovod-style)", "Parameter server"


# ------------------------------------------------------------------------------ pure helpers

def rows_from_arguments(arguments: list) -> list[dict]:
    """A spec's flat argument list -> editable rows {name, kind, value, version_id, input}."""
    rows, i = [], 0
    while i < len(arguments):
        a = arguments[i]
        nxt = arguments[i + 1] if i + 1 < len(arguments) else None
        if isinstance(a, dict):  # a dataset input with no name before it
            rows.append(_dataset_row("", a))
            i += 1
        elif isinstance(a, str) and a.startswith("-") and nxt is not None and \
                (isinstance(nxt, dict) or not (isinstance(nxt, str) and nxt.startswith("--"))):
            rows.append(_dataset_row(a, nxt) if isinstance(nxt, dict) else
                        {"name": a, "kind": KIND_TEXT, "value": str(nxt)})
            i += 2
        else:
            rows.append({"name": str(a), "kind": KIND_TEXT, "value": ""})
            i += 1
    return rows


def _dataset_row(name: str, d: dict) -> dict:
    return {"name": name, "kind": KIND_DOWNLOAD if d.get("mode") == "download" else KIND_MOUNT,
            "value": f"{d.get('dataset')}:{d.get('version')}", "version_id": d.get("version_id"),
            "input": d.get("input", "")}


def validate_form(form: dict) -> list[str]:
    """What can be checked without the workspace: names, script, arguments, counts."""
    errors = []
    if not form.get("experiment"):
        errors.append("Choose an experiment or type a new name.")
    if not form.get("source_directory"):
        errors.append("Choose the source folder that holds your training script.")
    elif not Path(form["source_directory"]).expanduser().is_dir():
        errors.append(f"Source folder {form['source_directory']} does not exist.")
    if not form.get("entry_script"):
        errors.append("Choose the entry script (the .py file to run).")
    elif form.get("source_directory") and Path(form["source_directory"]).expanduser().is_dir() and \
            not (Path(form["source_directory"]).expanduser() / form["entry_script"]).is_file():
        errors.append(f"Entry script {form['entry_script']} was not found in {form['source_directory']}.")
    for i, row in enumerate(form.get("arguments", []), 1):
        name = row.get("name", "").strip()
        if not name:
            if row.get("value") or row.get("kind") != KIND_TEXT:
                errors.append(f"Argument {i} has a value but no name: give it a name such as --epochs.")
            continue
        if row.get("kind") != KIND_TEXT and not row.get("version_id"):
            errors.append(f"Argument {name}: choose a dataset version.")
        if row.get("kind") != KIND_TEXT and not row.get("input", "").strip():
            errors.append(f"Argument {name}: the dataset input needs a name.")
    if not form.get("compute_target"):
        errors.append("Choose a compute target.")
    for line in form.get("environment_variables_text", "").splitlines():
        if line.strip() and ("=" not in line or not line.split("=", 1)[0].strip()):
            errors.append(f"Environment variable {line.strip()!r} must be KEY=VALUE.")
    if form.get("sweep"):
        fixed = {row.get("name", "").strip() for row in form.get("arguments", [])}
        errors += sweep_problems(form["sweep"], fixed - {""})
    return errors


def build_estimator(ws, form: dict):
    """The SDK's TensorFlow estimator for a form (dataset inputs resolved in this workspace)."""
    from ...core.dataset import Dataset
    from ...core.runconfig import MpiConfiguration, TensorflowConfiguration
    from ...train.dnn import TensorFlow
    args: list = []
    for row in form.get("arguments", []):
        name = row.get("name", "").strip()
        if not name:
            continue
        args.append(name)
        if row.get("kind", KIND_TEXT) == KIND_TEXT:
            if row.get("value", "") != "":
                args.append(row["value"])
        else:
            inp = Dataset.get_by_id(ws, int(row["version_id"])).as_named_input(row["input"].strip())
            args.append(inp.as_download() if row["kind"] == KIND_DOWNLOAD else inp.as_mount())
    dist = form.get("distribution") or {}
    distributed = None
    if dist.get("kind") == "mpi":
        distributed = MpiConfiguration(process_count_per_node=int(dist.get("process_count_per_node", 1)),
                                       node_count=int(dist.get("node_count", 1)))
    elif dist.get("kind") == "parameter_server":
        distributed = TensorflowConfiguration(worker_count=int(dist.get("worker_count", 1)),
                                              parameter_server_count=int(dist.get("parameter_server_count", 1)))
    env = {}
    for line in form.get("environment_variables_text", "").splitlines():
        if line.strip():
            k, _, v = line.partition("=")
            env[k.strip()] = v.strip()
    return TensorFlow(source_directory=form["source_directory"], entry_script=form["entry_script"],
                      arguments=args, compute_target=form["compute_target"], use_gpu=bool(form.get("use_gpu")),
                      pip_packages=form.get("pip_packages") or [], python=form.get("python") or None,
                      distributed_training=distributed, environment_variables=env,
                      node_count=int(dist.get("node_count", 1)) if dist.get("kind") == "mpi" else 1,
                      process_count_per_node=int(dist.get("process_count_per_node", 1))
                      if dist.get("kind") == "mpi" else 1)


def submit_form(ws, state, form: dict) -> dict:
    """Worker: validate everything, then submit. Raises (nothing submitted) on any problem."""
    from ...core.compute import ComputeTarget
    from ...core.compute_target import ComputeTargetException
    from ...core.errors import UserErrorException
    from ...core.experiment import _NAME, Experiment
    problems = validate_form(form)
    if problems:
        raise UserErrorException("\n".join(problems))
    if not _NAME.match(form["experiment"]):
        raise UserErrorException(f"Experiment name {form['experiment']!r} is not valid: use letters, digits, "
                                 "'-', '_' or '.', starting with a letter or digit.")
    est = build_estimator(ws, form)
    est.to_spec()  # the SDK's own validation (script inside the folder, packages, distribution)
    target = ComputeTarget(ws, form["compute_target"])
    if target.provisioning_state != "Succeeded":
        target.refresh_state()
        if target.provisioning_state == "Failed":
            raise ComputeTargetException(f"Compute target {target.name!r} is not reachable: {target.state_detail}. "
                                         "Fix it in the Compute view (Edit…, Check again) or choose another.")
    config = build_hyperdrive(est, form["sweep"]) if form.get("sweep") else est
    run = Experiment(ws, form["experiment"]).submit(config)
    return {"run_id": run.id, "experiment": form["experiment"]}


def form_from_spec(spec: dict, run_dir: str | None = None) -> dict:
    """A stored run spec -> the dialog's form (re-submit with the same settings)."""
    src = spec.get("source_directory", "")
    if run_dir and (not src or not Path(src).is_dir()) and (Path(run_dir) / "snapshot").is_dir():
        src = str(Path(run_dir) / "snapshot")
    env = spec.get("environment") or {}
    return {"experiment": spec.get("experiment", ""), "source_directory": src,
            "entry_script": spec.get("entry_script", ""), "arguments": rows_from_arguments(spec.get("arguments", [])),
            "compute_target": spec.get("compute_target", "local"), "use_gpu": bool(spec.get("use_gpu")),
            "python": env.get("python") or "", "pip_packages": list(env.get("pip_packages") or []),
            "environment_variables_text": "\n".join(f"{k}={v}" for k, v in
                                                    (spec.get("environment_variables") or {}).items()),
            "distribution": spec.get("distribution") or {}}


def list_scripts(folder: str, limit: int = 200) -> list[str]:
    """The .py files in a folder and its direct subfolders (relative paths)."""
    out = []
    base = Path(folder).expanduser()
    try:
        for entry in sorted(os.scandir(base), key=lambda e: e.name):
            if entry.is_file() and entry.name.endswith(".py"):
                out.append(entry.name)
            elif entry.is_dir() and not entry.name.startswith((".", "__")) and entry.name not in ("outputs", "logs"):
                for sub in sorted(os.scandir(entry.path), key=lambda e: e.name):
                    if sub.is_file() and sub.name.endswith(".py"):
                        out.append(f"{entry.name}/{sub.name}")
            if len(out) >= limit:
                break
    except OSError:
        return []
    return out


# ------------------------------------------------------------------------------ the dialog

class SubmitRunDialog(QDialog):
    submitted = Signal(str)  # run id

    def __init__(self, ctx, form: dict | None = None, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.task = None
        self.choices: dict = {"experiments": [], "targets": [], "datasets": []}
        self._initial = form or {}
        self.setWindowTitle("Submit a run")
        self.setMinimumSize(720, 640)

        self.experiment = QComboBox()
        self.experiment.setEditable(True)
        self.experiment.lineEdit().setPlaceholderText("existing experiment, or type a new name")
        self.source_edit = QLineEdit()
        self.source_edit.setPlaceholderText("folder with your training script")
        self.source_edit.editingFinished.connect(self._refresh_scripts)
        browse_src = QPushButton(icon("folder"), "Browse…")
        browse_src.clicked.connect(self._browse_source)
        src_row = QHBoxLayout()
        src_row.addWidget(self.source_edit, 1)
        src_row.addWidget(browse_src)
        self.script = QComboBox()
        self.script.setEditable(True)
        self.script.lineEdit().setPlaceholderText("e.g. train.py")
        browse_script = QPushButton(icon("file"), "Browse…")
        browse_script.clicked.connect(self._browse_script)
        script_row = QHBoxLayout()
        script_row.addWidget(self.script, 1)
        script_row.addWidget(browse_script)

        args_box = self._arguments_box()

        form = QFormLayout()
        form.addRow("Experiment", self.experiment)
        form.addRow("Source folder", src_row)
        form.addRow("Entry script", script_row)
        form2 = self._where_form()

        self.error = error_label()
        self.status = QLabel("")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.submit_button = self.buttons.addButton("Submit", QDialogButtonBox.ButtonRole.AcceptRole)
        self.submit_button.setIcon(icon("submit"))
        self.submit_button.setDefault(True)
        self.submit_button.clicked.connect(self.submit)
        self.buttons.rejected.connect(self.reject)

        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(args_box, 1)
        lay.addLayout(form2)
        self.sweep = SweepSection()
        lay.addWidget(self.sweep)
        lay.addWidget(self.error)
        lay.addWidget(self.status)
        lay.addWidget(self.buttons)

        self.fill(self._initial)
        self.ready = False
        self.choices_task = ctx.bridge.run(queries.submit_choices, on_done=self._got_choices,
                                           on_error=lambda exc: set_error(self.error, f"Could not read the "
                                                                                      f"workspace: {exc}"))

    def _where_form(self) -> QFormLayout:
        """Where and how the run goes: target, interpreter, packages, environment, GPU, distribution."""
        self.target = QComboBox()
        self.target.currentIndexChanged.connect(self._target_changed)
        self.target_detail = QLabel("")
        self.target_detail.setWordWrap(True)
        self.python_edit = QLineEdit()
        self.python_edit.setPlaceholderText("default: the compute target's interpreter")
        self.pip_edit = QPlainTextEdit()
        self.pip_edit.setPlaceholderText("pip packages, one per line (e.g. pandas==2.2); leave empty to use the "
                                         "interpreter as it is")
        self.pip_edit.setMaximumHeight(70)
        self.env_edit = QPlainTextEdit()
        self.env_edit.setPlaceholderText("environment variables, KEY=VALUE, one per line")
        self.env_edit.setMaximumHeight(50)
        self.use_gpu = QCheckBox("Use GPU")

        form2 = QFormLayout()
        form2.addRow("Compute target", self.target)
        form2.addRow("", self.target_detail)
        form2.addRow("Interpreter", self.python_edit)
        form2.addRow("Pip packages", self.pip_edit)
        form2.addRow("Environment", self.env_edit)
        form2.addRow("", self.use_gpu)
        form2.addRow("Distribution", self._distribution_row())
        return form2

    def _arguments_box(self) -> QGroupBox:
        """The script arguments table; a value may be a dataset input."""
        self.args_table = QTableWidget(0, 4)
        self.args_table.setHorizontalHeaderLabels(["Name", "Type", "Value", "Input name"])
        self.args_table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.args_table.verticalHeader().setVisible(False)
        add_arg = QPushButton(icon("add"), "Add argument")
        add_arg.clicked.connect(lambda: self.add_argument())
        remove_arg = QPushButton(icon("delete"), "Remove")
        remove_arg.clicked.connect(self._remove_argument)
        arg_buttons = QHBoxLayout()
        arg_buttons.addWidget(add_arg)
        arg_buttons.addWidget(remove_arg)
        arg_buttons.addStretch(1)
        args_box = QGroupBox("Script arguments (a value may be a dataset input)")
        al = QVBoxLayout(args_box)
        al.addWidget(self.args_table)
        al.addLayout(arg_buttons)
        return args_box

    def _distribution_row(self) -> QHBoxLayout:
        """None, MPI (processes, nodes) or parameter server (workers, servers), with their counts."""
        self.dist = QComboBox()
        self.dist.addItems([DIST_NONE, DIST_MPI, DIST_PS])
        self.mpi_procs, self.mpi_nodes, self.ps_workers, self.ps_count = (QSpinBox() for _ in range(4))
        for sp in (self.mpi_procs, self.mpi_nodes, self.ps_workers, self.ps_count):
            sp.setRange(1, 512)
        self.mpi_procs.setValue(2)
        self.ps_workers.setValue(2)
        mpi_page, ps_page = QWidget(), QWidget()
        ml = QHBoxLayout(mpi_page)
        ml.setContentsMargins(0, 0, 0, 0)
        for lab, w in (("Processes per node", self.mpi_procs), ("Nodes", self.mpi_nodes)):
            ml.addWidget(QLabel(lab))
            ml.addWidget(w)
        ml.addStretch(1)
        pl = QHBoxLayout(ps_page)
        pl.setContentsMargins(0, 0, 0, 0)
        for lab, w in (("Workers", self.ps_workers), ("Parameter servers", self.ps_count)):
            pl.addWidget(QLabel(lab))
            pl.addWidget(w)
        pl.addStretch(1)
        self.dist_pages = QStackedWidget()
        self.dist_pages.addWidget(QWidget())
        self.dist_pages.addWidget(mpi_page)
        self.dist_pages.addWidget(ps_page)
        self.dist.currentIndexChanged.connect(self.dist_pages.setCurrentIndex)
        dist_row = QHBoxLayout()
        dist_row.addWidget(self.dist)
        dist_row.addWidget(self.dist_pages, 1)
        return dist_row

    # -- filling ------------------------------------------------------------------------
    def fill(self, form: dict) -> None:
        self.experiment.setCurrentText(form.get("experiment", ""))
        self.source_edit.setText(form.get("source_directory", ""))
        self._refresh_scripts()
        self.script.setCurrentText(form.get("entry_script", ""))
        self.args_table.setRowCount(0)
        for row in form.get("arguments", []):
            self.add_argument(**row)
        self.python_edit.setText(form.get("python", ""))
        self.pip_edit.setPlainText("\n".join(form.get("pip_packages", [])))
        self.env_edit.setPlainText(form.get("environment_variables_text", ""))
        self.use_gpu.setChecked(bool(form.get("use_gpu")))
        dist = form.get("distribution") or {}
        if dist.get("kind") == "mpi":
            self.dist.setCurrentText(DIST_MPI)
            self.mpi_procs.setValue(int(dist.get("process_count_per_node", 1)))
            self.mpi_nodes.setValue(int(dist.get("node_count", 1)))
        elif dist.get("kind") == "parameter_server":
            self.dist.setCurrentText(DIST_PS)
            self.ps_workers.setValue(int(dist.get("worker_count", 1)))
            self.ps_count.setValue(int(dist.get("parameter_server_count", 1)))

    def _got_choices(self, choices: dict) -> None:
        self.choices = choices
        exp = self.experiment.currentText()
        self.experiment.clear()
        self.experiment.addItems(choices["experiments"])
        self.experiment.setCurrentText(exp)
        wanted = self._initial.get("compute_target") or self.target.currentData() or "local"
        self.target.clear()
        for t in choices["targets"]:
            self.target.addItem(state_icon({"Succeeded": "Completed", "Failed": "Failed"}.get(t["state"], "Queued")),
                                f"{t['name']} ({t['kind']}, {t['state']})", t["name"])
        i = self.target.findData(wanted)
        self.target.setCurrentIndex(i if i >= 0 else 0)
        for r in range(self.args_table.rowCount()):
            self._fill_dataset_combo(r)
        self.ready = True

    def _target_changed(self, _i: int) -> None:
        name = self.target.currentData()
        t = next((t for t in self.choices["targets"] if t["name"] == name), None)
        if t is None:
            self.target_detail.setText("")
            return
        warn = "" if t["state"] != "Failed" else "<span style='color:#d33a2c'>Not reachable: </span>"
        self.target_detail.setText(f"{warn}{t['detail']}")

    # -- arguments ----------------------------------------------------------------------
    def add_argument(self, name: str = "", kind: str = KIND_TEXT, value: str = "", version_id=None,
                     input: str = "") -> int:  # noqa: A002 - the spec's word
        r = self.args_table.rowCount()
        self.args_table.insertRow(r)
        self.args_table.setItem(r, 0, QTableWidgetItem(name))
        kind_combo = QComboBox()
        kind_combo.addItems([KIND_TEXT, KIND_MOUNT, KIND_DOWNLOAD])
        kind_combo.setCurrentText(kind)
        self.args_table.setCellWidget(r, 1, kind_combo)
        value_stack = QStackedWidget()
        text = QLineEdit(value if kind == KIND_TEXT else "")
        ds_combo = QComboBox()
        ds_combo.setProperty("wanted", version_id)
        ds_combo.setProperty("wanted_text", value if kind != KIND_TEXT else "")
        value_stack.addWidget(text)
        value_stack.addWidget(ds_combo)
        self.args_table.setCellWidget(r, 2, value_stack)
        input_edit = QLineEdit(input)
        input_edit.setPlaceholderText("e.g. mnist")
        self.args_table.setCellWidget(r, 3, input_edit)

        def kind_changed(k: str, stack=value_stack, inp=input_edit, combo=ds_combo):
            stack.setCurrentIndex(0 if k == KIND_TEXT else 1)
            inp.setEnabled(k != KIND_TEXT)
            if k != KIND_TEXT and not inp.text() and combo.currentData():
                inp.setText(_input_name(combo.currentText()))
        kind_combo.currentTextChanged.connect(kind_changed)
        ds_combo.currentIndexChanged.connect(
            lambda _i, inp=input_edit, combo=ds_combo, kc=kind_combo:
            inp.setText(_input_name(combo.currentText())) if kc.currentText() != KIND_TEXT and not inp.text()
            else None)
        kind_changed(kind)
        self._fill_dataset_combo(r)
        return r

    def _fill_dataset_combo(self, r: int) -> None:
        stack = self.args_table.cellWidget(r, 2)
        if stack is None:
            return
        combo: QComboBox = stack.widget(1)
        wanted = combo.property("wanted") or combo.currentData()
        wanted_text = combo.property("wanted_text")
        combo.blockSignals(True)
        combo.clear()
        for d in reversed(self.choices.get("datasets", [])):
            combo.addItem(f"{d['name']}:{d['version']}", d["version_id"])
        i = combo.findData(wanted) if wanted else (combo.findText(wanted_text) if wanted_text else -1)
        combo.setCurrentIndex(i if i >= 0 else (0 if combo.count() else -1))
        combo.blockSignals(False)

    def set_argument_value(self, r: int, value: str) -> None:
        """Tests and callers: set a text value, or pick a dataset 'name:version'."""
        stack = self.args_table.cellWidget(r, 2)
        if stack.currentIndex() == 0:
            stack.widget(0).setText(value)
        else:
            combo = stack.widget(1)
            i = combo.findText(value)
            if i >= 0:
                combo.setCurrentIndex(i)

    def arguments(self) -> list[dict]:
        rows = []
        for r in range(self.args_table.rowCount()):
            item = self.args_table.item(r, 0)
            kind = self.args_table.cellWidget(r, 1).currentText()
            stack = self.args_table.cellWidget(r, 2)
            row = {"name": item.text().strip() if item else "", "kind": kind}
            if kind == KIND_TEXT:
                row["value"] = stack.widget(0).text()
            else:
                combo = stack.widget(1)
                row["value"] = combo.currentText()
                row["version_id"] = combo.currentData()
                row["input"] = self.args_table.cellWidget(r, 3).text().strip()
            rows.append(row)
        return rows

    def _remove_argument(self) -> None:
        rows = sorted({i.row() for i in self.args_table.selectedIndexes()}, reverse=True)
        if not rows and self.args_table.currentRow() >= 0:
            rows = [self.args_table.currentRow()]
        for r in rows:
            self.args_table.removeRow(r)

    # -- files --------------------------------------------------------------------------
    def _browse_source(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Source folder", self.source_edit.text())
        if folder:
            self.source_edit.setText(folder)
            self._refresh_scripts()

    def _browse_script(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Entry script", self.source_edit.text(), "Python (*.py)")
        if not path:
            return
        src = self.source_edit.text()
        try:
            rel = Path(path).resolve().relative_to(Path(src).expanduser().resolve()).as_posix() if src else None
        except ValueError:
            rel = None
        if rel is None:
            self.source_edit.setText(str(Path(path).parent))
            self._refresh_scripts()
            rel = Path(path).name
        self.script.setCurrentText(rel)

    def _refresh_scripts(self) -> None:
        current = self.script.currentText()
        self.script.clear()
        folder = self.source_edit.text().strip()
        if folder and Path(folder).expanduser().is_dir():
            self.script.addItems(list_scripts(folder))
        self.script.setCurrentText(current)

    # -- submit -------------------------------------------------------------------------
    def form(self) -> dict:
        dist_kind = self.dist.currentText()
        dist = ({"kind": "mpi", "process_count_per_node": self.mpi_procs.value(), "node_count": self.mpi_nodes.value()}
                if dist_kind == DIST_MPI else
                {"kind": "parameter_server", "worker_count": self.ps_workers.value(),
                 "parameter_server_count": self.ps_count.value()} if dist_kind == DIST_PS else {})
        return {"experiment": self.experiment.currentText().strip(),
                "source_directory": self.source_edit.text().strip(),
                "entry_script": self.script.currentText().strip(),
                "arguments": self.arguments(),
                "compute_target": self.target.currentData() or "",
                "python": self.python_edit.text().strip(),
                "pip_packages": [p.strip() for p in self.pip_edit.toPlainText().splitlines() if p.strip()],
                "environment_variables_text": self.env_edit.toPlainText(),
                "use_gpu": self.use_gpu.isChecked(),
                "distribution": dist,
                "sweep": self.sweep.form()}

    def submit(self) -> None:
        if self.task is not None:
            return
        form = self.form()
        problems = validate_form(form)
        if problems:
            set_error(self.error, "\n".join(problems))
            return
        set_error(self.error, None)
        self.status.setText("Checking and submitting…")
        self.submit_button.setEnabled(False)
        self.task = self.ctx.bridge.run(submit_form, form, on_done=self._done, on_error=self._failed)

    def _done(self, result: dict) -> None:
        self.task = None
        self.status.setText("")
        self.submit_button.setEnabled(True)
        self.ctx.message.emit(f"Submitted run {result['run_id']}")
        self.run_id = result["run_id"]
        self.submitted.emit(result["run_id"])
        self.accept()

    def _failed(self, exc) -> None:
        self.task = None
        self.status.setText("")
        self.submit_button.setEnabled(True)
        set_error(self.error, str(exc))


def _input_name(dataset_text: str) -> str:
    from ...core.dataset import input_name_for
    return input_name_for(dataset_text.rsplit(":", 1)[0])


__all__ = ["SubmitRunDialog", "submit_form", "validate_form", "form_from_spec", "rows_from_arguments",
           "build_estimator", "Qt"]
