"""Reusable widgets of the window: the live metric plot and the log view.

``series_buffer`` and ``file_tail`` are pure Python (no Qt) and can be imported anywhere;
``live_plot`` and ``log_view`` need PySide6 and pyqtgraph and are imported lazily here, so
``import mltrain_desktop.gui.widgets`` stays cheap.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "SeriesBuffer": "series_buffer",
    "FileTailer": "file_tail",
    "LivePlot": "live_plot",
    "LivePlotPanel": "live_plot",
    "MetricChart": "live_plot",
    "LogView": "log_view",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value
