"""Live metric charts: one pyqtgraph chart per metric name, several series per chart.

Every point is kept (in a :class:`SeriesBuffer`); what is drawn is the buffer's peak-preserving
min/max envelope for the visible x range, recomputed when the range changes, so a chart with
millions of points pans and zooms as smoothly as one with a thousand.

Usage (GUI thread only)::

    panel = LivePlotPanel()
    panel.append("loss", steps, values, walltimes, series_key="run 3")   # buffers, O(1)
    # a 150 ms timer flushes the buffers and redraws the charts that changed, with setData,
    # one chart per turn of the event loop

Points are appended from the caller (a bridge that tails the metrics file or polls the store);
nothing here does I/O, and ``processEvents`` is never called.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from .series_buffer import SeriesBuffer

__all__ = ["LivePlot", "LivePlotPanel", "MetricChart", "X_STEP", "X_TIME", "SERIES_COLORS"]

X_STEP = "step"
X_TIME = "time"

# Tableau 10: distinct, readable on light and dark backgrounds.
SERIES_COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip

REDRAW_INTERVAL_MS = 150
MIN_TICK_MS = 40  # the shortest tick while several charts wait for their turn
SPARE_FIRST_MS = 600  # a spare chart soon after the panel is made (the window has just started)
SPARE_AGAIN_MS = 3000  # the next one a while after the last was put to use
RANGE_SETTLE_MS = 30  # coalesce the range changes of a pan or a wheel zoom


class _Column:
    """A growable float64 array (amortised appends)."""

    __slots__ = ("data", "n")

    def __init__(self) -> None:
        self.data = np.empty(256)
        self.n = 0

    def append(self, a: np.ndarray) -> None:
        m = a.shape[0]
        if self.n + m > self.data.shape[0]:
            cap = self.data.shape[0]
            while cap < self.n + m:
                cap *= 2
            new = np.empty(cap)
            new[: self.n] = self.data[: self.n]
            self.data = new
        self.data[self.n : self.n + m] = a
        self.n += m

    def view(self) -> np.ndarray:
        return self.data[: self.n]


class _Series:
    """One line of a chart: all its points (by step, and by relative wall time on demand)."""

    def __init__(self, key: str, label: str, color: QColor) -> None:
        self.key = key
        self.label = label
        self.color = QColor(color)
        self.steps = SeriesBuffer()
        self.walltimes = _Column()
        self.t0: float | None = None
        self._times: SeriesBuffer | None = None  # x = seconds since the series' first point
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.pending_count = 0
        self.raw_curve: pg.PlotDataItem | None = None
        self.smooth_curve: pg.PlotDataItem | None = None
        self.drawn = 0

    def flush(self) -> bool:
        if not self.pending:
            return False
        if len(self.pending) == 1:
            s, v, w = self.pending[0]
        else:
            s, v, w = (np.concatenate(parts) for parts in zip(*self.pending))
        self.pending.clear()
        self.pending_count = 0
        if self.t0 is None:
            fin = w[np.isfinite(w)]
            self.t0 = float(fin[0]) if fin.shape[0] else None
        self.steps.append(s, v)
        self.walltimes.append(w)
        return True

    def buffer(self, x_mode: str) -> SeriesBuffer:
        if x_mode == X_STEP:
            return self.steps
        if self._times is None:
            self._times = SeriesBuffer(capacity=max(len(self.steps), 1024))
        tb = self._times
        done, n = len(tb), len(self.steps)
        if done < n:
            t0 = self.t0 if self.t0 is not None else 0.0
            tb.append(self.walltimes.view()[done:n] - t0, self.steps.y[done:n])
        return tb

    def __len__(self) -> int:
        return len(self.steps) + self.pending_count


class _FullXBounds(pg.GraphicsObject):
    """Invisible item that reports the x extent of *all* the data to the ViewBox.

    The curves hold only what is visible, so without it "View all" and the auto-range button
    would fit the view to the zoomed part.  It reports no y bounds: y auto-range follows the
    drawn (visible) points.
    """

    def __init__(self) -> None:
        super().__init__()
        self._xr: tuple[float, float] | None = None

    def set_x_range(self, xr: tuple[float, float] | None) -> None:
        if xr != self._xr:
            self._xr = xr
            self.informViewBoundsChanged()

    def dataBounds(self, ax, frac=1.0, orthoRange=None):  # noqa: N802 (pyqtgraph API)
        if ax == 0 and self._xr is not None:
            return self._xr
        return (None, None)

    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF()

    def paint(self, painter, option, widget=None) -> None:
        pass


class _OpaqueGridAxis(pg.AxisItem):
    """An axis whose ticks and grid lines are drawn with opaque pens.

    pyqtgraph draws grid lines as ticks with a translucent pen; Qt's raster engine blends
    such lines pixel by pixel, about ten times slower than opaque ones (~8 ms per axis of a
    1200 px chart, on every repaint). The look is the same with the colour already mixed into
    the background, since grid lines do not overlap one another.
    """

    def __init__(self, orientation: str, background: QColor, **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self._background = QColor(background)
        self._pens: dict[tuple, QPen] = {}
        # major and minor ticks (grid lines); not the third, faintest level: a quarter of the
        # axis' drawing work, every frame of a live chart
        self.style["maxTickLevel"] = 1

    def _opaque(self, pen: QPen) -> QPen:
        c = pen.color()
        a = c.alpha()
        if a >= 255 or pen.brush().style() != Qt.BrushStyle.SolidPattern:
            return pen
        key = (c.rgba(), pen.widthF(), pen.isCosmetic(), pen.style().value)
        out = self._pens.get(key)
        if out is None:
            f = a / 255.0
            bg = self._background
            mixed = QColor(round(c.red() * f + bg.red() * (1 - f)), round(c.green() * f + bg.green() * (1 - f)),
                           round(c.blue() * f + bg.blue() * (1 - f)))
            out = QPen(pen)
            out.setColor(mixed)
            self._pens[key] = out
        return out

    def _updateLabel(self) -> None:  # noqa: N802 (pyqtgraph API)
        # pyqtgraph re-sets the label's HTML on every pen, style and range change (~0.4 ms a
        # QTextDocument layout each; ~40 times while a chart is built): only when it changed.
        html = self.labelString()
        if html != getattr(self, "_label_html", None):
            self._label_html = html
            self.label.setHtml(html)
        self._adjustSize()
        self.picture = None
        self.update()

    def generateDrawSpecs(self, p):  # noqa: N802 (pyqtgraph API)
        specs = super().generateDrawSpecs(p)
        if specs is None:
            return None
        axis_spec, tick_specs, text_specs = specs
        tick_specs = [(self._opaque(pen), p1, p2) for pen, p1, p2 in tick_specs]
        return axis_spec, tick_specs, text_specs


class _LazyMenuViewBox(pg.ViewBox):
    """A ViewBox that builds its context menu on the first right click, not when created.

    pyqtgraph's ``ViewBoxMenu`` (two forms of axis controls) is a third of the cost of a new
    chart (~7 ms on the GUI thread); most charts never show their menu.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(enableMenu=False, **kwargs)
        self.state["enableMenu"] = True

    def _applyMenuEnabled(self) -> None:  # noqa: N802 (pyqtgraph API)
        if not self.state.get("enableMenu", True) and self.menu is not None:
            self.menu.setParent(None)
            self.menu = None

    def getMenu(self, ev=None):  # noqa: N802
        if self.menu is None and self.menuEnabled():
            from pyqtgraph.graphicsItems.ViewBox.ViewBoxMenu import ViewBoxMenu
            self.menu = ViewBoxMenu(self)
            self.updateViewLists()
        return self.menu

    def getContextMenus(self, event):  # noqa: N802
        menu = self.getMenu(event) if self.menuEnabled() else None
        return menu.actions() if menu is not None else []


