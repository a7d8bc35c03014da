"""One live chart (one metric name) with any number of series, drawn from their envelopes.

Every point is kept in the series' buffers; what is drawn is the peak-preserving min/max
envelope of the visible x range, about one group per pixel column, recomputed when the range
changes. The pyqtgraph items that make it cheap come from :mod:`.pyqtgraph_compat`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

from . import pyqtgraph_compat
from .chart_series import X_STEP, X_TIME, Series, copy_points

__all__ = ["MetricChart", "SERIES_COLORS"]

# Tableau 10: distinct, readable on light and dark backgrounds.
SERIES_COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip

RANGE_SETTLE_MS = 30  # coalesce the range changes of a pan or a wheel zoom


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
        self._series: dict[str, Series] = {}
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
        axes = pyqtgraph_compat.axis_items(bg, fg)
        self.plot_widget = pg.PlotWidget(parent=self, background=bg, axisItems=axes,
                                         viewBox=pyqtgraph_compat.view_box())
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
        self._bounds = pyqtgraph_compat.FullXBounds()
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
        self._append_points(*copy_points(steps, values, walltimes), series_key)

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

    def _add_series(self, key: str) -> Series:
        ser = Series(key, key or self.name, self._color_for(key))
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

    def _apply_pens(self, ser: Series) -> None:
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

