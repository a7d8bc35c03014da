"""LivePlotPanel / MetricChart with pytest-qt (offscreen)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from mltrain_desktop.gui.widgets import pyqtgraph_compat
from mltrain_desktop.gui.widgets.live_plot import X_TIME, LivePlotPanel, MetricChart


@pytest.fixture
def panel(qtbot):
    p = LivePlotPanel()
    qtbot.addWidget(p)
    p.resize(1000, 500)
    p.show()
    qtbot.waitExposed(p)
    return p


def test_points_drawn_within_a_second(panel, qtbot):
    panel.append("loss", np.arange(100), np.linspace(1, 0, 100))
    panel.append("accuracy", [0, 1, 2], [0.1, 0.5, 0.7], series_key="rank 0")
    assert panel.point_count("loss") == 100  # counted at once, drawn on the timer
    qtbot.waitUntil(lambda: panel.drawn_count("loss") == 100 + 0, timeout=1000)
    qtbot.waitUntil(lambda: panel.drawn_count("accuracy") == 3, timeout=1000)
    assert panel.metric_names() == ["loss", "accuracy"]
    # more points arrive: redrawn again by the timer
    panel.append("loss", np.arange(100, 150), np.zeros(50))
    qtbot.waitUntil(lambda: panel.drawn_count("loss") == 150, timeout=1000)


def test_several_series_per_chart_with_legend(panel, qtbot):
    for k in ("run 1", "run 2", "run 3"):
        panel.append("loss", np.arange(10), np.random.rand(10), series_key=k)
    qtbot.waitUntil(lambda: panel.drawn_count("loss") == 30, timeout=1000)
    chart = panel.chart("loss")
    assert chart.series_keys() == ["run 1", "run 2", "run 3"]
    assert chart._legend.isVisible()
    pens = {s.raw_curve.opts["pen"].color().name() for s in chart._series.values()}
    assert len(pens) == 3


def test_million_points_zoomed_draw_is_bounded(panel, qtbot):
    n = 1_000_000
    rng = np.random.default_rng(0)
    y = np.cumsum(rng.normal(size=n))
    panel.append("loss", np.arange(n), y)
    qtbot.waitUntil(lambda: panel.drawn_count("loss") > 0, timeout=5000)
    chart = panel.chart("loss")
    assert panel.point_count("loss") == n
    full = panel.drawn_count("loss")
    assert full <= 2 * chart.max_points() + 10
    # the drawn envelope holds the global extremes
    xd, yd = chart._series[""].raw_curve.getData()
    assert yd.min() == y.min() and yd.max() == y.max()
    # zoom in (as a wheel would): redraw follows the range change
    chart._vb.setXRange(250_000, 250_400, padding=0)
    qtbot.waitUntil(lambda: chart._drawn_query == (250_000.0, 250_400.0), timeout=1000)
    xd, yd = chart._series[""].raw_curve.getData()
    assert 400 <= len(xd) <= 403  # raw points: the range is small enough
    np.testing.assert_array_equal(yd, y[int(xd[0]) : int(xd[-1]) + 1])
    chart._vb.setXRange(100_000, 900_000, padding=0)
    qtbot.waitUntil(lambda: chart._drawn_query == (100_000.0, 900_000.0), timeout=1000)
    assert panel.drawn_count("loss") <= 2 * chart.max_points() + 10
    # reset zoom: back to everything
    panel.reset_zoom()
    assert chart._drawn_query == (None, None)
    assert chart._vb.autoRangeEnabled()[0]


def test_view_all_uses_whole_data_range(panel, qtbot):
    panel.append("m", np.arange(10_000), np.sin(np.arange(10_000) / 100))
    qtbot.waitUntil(lambda: panel.drawn_count("m") > 0, timeout=1000)
    chart = panel.chart("m")
    chart._vb.setXRange(100, 200, padding=0)
    qtbot.waitUntil(lambda: chart._drawn_query == (100.0, 200.0), timeout=1000)
    chart._vb.autoRange(padding=0)  # the context menu's "View All"
    x0, x1 = chart._vb.viewRange()[0]
    assert x0 <= 0.5 and x1 >= 9_999 - 0.5


def test_log_scale_with_non_positive_values(panel, qtbot):
    panel.append("loss", np.arange(6), [1.0, 0.0, -2.0, np.nan, 0.5, np.inf])
    panel.set_log_y(True)
    qtbot.waitUntil(lambda: panel.drawn_count("loss") == 2, timeout=1000)
    panel.grab()  # paints without error
    panel.append("loss", [6, 7], [-1.0, 0.0])
    qtbot.waitUntil(lambda: not panel.chart("loss").is_dirty(), timeout=1000)
    assert panel.drawn_count("loss") == 2
    panel.set_log_y(False)
    qtbot.waitUntil(lambda: panel.drawn_count("loss") == 6, timeout=1000)
    assert panel.point_count("loss") == 8


def test_smoothing_draws_raw_and_smoothed(panel, qtbot):
    panel.append("loss", np.arange(100), np.random.rand(100))
    qtbot.waitUntil(lambda: panel.drawn_count("loss") == 100, timeout=1000)
    panel.smoothing_slider.setValue(90)
    qtbot.waitUntil(lambda: panel.drawn_count("loss") == 200, timeout=1000)
    chart = panel.chart("loss")
    assert chart.smoothing == pytest.approx(0.9)
    _, ys = chart._series[""].smooth_curve.getData()
    np.testing.assert_allclose(ys, chart._series[""].steps.smoothed(0.9))
    panel.set_smoothing(0.0)
    qtbot.waitUntil(lambda: panel.drawn_count("loss") == 100, timeout=1000)


def test_relative_time_axis(panel, qtbot):
    t0 = 1_700_000_000.0
    panel.append("loss", [0, 10, 20], [3.0, 2.0, 1.0], walltimes=[t0, t0 + 5, t0 + 9])
    qtbot.waitUntil(lambda: panel.drawn_count("loss") == 3, timeout=1000)
    panel.x_axis_combo.setCurrentIndex(panel.x_axis_combo.findData(X_TIME))
    qtbot.waitUntil(lambda: not panel.chart("loss").is_dirty(), timeout=1000)
    xd, yd = panel.chart("loss")._series[""].raw_curve.getData()
    np.testing.assert_array_equal(xd, [0.0, 5.0, 9.0])
    np.testing.assert_array_equal(yd, [3.0, 2.0, 1.0])
    # new points also land in the time view
    panel.append("loss", [30], [0.5], walltimes=[t0 + 12])
    qtbot.waitUntil(lambda: panel.drawn_count("loss") == 4, timeout=1000)
    xd, _ = panel.chart("loss")._series[""].raw_curve.getData()
    assert xd[-1] == 12.0


def test_clear(panel, qtbot):
    panel.append("a", [0, 1], [1, 2])
    panel.append("b", [0, 1], [1, 2])
    qtbot.waitUntil(lambda: panel.drawn_count("b") == 2, timeout=1000)
    panel.clear()
    assert panel.metric_names() == [] and panel.point_count("a") == 0
    panel.append("c", [0], [1])
    qtbot.waitUntil(lambda: panel.drawn_count("c") == 1, timeout=1000)


def test_new_charts_are_built_one_per_turn(panel, qtbot):
    """A batch naming several new metrics: points counted at once, charts built on later turns
    of the event loop (one each), ``chart()`` builds one on demand."""
    for name in ("a", "b", "c"):
        panel.append(name, np.arange(5), np.arange(5.0))
    assert panel.metric_names() == ["a", "b", "c"]
    assert panel.point_count("b") == 5 and panel.drawn_count("b") == 0
    assert list(panel._charts) == []  # nothing built inside the call
    chart_c = panel.chart("c")  # on demand
    assert chart_c is not None and list(panel._charts) == ["c"]
    qtbot.waitUntil(lambda: all(panel.drawn_count(n) == 5 for n in "abc"), timeout=2000)
    assert sorted(panel._charts) == ["a", "b", "c"]


def test_one_chart_redrawn_per_tick(panel, qtbot):
    for name in ("a", "b", "c"):
        panel.append(name, np.arange(5), np.arange(5.0))
    qtbot.waitUntil(lambda: all(panel.drawn_count(n) == 5 for n in "abc"), timeout=2000)
    for name in ("a", "b", "c"):
        panel.append(name, [5], [5.0])
    panel._timer.stop()
    panel._tick()
    assert sum(not panel.chart(n).is_dirty() for n in "abc") == 1
    assert panel._timer.interval() < 150  # the others come sooner than a full interval
    panel._tick()
    panel._tick()
    assert not any(panel.chart(n).is_dirty() for n in "abc")
    assert panel._timer.interval() == 150


def test_spare_chart_is_built_ahead_and_used(qtbot):
    p = LivePlotPanel(spare_chart=True)
    qtbot.addWidget(p)
    p.resize(800, 400)
    p.show()
    qtbot.waitUntil(lambda: p._spare is not None, timeout=3000)
    spare = p._spare
    p.append("loss", [0, 1], [1.0, 0.5])
    assert p.chart("loss") is spare and p._spare is None
    assert spare.name == "loss" and spare.isVisible()
    qtbot.waitUntil(lambda: p.drawn_count("loss") == 2, timeout=1000)


def test_chart_axes_draw_opaque_lines_and_build_the_menu_on_demand(qtbot):
    c = MetricChart("loss")
    qtbot.addWidget(c)
    c.resize(600, 300)
    c.show()
    c.append(np.arange(100), np.linspace(1, 0, 100))
    c.redraw()
    qtbot.wait(50)
    from PySide6.QtGui import QImage, QPainter
    img = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(img)
    assert type(c._vb) is pyqtgraph_compat.LazyMenuViewBox  # the compat items are the ones used
    for side in ("left", "bottom"):
        axis = c._pi.getAxis(side)
        assert type(axis) is pyqtgraph_compat.OpaqueGridAxis
        assert axis.grid is not False
        _axis_spec, ticks, _texts = axis.generateDrawSpecs(painter)
        assert ticks and all(pen.color().alpha() == 255 for pen, _p1, _p2 in ticks)
        assert axis.style["maxTickLevel"] == 1 and not axis.autoSIPrefix
    painter.end()
    assert c._vb.menu is None and c._vb.menuEnabled()
    menu = c._vb.getMenu(None)
    assert menu is not None and c._vb.menu is menu and menu.actions()


def test_hidden_panel_waits_until_shown(qtbot):
    p = LivePlotPanel()
    qtbot.addWidget(p)
    p.append("loss", [0, 1, 2], [1, 2, 3])
    qtbot.wait(400)
    assert p.drawn_count("loss") == 0  # not drawn while hidden
    p.show()
    qtbot.waitUntil(lambda: p.drawn_count("loss") == 3, timeout=1000)
    assert p.redraw_now() == 0


def test_metric_chart_standalone(qtbot):
    c = MetricChart("lr")
    qtbot.addWidget(c)
    c.append([0, 1], [0.1, 0.2])
    c.redraw()
    assert c.drawn_count() == 2 and c.point_count() == 2
    with pytest.raises(ValueError):
        c.append([0, 1], [1.0])
    with pytest.raises(ValueError):
        c.set_x_mode("epoch")


SOAK_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from mltrain_desktop.gui.widgets.live_plot import LivePlotPanel

    panel = LivePlotPanel(redraw_interval_ms=50)
    panel.resize(900, 600)
    panel.show()
    rng = np.random.default_rng(0)
    state = {"step": 0, "ticks": 0}
    samples = [sys.getrefcount(None)]

    def feed():
        s = state["step"]
        steps = np.arange(s, s + 50)
        for m in ("loss", "accuracy", "lr"):
            for key in ("run 1", "run 2"):
                panel.append(m, steps, rng.normal(size=50), series_key=key)
        state["step"] += 50
        state["ticks"] += 1
        if state["ticks"] % 10 == 0:
            panel.grab()  # a real paint of everything
            panel.set_smoothing(0.5 if panel.chart("loss").smoothing == 0 else 0.0)
            panel.chart("loss")._vb.setXRange(0, state["step"] / 2, padding=0)
        if state["ticks"] % 25 == 0:
            panel.reset_zoom()
            panel.set_log_y(not panel.chart("loss").log_y)
        samples.append(sys.getrefcount(None))

    feeder = QTimer()
    feeder.timeout.connect(feed)
    feeder.start(20)
    QTimer.singleShot(int(float(sys.argv[1]) * 1000), app.quit)
    app.exec()
    feeder.stop()
    panel.redraw_now()  # the last tick may have left charts waiting for their round-robin turn
    first, last, low = samples[0], samples[-1], min(samples)
    print(f"ticks={state['ticks']} points/chart={panel.point_count('loss')} "
          f"refcount(None): first={first} min={low} last={last}")
    # PySide6 6.12.0 on Python 3.11 decrements None's refcount on every call through it until
    # it reaches 0 (Fatal Python error: none_dealloc); a sound build keeps it roughly steady.
    if low < first * 0.5:
        print("refcount of None dropped drastically", file=sys.stderr)
        sys.exit(3)
    if state["ticks"] < 20 or panel.drawn_count("loss") == 0:
        print("the live plot did not run", file=sys.stderr)
        sys.exit(4)
    """
)


def test_live_plot_soak(tmp_path):
    """Guards the PySide6 6.12.0 / Python 3.11 none_dealloc abort (we pin 6.11.3): run a live
    plot for ~8 s in a subprocess, so that a crash fails this test instead of killing pytest."""
    script = tmp_path / "soak.py"
    script.write_text(SOAK_SCRIPT)
    t = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(script), "8"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"soak exited {proc.returncode}:\n{out[-3000:]}"
    assert "Fatal Python error" not in out
    assert time.monotonic() - t >= 8
