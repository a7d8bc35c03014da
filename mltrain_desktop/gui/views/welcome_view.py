"""Shown when no workspace is open: create one (default location) or open one; recent list."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...core.workspace import default_workspace_dir
from ..resources import icon
from .base import error_label, heading, set_error


class WelcomeView(QWidget):
    createRequested = Signal(str)  # noqa: N815 - a folder
    openRequested = Signal(str)  # noqa: N815 - a folder ('' = ask)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.path_edit = QLineEdit(str(default_workspace_dir()))
        self.create_button = QPushButton(icon("new"), "Create workspace")
        self.create_button.clicked.connect(lambda: self.createRequested.emit(self.path_edit.text().strip()))
        self.open_button = QPushButton(icon("open"), "Open workspace…")
        self.open_button.clicked.connect(lambda: self.openRequested.emit(""))
        self.recent = QListWidget()
        self.recent.itemActivated.connect(lambda item: self.openRequested.emit(item.text()))
        self.error = error_label()
        intro = QLabel("MLTrain Desktop trains TensorFlow models on this machine the way Azure ML's "
                       "“train TensorFlow at scale” does in the cloud: workspace, datasets, compute targets, "
                       "runs with live loss curves, and a model registry. Start with a workspace.")
        intro.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.create_button)
        box = QVBoxLayout()
        box.addWidget(heading("Welcome to MLTrain Desktop"))
        box.addWidget(intro)
        box.addSpacing(12)
        box.addWidget(QLabel("<b>Create a workspace</b> in this folder:"))
        box.addLayout(row)
        box.addSpacing(8)
        box.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignLeft)
        box.addWidget(self.error)
        box.addSpacing(8)
        box.addWidget(QLabel("<b>Recent workspaces</b>"))
        box.addWidget(self.recent, 1)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(box, 4)
        outer.addStretch(1)

    def set_recent(self, paths: list[str]) -> None:
        self.recent.clear()
        self.recent.addItems(paths)

    def set_error(self, text: str | None) -> None:
        set_error(self.error, text)
