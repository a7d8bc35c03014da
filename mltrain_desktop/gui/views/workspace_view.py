"""The Workspace overview: counts, runs by state, disk used, recent runs, and the sample button."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from ...app import queries
from ...domain.run_state import ACTIVE, RunStatus
from ..resources import icon, state_icon
from .base import BaseView, fmt_bytes, fmt_duration, fmt_time, fmt_value, heading, run_duration
from .table_model import Column, RecordTableModel, fit_columns, make_table

STATES = tuple(s.value for s in RunStatus)


class _Card(QFrame):
    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 8, 12, 8)
        self.value = QLabel("–")
        f = self.value.font()
        f.setPointSizeF(f.pointSizeF() * 1.8)
        f.setBold(True)
        self.value.setFont(f)
        self.caption = QLabel(title)
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        for w in (self.value, self.caption, self.detail):
            lay.addWidget(w)


class WorkspaceView(BaseView):
    title = "Workspace"
    icon_name = "workspace"
    topics = frozenset({"runs", "datasets", "models", "compute", "experiments"})

    def __init__(self, ctx, parent=None):
        super().__init__(ctx, parent)
        self.data: dict | None = None
        self.disk_bytes: int | None = None
        self._disk_task = None

        self.title_label = heading("Workspace")
        self.path_label = QLabel("")
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.sample_button = QPushButton(icon("sample"), "Train the sample")
        self.sample_button.setToolTip("Register the shipped Fashion-MNIST subset and train the TensorFlow "
                                      "sample on it (2 epochs): a live loss curve in under a minute")
        self.sample_button.setMinimumHeight(36)
        self.sample_button.clicked.connect(self.ctx.sampleRequested.emit)
        self.submit_button = QPushButton(icon("submit"), "Submit a run…")
        self.submit_button.clicked.connect(lambda: self.ctx.submitRequested.emit(None))
        self.sample_hint = QLabel("New here? <b>Train the sample</b> registers the shipped dataset and "
                                  "starts a TensorFlow run; its loss curve appears live in the run's page.")
        self.sample_hint.setWordWrap(True)

        self.cards = {k: _Card(t) for k, t in (("datasets", "Datasets"), ("runs", "Runs"),
                                              ("models", "Models"), ("compute", "Compute targets"),
                                              ("disk", "Disk used"))}
        grid = QGridLayout()
        for i, c in enumerate(self.cards.values()):
            grid.addWidget(c, 0, i)

        self.state_row = QHBoxLayout()
        self.state_labels = {}
        for s in STATES:
            lab = QLabel()
            lab.setToolTip(s)
            self.state_labels[s] = lab
            ic = QLabel()
            ic.setPixmap(state_icon(s).pixmap(16, 16))
            self.state_row.addWidget(ic)
            self.state_row.addWidget(lab)
            self.state_row.addSpacing(10)
        self.state_row.addStretch(1)

        self.recent_model = RecordTableModel([
            Column("Experiment", lambda r: r["experiment"]),
            Column("#", lambda r: str(r["number"]), sort=lambda r: r["number"], align_right=True),
            Column("State", lambda r: r["status"], icon=lambda r: state_icon(r["status"])),
            Column("Created", lambda r: fmt_time(r["created"]), sort=lambda r: r["created"]),
            Column("Duration", lambda r: fmt_duration(run_duration(r))),
            Column("Compute", lambda r: r["compute"]),
            Column("Run id", lambda r: r["id"]),
        ])
        self.recent_table, _ = make_table(self.recent_model, sortable=False)
        self.recent_table.doubleClicked.connect(self._open_recent)

        top = QHBoxLayout()
        titles = QVBoxLayout()
        titles.addWidget(self.title_label)
        titles.addWidget(self.path_label)
        top.addLayout(titles, 1)
        top.addWidget(self.submit_button)
        top.addWidget(self.sample_button)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.sample_hint)
        lay.addLayout(grid)
        lay.addLayout(self.state_row)
        lay.addWidget(QLabel("<b>Recent runs</b> (double-click to open)"))
        lay.addWidget(self.recent_table, 1)

    def reload(self) -> None:
        self.load(queries.overview, on_done=self._show)
        if self._disk_task is None:
            self._disk_task = self.load(queries.disk_usage, on_done=self._show_disk)

    def _show(self, d: dict) -> None:
        self.data = d
        self.title_label.setText(f"Workspace: {d['name']}")
        self.path_label.setText(d["path"])
        self.cards["datasets"].value.setText(str(d["datasets"]))
        self.cards["datasets"].detail.setText(f"{d['dataset_versions']} version(s)")
        self.cards["runs"].value.setText(str(d["runs"]))
        active = sum(d["runs_by_state"].get(s, 0) for s in ACTIVE)
        self.cards["runs"].detail.setText(f"{d['experiments']} experiment(s), {active} active")
        self.cards["models"].value.setText(str(d["models"]))
        self.cards["models"].detail.setText(f"{d['model_versions']} version(s)")
        self.cards["compute"].value.setText(str(d["compute_targets"]))
        for s, lab in self.state_labels.items():
            lab.setText(f"{s}: {d['runs_by_state'].get(s, 0)}")
        self.recent_model.set_records(d["recent_runs"])
        fit_columns(self.recent_table, self.recent_model)
        fresh = d["runs"] == 0
        self.sample_hint.setVisible(fresh)

    def _show_disk(self, n: int) -> None:
        self._disk_task = None
        self.disk_bytes = n
        self.cards["disk"].value.setText(fmt_bytes(n))
        self.cards["disk"].detail.setText("datasets, runs, models, environments")

    def _open_recent(self, index) -> None:
        rec = self.recent_model.record(self.recent_table.model().mapToSource(index).row())
        if rec:
            self.ctx.openRun.emit(rec["id"])

    def workspace_changed(self) -> None:
        self._disk_task = None
        super().workspace_changed()


__all__ = ["WorkspaceView", "fmt_value"]
