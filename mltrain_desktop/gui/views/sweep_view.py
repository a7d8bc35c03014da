"""The sweep view: one HyperDrive sweep, live — its state, sampler, policy and limits, the best
child so far with "Register model…", and the linked panels (children table, every child's
primary metric, parallel coordinates with brushing, a scatter of two hyperparameters).

It reloads when the runs or metrics change (the database watcher reports every commit, so a
running sweep's children update it live); the data comes from ``app.sweeps.sweep_detail`` on a
worker.
"""
from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from ...app.sweeps import counts_text, sweep_detail
from ...domain.run_state import TERMINAL
from ..resources import icon, state_icon
from .base import BaseView, fmt_value, heading
from .sweep_panels import SweepPanels


class SweepView(BaseView):
    title = "Sweep"
    icon_name = "runs"
    topics = frozenset({"runs", "metrics"})

    def __init__(self, ctx, parent=None):
        super().__init__(ctx, parent)
        self.run_id: str | None = None
        self.detail: dict | None = None
        self.heading = heading("Sweep")
        self.state_icon = QLabel()
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.best_label = QLabel("")
        self.open_best_button = QPushButton(icon("runs"), "Open best run")
        self.open_best_button.clicked.connect(self._open_best)
        self.register_button = QPushButton(icon("register"), "Register model…")
        self.register_button.clicked.connect(self.open_register_dialog)
        self.cancel_button = QPushButton(icon("cancel"), "Cancel sweep")
        self.cancel_button.clicked.connect(self.cancel_sweep)
        self.panels = SweepPanels()
        self.panels.openRun.connect(self.ctx.openRun.emit)
        self.dialog = None
        top = QHBoxLayout()
        top.addWidget(self.state_icon)
        top.addWidget(self.heading)
        top.addStretch(1)
        top.addWidget(self.cancel_button)
        best = QHBoxLayout()
        best.addWidget(self.best_label, 1)
        best.addWidget(self.open_best_button)
        best.addWidget(self.register_button)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.summary)
        lay.addLayout(best)
        lay.addWidget(self.panels, 1)
        self._update_buttons()

    def show_sweep(self, run_id: str) -> None:
        if run_id != self.run_id:
            self.run_id, self.detail = run_id, None
            self.heading.setText(f"Sweep {run_id}")
            self.summary.setText("Loading…")
        self._stale = True
        self.refresh()

    def reload(self) -> None:
        if self.run_id:
            self.load(sweep_detail, self.run_id, on_done=self._show, quiet=self.detail is not None)

    def _show(self, detail: dict) -> None:
        if detail["sweep"]["run_id"] != self.run_id:
            return
        self.detail = detail
        s = detail["sweep"]
        self.state_icon.setPixmap(state_icon(s["status"]).pixmap(22, 22))
        counts = counts_text(s["counts"]) or "no children yet"
        error = f"<br><b>{s['error']}</b>" if s["error"] else ""
        self.summary.setText(f"<b>{s['status']}</b> · {counts} of {s['max_total_runs']} · "
                             f"{s['max_concurrent_runs']} at once · {s['sampler']} sampling · {s['policy']} · "
                             f"{s['goal'].lower()} {s['primary_metric']}{error}")
        if s["best_run_id"]:
            self.best_label.setText(f"Best: <b>{s['best_run_id']}</b> with {s['primary_metric']} = "
                                    f"{fmt_value(s['best_value'])}")
        else:
            self.best_label.setText(f"No child has logged {s['primary_metric']} yet.")
        self.panels.show_data(detail)
        self._update_buttons()

    def _update_buttons(self) -> None:
        s = (self.detail or {}).get("sweep") or {}
        self.register_button.setEnabled(bool(s.get("best_run_id")))
        self.open_best_button.setEnabled(bool(s.get("best_run_id")))
        self.cancel_button.setEnabled(bool(s) and s.get("status") not in {t.value for t in TERMINAL})

    def best_run_id(self) -> str | None:
        return ((self.detail or {}).get("sweep") or {}).get("best_run_id")

    def _open_best(self) -> None:
        if self.best_run_id():
            self.ctx.openRun.emit(self.best_run_id())

    def open_register_dialog(self):
        run_id = self.best_run_id()
        if not run_id:
            return None
        from ..dialogs.register_model import RegisterModelDialog
        self.dialog = RegisterModelDialog(self.ctx, run_id, f"{self.run_id}-best", self)
        self.dialog.registered.connect(lambda name, version: self.ctx.openModel.emit(name, version))
        self.dialog.open()
        return self.dialog

    def cancel_sweep(self) -> None:
        if self.run_id:
            self.ctx.bridge.run(_cancel, self.run_id, on_done=lambda _: self.refresh(),
                                on_error=lambda e: self.ctx.show_error("Cancel sweep", str(e)))


def _cancel(ws, state, run_id: str) -> None:
    from ...core.runs import Run
    Run.get(ws, run_id).cancel()
