"""Compute targets: kind, state (reachable or why not), GPUs, concurrent-run limit; create/edit."""
from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
)

from ...app import queries
from ...app.slurm_view import cluster_text, jobs_text
from ..resources import icon, state_icon
from .base import BaseView, confirm_box
from .table_model import Column, RecordTableModel, fit_columns, make_table, select_key, selected_records

_STATE_ICON = {"Succeeded": "Completed", "Failed": "Failed", "Creating": "Preparing"}


def probe_target(ws, state, name: str) -> dict:
    from ...core.compute import ComputeTarget
    return ComputeTarget(ws, name).refresh_state()


def delete_target(ws, state, name: str) -> str:
    from ...core.compute import ComputeTarget
    ComputeTarget(ws, name).delete()
    return name


class ComputeView(BaseView):
    title = "Compute"
    icon_name = "compute"
    topics = frozenset({"compute", "runs"})

    def __init__(self, ctx, parent=None):
        super().__init__(ctx, parent)
        self.model = RecordTableModel([
            Column("Name", lambda r: r["name"]),
            Column("Kind", lambda r: r["kind"]),
            Column("State", lambda r: r["state"], icon=lambda r: state_icon(_STATE_ICON.get(r["state"], "Queued"))),
            Column("GPUs", lambda r: str(len(r["gpus"])), sort=lambda r: len(r["gpus"]),
                   tooltip=lambda r: ", ".join(g.get("name", "?") for g in r["gpus"]) or "none found",
                   align_right=True),
            Column("Max concurrent runs", lambda r: str(r["max_concurrent_runs"]),
                   sort=lambda r: r["max_concurrent_runs"], align_right=True),
            Column("Active runs", lambda r: str(r["active_runs"]), sort=lambda r: r["active_runs"], align_right=True),
            Column("Detail", lambda r: r["detail"], tooltip=lambda r: r["detail"]),
        ], key="name")
        self.table, _ = make_table(self.model)
        self.table.selectionModel().selectionChanged.connect(self._show_details)
        self.table.doubleClicked.connect(lambda _i: self.open_edit_dialog())
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)

        self.new_button = QPushButton(icon("add"), "New target…")
        self.new_button.clicked.connect(lambda: self.open_create_dialog())
        self.edit_button = QPushButton(icon("edit"), "Edit…")
        self.edit_button.clicked.connect(lambda: self.open_edit_dialog())
        self.probe_button = QPushButton(icon("refresh"), "Check again")
        self.probe_button.setToolTip("Probe the selected target again (engine reachable, GPUs found)")
        self.probe_button.clicked.connect(self.probe_selected)
        self.delete_button = QPushButton(icon("delete"), "Delete")
        self.delete_button.clicked.connect(self.delete_selected)
        bar = QHBoxLayout()
        for b in (self.new_button, self.edit_button, self.probe_button, self.delete_button):
            bar.addWidget(b)
        bar.addStretch(1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.details)
        split.setSizes([300, 200])
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(split, 1)
        self.dialog = None
        self._want: str | None = None

    def reload(self) -> None:
        self.load(queries.list_compute, on_done=self._show)

    def _show(self, rows) -> None:
        keep = self._want or next((r["name"] for r in selected_records(self.table)), None)
        self._want = None
        self.model.set_records(rows)
        fit_columns(self.table, self.model)
        if not (keep and select_key(self.table, self.model, keep)) and rows and not selected_records(self.table):
            self.table.selectRow(0)
        self._show_details()

    def select_target(self, name: str) -> None:
        if not select_key(self.table, self.model, name):
            self._want = name
        self.refresh()

    def _show_details(self, *_a) -> None:
        recs = selected_records(self.table)
        if not recs:
            self.details.setPlainText("")
            return
        r = recs[0]
        if r["kind"] == "slurm":
            cluster = cluster_text(r["probe"])
            self.details.setPlainText(
                f"{r['name']} (slurm): {r['state']}\n{r['detail']}\n\n{jobs_text(r.get('slurm_jobs') or [])}\n\n"
                + (cluster + "\n\n" if cluster else "") + f"Configuration:\n{json.dumps(r['config'], indent=2)}")
            return
        self.details.setPlainText(
            f"{r['name']} ({r['kind']}): {r['state']}\n{r['detail']}\n\nConfiguration:\n"
            f"{json.dumps(r['config'], indent=2)}\n\nProbe:\n{json.dumps(r['probe'], indent=2)}")

    def selected_name(self) -> str | None:
        recs = selected_records(self.table)
        return recs[0]["name"] if recs else None

    def open_create_dialog(self):
        from ..dialogs.compute_dialog import ComputeDialog
        self.dialog = ComputeDialog(self.ctx, None, self)
        self.dialog.saved.connect(self.select_target)
        self.dialog.open()
        return self.dialog

    def open_edit_dialog(self):
        recs = selected_records(self.table)
        if not recs:
            return None
        from ..dialogs.compute_dialog import ComputeDialog
        self.dialog = ComputeDialog(self.ctx, recs[0], self)
        self.dialog.saved.connect(self.select_target)
        self.dialog.open()
        return self.dialog

    def probe_selected(self) -> None:
        name = self.selected_name()
        if name:
            self.ctx.message.emit(f"Checking compute target {name}…")
            self.ctx.bridge.run(probe_target, name,
                                on_done=lambda res: (self.ctx.message.emit(f"{name}: {res.get('state')}. "
                                                                           f"{res.get('detail', '')}"), self.refresh()),
                                on_error=lambda exc: self.ctx.show_error("Check compute target", str(exc)))

    def delete_selected(self, confirm: bool = True) -> None:
        name = self.selected_name()
        if not name:
            return
        if confirm:
            self.confirm_box = confirm_box(self, "Delete compute target",
                                           f"Delete the compute target {name!r}? Runs that used it keep their "
                                           "records.", lambda: self._delete(name))
            return
        self._delete(name)

    def _delete(self, name: str) -> None:
        if getattr(self, "_deleting", None) == name:
            return
        self._deleting = name
        self.ctx.bridge.run(delete_target, name,
                            on_done=lambda n: (setattr(self, "_deleting", None),
                                               self.ctx.message.emit(f"Deleted compute target {n}"), self.refresh()),
                            on_error=lambda exc: (setattr(self, "_deleting", None),
                                                  self.ctx.show_error("Delete compute target", str(exc))))

    def delete_requested(self) -> None:
        """The Delete key."""
        self.delete_selected(confirm=True)
