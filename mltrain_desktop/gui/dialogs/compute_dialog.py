"""Create or edit a compute target (local processes; Docker when the engine module is present)."""
from __future__ import annotations

import os
import sys

import importlib

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ..views.base import error_label, set_error


def available_kinds() -> list[str]:
    """``local`` always; ``docker`` when its core module imports."""
    kinds = ["local"]
    try:
        mod = importlib.import_module("mltrain_desktop.core.compute_docker")
        if hasattr(mod, "DockerCompute"):
            kinds.append("docker")
    except Exception:  # noqa: BLE001 - not there yet, or its dependencies are missing
        pass
    return kinds


def parse_hosts(text: str) -> list[dict]:
    """'host1:4, host2:2' -> [{'host': 'host1', 'slots': 4}, ...]; raises ValueError."""
    hosts = []
    for part in (p.strip() for p in text.replace(";", ",").split(",")):
        if not part:
            continue
        host, _, slots = part.partition(":")
        if not host.strip():
            raise ValueError(f"host entry {part!r} has no host name")
        try:
            n = int(slots) if slots.strip() else 1
        except ValueError:
            raise ValueError(f"host entry {part!r}: slots must be a whole number") from None
        if n < 1:
            raise ValueError(f"host entry {part!r}: slots must be at least 1")
        hosts.append({"host": host.strip(), "slots": n})
    return hosts


def _stored_hosts(value) -> list:
    """A target's hosts in any form the SDK stores them ([{'host', 'slots'}], ['h:2'], hostfile text)."""
    from ...adapters.mpirun import HostsError, parse_hosts as parse_host_list
    try:
        return parse_host_list(value)
    except HostsError:
        return []


# The config keys each kind's form shows; editing keeps every other key the target has (mpirun_args,
# ssh_key, startup_timeout_s, azure_type, ...), so that saving the form loses nothing it does not show.
FORM_KEYS = {"local": {"max_concurrent_runs", "python", "hosts", "ssh_config", "oversubscribe"},
             "docker": {"max_concurrent_runs", "base_url", "image", "gpus", "shm_size", "cpus", "memory_gb",
                        "mpi_launcher"}}
# The Docker page's choices for MPI jobs: (what the combo says, the stored mpi_launcher).
MPI_LAUNCH_CHOICES = (("One container per rank (TF_CONFIG, no mpirun)", "containers"),
                      ("Node containers, mpirun over SSH (as on a cluster)", "mpirun"))


def save_target(ws, state, name: str, kind: str, options: dict, creating: bool, kept: dict | None = None) -> dict:
    """Worker: ComputeTarget.create (validate + probe), as the SDK and CLI do; ``kept``: the edited
    target's settings that the form does not show."""
    from ...app.queries import target_exists
    from ...core.compute import ComputeTarget, LocalCompute
    from ...core.compute_target import ComputeTargetException
    if creating and target_exists(ws, name):
        raise ComputeTargetException(f"a compute target named {name!r} already exists; choose another name "
                                     "or edit that target")
    if kind == "local":
        cfg = LocalCompute.provisioning_configuration(**options)
    elif kind == "docker":
        from ...core.compute_docker import DockerCompute
        cfg = DockerCompute.provisioning_configuration(**options)
    else:
        raise ComputeTargetException(f"unknown compute kind {kind!r}")
    cfg.config = {**(kept or {}), **cfg.config}
    t = ComputeTarget.create(ws, name, cfg, overwrite=not creating)  # editing replaces the target's configuration
    return t.as_dict()


