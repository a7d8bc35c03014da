"""Icons from ``resources/icons`` (SVG), tinted to the palette's text colour.

Works from a source checkout and from a PyInstaller bundle (``sys._MEIPASS/resources``).
Line icons draw with ``currentColor``, which is replaced by the window text colour so they read
on light and dark palettes; state icons (``state-*.svg``) keep their own colours.
"""
from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

ICON_SIZES = (16, 24, 32, 48)


def resources_dir() -> Path:
    """The ``resources`` folder: inside the bundle when frozen, else at the repository root."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle and (Path(bundle) / "resources").is_dir():
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def icons_dir() -> Path:
    return resources_dir() / "icons"


def _text_color() -> str:
    app = QGuiApplication.instance()
    if app is None:
        return "#444444"
    return app.palette().color(QPalette.ColorRole.WindowText).name()


@lru_cache(maxsize=256)
def _icon(name: str, color: str) -> QIcon:
    path = icons_dir() / f"{name}.svg"
    try:
        data = path.read_text(encoding="utf-8").replace("currentColor", color)
    except OSError:
        return QIcon()
    renderer = QSvgRenderer(QByteArray(data.encode("utf-8")))
    if not renderer.isValid():
        return QIcon()
    icon = QIcon()
    for size in ICON_SIZES:
        pm = QPixmap(size, size)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(p, QRectF(0, 0, size, size))
        p.end()
        icon.addPixmap(pm)
    return icon


def icon(name: str) -> QIcon:
    """``icon("runs")`` -> QIcon of resources/icons/runs.svg (empty icon if it is missing)."""
    return _icon(name, _text_color())


def state_icon(status: str) -> QIcon:
    """The run-state icon (Queued, Preparing, Running, Finalizing, Completed, Failed, Canceled)."""
    return _icon(f"state-{(status or 'queued').lower()}", "#808080")


def clear_cache() -> None:
    """Forget rendered icons (after a palette change)."""
    _icon.cache_clear()
