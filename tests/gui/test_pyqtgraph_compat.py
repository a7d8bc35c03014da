"""The pyqtgraph internals the live charts override still exist, as they were, on the installed
pyqtgraph; outside the checked versions the charts fall back to stock items (and still draw)."""

from __future__ import annotations

import importlib.metadata
import inspect
import subprocess
import sys
import textwrap

import pyqtgraph as pg
import pytest

from mltrain_desktop.gui.widgets import pyqtgraph_compat as compat

P = inspect.Parameter
OUR_CLASSES = (compat.OpaqueGridAxis, compat.LazyMenuViewBox, compat.FullXBounds)


def _call_problems(ours, base) -> list[str]:
    """The ways ``base`` can be called that ``ours`` cannot accept (empty: compatible)."""
    o = list(inspect.signature(ours).parameters.values())
    b = list(inspect.signature(base).parameters.values())
    kinds = {p.kind for p in o}
    problems, matched = [], set()
    for i, bp in enumerate(b):
        if bp.kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD):
            if bp.kind not in kinds:
                problems.append(f"base takes {bp}, ours does not")
            continue
        op = next((p for p in o if p.name == bp.name), None)
        if op is None:
            if not (bp.kind is P.KEYWORD_ONLY and P.VAR_KEYWORD in kinds):
                problems.append(f"ours has no parameter {bp.name!r}")
            continue
        matched.add(op.name)
        if bp.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD) and o.index(op) != i:
            problems.append(f"{bp.name!r} is at position {o.index(op)} in ours, {i} in the base")
        if bp.kind is P.POSITIONAL_OR_KEYWORD and op.kind is not P.POSITIONAL_OR_KEYWORD:
            problems.append(f"{bp.name!r} is {op.kind.description} in ours")
        if bp.default is not P.empty and op.default is P.empty:
            problems.append(f"{bp.name!r} is optional in the base, required in ours")
    for op in o:
        required = op.default is P.empty and op.kind not in (P.VAR_POSITIONAL, P.VAR_KEYWORD)
        if op.name not in matched and required:
            problems.append(f"ours requires {op.name!r}, which the base does not take")
    return problems


def test_call_problems_finds_incompatible_signatures():
    def base(self, ax, frac=1.0, orthoRange=None): ...  # noqa: N803
    def same(self, ax, frac=1.0, orthoRange=None): ...  # noqa: N803
    def renamed(self, axis, frac=1.0, orthoRange=None): ...  # noqa: N803
    def required(self, ax, frac, orthoRange=None): ...  # noqa: N803
    def extra(self, ax, frac=1.0, orthoRange=None, more=None, *, need): ...  # noqa: N803
    def swapped(self, frac, ax, orthoRange=None): ...  # noqa: N803
    assert _call_problems(same, base) == []
    assert _call_problems(renamed, base) == [
        "ours has no parameter 'ax'", "ours requires 'axis', which the base does not take"]
    assert _call_problems(required, base) == ["'frac' is optional in the base, required in ours"]
    assert _call_problems(extra, base) == ["ours requires 'need', which the base does not take"]
    assert len(_call_problems(swapped, base)) == 3


def test_installed_pyqtgraph_is_inside_the_bound():
    assert importlib.metadata.version("pyqtgraph") == pg.__version__
    assert compat.is_supported(pg.__version__), f"pyqtgraph {pg.__version__} not in {compat.REQUIREMENT}"
    assert compat.HOOKS_ACTIVE
    lo, hi = compat.REQUIREMENT.removeprefix("pyqtgraph>=").split(",<")
    assert compat.parse_version(lo) == compat.MIN_VERSION
    assert compat.parse_version(hi) == compat.BELOW_VERSION


@pytest.mark.parametrize(
    ("version", "supported"),
    [("0.13.6", False), ("0.13.7", True), ("0.14.0", True), ("0.14.3.dev0", True),
     ("0.15.0", False), ("0.15.0.dev0", False), ("1.0", False), ("0.12.4", False),
     ("", False), ("unknown", False)],
)  # fmt: skip
def test_version_bound(version, supported):
    assert compat.is_supported(version) is supported


@pytest.mark.parametrize("hook", compat.HOOKS, ids=lambda h: f"{h.reference.__name__}.{h.name}")
def test_each_overridden_hook_exists_with_a_compatible_signature(hook):
    base = inspect.getattr_static(hook.reference, hook.name, None)
    assert base is not None, f"pyqtgraph {pg.__version__}: {hook.reference.__name__}.{hook.name} is gone"
    assert inspect.isfunction(base), f"{hook.reference.__name__}.{hook.name} is no longer a plain method"
    ours = vars(hook.ours)[hook.name]
    assert _call_problems(ours, base) == []


@pytest.mark.parametrize("hook", compat.HOOKS, ids=lambda h: f"{h.reference.__name__}.{h.name}")
def test_pyqtgraph_still_calls_each_hook(hook):
    owner = hook.caller_class or hook.reference
    for caller in hook.callers:
        source = inspect.getsource(getattr(owner, caller))
        assert f"{hook.name}(" in source, f"{owner.__name__}.{caller} no longer calls {hook.name}"


