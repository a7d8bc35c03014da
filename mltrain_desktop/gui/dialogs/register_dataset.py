"""Register a file dataset (a new dataset or a new version) from files, folders or URLs."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from ..resources import icon
from ..views.base import error_label, fmt_bytes, set_error


def register_dataset(ws, state, sources: list[str], name: str, description: str) -> dict:
    """Worker: the SDK's Dataset.File.from_files(...).register(...), with progress and cancel."""
    from ...core.dataset import Dataset
    ds = Dataset.File.from_files(path=sources).register(
        ws, name, description=description, create_new_version=True,
        progress=lambda done, total, msg: state.progress(done, total, msg), cancel=state.cancelled)
    return {"name": ds.name, "version": ds.version, "files": len(ds.files), "bytes": ds.total_bytes}


class RegisterDatasetDialog(QDialog):
    """Name, description and sources; Register runs off the GUI thread with a progress bar.

    Errors (an empty selection, a URL that fails) are shown in the dialog, which keeps what the
    user typed. Cancel during registration stops it (nothing is registered).
    """

    registered = Signal(str, int)

    def __init__(self, ctx, existing_names: list[str] | None = None, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.task = None
        self.setWindowTitle("Register dataset")
        self.setMinimumWidth(560)
        self.name_edit = QComboBox()
        self.name_edit.setEditable(True)
        self.name_edit.addItems(existing_names or [])
        self.name_edit.setCurrentText("")
        self.name_edit.lineEdit().setPlaceholderText("dataset name (an existing name adds a version)")
        self.description_edit = QLineEdit()
        self.sources = QListWidget()
        self.sources.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("https://example.com/train-images-idx3-ubyte.gz")
        self.url_edit.returnPressed.connect(self.add_url)
        add_files = QPushButton(icon("file"), "Add files…")
        add_files.clicked.connect(self._browse_files)
        add_folder = QPushButton(icon("folder"), "Add folder…")
        add_folder.clicked.connect(self._browse_folder)
        add_url = QPushButton("Add URL")
        add_url.clicked.connect(self.add_url)
        remove = QPushButton(icon("delete"), "Remove")
        remove.clicked.connect(self._remove_selected)
        src_buttons = QHBoxLayout()
        for b in (add_files, add_folder, remove):
            src_buttons.addWidget(b)
        src_buttons.addStretch(1)
        url_row = QHBoxLayout()
        url_row.addWidget(self.url_edit, 1)
        url_row.addWidget(add_url)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.error = error_label()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.register_button = self.buttons.addButton("Register", QDialogButtonBox.ButtonRole.AcceptRole)
        self.register_button.setDefault(True)
        self.register_button.clicked.connect(self.submit)
        self.buttons.rejected.connect(self._cancel)

        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("Description", self.description_edit)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.sources, 1)
        lay.addLayout(src_buttons)
        lay.addLayout(url_row)
        lay.addWidget(self.progress)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)

    # -- sources ------------------------------------------------------------------------
    def add_sources(self, paths) -> None:
        present = set(self.source_list())
        for p in paths:
            if p and p not in present:
                self.sources.addItem(str(p))
                present.add(p)

    def source_list(self) -> list[str]:
        return [self.sources.item(i).text() for i in range(self.sources.count())]

    def add_url(self) -> None:
        url = self.url_edit.text().strip()
        if not url:
            return
        if not url.startswith(("http://", "https://")):
            set_error(self.error, f"{url!r} is not an http(s) URL")
            return
        self.add_sources([url])
        self.url_edit.clear()
        set_error(self.error, None)

    def _browse_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add files to the dataset")
        self.add_sources(files)

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder (all its files)")
        if folder:
            self.add_sources([folder])

    def _remove_selected(self) -> None:
        for item in self.sources.selectedItems():
            self.sources.takeItem(self.sources.row(item))

    # -- register -----------------------------------------------------------------------
    def submit(self) -> None:
        if self.task is not None:
            return
        name = self.name_edit.currentText().strip()
        sources = self.source_list()
        pending_url = self.url_edit.text().strip()
        if pending_url and pending_url not in sources:
            self.add_url()
            sources = self.source_list()
        if not name:
            set_error(self.error, "Give the dataset a name.")
            return
        if not sources:
            set_error(self.error, "Nothing to register: add at least one file, folder or URL.")
            return
        set_error(self.error, None)
        self._busy(True)
        self.task = self.ctx.bridge.run(register_dataset, sources, name, self.description_edit.text(),
                                        on_done=self._done, on_error=self._failed, on_progress=self._progress)

    def _progress(self, done, total, message) -> None:
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * min(done, total) / total))
            self.progress.setFormat(f"{fmt_bytes(done)} of {fmt_bytes(total)}")
        else:
            self.progress.setRange(0, 0)
        self.progress.setToolTip(message)

    def _done(self, result: dict) -> None:
        self.task = None
        self._busy(False)
        self.ctx.message.emit(f"Registered dataset {result['name']} version {result['version']}: "
                              f"{result['files']} file(s), {fmt_bytes(result['bytes'])}")
        self.registered.emit(result["name"], result["version"])
        self.accept()

    def _failed(self, exc) -> None:
        self.task = None
        self._busy(False)
        set_error(self.error, str(exc))

    def _busy(self, on: bool) -> None:
        self.progress.setVisible(on)
        self.progress.setRange(0, 0)
        self.register_button.setEnabled(not on)
        for w in (self.name_edit, self.description_edit, self.sources, self.url_edit):
            w.setEnabled(not on)

    def _cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()  # the worker stops between files; _failed reports it
            set_error(self.error, "Cancelling…")
            return
        self.reject()
