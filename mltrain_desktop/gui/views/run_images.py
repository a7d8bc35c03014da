"""The run detail's Images tab: what the job (or the notebook) stored with ``run.log_image``
(``outputs/images/``), as thumbnails with their names, newest last; a double click opens one."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

IMAGES_PREFIX = "outputs/images/"
SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".svg")
THUMB_W = 360
COLUMNS = 2


class _Thumb(QLabel):
    def __init__(self, path: Path, parent=None):
        super().__init__(parent)
        self.path = path
        pix = QPixmap(str(path))
        if pix.isNull():
            self.setText(f"{path.name} (not an image Qt can show)")
        else:
            self.setPixmap(pix.scaledToWidth(min(THUMB_W, pix.width()), Qt.TransformationMode.SmoothTransformation))
        self.setToolTip(str(path))

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 (Qt API)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.path)))


class ImagesPanel(QScrollArea):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.shown: list[str] = []
        self._empty = QLabel("No images yet: a script stores one with run.log_image('name', plot=plt) or "
                             "run.log_image('name', path='file.png').")
        self._empty.setWordWrap(True)
        self._set_body([])

    def set_files(self, run_dir: str | None, files: list[tuple[str, int]]) -> None:
        """Shows the run's image files (``files``: (path in the run folder, size) pairs)."""
        wanted = sorted(p for p, _size in files if p.startswith(IMAGES_PREFIX) and p.lower().endswith(SUFFIXES))
        if wanted == self.shown:
            return
        self.shown = wanted
        self._set_body([Path(run_dir) / p for p in wanted] if run_dir else [])

    def _set_body(self, paths: list[Path]) -> None:
        body = QWidget()
        lay = QVBoxLayout(body)
        if not paths:
            lay.addWidget(self._empty)
            self._empty.setParent(body)
        grid = QGridLayout()
        lay.addLayout(grid)
        for i, path in enumerate(paths):
            cell = QWidget(body)
            cl = QVBoxLayout(cell)
            cl.addWidget(_Thumb(path, cell))
            cl.addWidget(QLabel(path.name, cell))
            grid.addWidget(cell, i // COLUMNS, i % COLUMNS)
        lay.addStretch(1)
        old = self.takeWidget()
        self.setWidget(body)
        if old is not None:
            if self._empty.parent() is old:
                self._empty.setParent(None)
            old.deleteLater()

    def thumbnails(self) -> list[_Thumb]:
        return self.widget().findChildren(_Thumb)
