"""Runs: experiments and their runs, with filter and sort; open, cancel, re-submit, compare."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ...app import queries
from ...app.sweeps import counts_text
from ...domain.run_state import ACTIVE, RunStatus
from ..resources import icon, state_icon
from .base import BaseView, confirm_box, fmt_duration, fmt_time, fmt_value, run_duration
from .table_model import (RECORD_ROLE, Column, RecordTableModel, fit_columns, make_table, select_key,
                          selected_records)

ALL = "All experiments"
SWEEP = "hyperdrive"
ID_COL = 2
STATES = tuple(s.value for s in RunStatus)
DURATION_COL = 5


def cancel_runs(ws, state, run_ids: list[str]) -> list[str]:
    from ...core.runs import Run
    out = []
    for rid in run_ids:
        out.append(Run.get(ws, rid).cancel(wait_seconds=0))
    return out


def run_form(ws, state, run_id: str) -> dict:
    from ...core.runs import Run
    from ..dialogs.submit_run import form_from_spec
    run = Run.get(ws, run_id)
    return form_from_spec(run.spec, str(run.run_dir))


def delete_runs(ws, state, run_ids: list[str]) -> int:
    """Removes finished runs (``Run.delete``: rows, metrics and folder); returns how many."""
    from ...core.runs import Run
    for rid in run_ids:
        Run.get(ws, rid).delete()
    return len(run_ids)


def state_text(r: dict) -> str:
    """A sweep's state with its children's counts: 'Running (2 Completed, 2 Running)'."""
    sweep = r.get("sweep")
    if sweep and sweep.get("counts"):
        return f"{r['status']} ({counts_text(sweep['counts'])})"
    return r["status"]


def metric_text(r: dict) -> str:
    sweep = r.get("sweep")
    if sweep:
        best = sweep.get("best_value")
        return f"best {sweep['primary_metric']} = {fmt_value(best)}" if best is not None else ""
    return f"{r['metric_name']} = {fmt_value(r['metric_value'])}" if r["metric_name"] else ""


def children_under_parents(records: list[dict]) -> list[dict]:
    """The sorted rows with each sweep's children moved right under it (in their sorted order)."""
    kids: dict[str, list[dict]] = {}
    present = {r["id"] for r in records}
    for r in records:
        if r.get("parent_id") in present:
            kids.setdefault(r["parent_id"], []).append(r)
    if not kids:
        return records
    out = []
    for r in records:
        if r.get("parent_id") in present:
            continue
        out.append(r)
        out.extend(kids.get(r["id"], ()))
    return out


