"""What every view shares: the app context (bridge, navigation, messages) and formatting.

A view loads its data with ``self.load(fn, on_done)`` (off the GUI thread) and reloads when the
database watcher reports one of its ``topics``; reloads are coalesced (at most one in flight,
at most one every ``min_interval_ms``) and deferred while the view is hidden.
"""
from __future__ import annotations

import datetime as _dt
import time

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QMessageBox, QWidget

from ..bridge import Bridge


class Context(QObject):
    """Shared by the views of one window: the workspace, the bridge and navigation signals."""

    openRun = Signal(str)  # noqa: N815
    openSweep = Signal(str)  # noqa: N815 - a sweep's (HyperDriveRun's) run id
    openRuns = Signal(str)  # noqa: N815 - experiment name ('' = all)
    openDataset = Signal(str, int)  # noqa: N815
    openModel = Signal(str, int)  # noqa: N815
    openCompute = Signal(str)  # noqa: N815
    openEndpoint = Signal(str)  # noqa: N815
    deployRequested = Signal(str, int)  # noqa: N815 - model name ('' = choose), version (0 = latest)
    compareRuns = Signal(object)  # noqa: N815 - list of run ids
    submitRequested = Signal(object)  # noqa: N815 - a spec to prefill (or None)
    sampleRequested = Signal()  # noqa: N815
    message = Signal(str)  # status-bar text
    dbChanged = Signal(object)  # noqa: N815 - topics

    def __init__(self, bridge: Bridge, parent: QObject | None = None):
        super().__init__(parent)
        self.bridge = bridge
        self.window: QWidget | None = None
        self.last_error: str | None = None

    @property
    def workspace_path(self) -> str | None:
        return self.bridge.workspace_path

    def show_error(self, title: str, text: str, parent: QWidget | None = None) -> QMessageBox:
        """A window-modal message box that does not block (``open()``, not ``exec()``)."""
        self.last_error = text
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok,
                          parent or self.window)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.message.emit(f"{title}: {text.splitlines()[0] if text else ''}")
        return box

    def error_text(self, exc: BaseException) -> str:
        return str(exc) or type(exc).__name__


class BaseView(QWidget):
    """A page of the main window. Subclasses set ``topics`` and implement ``reload()``."""

    title = ""
    icon_name = ""
    topics: frozenset[str] = frozenset()
    min_interval_ms = 500

    loaded = Signal()

    def __init__(self, ctx: Context, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self._stale = True
        self._inflight = 0
        self._pending = False
        self._last_load = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.refresh)
        ctx.dbChanged.connect(self._on_db_changed)

    # -- loading ------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload now if visible (else when next shown)."""
        if not self.ctx.workspace_path:
            return
        if not self.isVisible():
            self._stale = True
            return
        if self._inflight:
            self._pending = True
            return
        self._stale = False
        self._last_load = time.monotonic()
        self.reload()

    def reload(self) -> None:  # pragma: no cover - overridden
        pass

    def load(self, fn, *args, on_done, on_error=None, quiet: bool = False):
        """Runs a query on the pool; ``on_done(result)`` on the GUI thread (``quiet``: a periodic
        poll, not shown by the busy indicator)."""
        self._inflight += 1

        def done(result):
            self._inflight -= 1
            on_done(result)
            self._after_load()

        def failed(exc):
            self._inflight -= 1
            if on_error:
                on_error(exc)
            else:
                self.ctx.message.emit(f"{self.title}: could not load: {exc}")
            self._after_load()
        return self.ctx.bridge.run(fn, *args, on_done=done, on_error=failed, quiet=quiet)

    def _after_load(self) -> None:
        if self._inflight == 0:
            self.loaded.emit()
            if self._pending:
                self._pending = False
                self._schedule()

    def is_loading(self) -> bool:
        return self._inflight > 0 or self._pending or self._timer.isActive()

    def _schedule(self) -> None:
        if self._timer.isActive():
            return
        wait = max(0, int(self.min_interval_ms - (time.monotonic() - self._last_load) * 1000))
        self._timer.start(wait)

    def _on_db_changed(self, topics) -> None:
        if not (self.topics & set(topics)):
            return
        if self.isVisible():
            self._schedule()
        else:
            self._stale = True

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self._stale:
            QTimer.singleShot(0, self.refresh)

    def workspace_changed(self) -> None:
        """A new workspace was opened: forget what was shown."""
        self._stale = True
        if self.isVisible():
            QTimer.singleShot(0, self.refresh)


# ------------------------------------------------------------------------------ formatting

def fmt_bytes(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def fmt_time(t: float | None) -> str:
    if not t:
        return ""
    return _dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = max(0.0, float(seconds))
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(s), 60)
    if m < 60:
        return f"{m}m {s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m"


def run_duration(row: dict, now: float | None = None) -> float | None:
    start = row.get("started")
    if not start:
        return None
    end = row.get("ended") or (now or time.time())
    return end - start


def fmt_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def confirm_box(parent: QWidget, title: str, text: str, on_yes) -> QMessageBox:
    """A non-blocking Yes/Cancel question; ``on_yes()`` runs when Yes is clicked."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, parent)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def clicked(button):
        if box.standardButton(button) == QMessageBox.StandardButton.Yes:
            on_yes()
    box.buttonClicked.connect(clicked)
    box.open()
    return box


def heading(text: str) -> QLabel:
    lab = QLabel(text)
    f = lab.font()
    f.setPointSizeF(f.pointSizeF() * 1.35)
    f.setBold(True)
    lab.setFont(f)
    return lab


def error_label() -> QLabel:
    """A red, word-wrapped label for inline validation errors (hidden while empty)."""
    lab = QLabel()
    lab.setWordWrap(True)
    lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    lab.setStyleSheet("color: #d33a2c;")
    lab.setObjectName("inlineError")
    lab.hide()
    return lab


def set_error(label: QLabel, text: str | None) -> None:
    label.setText(text or "")
    label.setVisible(bool(text))
