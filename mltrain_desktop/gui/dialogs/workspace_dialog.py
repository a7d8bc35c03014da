"""Creating and opening workspaces: the checks run on a worker, errors show in the dialog."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from ...core.workspace import default_workspace_dir
from ..views.base import error_label, set_error


def create_workspace(state, path: str, name: str | None) -> str:
    """Worker: Workspace.create (refuses an existing workspace or a folder it cannot write)."""
    from ...core.workspace import Workspace
    ws = Workspace.create(path, name=name or None)
    out = str(ws.path)
    ws.close()
    return out


def check_workspace(state, path: str) -> str:
    """Worker: opens the workspace once (migrations, orphaned-run recovery); returns its path."""
    from ...core.workspace import Workspace
    ws = Workspace(path)
    ws.recover()
    out = str(ws.path)
    ws.close()
    return out


class NewWorkspaceDialog(QDialog):
    """Folder (default: the per-user data folder) and an optional display name."""

    created = Signal(str)

    def __init__(self, ctx, parent=None, path: str | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self.task = None
        self.setWindowTitle("New workspace")
        self.setMinimumWidth(560)
        self.path_edit = QLineEdit(path or str(_suggest(default_workspace_dir())))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("optional display name (default: the folder's name)")
        hint = QLabel("A workspace is a folder holding workspace.db (SQLite) with your datasets, runs, "
                      "models and their files.")
        hint.setWordWrap(True)
        self.error = error_label()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.create_button = self.buttons.addButton("Create", QDialogButtonBox.ButtonRole.AcceptRole)
        self.create_button.setDefault(True)
        self.create_button.clicked.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Folder", row)
        form.addRow("Name", self.name_edit)
        lay = QVBoxLayout(self)
        lay.addWidget(hint)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Workspace folder", self.path_edit.text())
        if folder:
            self.path_edit.setText(folder)

    def submit(self) -> None:
        if self.task is not None:
            return
        path = self.path_edit.text().strip()
        if not path:
            set_error(self.error, "Choose a folder for the workspace.")
            return
        set_error(self.error, None)
        self.create_button.setEnabled(False)
        self.task = self.ctx.bridge.run(create_workspace, path, self.name_edit.text().strip(), with_workspace=False,
                                        on_done=self._done, on_error=self._failed)

    def _done(self, path: str) -> None:
        self.task = None
        self.create_button.setEnabled(True)
        self.created.emit(path)
        self.accept()

    def _failed(self, exc) -> None:
        self.task = None
        self.create_button.setEnabled(True)
        set_error(self.error, str(exc))


def _suggest(path: Path) -> Path:
    """The default folder, or default-2, -3... when a workspace is already there."""
    from ...core.workspace import is_workspace
    if not is_workspace(path):
        return path
    for i in range(2, 100):
        cand = path.with_name(f"{path.name}-{i}")
        if not is_workspace(cand):
            return cand
    return path
