"""GUI tests run headless: pick Qt's offscreen platform before anything imports Qt."""

import gc
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _collect_earlier_widgets():
    """Collect the cyclic garbage (Python wrappers of pyqtgraph widgets) that earlier tests left,
    now rather than when the collector happens to run inside a later chart's paint: there it
    has crashed the process in QPainter::restore (PySide6 6.11.3, pyqtgraph 0.14.0)."""
    gc.collect()
