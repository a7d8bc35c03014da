"""A parallel-coordinates plot of a sweep: one vertical axis per hyperparameter and one for the
primary metric, one line per child run coloured by its metric (bright = best).

Dragging up or down along an axis brushes a range on it; the children inside every brush are
selected (``selectionChanged``) and drawn bright, the rest dimmed. A double click on an axis
clears its brush. ``set_highlight`` draws a selection made elsewhere (the table, the chart).
The geometry is ``app.sweep_axes``; this module only draws it and turns drags into brushes.
"""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QVBoxLayout, QWidget

from ...app.sweep_axes import Axis, brushed, metric_fraction, positions, sweep_axes

AXIS_GRAB = 0.25  # how far from an axis (in axis spacings) a drag still brushes it
BRUSH_WIDTH = 0.12
DIM = QColor(170, 170, 170, 70)
COLOURS = pg.colormap.get("viridis")


class _BrushViewBox(pg.ViewBox):
    """A view box whose drags make brushes instead of panning."""

    def __init__(self, owner: "ParallelCoordinates"):
        super().__init__(enableMenu=False)
        self.owner = owner
        self.setMouseEnabled(False, False)
        self._axis: int | None = None
        self._y0 = 0.0

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 (pyqtgraph API)
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        p = self.mapToView(ev.pos())
        if ev.isStart():
            start = self.mapToView(ev.buttonDownPos())
            i = round(start.x())
            self._axis = i if abs(start.x() - i) <= AXIS_GRAB and 0 <= i < len(self.owner.axes) else None
            self._y0 = start.y()
        if self._axis is None:
            return
        self.owner.set_brush(self.owner.axes[self._axis].name, self._y0, p.y(), emit=ev.isFinish())

    def mouseDoubleClickEvent(self, ev):  # noqa: N802 (Qt API)
        p = self.mapToView(ev.pos())
        i = round(p.x())
        if abs(p.x() - i) <= AXIS_GRAB and 0 <= i < len(self.owner.axes):
            self.owner.clear_brush(self.owner.axes[i].name)
        ev.accept()


class ParallelCoordinates(QWidget):
    selectionChanged = Signal(object)  # noqa: N815 - set of run ids (empty: no brush)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.view = _BrushViewBox(self)
        self.plot = pg.PlotWidget(viewBox=self.view, background="w")
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.records: list[dict] = []
        self.axes: list[Axis] = []
        self.brushes: dict[str, tuple[float, float]] = {}
        self.highlight: set[str] = set()
        self.maximize = True
        self._lines: dict[str, pg.PlotDataItem] = {}
        self._brush_items: dict[str, QGraphicsRectItem] = {}
        self._fractions: dict[str, float | None] = {}

    # ------------------------------------------------------------------ data

    def set_children(self, children: list[dict], metric_name: str = "metric", maximize: bool = True) -> None:
        """Draws ``children`` (see ``app.sweep_axes``); brushes on axes that remain are kept."""
        self.records = list(children)
        self.maximize = maximize
        self.axes = sweep_axes(self.records, metric_name)
        names = {a.name for a in self.axes}
        self.brushes = {k: v for k, v in self.brushes.items() if k in names}
        self._fractions = metric_fraction(self.records, maximize)
        self._redraw()

    def _redraw(self) -> None:
        self.view.clear()
        self._lines.clear()
        self._brush_items.clear()
        n = len(self.axes)
        for i, axis in enumerate(self.axes):
            self.view.addItem(pg.InfiniteLine(pos=i, angle=90, pen=pg.mkPen(90, 90, 90, width=1)))
            title = pg.TextItem(axis.label, color=(30, 30, 30), anchor=(0.5, 1.0))
            title.setPos(i, 1.08)
            self.view.addItem(title)
            for pos, text in axis.ticks():
                tick = pg.TextItem(text, color=(110, 110, 110), anchor=(0, 0.5))
                tick.setPos(i + 0.03, pos)
                self.view.addItem(tick)
        for child in self.records:
            ys = [math.nan if p is None else p for p in positions(child, self.axes)]
            line = pg.PlotDataItem(list(range(n)), ys, connect="finite")
            self.view.addItem(line)
            self._lines[child["run_id"]] = line
        for name in self.brushes:
            self._draw_brush(name)
        self._restyle()
        self.view.setRange(xRange=(-0.45, max(n - 1, 0) + 0.6), yRange=(-0.06, 1.2), padding=0)

    # --------------------------------------------------------------- brushes

    def set_brush(self, axis_name: str, lo: float, hi: float, emit: bool = True) -> None:
        lo, hi = sorted((max(0.0, min(1.0, lo)), max(0.0, min(1.0, hi))))
        if axis_name not in {a.name for a in self.axes}:
            raise KeyError(f"no axis {axis_name!r}; axes: {[a.name for a in self.axes]}")
        self.brushes[axis_name] = (lo, hi)
        self._draw_brush(axis_name)
        self._brush_changed(emit)

    def clear_brush(self, axis_name: str | None = None) -> None:
        names = list(self.brushes) if axis_name is None else [axis_name]
        for name in names:
            self.brushes.pop(name, None)
            item = self._brush_items.pop(name, None)
            if item is not None:
                self.view.removeItem(item)
        self._brush_changed(True)

    def _draw_brush(self, name: str) -> None:
        i = [a.name for a in self.axes].index(name)
        lo, hi = self.brushes[name]
        item = self._brush_items.get(name)
        if item is None:
            item = QGraphicsRectItem()
            item.setPen(QPen(QColor(30, 90, 200), 0))
            item.setBrush(QBrush(QColor(30, 90, 200, 50)))
            self.view.addItem(item)
            self._brush_items[name] = item
        item.setRect(QRectF(i - BRUSH_WIDTH / 2, lo, BRUSH_WIDTH, hi - lo))

    def _brush_changed(self, emit: bool) -> None:
        self.highlight = brushed(self.records, self.axes, self.brushes)
        self._restyle()
        if emit:
            self.selectionChanged.emit(set(self.highlight))

    def selected(self) -> set[str]:
        return set(self.highlight)

    # ------------------------------------------------------------ highlight

    def set_highlight(self, run_ids) -> None:
        """Draws ``run_ids`` bright and the rest dimmed (all bright when empty)."""
        self.highlight = set(run_ids)
        self._restyle()

    def line_colour(self, run_id: str) -> QColor:
        return self._lines[run_id].opts["pen"].color()

    def _restyle(self) -> None:
        for run_id, line in self._lines.items():
            if self.highlight and run_id not in self.highlight:
                line.setPen(pg.mkPen(DIM, width=1))
                line.setZValue(0)
                continue
            f = self._fractions.get(run_id)
            colour = DIM if f is None else COLOURS.map(0.15 + 0.85 * f, mode="qcolor")
            line.setPen(pg.mkPen(colour, width=3 if run_id in self.highlight else 2))
            line.setZValue(2 if run_id in self.highlight else 1)
