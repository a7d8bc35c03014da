"""Datasets: every version (files, size, hash, created, description), its files, an image preview."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...app import previews, queries
from ..resources import icon
from .base import BaseView, fmt_bytes, fmt_time
from .table_model import Column, RecordTableModel, fit_columns, make_table, select_key, selected_records

FASHION_LABELS = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                  "Ankle boot")


class ImageGrid(QWidget):
    """A grid of small grayscale images (MNIST-format previews), drawn at 2x."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setSpacing(4)
        self.count = 0
        self.note = QLabel("Select a dataset version holding MNIST-format images (*-images-idx3-ubyte.gz).")
        self.grid.addWidget(self.note, 0, 0)

    def clear(self, note: str = "") -> None:
        while self.grid.count():
            w = self.grid.takeAt(0).widget()
            if w is not None and w is not self.note:
                w.deleteLater()
        self.count = 0
        self.note.setText(note)
        self.note.setVisible(bool(note))
        self.grid.addWidget(self.note, 0, 0, 1, 8)

    def set_images(self, images: np.ndarray, labels: list[int] | None, title: str, columns: int = 8) -> None:
        self.clear(title)
        for i, img in enumerate(images):
            a = np.ascontiguousarray(img, dtype=np.uint8)
            h, w = a.shape
            qimg = QImage(a.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
            lab = QLabel()
            lab.setPixmap(QPixmap.fromImage(qimg).scaled(w * 2, h * 2, Qt.AspectRatioMode.KeepAspectRatio))
            if labels and i < len(labels):
                n = labels[i]
                lab.setToolTip(f"label {n}" + (f" ({FASHION_LABELS[n]})" if 0 <= n < 10 else ""))
            self.grid.addWidget(lab, 1 + i // columns, i % columns)
        self.count = len(images)


class DatasetsView(BaseView):
    title = "Datasets"
    icon_name = "dataset"
    topics = frozenset({"datasets"})

    def __init__(self, ctx, parent=None):
        super().__init__(ctx, parent)
        self.model = RecordTableModel([
            Column("Name", lambda r: r["name"]),
            Column("Version", lambda r: str(r["version"]), sort=lambda r: r["version"], align_right=True),
            Column("Files", lambda r: str(r["files"]), sort=lambda r: r["files"], align_right=True),
            Column("Size", lambda r: fmt_bytes(r["bytes"]), sort=lambda r: r["bytes"], align_right=True),
            Column("Hash (sha256)", lambda r: r["sha256"][:12], tooltip=lambda r: r["sha256"]),
            Column("Created", lambda r: fmt_time(r["created"]), sort=lambda r: r["created"]),
            Column("Description", lambda r: r["description"]),
        ], key="version_id")
        self.table, self.proxy = make_table(self.model)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter datasets…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)
        self.register_button = QPushButton(icon("add"), "Register dataset…")
        self.register_button.clicked.connect(self.open_register_dialog)
        self.refresh_button = QPushButton(icon("refresh"), "Refresh")
        self.refresh_button.clicked.connect(self.refresh)

        self.files_model = RecordTableModel([
            Column("Path", lambda r: r["path"]),
            Column("Size", lambda r: fmt_bytes(r["size"]), sort=lambda r: r["size"], align_right=True),
            Column("sha256", lambda r: r["sha256"]),
        ], key="path")
        self.files_table, _ = make_table(self.files_model)
        self.preview = ImageGrid()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.preview)
        self.details = QTabWidget()
        self.details.addTab(self.files_table, icon("file"), "Files")
        self.details.addTab(scroll, "Preview")
        self.selected_label = QLabel("")

        bar = QHBoxLayout()
        bar.addWidget(self.filter_edit, 1)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.register_button)
        lower = QWidget()
        ll = QVBoxLayout(lower)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.selected_label)
        ll.addWidget(self.details)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(lower)
        split.setSizes([300, 300])
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(split, 1)
        self._want: tuple[str, int] | None = None
        self._shown_version: int | None = None
        self.dialog = None

    def reload(self) -> None:
        self.load(queries.list_datasets, on_done=self._show)

    def _show(self, rows: list[dict]) -> None:
        keep = [r["version_id"] for r in selected_records(self.table)]
        self.model.set_records(rows)
        fit_columns(self.table, self.model)
        if self._want:
            name, version = self._want
            self._want = None
            for r in rows:
                if r["name"] == name and (version <= 0 or r["version"] == version):
                    keep = [r["version_id"]]
        for k in keep:
            select_key(self.table, self.model, k)
        if not selected_records(self.table) and rows:
            self.table.selectRow(0)

    def select_dataset(self, name: str, version: int = 0) -> None:
        """Select ``name`` (version 0: its latest) once the table has loaded."""
        self._want = (name, version)
        matches = [r for r in self.model.records if r["name"] == name and (version <= 0 or r["version"] == version)]
        if matches:
            select_key(self.table, self.model, matches[-1]["version_id"])
            self._want = None
        self.refresh()

    def _selection_changed(self, *_a) -> None:
        recs = selected_records(self.table)
        if not recs:
            return
        r = recs[0]
        if r["version_id"] == self._shown_version:
            return
        self._shown_version = r["version_id"]
        self.selected_label.setText(f"<b>{r['name']}</b> version {r['version']}: {r['files']} file(s), "
                                    f"{fmt_bytes(r['bytes'])}. {r['description']}")
        self.load(queries.dataset_files, r["version_id"], on_done=self._show_files)
        self.preview.clear("Loading preview…")
        self.load(previews.mnist_preview, r["version_id"], 32, on_done=self._show_preview)

    def _show_files(self, files: list[dict]) -> None:
        self.files_model.set_records(files)
        fit_columns(self.files_table, self.files_model)

    def _show_preview(self, data) -> None:
        if not data:
            self.preview.clear("No MNIST-format image file (*-images-idx3-ubyte[.gz]) in this version.")
            return
        self.preview.set_images(data["images"], data["labels"], f"First {len(data['images'])} images of {data['file']}")

    def open_register_dialog(self):
        from ..dialogs.register_dataset import RegisterDatasetDialog
        names = sorted({r["name"] for r in self.model.records})
        self.dialog = RegisterDatasetDialog(self.ctx, names, self)
        self.dialog.registered.connect(lambda name, version: self.select_dataset(name, version))
        self.dialog.open()
        return self.dialog

    def workspace_changed(self) -> None:
        self._shown_version = None
        self.model.set_records([])
        self.files_model.set_records([])
        self.preview.clear("")
        super().workspace_changed()
