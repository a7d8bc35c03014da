"""The selected endpoint's panels in the Endpoints view: its overview (state, scoring URI, key,
live figures) and its test console (request, Send, answer).

:class:`EndpointPanels` is mixed into :class:`~.endpoints_view.EndpointsView`: it builds the
widgets as the view's attributes; the view's slots (copy, reveal, rotate, send, example) act on them.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ...domain.endpoint_state import EndpointState
from ...domain.run_state import RunStatus
from ..resources import icon, state_icon
from .base import heading

# endpoint state -> the run state whose icon reads the same
STATE_ICONS = {EndpointState.HEALTHY: RunStatus.COMPLETED, EndpointState.TRANSITIONING: RunStatus.PREPARING,
               EndpointState.FAILED: RunStatus.FAILED, EndpointState.UNHEALTHY: RunStatus.FAILED,
               EndpointState.STOPPED: RunStatus.CANCELED, EndpointState.DELETED: RunStatus.CANCELED}


def endpoint_icon(state: str):
    try:
        run_state = STATE_ICONS[EndpointState(state)]
    except ValueError:
        run_state = RunStatus.QUEUED
    return state_icon(str(run_state.value))


def kind_text(r: dict) -> str:
    """The endpoint's kind as shown: local, or docker (<target>)."""
    return f"docker ({r['compute_target']})" if r["kind"] == "docker" and r.get("compute_target") else r["kind"]


class Stat(QFrame):
    """A figure with its caption (requests/s, p50, p99...)."""

    def __init__(self, caption: str, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 4, 10, 4)
        self.value = QLabel("–")
        f = self.value.font()
        f.setPointSizeF(f.pointSizeF() * 1.5)
        f.setBold(True)
        self.value.setFont(f)
        self.caption = QLabel(caption)
        lay.addWidget(self.value)
        lay.addWidget(self.caption)

    def set(self, text: str) -> None:
        if self.value.text() != text:
            self.value.setText(text)


class EndpointPanels:
    """Builds the selected endpoint's overview and test console (see the module's docstring)."""

    def _overview_panel(self) -> QWidget:
        """State and name, scoring URI and key (copy, show, rotate), notes, live figures."""
        self.name_label = heading("")
        self.state_icon = QLabel()
        self.state_label = QLabel("")
        self.state_label.setWordWrap(True)
        self.state_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.url_edit = QLineEdit()
        self.url_edit.setReadOnly(True)
        self.copy_url_button = QPushButton(icon("link"), "Copy")
        self.copy_url_button.clicked.connect(lambda: self._copy(self.url_edit.text(), "scoring URI"))
        self.key_edit = QLineEdit()
        self.key_edit.setReadOnly(True)
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.show_key_button = QPushButton("Show")
        self.show_key_button.setCheckable(True)
        self.show_key_button.toggled.connect(self._reveal_key)
        self.copy_key_button = QPushButton("Copy")
        self.copy_key_button.clicked.connect(lambda: self._copy(self.key_edit.text(), "key"))
        self.rotate_button = QPushButton(icon("refresh"), "Rotate key")
        self.rotate_button.setToolTip("Replace the key; the service keeps running and refuses the old key")
        self.rotate_button.clicked.connect(lambda: self.rotate_key(confirm=True))
        self.info_label = QLabel("")
        self.info_label.setWordWrap(True)
        self.info_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.info_label.linkActivated.connect(self._link)

        self.rate_stat = Stat("requests/s (last 10 s)")
        self.p50_stat = Stat("latency p50")
        self.p99_stat = Stat("latency p99")
        self.total_stat = Stat("requests")
        self.errors_stat = Stat("errors")
        self.stats_note = QLabel("")
        self.stats_note.setWordWrap(True)
        stats_row = QHBoxLayout()
        for w in (self.rate_stat, self.p50_stat, self.p99_stat, self.total_stat, self.errors_stat):
            stats_row.addWidget(w)
        stats_row.addStretch(1)

        grid = QGridLayout()
        grid.addWidget(QLabel("Scoring URI"), 0, 0)
        url_row = QHBoxLayout()
        url_row.addWidget(self.url_edit, 1)
        url_row.addWidget(self.copy_url_button)
        grid.addLayout(url_row, 0, 1)
        grid.addWidget(QLabel("Key"), 1, 0)
        key_row = QHBoxLayout()
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(self.show_key_button)
        key_row.addWidget(self.copy_key_button)
        key_row.addWidget(self.rotate_button)
        grid.addLayout(key_row, 1, 1)
        grid.setColumnStretch(1, 1)
        head = QHBoxLayout()
        head.addWidget(self.state_icon)
        head.addWidget(self.name_label)
        head.addWidget(self.state_label, 1)
        overview = QWidget()
        ol = QVBoxLayout(overview)
        ol.setContentsMargins(0, 0, 0, 0)
        ol.addLayout(head)
        ol.addLayout(grid)
        ol.addWidget(self.info_label)
        ol.addLayout(stats_row)
        ol.addWidget(self.stats_note)
        return overview

    def _console_panel(self) -> QSplitter:
        """A JSON request (Example fills it from the model's signature), Send, the answer."""
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.request_edit = QPlainTextEdit()
        self.request_edit.setFont(mono)
        self.request_edit.setPlaceholderText('{"instances": [[...]]}')
        self.request_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)  # a row of an input stays a row
        self.send_button = QPushButton(icon("submit"), "Send")
        self.send_button.setToolTip("POST the request to the endpoint's :predict (Ctrl+Return)")
        self.send_button.clicked.connect(self.send)
        self.example_button = QPushButton("Example")
        self.example_button.setToolTip("An example request built from the model's input signature")
        self.example_button.clicked.connect(self._fill_example)
        self.answer_status = QLabel("")
        self.answer_status.setWordWrap(True)
        self.answer_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.answer_edit = QPlainTextEdit()
        self.answer_edit.setReadOnly(True)
        self.answer_edit.setFont(mono)
        self.answer_edit.setPlaceholderText("The answer appears here.")
        self.answer_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        QShortcut(QKeySequence("Ctrl+Return"), self.request_edit, activated=self.send)
        req_box = QWidget()
        rl = QVBoxLayout(req_box)
        rl.setContentsMargins(0, 0, 0, 0)
        rb = QHBoxLayout()
        rb.addWidget(QLabel("Request (JSON)"))
        rb.addStretch(1)
        rb.addWidget(self.example_button)
        rb.addWidget(self.send_button)
        rl.addLayout(rb)
        rl.addWidget(self.request_edit, 1)
        ans_box = QWidget()
        al = QVBoxLayout(ans_box)
        al.setContentsMargins(0, 0, 0, 0)
        al.addWidget(self.answer_status)
        al.addWidget(self.answer_edit, 1)
        console = QSplitter(Qt.Orientation.Horizontal)
        console.addWidget(req_box)
        console.addWidget(ans_box)
        console.setStretchFactor(0, 3)
        console.setStretchFactor(1, 2)
        return console