class ComputeDialog(QDialog):
    """``record`` None: create; else edit that target (its name and kind stay)."""

    saved = Signal(str)

    def __init__(self, ctx, record: dict | None = None, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.record = record
        self.task = None
        cfg = (record or {}).get("config", {})
        self.setWindowTitle("Edit compute target" if record else "New compute target")
        self.setMinimumWidth(520)
        self.name_edit = QLineEdit((record or {}).get("name", ""))
        self.name_edit.setPlaceholderText("e.g. gpucluster")
        self.name_edit.setEnabled(record is None)
        self.kind_combo = QComboBox()
        kinds = available_kinds()
        if record and record["kind"] not in kinds:
            kinds.append(record["kind"])
        self.kind_combo.addItems(kinds)
        if record:
            self.kind_combo.setCurrentText(record["kind"])
            self.kind_combo.setEnabled(False)
        self.max_runs = QSpinBox()
        self.max_runs.setRange(1, 256)
        self.max_runs.setValue(int(cfg.get("max_concurrent_runs", 1) or 1))

        self.kind_pages = QStackedWidget()
        self.kind_pages.addWidget(self._local_page(cfg))
        self.kind_pages.addWidget(self._docker_page(cfg))
        self.kind_combo.currentTextChanged.connect(self._kind_changed)
        self._kind_changed(self.kind_combo.currentText())

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.error = error_label()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.save_button = self.buttons.addButton("Save and check" if record else "Create",
                                                  QDialogButtonBox.ButtonRole.AcceptRole)
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self.submit)
        self.buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("Kind", self.kind_combo)
        form.addRow("Max concurrent runs", self.max_runs)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.kind_pages)
        lay.addWidget(self.status)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)

    def _local_page(self, cfg: dict) -> QWidget:
        """The settings of a local target: interpreter, MPI hosts."""
        from ...adapters import interpreters
        self.python_edit = QLineEdit(cfg.get("python", ""))
        self.python_edit.setPlaceholderText(
            "default: an interpreter with TensorFlow, found automatically" if interpreters.is_frozen()
            else f"default: {sys.executable} (the one running the app)")
        # Known interpreters (not checked here: checking runs each one; the target's probe does that).
        self.python_edit.setCompleter(QCompleter([p for p, _src in interpreters.candidate_paths()], self))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_python)
        py_row = QHBoxLayout()
        py_row.addWidget(self.python_edit, 1)
        py_row.addWidget(browse)
        self.hosts_edit = QLineEdit(", ".join(str(h) for h in _stored_hosts(cfg.get("hosts"))))
        self.hosts_edit.setPlaceholderText("optional, for MPI across machines: host1:4, host2:4")
        self.ssh_config_edit = QLineEdit(cfg.get("ssh_config", ""))
        self.ssh_config_edit.setPlaceholderText("optional: an ssh_config file for the hosts (addresses, user, key)")
        ssh_browse = QPushButton("Browse…")
        ssh_browse.clicked.connect(self._browse_ssh_config)
        ssh_row = QHBoxLayout()
        ssh_row.addWidget(self.ssh_config_edit, 1)
        ssh_row.addWidget(ssh_browse)
        self.oversubscribe = QCheckBox("Allow more MPI ranks than cores (oversubscribe)")
        self.oversubscribe.setChecked(bool(cfg.get("oversubscribe")))
        local = QWidget()
        lf = QFormLayout(local)
        lf.setContentsMargins(0, 0, 0, 0)
        lf.addRow("Python interpreter", py_row)
        lf.addRow("Hosts", self.hosts_edit)
        lf.addRow("SSH config", ssh_row)
        lf.addRow("", self.oversubscribe)
        return local

    def _docker_page(self, cfg: dict) -> QWidget:
        """The settings of a Docker target: engine, image, GPUs, limits."""
        self.url_edit = QLineEdit(cfg.get("base_url", ""))
        self.url_edit.setPlaceholderText("default: DOCKER_HOST or the local socket; or tcp://host:2376, ssh://user@host")
        self.image_edit = QLineEdit(cfg.get("image", ""))
        self.image_edit.setPlaceholderText("default: mltrain-tf:2.21")
        self.gpus_edit = QLineEdit(str(cfg.get("gpus", "all")) if not isinstance(cfg.get("gpus"), list)
                                   else ",".join(cfg["gpus"]))
        self.shm_edit = QLineEdit(str(cfg.get("shm_size", "2g")))
        self.cpus_spin = QDoubleSpinBox()
        self.cpus_spin.setRange(0, 1024)
        self.cpus_spin.setSpecialValueText("no limit")
        self.cpus_spin.setValue(float(cfg.get("cpus") or 0))
        self.mem_spin = QDoubleSpinBox()
        self.mem_spin.setRange(0, 4096)
        self.mem_spin.setSuffix(" GB")
        self.mem_spin.setSpecialValueText("no limit")
        self.mem_spin.setValue(float(cfg.get("memory_gb") or 0))
        self.mpi_combo = QComboBox()
        for text, value in MPI_LAUNCH_CHOICES:
            self.mpi_combo.addItem(text, value)
        self.mpi_combo.setCurrentIndex(1 if cfg.get("mpi_launcher") == "mpirun" else 0)
        self.mpi_combo.setToolTip("How MPI-configured runs start their ranks. mpirun over SSH runs node_count node "
                                  "containers with sshd and adds OpenSSH and Open MPI to the run's image (built once).")
        docker = QWidget()
        df = QFormLayout(docker)
        df.setContentsMargins(0, 0, 0, 0)
        df.addRow("Engine URL", self.url_edit)
        df.addRow("Image", self.image_edit)
        df.addRow("GPUs for use_gpu runs", self.gpus_edit)
        df.addRow("Shared memory", self.shm_edit)
        df.addRow("CPUs", self.cpus_spin)
        df.addRow("Memory", self.mem_spin)
        df.addRow("MPI jobs", self.mpi_combo)
        return docker

    def _kind_changed(self, kind: str) -> None:
        self.kind_pages.setCurrentIndex(1 if kind == "docker" else 0)

    def _browse_python(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Python interpreter")
        if path:
            self.python_edit.setText(path)

    def _browse_ssh_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "ssh_config file for the hosts", os.path.expanduser("~/.ssh"))
        if path:
            self.ssh_config_edit.setText(path)

    def options(self) -> dict:
        """The provisioning options from the form; raises ValueError for what the form can check."""
        kind = self.kind_combo.currentText()
        opts: dict = {"max_concurrent_runs": self.max_runs.value()}
        if kind == "local":
            if self.python_edit.text().strip():
                opts["python"] = self.python_edit.text().strip()
            hosts = parse_hosts(self.hosts_edit.text())
            if hosts:
                opts["hosts"] = hosts
            if self.ssh_config_edit.text().strip():
                opts["ssh_config"] = self.ssh_config_edit.text().strip()
            if self.oversubscribe.isChecked():
                opts["oversubscribe"] = True
        else:
            for key, w in (("base_url", self.url_edit), ("image", self.image_edit)):
                if w.text().strip():
                    opts[key] = w.text().strip()
            opts["gpus"] = self.gpus_edit.text().strip() or "all"
            opts["shm_size"] = self.shm_edit.text().strip() or "2g"
            if self.cpus_spin.value() > 0:
                opts["cpus"] = self.cpus_spin.value()
            if self.mem_spin.value() > 0:
                opts["memory_gb"] = self.mem_spin.value()
            if self.mpi_combo.currentData() == "mpirun":
                opts["mpi_launcher"] = "mpirun"
        return opts

    def submit(self) -> None:
        if self.task is not None:
            return
        name = self.name_edit.text().strip()
        if not name:
            set_error(self.error, "Give the target a name.")
            return
        if len(name) > 64:
            set_error(self.error, "A compute target name has at most 64 characters.")
            return
        try:
            opts = self.options()
        except ValueError as exc:
            set_error(self.error, str(exc))
            return
        set_error(self.error, None)
        self.status.setText("Validating and probing the target…")
        self.save_button.setEnabled(False)
        kind = self.kind_combo.currentText()
        kept = {k: v for k, v in (self.record or {}).get("config", {}).items() if k not in FORM_KEYS.get(kind, ())}
        self.task = self.ctx.bridge.run(save_target, name, kind, opts, self.record is None, kept,
                                        on_done=self._done, on_error=self._failed)

    def _done(self, d: dict) -> None:
        self.task = None
        self.save_button.setEnabled(True)
        self.status.setText("")
        self.ctx.message.emit(f"Compute target {d['name']}: {d['state']}. {d['detail']}")
        self.saved.emit(d["name"])
        self.accept()

    def _failed(self, exc) -> None:
        self.task = None
        self.save_button.setEnabled(True)
        self.status.setText("")
        set_error(self.error, str(exc))
