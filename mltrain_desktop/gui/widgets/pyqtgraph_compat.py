"""Every place the live charts reach into pyqtgraph beyond its documented API, in one module.

The charts subclass three pyqtgraph classes. What each subclass overrides or relies on, why,
and where pyqtgraph calls it (``HOOKS`` and ``INTERNALS`` below list the same for the tests):

``OpaqueGridAxis(pg.AxisItem)``
    * ``_updateLabel()`` (private) -- pyqtgraph re-sets the label's HTML on every pen, style and
      range change (a QTextDocument layout, ~0.4 ms each, ~40 times while a chart is built);
      ours sets it only when the HTML changed. Called from ``setLabel``, ``setPen``,
      ``setTextPen``, ``setTickPen``, ``setScale`` and ``updateAutoSIPrefix``. It relies on
      the private ``_adjustSize()`` and the undocumented attributes ``label`` (the
      QGraphicsTextItem) and ``picture`` (the cached drawing, ``None`` to redraw).
    * ``generateDrawSpecs(p)`` (public, undocumented tuple) -- grid lines are ticks drawn with
      a translucent pen, which Qt's raster engine blends about ten times slower than an opaque
      one (~8 ms per axis of a 1200 px chart on every repaint); ours mixes the colour into the
      background instead. Relies on the result being ``(axis_spec, [(pen, p1, p2)], texts)``.
      Called from ``AxisItem.paint``.
``LazyMenuViewBox(pg.ViewBox)``
    * ``_applyMenuEnabled()`` (private) -- pyqtgraph builds the ``ViewBoxMenu`` when the menu is
      enabled (a third of the cost of a new chart, ~7 ms); ours never builds it there, only
      drops it when disabled. Called from ``setMenuEnabled`` and ``setState``. Relies on the
      undocumented ``state["enableMenu"]`` and ``menu`` attributes.
    * ``getMenu(ev)`` and ``getContextMenus(event)`` -- build the menu on the first right click
      (``raiseContextMenu`` and the scene's ``addParentContextMenus`` call them), with the
      internal ``pyqtgraph.graphicsItems.ViewBox.ViewBoxMenu.ViewBoxMenu(view)`` and
      ``updateViewLists()``.
``FullXBounds(pg.GraphicsObject)``
    * ``dataBounds(ax, frac, orthoRange)`` -- the duck-typed protocol ``ViewBox.childrenBounds``
      calls on its items; reports the x extent of all the data (the curves hold only the
      visible part) so that "View all" fits everything. Documented API only, so always used.

Checked by reading the source of pyqtgraph 0.13.7 and 0.14.0 (identical for every hook above),
and by ``tests/gui/test_pyqtgraph_compat.py`` against the installed version. On a version
outside ``REQUIREMENT`` the private overrides are not used: :func:`axis_items` and
:func:`view_box` return stock pyqtgraph classes (same charts, slower to build and paint) and a
:class:`PyqtgraphVersionWarning` says which version was found and what to install.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPen

__all__ = [
    "FullXBounds", "HOOKS", "HOOKS_ACTIVE", "INTERNALS", "LazyMenuViewBox", "OpaqueGridAxis",
    "PyqtgraphVersionWarning", "REQUIREMENT", "axis_items", "is_supported", "parse_version",
    "view_box",
]  # fmt: skip

MIN_VERSION = (0, 13, 7)  # the oldest version whose source was checked
BELOW_VERSION = (0, 15, 0)  # the first version not checked
REQUIREMENT = "pyqtgraph>=0.13.7,<0.15"


class PyqtgraphVersionWarning(RuntimeWarning):
    """The installed pyqtgraph is outside the checked range: the chart speed-ups are off."""


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``"0.14.0"`` -> ``(0, 14, 0)``; a pre-release counts as its release; None if unreadable."""
    m = re.match(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?", str(text))
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def is_supported(version: str) -> bool:
    """Whether ``version`` lies in ``REQUIREMENT`` (the versions whose internals were checked)."""
    v = parse_version(version)
    return v is not None and MIN_VERSION <= v < BELOW_VERSION


HOOKS_ACTIVE = is_supported(pg.__version__)
if not HOOKS_ACTIVE:
    warnings.warn(
        PyqtgraphVersionWarning(
            f"pyqtgraph {pg.__version__} is outside the versions MLTrain Desktop was checked "
            f"against ({REQUIREMENT}); live charts use stock pyqtgraph items and are slower to "
            f"build and paint. Install a supported version: pip install '{REQUIREMENT}'"
        ),
        stacklevel=2,
    )


class FullXBounds(pg.GraphicsObject):
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


class OpaqueGridAxis(pg.AxisItem):
    """An axis whose ticks and grid lines are drawn with opaque pens, and whose label is laid
    out again only when its text changed. The look is the same: the colour is mixed into the
    background, since grid lines do not overlap one another."""

    def __init__(self, orientation: str, background: QColor, **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self._background = QColor(background)
        self._pens: dict[tuple, QPen] = {}

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
        html = self.labelString()
        # getattr: the base constructor calls this before ours has set anything
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


class LazyMenuViewBox(pg.ViewBox):
    """A ViewBox that builds its context menu on the first right click, not when created
    (most charts never show their menu)."""

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


def axis_items(background: QColor, foreground: QColor, *, active: bool | None = None) -> dict[str, pg.AxisItem]:
    """The four axes of a chart (``left``, ``bottom``, ``top``, ``right``), pens given to the
    constructor (each later pen change lays the label out again). ``OpaqueGridAxis`` while the
    hooks are active (``active`` defaults to :data:`HOOKS_ACTIVE`), else stock axes."""
    if HOOKS_ACTIVE if active is None else active:
        axes = {side: OpaqueGridAxis(side, background, pen=pg.mkPen(foreground), textPen=pg.mkPen(foreground))
                for side in ("left", "bottom", "top", "right")}
    else:
        axes = {side: pg.AxisItem(side, pen=pg.mkPen(foreground), textPen=pg.mkPen(foreground))
                for side in ("left", "bottom", "top", "right")}
    for ax in axes.values():
        # major and minor ticks (grid lines); not the third, faintest level: a quarter of the
        # axis' drawing work, every frame of a live chart
        ax.setStyle(maxTickLevel=1)
    return axes


def view_box(*, active: bool | None = None) -> pg.ViewBox:
    """A chart's ViewBox: ``LazyMenuViewBox`` while the hooks are active, else a stock one."""
    return LazyMenuViewBox() if (HOOKS_ACTIVE if active is None else active) else pg.ViewBox()


@dataclass(frozen=True)
class Hook:
    """A method ``ours`` overrides (or implements for) ``name`` of pyqtgraph's ``reference``,
    which pyqtgraph calls from ``callers`` (method names of ``reference`` or ``caller_class``)."""

    ours: type
    reference: type
    name: str
    callers: tuple[str, ...]
    caller_class: type | None = None


HOOKS: tuple[Hook, ...] = (
    Hook(OpaqueGridAxis, pg.AxisItem, "_updateLabel",
         ("setLabel", "setPen", "setTextPen", "setTickPen", "setScale", "updateAutoSIPrefix")),
    Hook(OpaqueGridAxis, pg.AxisItem, "generateDrawSpecs", ("paint",)),
    Hook(LazyMenuViewBox, pg.ViewBox, "_applyMenuEnabled", ("setMenuEnabled", "setState")),
    Hook(LazyMenuViewBox, pg.ViewBox, "getMenu", ("raiseContextMenu",)),
    Hook(LazyMenuViewBox, pg.ViewBox, "getContextMenus", ("addParentContextMenus",), pg.GraphicsScene),
    Hook(FullXBounds, pg.PlotDataItem, "dataBounds", ("childrenBounds",), pg.ViewBox),
)  # fmt: skip

# Internals the hooks use without overriding: (class, name, "method" | "attribute").
INTERNALS: tuple[tuple[type, str, str], ...] = (
    (pg.AxisItem, "_adjustSize", "method"),
    (pg.AxisItem, "labelString", "method"),
    (pg.AxisItem, "label", "attribute"),
    (pg.AxisItem, "picture", "attribute"),
    (pg.ViewBox, "updateViewLists", "method"),
    (pg.ViewBox, "menu", "attribute"),
    (pg.ViewBox, "state", "attribute"),
)
