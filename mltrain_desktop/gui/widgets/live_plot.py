"""Live metric charts: a panel of pyqtgraph charts, one per metric name, several series each.

Every point is kept (in a :class:`SeriesBuffer`); what is drawn is the buffer's peak-preserving
min/max envelope for the visible x range, recomputed when the range changes, so a chart with
millions of points pans and zooms as smoothly as one with a thousand. One chart is a
:class:`MetricChart` (``metric_chart``); the pyqtgraph internals it relies on are in
``pyqtgraph_compat``.

Usage (GUI thread only)::

    panel = LivePlotPanel()
    panel.append("loss", steps, values, walltimes, series_key="run 3")   # buffers, O(1)
    # a 150 ms timer flushes the buffers and redraws the charts that changed, with setData,
    # one chart per turn of the event loop

Points are appended from the caller (a bridge that tails the metrics file or polls the store);
nothing here does I/O, and ``processEvents`` is never called.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from .chart_series import X_STEP, X_TIME, copy_points
from .metric_chart import SERIES_COLORS, MetricChart

__all__ = ["LivePlot", "LivePlotPanel", "MetricChart", "X_STEP", "X_TIME", "SERIES_COLORS"]

REDRAW_INTERVAL_MS = 150
MIN_TICK_MS = 40  # the shortest tick while several charts wait for their turn
SPARE_FIRST_MS = 600  # a spare chart soon after the panel is made (the window has just started)
SPARE_AGAIN_MS = 3000  # the next one a while after the last was put to use


class LivePlotPanel(QWidget):
    """A grid of :class:`MetricChart`, one per metric name, created as names appear, with a
    toolbar: x axis (step / relative time), smoothing, log y, reset zoom.

    Charts redraw on a 150 ms timer, only those that changed and are on screen, one chart per
    timer tick (round-robin, the tick shortened when several are waiting), so that one
    event-loop turn paints at most one chart.  A chart for a new metric name is created on a
    later turn of the event loop, one per turn (a pyqtgraph plot costs 20-40 ms to build);
    its points are buffered meanwhile and counted by :meth:`point_count`.  Series keep the same
    colour in every chart (by ``series_key``).
    """

    chartAdded = Signal(str)  # noqa: N815 (Qt naming)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        columns: int = 2,
        redraw_interval_ms: int = REDRAW_INTERVAL_MS,
        show_toolbar: bool = True,
        spare_chart: bool = False,
    ) -> None:
        super().__init__(parent)
        self._charts: dict[str, MetricChart] = {}
        # metric name -> points received before its chart exists: [(s, v, w, series_key)]
        self._waiting: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray, str]]] = {}
        self._colors: dict[str, QColor] = {}
        self._columns = max(1, int(columns))
        self._x_mode = X_STEP
        self._alpha = 0.0
        self._log_y = False
        self._last_drawn: str | None = None  # round-robin position

        self._interval = int(redraw_interval_ms)
        self._timer = QTimer(self)
        self._timer.setInterval(self._interval)
        self._timer.timeout.connect(self._tick)
        self._create_timer = QTimer(self)
        self._create_timer.setSingleShot(True)
        self._create_timer.setInterval(0)
        self._create_timer.timeout.connect(self._create_next)
        # With ``spare_chart``, one chart is built ahead of need: soon after the panel is made
        # (while the window starts), and again a while after it is put to use. A metric's first
        # points then find it ready: building one takes 15-30 ms of the GUI thread, 40 the first
        # time in a process.
        self._spare: MetricChart | None = None
        self._spare_timer = QTimer(self)
        self._spare_timer.setSingleShot(True)
        self._spare_timer.timeout.connect(self._build_spare)
        self._spare_wanted = bool(spare_chart)
        if self._spare_wanted:
            self._spare_timer.start(SPARE_FIRST_MS)

        self._build_toolbar(show_toolbar)

        # charts
        self._grid_host = QWidget()
        self._grid = QGridLayout(self._grid_host)
        self._grid.setContentsMargins(2, 2, 2, 2)
        self._grid.setSpacing(6)
        self._placeholder = QLabel("No metrics yet.")
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._grid.addWidget(self._placeholder, 0, 0)
        self._scroll = QScrollArea(self)
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self._scroll.setWidget(self._grid_host)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.toolbar)
        lay.addWidget(self._scroll, 1)

    def _build_toolbar(self, visible: bool) -> None:
        """The x axis, smoothing, log y and reset zoom controls above the charts."""
        self.toolbar = QWidget(self)
        tb = QHBoxLayout(self.toolbar)
        tb.setContentsMargins(4, 2, 4, 2)
        tb.addWidget(QLabel("X axis:"))
        self.x_axis_combo = QComboBox()
        self.x_axis_combo.addItem("Step", X_STEP)
        self.x_axis_combo.addItem("Relative time", X_TIME)
        self.x_axis_combo.currentIndexChanged.connect(
            lambda _i: self.set_x_mode(self.x_axis_combo.currentData())
        )
        tb.addWidget(self.x_axis_combo)
        tb.addSpacing(12)
        tb.addWidget(QLabel("Smoothing:"))
        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal)
        self.smoothing_slider.setRange(0, 99)
        self.smoothing_slider.setFixedWidth(140)
        self.smoothing_slider.setToolTip("Exponential moving average weight (0 = raw)")
        self.smoothing_slider.valueChanged.connect(lambda v: self.set_smoothing(v / 100.0))
        tb.addWidget(self.smoothing_slider)
        self.smoothing_label = QLabel("0.00")
        self.smoothing_label.setMinimumWidth(32)
        tb.addWidget(self.smoothing_label)
        tb.addSpacing(12)
        self.log_y_check = QCheckBox("Log Y")
        self.log_y_check.toggled.connect(self.set_log_y)
        tb.addWidget(self.log_y_check)
        self.reset_zoom_button = QPushButton("Reset zoom")
        self.reset_zoom_button.clicked.connect(self.reset_zoom)
        tb.addWidget(self.reset_zoom_button)
        tb.addStretch(1)
        self.toolbar.setVisible(visible)

    # ------------------------------------------------------------------ data

    def append(self, name: str, steps, values, walltimes=None, series_key: str = "") -> None:
        """Buffer points of metric ``name`` (one chart per name) for series ``series_key``.
        Cheap: the points are copied and drawn on the next tick."""
        chart = self._charts.get(name)
        if chart is not None:
            chart.append(steps, values, walltimes, series_key)
        else:
            s, v, w = copy_points(steps, values, walltimes)
            if s.shape[0] == 0 and name in self._waiting:
                return
            self._waiting.setdefault(name, []).append((s, v, w, series_key))
            if self.isVisible() and not self._create_timer.isActive():
                self._create_timer.start()
        self._kick()

    def _create_next(self) -> None:
        """Creates the chart of the oldest waiting metric; the next one on the next turn."""
        if not self._waiting or not self.isVisible():
            return  # showEvent starts again
        self._materialize(next(iter(self._waiting)))
        if self._waiting:
            self._create_timer.start()

    def _build_spare(self) -> None:
        if self._spare is not None:
            return
        if self._waiting:  # charts are being created: later
            self._spare_timer.start(SPARE_AGAIN_MS)
            return
        self._spare = MetricChart("", self._grid_host, color_for=self._color_for)
        self._spare.hide()

    def _materialize(self, name: str) -> MetricChart:
        chart = self._add_chart(name)
        for s, v, w, key in self._waiting.pop(name, []):
            chart._append_points(s, v, w, key)
        self._kick()
        return chart

    def _color_for(self, key: str) -> QColor:
        c = self._colors.get(key)
        if c is None:
            c = QColor(SERIES_COLORS[len(self._colors) % len(SERIES_COLORS)])
            self._colors[key] = c
        return c

    def _add_chart(self, name: str) -> MetricChart:
        if not self._charts:
            self._placeholder.hide()
            self._grid.removeWidget(self._placeholder)
        chart = self._spare
        if chart is not None:
            self._spare = None
            chart.rename(name)
            chart.show()
        else:
            chart = MetricChart(name, self._grid_host, color_for=self._color_for)
        if self._spare_wanted and not self._spare_timer.isActive():
            self._spare_timer.start(SPARE_AGAIN_MS)
        chart.setMinimumHeight(220)
        chart.set_x_mode(self._x_mode)
        chart.set_smoothing(self._alpha)
        chart.set_log_y(self._log_y)
        i = len(self._charts)
        self._grid.addWidget(chart, i // self._columns, i % self._columns)
        self._charts[name] = chart
        self.chartAdded.emit(name)
        return chart

    def clear(self) -> None:
        """Remove every chart and point."""
        for chart in self._charts.values():
            self._grid.removeWidget(chart)
            chart.setParent(None)
            chart.deleteLater()
        self._charts.clear()
        self._waiting.clear()
        self._create_timer.stop()
        self._last_drawn = None
        self._colors.clear()
        self._grid.addWidget(self._placeholder, 0, 0)
        self._placeholder.show()

    def metric_names(self) -> list[str]:
        """Every metric name received, in order (those whose chart is still to come too)."""
        return list(self._charts) + [n for n in self._waiting if n not in self._charts]

    def chart(self, name: str) -> MetricChart | None:
        """The chart of ``name`` (created now if it was still waiting), None if unknown."""
        c = self._charts.get(name)
        if c is None and name in self._waiting:
            c = self._materialize(name)
        return c

    def point_count(self, name: str) -> int:
        """Points held for metric ``name`` (all series), 0 if unknown."""
        c = self._charts.get(name)
        if c is not None:
            return c.point_count()
        return sum(int(s.shape[0]) for s, _v, _w, _k in self._waiting.get(name, ()))

    def drawn_count(self, name: str) -> int:
        """Points handed to pyqtgraph at the last redraw of ``name``'s chart, 0 if unknown."""
        c = self._charts.get(name)
        return c.drawn_count() if c else 0

    # ------------------------------------------------------------------ options

    def set_x_mode(self, mode: str) -> None:
        self._x_mode = mode
        idx = self.x_axis_combo.findData(mode)
        if idx >= 0 and idx != self.x_axis_combo.currentIndex():
            self.x_axis_combo.setCurrentIndex(idx)  # re-enters once, harmless
        for c in self._charts.values():
            c.set_x_mode(mode)

    def set_smoothing(self, alpha: float) -> None:
        self._alpha = float(alpha)
        self.smoothing_label.setText(f"{self._alpha:.2f}")
        v = int(round(self._alpha * 100))
        if v != self.smoothing_slider.value():
            self.smoothing_slider.setValue(v)
        for c in self._charts.values():
            c.set_smoothing(self._alpha)
        self._kick()

    def set_log_y(self, on: bool) -> None:
        self._log_y = bool(on)
        if self.log_y_check.isChecked() != self._log_y:
            self.log_y_check.setChecked(self._log_y)
        for c in self._charts.values():
            c.set_log_y(self._log_y)
        self._kick()

    def reset_zoom(self) -> None:
        for c in self._charts.values():
            c.reset_zoom()

    # ------------------------------------------------------------------ drawing

    def _kick(self) -> None:
        if not self._timer.isActive():
            self._timer.setInterval(self._interval)
            self._timer.start()

    def redraw_now(self, *, only_visible: bool = False) -> int:
        """Redraw the dirty charts now (all of them, creating those still waiting, unless
        ``only_visible``); returns how many."""
        if not only_visible:
            while self._waiting:
                self._materialize(next(iter(self._waiting)))
        n = 0
        for c in self._charts.values():
            if c.is_dirty() and (not only_visible or self._on_screen(c)):
                c.redraw()
                n += 1
        return n

    def _on_screen(self, chart: MetricChart) -> bool:
        """Whether the chart is (partly) inside the scroll area's viewport."""
        if not chart.isVisible():
            return False
        vp = self._scroll.viewport()
        return QRect(chart.mapTo(vp, QPoint(0, 0)), chart.size()).intersects(vp.rect())

    def _tick(self) -> None:
        """Redraws one dirty on-screen chart, the one after the last drawn (round-robin); while
        others wait, the next tick comes sooner, so each chart still redraws about once per
        interval but no event-loop turn paints more than one."""
        if not self.isVisible():
            self._timer.stop()  # showEvent restarts it
            return
        names = list(self._charts)
        if self._last_drawn in self._charts:
            k = names.index(self._last_drawn) + 1
            names = names[k:] + names[:k]
        due = [n for n in names if self._charts[n].is_dirty() and self._on_screen(self._charts[n])]
        if due:
            self._charts[due[0]].redraw()
            self._last_drawn = due[0]
        if len(due) > 1:
            self._timer.setInterval(max(MIN_TICK_MS, self._interval // (len(due) - 1)))
        else:
            self._timer.setInterval(self._interval)
        if not any(c.is_dirty() for c in self._charts.values()):
            self._timer.stop()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if any(c.is_dirty() for c in self._charts.values()):
            self._kick()
        if self._waiting and not self._create_timer.isActive():
            self._create_timer.start()


LivePlot = LivePlotPanel
