"""The panels of the sweep view, linked by one selection: the children table (hyperparameters
as columns, primary metric, state, early-stop reason), every child's primary metric on one
chart, the parallel-coordinates plot whose brushes select children, and a scatter of any two
hyperparameters coloured by the metric.

Selecting rows in the table highlights those children in the three plots; brushing axes of the
parallel-coordinates plot selects the children inside in the table and highlights their
curves. ``show_data`` takes the plain dict of ``app.sweeps.sweep_detail``.
"""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from ...app.sweep_axes import make_axis, metric_fraction
from ..widgets.parallel_coords import COLOURS, DIM, ParallelCoordinates
from .table_model import RECORD_ROLE, Column, RecordTableModel, fit_columns, make_table, selected_records


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class SweepPanels(QWidget):
    selectionChanged = Signal(object)  # noqa: N815 - set of child run ids
    openRun = Signal(str)  # noqa: N815

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.data: dict = {"sweep": {}, "children": []}
        self.selection: set[str] = set()
        self._syncing = False
        self.model = RecordTableModel([], key="run_id")
        self.model.columns = self._columns([])
        self.table, self.proxy = make_table(self.model, multi=True)
        self.table.selectionModel().selectionChanged.connect(self._table_selected)
        self.table.doubleClicked.connect(self._double_clicked)
        self.chart = pg.PlotWidget(background="w")
        self.chart.showGrid(x=True, y=True, alpha=0.2)
        self.chart.setLabel("bottom", "logged point")
        self.coords = ParallelCoordinates()
        self.coords.selectionChanged.connect(self._brushed)
        self.scatter_plot = pg.PlotWidget(background="w")
        self.scatter = pg.ScatterPlotItem(size=11)
        self.scatter_plot.addItem(self.scatter)
        self.x_param, self.y_param = QComboBox(), QComboBox()
        for combo in (self.x_param, self.y_param):
            combo.currentIndexChanged.connect(self._draw_scatter)
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._build()

    def _build(self) -> None:
        scatter_box = QWidget()
        sl = QVBoxLayout(scatter_box)
        sl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("x"))
        row.addWidget(self.x_param, 1)
        row.addWidget(QLabel("y"))
        row.addWidget(self.y_param, 1)
        sl.addLayout(row)
        sl.addWidget(self.scatter_plot, 1)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.chart)
        top.addWidget(scatter_box)
        top.setSizes([600, 400])
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(top)
        split.addWidget(self.coords)
        split.setSizes([220, 260, 260])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    def best_run_id(self) -> str | None:
        return (self.data.get("sweep") or {}).get("best_run_id")

    def _columns(self, params: list[str]) -> list[Column]:
        cols = [Column("Run", lambda r: ("★ " if r["run_id"] == self.best_run_id() else "") + r["run_id"],
                       sort=lambda r: r["run_id"], tooltip=lambda r: "the best child so far"
                       if r["run_id"] == self.best_run_id() else r["run_id"]),
                Column("State", lambda r: r.get("state") or "")]
        for p in params:
            cols.append(Column(p, lambda r, p=p: _fmt((r.get("hyperparameters") or {}).get(p)),
                               sort=lambda r, p=p: (r.get("hyperparameters") or {}).get(p), align_right=True))
        cols.append(Column("Metric", lambda r: _fmt(r.get("metric")), sort=lambda r: r.get("metric"),
                           align_right=True))
        cols.append(Column("Early stop", lambda r: r.get("reason") or "", tooltip=lambda r: r.get("reason") or ""))
        return cols

    # ------------------------------------------------------------------- data

    def show_data(self, data: dict) -> None:
        self.data = data
        sweep, children = data.get("sweep") or {}, data.get("children") or []
        params: list[str] = []
        for c in children:
            params += [p for p in (c.get("hyperparameters") or {}) if p not in params]
        if [c.title for c in self.model.columns[2:-2]] != params:
            self.model.beginResetModel()
            self.model.columns = self._columns(params)
            self.model.endResetModel()
        self.model.set_records(children)
        fit_columns(self.table, self.model)
        maximize = str(sweep.get("goal", "MAXIMIZE")).upper() != "MINIMIZE"
        self.coords.set_children(children, sweep.get("primary_metric") or "metric", maximize)
        self.chart.setLabel("left", sweep.get("primary_metric") or "metric")
        for combo, i in ((self.x_param, 0), (self.y_param, 1)):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(params)
            if current in params:
                combo.setCurrentText(current)
            elif len(params) > i:
                combo.setCurrentIndex(i)
            combo.blockSignals(False)
        self._draw_curves()
        self._draw_scatter()
        ids = {c["run_id"] for c in children}
        self._apply_selection(self.selection & ids, source=None)

    def _fractions(self) -> dict:
        maximize = str((self.data.get("sweep") or {}).get("goal", "MAXIMIZE")).upper() != "MINIMIZE"
        return metric_fraction(self.data.get("children") or [], maximize)

    def _colour(self, run_id: str, fractions: dict):
        if self.selection and run_id not in self.selection:
            return DIM
        f = fractions.get(run_id)
        return DIM if f is None else COLOURS.map(0.15 + 0.85 * f, mode="qcolor")

    def _draw_curves(self) -> None:
        self.chart.clear()
        self._curves.clear()
        fractions = self._fractions()
        for c in self.data.get("children") or []:
            pts = [(s, v) for s, v in (c.get("series") or []) if isinstance(v, (int, float)) and math.isfinite(v)]
            if not pts:
                continue
            xs, ys = zip(*pts)
            chosen = c["run_id"] in self.selection
            curve = self.chart.plot(list(xs), list(ys),
                                    pen=pg.mkPen(self._colour(c["run_id"], fractions), width=3 if chosen else 1.5))
            curve.setZValue(2 if chosen else 1)
            self._curves[c["run_id"]] = curve

    def _draw_scatter(self) -> None:
        children = self.data.get("children") or []
        xp, yp = self.x_param.currentText(), self.y_param.currentText()
        self.scatter.clear()
        if not xp or not yp:
            return
        xa = make_axis(xp, [(c.get("hyperparameters") or {}).get(xp) for c in children])
        ya = make_axis(yp, [(c.get("hyperparameters") or {}).get(yp) for c in children])
        fractions = self._fractions()
        spots = []
        for c in children:
            hp = c.get("hyperparameters") or {}
            x, y = xa.position(hp.get(xp)), ya.position(hp.get(yp))
            if x is None or y is None:
                continue
            colour = self._colour(c["run_id"], fractions)
            spots.append({"pos": (x, y), "brush": pg.mkBrush(colour), "data": c["run_id"],
                          "size": 15 if c["run_id"] in self.selection else 11})
        self.scatter.addPoints(spots)
        for axis_item, axis in ((self.scatter_plot.getAxis("bottom"), xa), (self.scatter_plot.getAxis("left"), ya)):
            axis_item.setTicks([axis.ticks()])
        self.scatter_plot.setLabel("bottom", xp)
        self.scatter_plot.setLabel("left", yp)

    # -------------------------------------------------------------- selection

    def _double_clicked(self, index) -> None:
        record = index.data(RECORD_ROLE)
        if record:
            self.openRun.emit(record["run_id"])

    def _table_selected(self, *_):
        if not self._syncing:
            self._apply_selection({r["run_id"] for r in selected_records(self.table)}, source="table")

    def _brushed(self, ids) -> None:
        self._apply_selection(set(ids), source="coords")

    def select(self, run_ids) -> None:
        self._apply_selection(set(run_ids), source=None)

    def _apply_selection(self, ids: set[str], source: str | None) -> None:
        self.selection = ids
        if source != "table":
            self._syncing = True
            try:
                sel = QItemSelection()
                for rid in ids:
                    row = self.model.row_of(rid)
                    if row >= 0:
                        idx = self.proxy.mapFromSource(self.model.index(row, 0))
                        sel.select(idx, idx)
                flags = (QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
                self.table.selectionModel().select(sel, flags)
            finally:
                self._syncing = False
        if source != "coords":
            self.coords.set_highlight(ids)
        self._draw_curves()
        self._draw_scatter()
        self.selectionChanged.emit(set(ids))

    def curve_width(self, run_id: str) -> float:
        return self._curves[run_id].opts["pen"].widthF()