class RunsView(BaseView):
    title = "Runs"
    icon_name = "runs"
    topics = frozenset({"runs", "experiments"})
    min_interval_ms = 700

    def __init__(self, ctx, parent=None):
        super().__init__(ctx, parent)
        self.experiments = QListWidget()
        self.experiments.currentItemChanged.connect(lambda *_: self._apply_filters())
        self.expanded: set[str] = set()  # sweeps whose children are unfolded
        self.model = RecordTableModel([
            Column("Experiment", lambda r: r["experiment"]),
            Column("#", lambda r: str(r["number"]), sort=lambda r: r["number"], align_right=True),
            Column("Run id", self._id_text, sort=lambda r: r["id"]),
            Column("State", state_text, icon=lambda r: state_icon(r["status"]),
                   tooltip=lambda r: r["error"][:500] if r["error"] else r["status"]),
            Column("Started", lambda r: fmt_time(r["started"]), sort=lambda r: (r["started"] or r["created"], r["number"])),
            Column("Duration", lambda r: fmt_duration(run_duration(r)), sort=lambda r: run_duration(r) or 0,
                   align_right=True),
            Column("Compute", lambda r: r["compute"]),
            Column("Primary metric", metric_text, sort=lambda r: (r["metric_name"], r["metric_value"]
                                                                 if isinstance(r["metric_value"], (int, float))
                                                                 else 0)),
            Column("Script", lambda r: r["script"]),
        ], arrange=children_under_parents)
        self.table, self.proxy = make_table(self.model, multi=True)
        self.table.doubleClicked.connect(lambda _i: self.open_selected())
        self.table.clicked.connect(self._clicked)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self.table.sortByColumn(4, Qt.SortOrder.DescendingOrder)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter runs (id, experiment, script, compute, metric)…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)
        self.state_filter = QComboBox()
        self.state_filter.addItems(["All states", "Active", *STATES])
        self.state_filter.currentTextChanged.connect(lambda _t: self._apply_filters())

        self.submit_button = QPushButton(icon("submit"), "Submit…")
        self.submit_button.clicked.connect(lambda: self.ctx.submitRequested.emit(None))
        self.open_button = QPushButton(icon("runs"), "Open")
        self.open_button.clicked.connect(self.open_selected)
        self.cancel_button = QPushButton(icon("cancel"), "Cancel run")
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.resubmit_button = QPushButton(icon("resubmit"), "Re-submit…")
        self.resubmit_button.clicked.connect(self.resubmit_selected)
        self.compare_button = QPushButton(icon("compare"), "Compare")
        self.compare_button.setToolTip("Select several runs, then compare their curves and parameters")
        self.compare_button.clicked.connect(self.compare_selected)
        bar = QHBoxLayout()
        for w in (self.submit_button, self.open_button, self.cancel_button, self.resubmit_button,
                  self.compare_button):
            bar.addWidget(w)
        bar.addStretch(1)
        filters = QHBoxLayout()
        filters.addWidget(self.filter_edit, 1)
        filters.addWidget(self.state_filter)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addLayout(bar)
        rl.addLayout(filters)
        rl.addWidget(self.table, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.experiments)
        split.addWidget(right)
        split.setSizes([150, 1000])
        lay = QVBoxLayout(self)
        lay.addWidget(split)

        self.proxy.extra_filter = self._accepts
        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self._on_tick)
        self._tick.start()
        self._ticks = 0
        self._update_buttons()

    # -- data ---------------------------------------------------------------------------
    def reload(self) -> None:
        self.load(queries.list_runs, on_done=self._show)

    def _show(self, rows: list[dict]) -> None:
        keep = [r["id"] for r in selected_records(self.table)]
        self.model.set_records(rows)
        if not getattr(self, "_sized", False) and rows:
            fit_columns(self.table, self.model)
            self._sized = True
        self._fill_experiments(sorted({r["experiment"] for r in rows}))
        if keep and not selected_records(self.table):
            for k in keep:
                select_key(self.table, self.model, k)
        self._update_buttons()

    def _fill_experiments(self, names: list[str]) -> None:
        item = self.experiments.currentItem()
        current = item.data(Qt.ItemDataRole.UserRole) if item else ""
        have = [self.experiments.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.experiments.count())]
        if have == ["", *names]:
            return
        self.experiments.blockSignals(True)
        self.experiments.clear()
        for name in ["", *names]:
            it = QListWidgetItem(icon("runs") if name else icon("workspace"), name or ALL)
            it.setData(Qt.ItemDataRole.UserRole, name)
            self.experiments.addItem(it)
        want = getattr(self, "_pending_experiment", None)
        if want in names:
            current, self._pending_experiment = want, None
        idx = (["", *names]).index(current) if current in names else 0
        self.experiments.setCurrentRow(idx)
        self.experiments.blockSignals(False)
        self._apply_filters()

    def show_experiment(self, name: str) -> None:
        """Select an experiment in the list ('' = all), now or once the list has loaded."""
        for i in range(self.experiments.count()):
            if self.experiments.item(i).data(Qt.ItemDataRole.UserRole) == name:
                self.experiments.setCurrentRow(i)
                self._apply_filters()
                return
        self._pending_experiment = name

    def _id_text(self, r: dict) -> str:
        if r.get("run_type") == SWEEP:
            return ("▾ " if r["id"] in self.expanded else "▸ ") + r["id"]
        return "    ↳ " + r["id"] if r.get("parent_id") else r["id"]

    def _clicked(self, index) -> None:
        """A click on a sweep's run id folds or unfolds its children."""
        rec = index.data(RECORD_ROLE)
        if rec and rec.get("run_type") == SWEEP and index.column() == ID_COL:
            self.toggle_sweep(rec["id"])

    def toggle_sweep(self, run_id: str) -> None:
        self.expanded ^= {run_id}
        self.model.refresh_column(ID_COL)
        self._apply_filters()

    def _accepts(self, rec: dict) -> bool:
        if rec.get("parent_id") and rec["parent_id"] not in self.expanded:
            return False
        item = self.experiments.currentItem()
        exp = item.data(Qt.ItemDataRole.UserRole) if item else ""
        if exp and rec["experiment"] != exp:
            return False
        st = self.state_filter.currentText()
        if st == "Active":
            return rec["status"] in ACTIVE
        return st == "All states" or rec["status"] == st

    def _apply_filters(self) -> None:
        self.proxy.invalidate()

    def _on_tick(self) -> None:
        if not self.isVisible():
            return
        active = any(r["status"] in ACTIVE for r in self.model.records)
        if active:
            self.model.refresh_column(DURATION_COL)
            self._ticks += 1
            if self._ticks % 3 == 0:  # primary metric of running runs
                self._schedule()

    # -- actions ------------------------------------------------------------------------
    def selected(self) -> list[dict]:
        return selected_records(self.table)

    def select_run(self, run_id: str) -> bool:
        return select_key(self.table, self.model, run_id)

    def _update_buttons(self) -> None:
        sel = self.selected()
        self.open_button.setEnabled(len(sel) == 1)
        self.resubmit_button.setEnabled(len(sel) == 1)
        self.cancel_button.setEnabled(any(r["status"] in ACTIVE for r in sel))
        self.compare_button.setEnabled(len(sel) >= 2)

    def open_selected(self) -> None:
        sel = self.selected()
        if sel and sel[0].get("run_type") == SWEEP:
            self.ctx.openSweep.emit(sel[0]["id"])
        elif sel:
            self.ctx.openRun.emit(sel[0]["id"])

    def cancel_selected(self) -> None:
        ids = [r["id"] for r in self.selected() if r["status"] in ACTIVE]
        if ids:
            self.ctx.bridge.run(cancel_runs, ids, on_done=lambda st: self.ctx.message.emit(
                f"Cancel requested for {len(ids)} run(s)"), on_error=lambda e: self.ctx.show_error("Cancel", str(e)))

    def resubmit_selected(self) -> None:
        sel = self.selected()
        if sel:
            self.resubmit(sel[0]["id"])

    def resubmit(self, run_id: str) -> None:
        self.ctx.bridge.run(run_form, run_id, on_done=lambda form: self.ctx.submitRequested.emit(form),
                            on_error=lambda e: self.ctx.show_error("Re-submit", str(e)))

    def compare_selected(self) -> None:
        ids = [r["id"] for r in self.selected()]
        if len(ids) >= 2:
            self.ctx.compareRuns.emit(ids)

    def delete_requested(self) -> None:
        sel = self.selected()
        if not sel:
            return
        ids = [r["id"] for r in sel]
        text = (f"Delete run {ids[0]}" if len(ids) == 1 else f"Delete {len(ids)} runs") + \
            " with its metrics, logs and outputs? This cannot be undone."
        self.confirm_box = confirm_box(self, "Delete runs", text, lambda: self._delete(ids))

    def _delete(self, ids: list[str]) -> None:
        self.ctx.bridge.run(delete_runs, ids, on_done=lambda n: self.ctx.message.emit(f"Deleted {n} run(s)"),
                            on_error=lambda e: self.ctx.show_error("Delete runs", str(e)))


__all__ = ["RunsView"]
