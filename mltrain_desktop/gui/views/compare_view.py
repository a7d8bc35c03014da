"""Compare runs: one metric's curves overlaid, parameters and final metrics side by side."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ...app import queries
from ..resources import icon, state_icon
from ..widgets.live_plot import LivePlotPanel
from .base import BaseView, fmt_value, heading


class CompareView(BaseView):
    title = "Compare runs"
    icon_name = "compare"
    topics = frozenset()

    def __init__(self, ctx, parent=None):
        super().__init__(ctx, parent)
        self.run_ids: list[str] = []
        self.data: list[dict] = []
        self.back_button = QPushButton(icon("runs"), "All runs")
        self.back_button.clicked.connect(lambda: self.ctx.openRuns.emit(""))
        self.metric_combo = QComboBox()
        self.metric_combo.currentTextChanged.connect(self._metric_changed)
        self.plots = LivePlotPanel(columns=1)
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.cellDoubleClicked.connect(self._open_column)
        head = QHBoxLayout()
        head.addWidget(self.back_button)
        head.addWidget(heading("Compare runs"))
        head.addStretch(1)
        head.addWidget(QLabel("Metric:"))
        head.addWidget(self.metric_combo)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.plots)
        split.addWidget(self.table)
        split.setSizes([420, 260])
        lay = QVBoxLayout(self)
        lay.addLayout(head)
        lay.addWidget(split, 1)
        self._metric_task = None

    def set_runs(self, run_ids: list[str]) -> None:
        self.run_ids = list(run_ids)
        self.plots.clear()
        self._stale = True
        if self.isVisible():
            self.refresh()

    def reload(self) -> None:
        if self.run_ids:
            self.load(queries.run_compare_data, list(self.run_ids), on_done=self._show)

    def _show(self, data: list[dict]) -> None:
        self.data = data
        names = sorted({n for d in data for n in d["final"]})
        current = self.metric_combo.currentText()
        self.metric_combo.blockSignals(True)
        self.metric_combo.clear()
        self.metric_combo.addItems(names)
        pick = current if current in names else next((n for n in ("batch_loss", "loss", "val_loss") if n in names),
                                                     names[0] if names else "")
        self.metric_combo.setCurrentText(pick)
        self.metric_combo.blockSignals(False)
        self._fill_table()
        self._metric_changed(pick)

    def _fill_table(self) -> None:
        data = self.data
        params = sorted({k for d in data for k in d["params"]})
        tags = sorted({k for d in data for k in d["tags"]})
        finals = sorted({k for d in data for k in d["final"]})
        rows = [("State", lambda d: d["status"]), ("Experiment", lambda d: d["experiment"]),
                ("Script", lambda d: d["script"] or ""), ("Compute", lambda d: d["compute"])]
        rows += [(f"param {p}", lambda d, p=p: d["params"].get(p, "")) for p in params]
        rows += [(f"tag {t}", lambda d, t=t: d["tags"].get(t, "")) for t in tags]
        rows += [(f"final {m}", lambda d, m=m: fmt_value(d["final"].get(m))) for m in finals]
        self.table.clear()
        self.table.setColumnCount(len(data))
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels([f"{d['experiment']} #{d['number']}" for d in data])
        self.table.setVerticalHeaderLabels([r[0] for r in rows])
        differs = [len({str(f(d)) for d in data}) > 1 for _n, f in rows]
        for c, d in enumerate(data):
            self.table.horizontalHeaderItem(c).setIcon(state_icon(d["status"]))
            self.table.horizontalHeaderItem(c).setToolTip(f"{d['id']} (double-click a cell to open)")
            values = [str(f(d)) for _n, f in rows]
            for r, text in enumerate(values):
                item = QTableWidgetItem(text)
                if differs[r]:
                    font = item.font()
                    font.setBold(True)  # differs between runs
                    item.setFont(font)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()

    def _metric_changed(self, name: str) -> None:
        self.plots.clear()
        if not name or not self.run_ids:
            return
        self._metric_task = self.load(queries.metric_series_for, list(self.run_ids), name,
                                      on_done=lambda series, n=name: self._plot(n, series))

    def _plot(self, name: str, series: list) -> None:
        if name != self.metric_combo.currentText():
            return
        for _rid, label, s, v, w in series:
            if len(s):
                self.plots.append(name, s, v, w, series_key=label)

    def _open_column(self, _row: int, col: int) -> None:
        if 0 <= col < len(self.data):
            self.ctx.openRun.emit(self.data[col]["id"])
