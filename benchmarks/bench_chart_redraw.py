"""Redraw time of one chart at 10k, 100k and 1M points, three ways.

(a) envelope:  SeriesBuffer.view(x0, x1, width) -> setData(view) -> grab()   (what LivePlot does)
(b) pyqtgraph: setDownsampling(auto=True, method="peak") + setClipToView(True),
               setData(all points) -> grab()                          (pyqtgraph's own answer)
(c) raw:       setData(all points), no downsampling -> grab()         (skipped when a frame > 2 s)

A frame is what a live plot pays on each timer tick: hand the data to the curve and render the
widget (grab() paints it into a pixmap, offscreen).  Two views: the whole run, and a zoom on 5%
of it.  Median of several frames, in milliseconds.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_chart_redraw.py [--frames 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from mltrain_desktop.gui.widgets.series_buffer import SeriesBuffer  # noqa: E402

SIZES = (10_000, 100_000, 1_000_000)
WIDTH, HEIGHT = 1000, 400
RAW_LIMIT_S = 2.0


def make_data(n: int):
    rng = np.random.default_rng(n)
    x = np.arange(n, dtype=np.float64)
    y = 2.5 * np.exp(-x / (n / 4)) + np.cumsum(rng.normal(0, 0.002, n)) + rng.normal(0, 0.05, n)
    return x, y


def new_plot():
    pw = pg.PlotWidget(background="w")
    pw.resize(WIDTH, HEIGHT)
    pw.show()
    curve = pw.plot(pen=pg.mkPen("#1f77b4", width=1))
    return pw, curve


def set_view(pw, n: int, zoom: bool):
    vb = pw.getPlotItem().getViewBox()
    if zoom:
        vb.setXRange(0.40 * n, 0.45 * n, padding=0)
    else:
        vb.enableAutoRange()
    return vb


def time_frames(frame, frames: int, limit_s: float | None = None):
    frame()  # warm-up (first layout, caches)
    times = []
    for _ in range(frames):
        t = time.perf_counter()
        frame()
        dt = time.perf_counter() - t
        times.append(dt)
        if limit_s is not None and dt > limit_s:
            break
    return statistics.median(times), times


def bench_envelope(x, y, zoom: bool, frames: int):
    pw, curve = new_plot()
    curve.setSkipFiniteCheck(True)
    buf = SeriesBuffer()
    t = time.perf_counter()
    buf.append(x, y)
    append_s = time.perf_counter() - t
    vb = set_view(pw, len(x), zoom)
    mp = int(vb.width()) or WIDTH
    drawn = [0]

    def frame():
        if vb.autoRangeEnabled()[0]:
            x0 = x1 = None
        else:
            x0, x1 = vb.viewRange()[0]
        vx, vy = buf.view(x0, x1, mp)
        curve.setData(vx, vy, connect="all", skipFiniteCheck=True)
        drawn[0] = len(vx)
        pw.grab()

    med, _ = time_frames(frame, frames)
    view_t = []
    for _ in range(20):
        t = time.perf_counter()
        buf.view(*((None, None) if not zoom else vb.viewRange()[0]), mp)
        view_t.append(time.perf_counter() - t)
    pw.close()
    return med, drawn[0], append_s, statistics.median(view_t)


def bench_pyqtgraph(x, y, zoom: bool, frames: int, downsample: bool, limit_s=None):
    pw, curve = new_plot()
    if downsample:
        curve.setDownsampling(auto=True, method="peak")
        curve.setClipToView(True)
    set_view(pw, len(x), zoom)

    def frame():
        curve.setData(x, y)
        pw.grab()

    med, times = time_frames(frame, frames, limit_s)
    pw.close()
    return med, times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=15)
    args = ap.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv)  # noqa: F841 (kept alive)

    # warm up Qt and pyqtgraph (fonts, first layout) so the first row is not penalised
    pw, curve = new_plot()
    curve.setData(*make_data(1000))
    for _ in range(5):
        pw.grab()
    pw.close()

    rows = []
    extra = []
    for n in SIZES:
        x, y = make_data(n)
        for zoom in (False, True):
            label = f"{n:>9,}  {'zoom 5%' if zoom else 'full   '}"
            a, drawn, append_s, view_s = bench_envelope(x, y, zoom, args.frames)
            b, _ = bench_pyqtgraph(x, y, zoom, args.frames, downsample=True)
            c, c_times = bench_pyqtgraph(x, y, zoom, args.frames, downsample=False, limit_s=RAW_LIMIT_S)
            c_txt = f"{c * 1e3:10.1f}" if max(c_times) <= RAW_LIMIT_S else f"{'>2000 skip':>10}"
            rows.append(f"{label}  {a * 1e3:10.1f}  {b * 1e3:12.1f}  {c_txt}  {drawn:8,}")
            if not zoom:
                extra.append(f"{n:>9,}  append (one shot) {append_s * 1e3:8.1f} ms")
            extra.append(f"{n:>9,}  view() alone, {'zoom 5%' if zoom else 'full   '} {view_s * 1e3:8.3f} ms")

    print(f"Chart redraw, median of {args.frames} frames (ms): setData + grab() of a "
          f"{WIDTH}x{HEIGHT} PlotWidget, Qt platform '{QApplication.platformName()}'")
    print(f"{'points':>9}  {'view':7}  {'(a) envelope':>10}  {'(b) pg peak+clip':>12}  {'(c) raw':>10}  {'(a) drawn':>8}")
    for r in rows:
        print(r)
    print()
    print("SeriesBuffer costs:")
    for e in extra:
        print("  " + e)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
