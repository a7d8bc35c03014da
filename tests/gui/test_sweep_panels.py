"""The sweep view's linked panels in a real widget tree (offscreen): brushing an axis of the
parallel-coordinates plot with the mouse selects the children inside in the table and
highlights their curves; selecting table rows highlights the lines."""
from __future__ import annotations

import math

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from mltrain_desktop.gui.views.sweep_panels import SweepPanels
from mltrain_desktop.gui.views.table_model import selected_records
from mltrain_desktop.gui.widgets.parallel_coords import DIM

LRS = [0.001, 0.003, 0.01, 0.03, 0.05, 0.08]


def _children():
    kids = []
    for i, lr in enumerate(LRS):
        series = [(s, 0.5 + 0.05 * s * (i + 1) / len(LRS)) for s in range(1, 5)]
        kids.append({"run_id": f"sw_{i}", "state": "Completed", "reason": "",
                     "hyperparameters": {"--batch-size": [32, 64, 128][i % 3], "--learning-rate": lr,
                                         "--optimizer": ["adam", "sgd"][i % 2]},
                     "metric": max(v for _, v in series), "series": series})
    kids[0]["state"], kids[0]["reason"] = "Canceled", "early terminated by BanditPolicy: 0.55 < best 0.7 / 1.1"
    return kids


@pytest.fixture
def panels(qtbot):
    w = SweepPanels()
    qtbot.addWidget(w)
    w.resize(1100, 800)
    w.show_data({"sweep": {"primary_metric": "validation_acc", "goal": "MAXIMIZE"}, "children": _children()})
    w.show()
    qtbot.waitExposed(w)
    return w


def _send(widget, kind, pos, buttons):
    pos = QPointF(pos)
    ev = QMouseEvent(kind, pos, widget.mapToGlobal(pos), Qt.MouseButton.LeftButton
                     if kind != QMouseEvent.Type.MouseMove else Qt.MouseButton.NoButton, buttons,
                     Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, ev)


def _drag(plot, start, end, steps=8):
    """A real press-move-release on the plot's viewport, in scene pixels."""
    vp = plot.viewport()
    held = Qt.MouseButton.LeftButton
    _send(vp, QMouseEvent.Type.MouseButtonPress, start, held)
    for k in range(1, steps + 1):
        _send(vp, QMouseEvent.Type.MouseMove, QPointF(start) + QPointF(end - start) * (k / steps), held)
    _send(vp, QMouseEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)


def _pixel(panels, axis_index: int, y: float):
    vb = panels.coords.view
    scene = vb.mapViewToScene(QPointF(axis_index, y))
    return panels.coords.plot.mapFromScene(scene)


def test_columns_show_every_hyperparameter_metric_and_reason(panels):
    titles = [c.title for c in panels.model.columns]
    assert titles == ["Run", "State", "--batch-size", "--learning-rate", "--optimizer", "Metric", "Early stop"]
    row = panels.model.records[panels.model.row_of("sw_0")]
    assert panels.model.columns[-1].text(row).startswith("early terminated by BanditPolicy")


def test_mouse_brush_on_an_axis_selects_those_children_everywhere(panels, qtbot):
    lr_axis = 1
    seen = []
    panels.selectionChanged.connect(seen.append)
    top, mid = _pixel(panels, lr_axis, 1.1), _pixel(panels, lr_axis, 0.3)
    _drag(panels.coords.plot, top, mid)
    qtbot.waitUntil(lambda: bool(seen), timeout=2000)
    axis = panels.coords.axes[lr_axis]
    lo, hi = panels.coords.brushes["--learning-rate"]
    assert hi == 1.0 and lo == pytest.approx(0.3, abs=0.02)
    expected = {c["run_id"] for c in _children()
                if axis.position(c["hyperparameters"]["--learning-rate"]) >= lo}
    assert expected and expected != {c["run_id"] for c in _children()}
    assert seen[-1] == expected
    assert {r["run_id"] for r in selected_records(panels.table)} == expected
    for rid in panels._curves:
        assert (panels.curve_width(rid) == 3) == (rid in expected)
        assert (panels.coords.line_colour(rid) == DIM) == (rid not in expected)


def test_a_drag_away_from_every_axis_brushes_nothing(panels):
    between = _pixel(panels, 0, 0.9) + (_pixel(panels, 1, 0.9) - _pixel(panels, 0, 0.9)) * 0.5
    _drag(panels.coords.plot, between, between + (_pixel(panels, 0, 0.2) - _pixel(panels, 0, 0.9)))
    assert panels.coords.brushes == {}
    assert panels.selection == set()


def test_table_selection_highlights_lines_and_clearing_a_brush_frees_them(panels, qtbot):
    panels.table.selectRow(0)
    (rid,) = {r["run_id"] for r in selected_records(panels.table)}
    assert panels.selection == {rid}
    assert panels.coords.line_colour(rid) != DIM
    others = [k for k in panels.coords._lines if k != rid]
    assert all(panels.coords.line_colour(k) == DIM for k in others)
    panels.coords.set_brush("--optimizer", 0.9, 1.0)
    assert panels.selection == {c["run_id"] for c in _children() if c["hyperparameters"]["--optimizer"] == "sgd"}
    panels.coords.clear_brush()
    assert panels.selection == set()
    assert all(panels.coords.line_colour(k) != DIM for k in panels.coords._lines)


def test_new_data_keeps_brushes_and_selection_on_children_still_there(panels):
    panels.coords.set_brush("--batch-size", 0.0, 0.1)
    chosen = set(panels.selection)
    kids = _children()
    kids.append({"run_id": "sw_new", "state": "Running", "hyperparameters": {"--batch-size": 32,
                 "--learning-rate": 0.002, "--optimizer": "adam"}, "metric": None, "series": []})
    panels.show_data({"sweep": {"primary_metric": "validation_acc"}, "children": kids})
    assert "--batch-size" in panels.coords.brushes
    assert panels.selection == chosen
    assert math.isnan(panels.coords._lines["sw_new"].yData[-1])  # no metric yet: no point on its axis


def test_brushing_an_unknown_axis_says_which_exist(panels):
    with pytest.raises(KeyError, match="--learning-rate"):
        panels.coords.set_brush("--lr", 0, 1)