def test_every_override_of_a_pyqtgraph_method_is_listed():
    listed = {(h.ours, h.name) for h in compat.HOOKS}
    for cls in OUR_CLASSES:
        bases = [k for k in cls.__mro__[1:] if k.__module__.startswith("pyqtgraph")]
        for name, value in vars(cls).items():
            if name.startswith("__") or not callable(value):
                continue
            if any(name in vars(k) for k in bases):
                assert (cls, name) in listed, f"{cls.__name__}.{name} overrides pyqtgraph but is not in HOOKS"


def test_internals_the_hooks_use_exist(qtbot):
    axis = pg.AxisItem("left")
    box = pg.ViewBox(enableMenu=False)
    instances = {pg.AxisItem: axis, pg.ViewBox: box}
    for cls, name, kind in compat.INTERNALS:
        if kind == "method":
            method = inspect.getattr_static(cls, name, None)
            assert inspect.isfunction(method), f"{cls.__name__}.{name} is gone"
            assert list(inspect.signature(method).parameters) == ["self"]
        else:
            assert hasattr(instances[cls], name), f"{cls.__name__}().{name} is gone"
    assert "enableMenu" in inspect.signature(pg.ViewBox.__init__).parameters
    assert box.menu is None and box.state["enableMenu"] is False
    assert axis.picture is None and hasattr(axis.label, "setHtml")
    assert "maxTickLevel" in axis.style
    from pyqtgraph.graphicsItems.ViewBox.ViewBoxMenu import ViewBoxMenu
    assert list(inspect.signature(ViewBoxMenu.__init__).parameters) == ["self", "view"]


def test_generate_draw_specs_still_returns_pens_per_tick(qtbot):
    from PySide6.QtGui import QImage, QPainter, QPen
    w = pg.PlotWidget()
    qtbot.addWidget(w)
    w.resize(400, 300)
    w.plot([0, 1, 2], [3, 1, 2])
    w.showGrid(x=True, y=True, alpha=0.2)
    w.show()
    qtbot.waitExposed(w)
    img = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(img)
    try:
        specs = w.getPlotItem().getAxis("left").generateDrawSpecs(painter)
    finally:
        painter.end()
    axis_spec, tick_specs, text_specs = specs
    assert tick_specs and all(isinstance(pen, QPen) for pen, _p1, _p2 in tick_specs)
    assert any(pen.color().alpha() < 255 for pen, _p1, _p2 in tick_specs)  # the grid: what ours fixes


def test_lazy_menu_view_box_builds_its_menu_only_when_asked(qtbot):
    box = compat.LazyMenuViewBox()
    assert box.menu is None and box.menuEnabled()
    box.setState(box.getState(copy=True))  # setState calls _applyMenuEnabled: still no menu
    assert box.menu is None
    actions = box.getContextMenus(None)
    assert box.menu is not None and actions == box.menu.actions()
    box.setMenuEnabled(False)
    assert box.menu is None and box.getContextMenus(None) == [] and box.getMenu() is None


def test_stock_items_outside_the_bound(qtbot):
    from PySide6.QtGui import QColor
    axes = compat.axis_items(QColor("white"), QColor("black"), active=False)
    assert {type(a) for a in axes.values()} == {pg.AxisItem}
    assert all(a.style["maxTickLevel"] == 1 for a in axes.values())
    box = compat.view_box(active=False)
    assert type(box) is pg.ViewBox and box.menu is not None
    assert {type(a) for a in compat.axis_items(QColor("white"), QColor("black")).values()} == {compat.OpaqueGridAxis}
    assert type(compat.view_box()) is compat.LazyMenuViewBox


FALLBACK_SCRIPT = textwrap.dedent(
    """
    import os, sys, warnings
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    import pyqtgraph as pg
    pg.__version__ = sys.argv[1]  # as if that version were installed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from mltrain_desktop.gui.widgets import pyqtgraph_compat as compat
        from mltrain_desktop.gui.widgets.metric_chart import MetricChart
    for w in caught:
        print(f"{w.category.__name__}: {w.message}")
    chart = MetricChart("loss")
    chart.resize(500, 300)
    chart.show()
    chart.append(list(range(50)), [1.0 / (i + 1) for i in range(50)])
    chart.redraw()
    img = chart.grab().toImage()
    blue = sum(img.pixelColor(x, y).name() == "#1f77b4" for x in range(0, img.width(), 2)
               for y in range(0, img.height(), 2))
    print(f"active={compat.HOOKS_ACTIVE} axis={type(chart._pi.getAxis('left')).__name__} "
          f"viewbox={type(chart._vb).__name__} drawn={chart.drawn_count()} blue={blue}")
    """
)


@pytest.mark.parametrize("version", ["0.15.0", "0.13.6"])
def test_a_version_outside_the_bound_warns_and_charts_still_draw(tmp_path, version):
    script = tmp_path / "fallback.py"
    script.write_text(FALLBACK_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), version], capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"PyqtgraphVersionWarning: pyqtgraph {version} is outside" in out
    assert f"pip install '{compat.REQUIREMENT}'" in out
    assert "active=False axis=AxisItem viewbox=ViewBox drawn=50" in out
    blue = int(out.rsplit("blue=", 1)[1].split()[0])
    assert blue > 20, out  # the series' line is on the image


def test_the_installed_version_does_not_warn(tmp_path):
    script = tmp_path / "fallback.py"
    script.write_text(FALLBACK_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), pg.__version__], capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "PyqtgraphVersionWarning" not in out
    assert "active=True axis=OpaqueGridAxis viewbox=LazyMenuViewBox drawn=50" in out