def _points(steps, values, walltimes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Copies of the points as float64 arrays (walltimes default to now); ValueError when the
    lengths differ."""
    s = np.array(steps, dtype=np.float64, ndmin=1).ravel()
    v = np.array(values, dtype=np.float64, ndmin=1).ravel()
    if s.shape != v.shape:
        raise ValueError(f"steps and values differ in length ({s.shape[0]} != {v.shape[0]})")
    if walltimes is None:
        w = np.full(s.shape[0], time.time())
    else:
        w = np.array(walltimes, dtype=np.float64, ndmin=1).ravel()
        if w.shape != s.shape:
            raise ValueError("walltimes and steps differ in length")
    return s, v, w


def _faint(color: QColor, alpha: int = 70) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c


class MetricChart(QWidget):
    """One chart (one metric name) with any number of series, drawn from their envelopes."""

    def __init__(
        self,
        name: str,
        parent: QWidget | None = None,
        *,
        color_for: Callable[[str], QColor] | None = None,
        max_points: int | None = None,
    ) -> None:
        super().__init__(parent)
        self.name = name
        self._series: dict[str, _Series] = {}
        self._color_for = color_for or self._own_color
        self._max_points_override = max_points
        self._x_mode = X_STEP
        self._alpha = 0.0
        self._log_y = False
        self._dirty = False
        self._drawn_query: tuple[float | None, float | None] | None = (None, None)

        pal = self.palette()
        bg = pal.color(QPalette.ColorRole.Base)
        fg = pal.color(QPalette.ColorRole.Text)
        # pens given to the constructor: each later pen change re-lays the axis label out
        axes = {side: _OpaqueGridAxis(side, bg, pen=pg.mkPen(fg), textPen=pg.mkPen(fg))
                for side in ("left", "bottom", "top", "right")}
        self.plot_widget = pg.PlotWidget(parent=self, background=bg, axisItems=axes, viewBox=_LazyMenuViewBox())
        self.plot_widget.setMinimumHeight(180)
        self.plot_widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._pi: pg.PlotItem = self.plot_widget.getPlotItem()
        self._vb: pg.ViewBox = self._pi.getViewBox()
        self._title_color = fg
        self._pi.setTitle(name or None, color=fg, size="10pt")
        for ax in axes.values():
            # plain numbers (steps, losses); no "(x1e-3)" label re-laid out as the range moves
            ax.enableAutoSIPrefix(False)
        self._pi.hideAxis("top")  # ours too (given axes are shown): kept cheap while hidden
        self._pi.hideAxis("right")
        self._pi.showGrid(x=True, y=True, alpha=0.15)
        self._pi.setLabel("bottom", "step")
        self._vb.setAutoVisible(y=True)  # y auto-range fits the visible part when zoomed in x
        self._legend = self._pi.addLegend(offset=(-8, 8), labelTextColor=fg)
        self._legend.setBrush(pg.mkBrush(_faint(bg, 225)))
        self._legend.setPen(pg.mkPen(_faint(fg, 60)))
        self._legend.setVisible(False)
        self._bounds = _FullXBounds()
        self._pi.addItem(self._bounds)

        self._range_timer = QTimer(self)
        self._range_timer.setSingleShot(True)
        self._range_timer.setInterval(RANGE_SETTLE_MS)
        self._range_timer.timeout.connect(self.redraw)
        self._vb.sigXRangeChanged.connect(self._on_view_changed)
        self._vb.sigStateChanged.connect(self._on_view_changed)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot_widget)

    def rename(self, name: str) -> None:
        """Show the chart under another metric name (a spare chart put to use)."""
        self.name = name
        self._pi.setTitle(name or None, color=self._title_color, size="10pt")

    # ------------------------------------------------------------------ data

    def append(self, steps, values, walltimes=None, series_key: str = "") -> None:
        """Buffer points of one series; drawn on the next redraw.  ``walltimes`` (Unix seconds)
        default to now.  Arrays are copied, so the caller may reuse them."""
        self._append_points(*_points(steps, values, walltimes), series_key)

    def _append_points(self, s: np.ndarray, v: np.ndarray, w: np.ndarray, series_key: str) -> None:
        """``append`` for arrays that are already private float64 copies."""
        if s.shape[0] == 0:
            return
        ser = self._series.get(series_key)
        if ser is None:
            ser = self._add_series(series_key)
        ser.pending.append((s, v, w))
        ser.pending_count += s.shape[0]
        self._dirty = True

    def _own_color(self, key: str) -> QColor:
        return QColor(SERIES_COLORS[len(self._series) % len(SERIES_COLORS)])

    def _add_series(self, key: str) -> _Series:
        ser = _Series(key, key or self.name, self._color_for(key))
        # The buffer's views are always finite: connect all points, skip pyqtgraph's check.
        opts = dict(connect="all", skipFiniteCheck=True)
        ser.raw_curve = pg.PlotDataItem(pen=pg.mkPen(ser.color, width=1), **opts)
        ser.smooth_curve = pg.PlotDataItem(pen=pg.mkPen(ser.color, width=2), **opts)
        ser.smooth_curve.setZValue(10)  # smoothed lines above every faint raw line
        for c in (ser.raw_curve, ser.smooth_curve):
            self._pi.addItem(c)
        self._series[key] = ser
        self._update_legend()
        self._apply_pens(ser)
        return ser

    def _update_legend(self) -> None:
        self._legend.clear()
        show = len(self._series) > 1 or any(k for k in self._series)
        if show:
            for ser in self._series.values():
                self._legend.addItem(ser.smooth_curve, ser.label)  # full-colour pen sample
        self._legend.setVisible(show)

    def _apply_pens(self, ser: _Series) -> None:
        raw_color = _faint(ser.color) if self._alpha > 0 else ser.color
        ser.raw_curve.setPen(pg.mkPen(raw_color, width=1))

    def clear(self) -> None:
        """Remove every series and point."""
        for ser in self._series.values():
            for c in (ser.raw_curve, ser.smooth_curve):
                self._pi.removeItem(c)
        self._series.clear()
        self._update_legend()
        self._bounds.set_x_range(None)
        self._drawn_query = (None, None)
        self._dirty = False

    # ------------------------------------------------------------------ options

    @property
    def x_mode(self) -> str:
        return self._x_mode

    def set_x_mode(self, mode: str) -> None:
        """``"step"`` or ``"time"`` (seconds since each series' first point). Resets the zoom."""
        if mode not in (X_STEP, X_TIME):
            raise ValueError(f"x mode must be {X_STEP!r} or {X_TIME!r}, not {mode!r}")
        if mode == self._x_mode:
            return
        self._x_mode = mode
        self._pi.setLabel("bottom", "step" if mode == X_STEP else "relative time (s)")
        self.reset_zoom()

    @property
    def smoothing(self) -> float:
        return self._alpha

    def set_smoothing(self, alpha: float) -> None:
        """EMA weight in [0, 1): 0 draws the raw series; above, the raw series is drawn faint and
        the smoothed one on top (TensorBoard's convention)."""
        alpha = float(alpha)
        if not 0.0 <= alpha < 1.0:
            raise ValueError("smoothing must be in [0, 1)")
        if alpha == self._alpha:
            return
        self._alpha = alpha
        for ser in self._series.values():
            self._apply_pens(ser)
        self._dirty = True

    @property
    def log_y(self) -> bool:
        return self._log_y

    def set_log_y(self, on: bool) -> None:
        """Log-scale y; non-positive values are left out of the drawing (kept in the data)."""
        on = bool(on)
        if on == self._log_y:
            return
        self._log_y = on
        for ser in self._series.values():  # drop data that may hold values <= 0 first
            for c in (ser.raw_curve, ser.smooth_curve):
                c.setData(np.empty(0), np.empty(0))
            ser.drawn = 0
        self._pi.setLogMode(x=False, y=on)
        self._vb.enableAutoRange(axis=pg.ViewBox.YAxis)
        self._dirty = True

    def reset_zoom(self) -> None:
        """Back to auto-range on both axes, showing all the data."""
        self._vb.enableAutoRange()
        self._dirty = True
        self.redraw()

    # ------------------------------------------------------------------ drawing

    def is_dirty(self) -> bool:
        return self._dirty

    def series_keys(self) -> list[str]:
        return list(self._series)

    def point_count(self) -> int:
        """Points held (all of them, drawn or not), over all series."""
        return sum(len(s) for s in self._series.values())

    def drawn_count(self) -> int:
        """Points handed to pyqtgraph at the last redraw, over all curves."""
        return sum(s.drawn for s in self._series.values())

    def max_points(self) -> int:
        """Envelope groups per view: about one per pixel column of the plot."""
        if self._max_points_override:
            return int(self._max_points_override)
        w = int(self._vb.width())
        return 1024 if w < 64 else max(256, min(w, 4096))

    def _query_range(self) -> tuple[float | None, float | None]:
        if self._vb.autoRangeEnabled()[0]:
            return (None, None)
        x0, x1 = self._vb.viewRange()[0]
        return (float(x0), float(x1))

    def _on_view_changed(self, *args) -> None:
        if self._query_range() == self._drawn_query:
            return  # e.g. auto-range following new data: what is drawn is still right
        self._dirty = True
        if self.isVisible() and not self._range_timer.isActive():
            self._range_timer.start()  # a pan or zoom: redraw soon, not on the next tick

    def redraw(self) -> None:
        """Flush buffered points and setData each curve with the envelope of the visible range."""
        self._range_timer.stop()
        for ser in self._series.values():
            ser.flush()
        query = self._query_range()
        x0, x1 = query
        mp = self.max_points()
        xmin, xmax = np.inf, -np.inf
        for ser in self._series.values():
            buf = ser.buffer(self._x_mode)
            b = buf.bounds()
            if b is not None:
                xmin, xmax = min(xmin, b[0]), max(xmax, b[1])
            ser.drawn = 0
            ser.drawn += self._set_curve(ser.raw_curve, *buf.view(x0, x1, mp))
            if self._alpha > 0:
                sm = buf.smoothed_series(self._alpha)
                ser.drawn += self._set_curve(ser.smooth_curve, *sm.view(x0, x1, mp))
            else:
                self._set_curve(ser.smooth_curve, np.empty(0), np.empty(0))
        self._bounds.set_x_range((float(xmin), float(xmax)) if xmin <= xmax else None)
        self._drawn_query = query
        self._dirty = False

    def _set_curve(self, curve: pg.PlotDataItem, x: np.ndarray, y: np.ndarray) -> int:
        if self._log_y and y.shape[0]:
            keep = y > 0
            if not keep.all():
                x, y = x[keep], y[keep]
        curve.setData(x, y)
        return int(x.shape[0])


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

        # toolbar
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
        self.toolbar.setVisible(show_toolbar)

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

    # ------------------------------------------------------------------ data

    def append(self, name: str, steps, values, walltimes=None, series_key: str = "") -> None:
        """Buffer points of metric ``name`` (one chart per name) for series ``series_key``.
        Cheap: the points are copied and drawn on the next tick."""
        chart = self._charts.get(name)
        if chart is not None:
            chart.append(steps, values, walltimes, series_key)
        else:
            s, v, w = _points(steps, values, walltimes)
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
