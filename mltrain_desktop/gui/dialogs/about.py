"""About: the app and the versions of what it runs on."""
from __future__ import annotations

import platform
import sqlite3
import sys

from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout

from ..resources import icon


def versions() -> dict[str, str]:
    import numpy
    import PySide6
    import pyqtgraph

    from ...adapters import interpreters
    from ...version_info import build_info
    info = build_info()
    if interpreters.is_frozen():
        jobs_python = interpreters.configured_python() or "found automatically (an interpreter with TensorFlow)"
    else:
        jobs_python = sys.executable
    return {"MLTrain Desktop": info.version, "Commit": info.commit, "Built": info.build_date,
            "Kind": "packaged app" if info.frozen else "running from source",
            "Python": platform.python_version(), "Qt": qVersion(),
            "PySide6": PySide6.__version__, "pyqtgraph": pyqtgraph.__version__, "NumPy": numpy.__version__,
            "SQLite": sqlite3.sqlite_version, "Platform": platform.platform(), "Interpreter for jobs": jobs_python}


class AboutDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("About MLTrain Desktop")
        logo = QLabel()
        logo.setPixmap(icon("app").pixmap(64, 64))
        rows = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in versions().items())
        text = QLabel("<h3>MLTrain Desktop</h3><p>Azure ML's “train TensorFlow at scale” workflow on your own "
                      "machine: no cloud account, the same SDK names.</p>"
                      f"<table cellspacing='4'>{rows}</table>"
                      "<p>TensorFlow runs in each job's environment, not in this window.</p>")
        text.setWordWrap(True)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(logo)
        lay.addWidget(text)
        lay.addWidget(buttons)
