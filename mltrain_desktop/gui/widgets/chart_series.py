"""The data behind one line of a live chart: every point by step, and by relative wall time.

Qt-free apart from the two pyqtgraph curves a :class:`Series` carries for its chart; points
arrive as private float64 copies (:func:`copy_points`) and wait in ``pending`` until the
chart's next redraw flushes them into the buffers.
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor

from .series_buffer import SeriesBuffer

__all__ = ["X_STEP", "X_TIME", "GrowableColumn", "Series", "copy_points"]

X_STEP = "step"
X_TIME = "time"


class GrowableColumn:
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


class Series:
    """One line of a chart: all its points (by step, and by relative wall time on demand)."""

    def __init__(self, key: str, label: str, color: QColor) -> None:
        self.key = key
        self.label = label
        self.color = QColor(color)
        self.steps = SeriesBuffer()
        self.walltimes = GrowableColumn()
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


def copy_points(steps, values, walltimes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
