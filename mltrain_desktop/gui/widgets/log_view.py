"""A read-only, tail-following log viewer with search.

The caller feeds text (from a :class:`~mltrain_desktop.gui.widgets.file_tail.FileTailer` run off
the GUI thread, or from a signal); the view never touches files.  Appends are batched on a
100 ms timer, never inserted per line; only the last ``max_lines`` lines are kept (the file
holds them all); very long lines are cut in the view; carriage-return progress bars (tqdm)
overwrite their line as in a terminal.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QFontDatabase,
    QKeySequence,
    QPalette,
    QShortcut,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

__all__ = ["LogView", "DEFAULT_MAX_LINES", "MAX_LINE_CHARS"]

DEFAULT_MAX_LINES = 200_000
MAX_LINE_CHARS = 10_000  # longer lines are cut in the view (they are whole in the file)
FLUSH_INTERVAL_MS = 100
TRUNCATION_MARK = " \u2026 [line cut here in this view; the whole line is in the log file]"
MAX_COUNTED_MATCHES = 10_000
MAX_HIGHLIGHTS = 2_000


def _resolve_cr(s: str) -> str:
    """What a terminal would show for a line holding carriage returns (progress bars): the last
    non-empty segment."""
    if "\r" not in s:
        return s
    for seg in reversed(s.split("\r")):
        if seg:
            return seg
    return ""


def _cut(line: str) -> str:
    if len(line) > MAX_LINE_CHARS:
        return line[:MAX_LINE_CHARS] + TRUNCATION_MARK
    return line


class _SearchEdit(QLineEdit):
    """Enter = next match, Shift+Enter = previous, Escape = close."""

    nextRequested = Signal()  # noqa: N815
    previousRequested = Signal()  # noqa: N815
    closeRequested = Signal()  # noqa: N815

    def keyPressEvent(self, event) -> None:  # noqa: N802
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self.previousRequested.emit()
            else:
                self.nextRequested.emit()
            event.accept()
            return
        if key == Qt.Key.Key_Escape:
            self.closeRequested.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class LogView(QWidget):
    """Read-only log text: ``append_text(str)`` from the GUI thread, batched every 100 ms.

    Follows the tail unless the user scrolled up (scrolling back to the bottom resumes it).
    Ctrl+F opens the search bar (Enter / Shift+Enter: next / previous, F3 / Shift+F3 too).
    """

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        max_lines: int = DEFAULT_MAX_LINES,
        show_toolbar: bool = True,
    ) -> None:
        super().__init__(parent)
        self._max_lines = max(1, int(max_lines))
        self._pending: list[str] = []
        self._cr_pending = False  # the last text ended with '\r': the next text overwrites
        self._lines_seen = 1  # lines received since clear (for the "earlier lines" note)
        self._source_path: str | None = None
        self._matches: list[QTextCursor] = []
        self._match_capped = False
        self._current = -1

        self.editor = QPlainTextEdit(self)
        self.editor.setReadOnly(True)
        self.editor.setUndoRedoEnabled(False)
        self.editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.editor.setMaximumBlockCount(self._max_lines)
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.editor.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.editor.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.editor.customContextMenuRequested.connect(self._context_menu)

        self._make_actions()

        # toolbar
        self.toolbar = QWidget(self)
        tb = QHBoxLayout(self.toolbar)
        tb.setContentsMargins(2, 2, 2, 2)
        for act in (self.find_action, self.copy_action, self.wrap_action):
            b = QToolButton()
            b.setDefaultAction(act)
            b.setAutoRaise(True)
            tb.addWidget(b)
        tb.addStretch(1)
        self.toolbar.setVisible(show_toolbar)

        # "earlier lines are in the file" note
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.note.setVisible(False)
        self.note.setContentsMargins(4, 2, 4, 2)

        self._make_search_bar()

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.toolbar)
        lay.addWidget(self.note)
        lay.addWidget(self.editor, 1)
        lay.addWidget(self.search_bar)

        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(FLUSH_INTERVAL_MS)
        self._flush_timer.timeout.connect(self.flush)
        self._search_timer = QTimer(self)  # debounce typing
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(150)
        self._search_timer.timeout.connect(lambda: self._refresh_matches(jump=True))
        self._research_timer = QTimer(self)  # matches went stale after appends
        self._research_timer.setSingleShot(True)
        self._research_timer.setInterval(500)
        self._research_timer.timeout.connect(lambda: self._refresh_matches(jump=False))

        self._match_format = QTextCharFormat()
        self._match_format.setBackground(QColor(255, 230, 0, 110))
        self._current_format = QTextCharFormat()
        self._current_format.setBackground(QColor(255, 150, 0, 200))

    def _make_actions(self) -> None:
        """Find, copy, copy all and wrap, and the find shortcuts."""
        self.find_action = QAction("Find\u2026", self)
        self.find_action.triggered.connect(self.show_search)
        self.copy_action = QAction("Copy", self)
        self.copy_action.setToolTip("Copy the selection (or everything shown, if nothing is selected)")
        self.copy_action.triggered.connect(self.copy)
        self.copy_all_action = QAction("Copy all", self)
        self.copy_all_action.triggered.connect(self.copy_all)
        self.wrap_action = QAction("Wrap lines", self)
        self.wrap_action.setCheckable(True)
        self.wrap_action.toggled.connect(self.set_wrap)
        for seq, slot in (
            (QKeySequence.StandardKey.Find, self.show_search),
            (QKeySequence.StandardKey.FindNext, self.find_next),
            (QKeySequence.StandardKey.FindPrevious, self.find_previous),
        ):
            sc = QShortcut(QKeySequence(seq), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)

    def _make_search_bar(self) -> None:
        """The search bar (hidden until Ctrl+F): pattern, match count, previous, next, close."""
        self.search_bar = QWidget(self)
        sb = QHBoxLayout(self.search_bar)
        sb.setContentsMargins(2, 2, 2, 2)
        self.search_edit = _SearchEdit()
        self.search_edit.setPlaceholderText("Find in log (Enter: next, Shift+Enter: previous)")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.textChanged.connect(lambda _t: self._search_timer.start())
        self.search_edit.nextRequested.connect(self.find_next)
        self.search_edit.previousRequested.connect(self.find_previous)
        self.search_edit.closeRequested.connect(self.hide_search)
        self.match_label = QLabel("")
        self.match_label.setMinimumWidth(90)
        prev_b = QToolButton()
        prev_b.setText("\u2191")
        prev_b.setToolTip("Previous match (Shift+Enter)")
        prev_b.clicked.connect(self.find_previous)
        next_b = QToolButton()
        next_b.setText("\u2193")
        next_b.setToolTip("Next match (Enter)")
        next_b.clicked.connect(self.find_next)
        close_b = QToolButton()
        close_b.setText("\u2715")
        close_b.setToolTip("Close (Escape)")
        close_b.clicked.connect(self.hide_search)
        for w in (self.search_edit, self.match_label, prev_b, next_b, close_b):
            sb.addWidget(w)
        self.search_bar.setVisible(False)

    # ------------------------------------------------------------------ text in

    def append_text(self, text: str) -> None:
        """Queue text (any chunking: partial lines are fine). Shown within ~100 ms."""
        if not text:
            return
        self._pending.append(text)
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def set_source_path(self, path: str | None) -> None:
        """The file the text comes from, named in the note once early lines are dropped."""
        self._source_path = str(path) if path else None
        self._update_note()

    def clear(self) -> None:
        """Empty the view (and anything queued)."""
        self._pending.clear()
        self._flush_timer.stop()
        self.editor.clear()
        self._cr_pending = False
        self._lines_seen = 1
        self._matches = []
        self._current = -1
        self.editor.setExtraSelections([])
        self._update_note()
        self._update_match_label()

    def flush(self) -> None:
        """Insert the queued text now (the timer calls this; tests may too)."""
        self._flush_timer.stop()
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        text = text.replace("\r\n", "\n")
        lines = text.split("\n")  # lines[0] continues the current last line
        self._lines_seen += len(lines) - 1
        ed = self.editor
        bar = ed.verticalScrollBar()
        follow = bar.value() >= bar.maximum() - 1
        replace_all = len(lines) - 1 >= self._max_lines
        if replace_all:
            # More new lines than the view keeps: everything shown now would be dropped anyway.
            ed.document().clear()
        cur = QTextCursor(ed.document())
        cur.beginEditBlock()
        if replace_all:
            lines = lines[-self._max_lines :]
            first, rest = lines[0], lines[1:]
            self._cr_pending = False
            cur.insertText(_cut(_resolve_cr(first)))
        else:
            first, rest = lines[0], lines[1:]
            cur.movePosition(QTextCursor.MoveOperation.End)
            last = ed.document().lastBlock()
            if "\r" in first or self._cr_pending:
                combined = last.text() + ("\r" if self._cr_pending else "") + first
                cur.movePosition(QTextCursor.MoveOperation.StartOfBlock, QTextCursor.MoveMode.KeepAnchor)
                cur.insertText(_cut(_resolve_cr(combined)))
            elif first:
                cur_text_len = last.length() - 1
                if cur_text_len < MAX_LINE_CHARS:
                    room = MAX_LINE_CHARS - cur_text_len
                    cur.insertText(first if len(first) <= room else first[:room] + TRUNCATION_MARK)
                # else: the line was already cut; drop the rest of it
        if rest:
            cur.movePosition(QTextCursor.MoveOperation.End)
            cur.insertText("\n" + "\n".join(_cut(_resolve_cr(s)) for s in rest))
        tail = rest[-1] if rest else first
        self._cr_pending = tail.endswith("\r")
        cur.endEditBlock()
        if follow:
            bar.setValue(bar.maximum())
        self._update_note()
        if self.search_bar.isVisible() and self.search_edit.text():
            if not self._research_timer.isActive():
                self._research_timer.start()

    # ------------------------------------------------------------------ state

    def text(self) -> str:
        """Everything shown (queued text not included; call flush() first)."""
        return self.editor.toPlainText()

    def line_count(self) -> int:
        """Lines shown (at most max_lines)."""
        return self.editor.document().blockCount()

    def max_lines(self) -> int:
        return self._max_lines

    def set_max_lines(self, n: int) -> None:
        self._max_lines = max(1, int(n))
        self.editor.setMaximumBlockCount(self._max_lines)
        self._update_note()

    def is_following(self) -> bool:
        """True when the view is at the bottom (new text scrolls it)."""
        bar = self.editor.verticalScrollBar()
        return bar.value() >= bar.maximum() - 1

    def scroll_to_end(self) -> None:
        bar = self.editor.verticalScrollBar()
        bar.setValue(bar.maximum())

    def set_wrap(self, on: bool) -> None:
        self.editor.setLineWrapMode(
            QPlainTextEdit.LineWrapMode.WidgetWidth if on else QPlainTextEdit.LineWrapMode.NoWrap
        )
        if self.wrap_action.isChecked() != bool(on):
            self.wrap_action.setChecked(bool(on))

    def _update_note(self) -> None:
        dropped = self._lines_seen > self._max_lines
        if dropped:
            where = f": {self._source_path}" if self._source_path else "."
            self.note.setText(
                f"Showing the last {self._max_lines:,} lines; earlier lines are in the log file{where}"
            )
        self.note.setVisible(dropped)

    # ------------------------------------------------------------------ copy

    def copy(self) -> None:
        """Copy the selection, or everything shown when nothing is selected."""
        cur = self.editor.textCursor()
        text = cur.selection().toPlainText() if cur.hasSelection() else self.text()
        QApplication.clipboard().setText(text)

    def copy_all(self) -> None:
        QApplication.clipboard().setText(self.text())

    def _context_menu(self, pos) -> None:
        menu = self.editor.createStandardContextMenu()
        menu.addSeparator()
        menu.addAction(self.find_action)
        menu.addAction(self.copy_all_action)
        menu.addAction(self.wrap_action)
        menu.exec(self.editor.viewport().mapToGlobal(pos))
        menu.deleteLater()

    # ------------------------------------------------------------------ search

    def show_search(self) -> None:
        self.search_bar.setVisible(True)
        sel = self.editor.textCursor().selectedText()
        if sel and "\u2029" not in sel and sel != self.search_edit.text():
            self.search_edit.setText(sel)
        self.search_edit.setFocus()
        self.search_edit.selectAll()

    def hide_search(self) -> None:
        self.search_bar.setVisible(False)
        self._matches = []
        self._current = -1
        self.editor.setExtraSelections([])
        self.editor.setFocus()

    def search(self, needle: str) -> int:
        """Open the search bar on ``needle``, select the first match; returns the match count."""
        self.search_bar.setVisible(True)
        self.search_edit.setText(needle)
        self._search_timer.stop()
        self._refresh_matches(jump=True)
        return len(self._matches)

    def match_count(self) -> int:
        return len(self._matches)

    def current_match(self) -> int:
        """Index of the selected match (0-based), -1 if none."""
        return self._current

    def find_next(self) -> None:
        self._step(+1)

    def find_previous(self) -> None:
        self._step(-1)

    def _refresh_matches(self, jump: bool) -> None:
        self._search_timer.stop()
        self._research_timer.stop()
        needle = self.search_edit.text()
        self._matches = []
        self._match_capped = False
        if needle:
            doc = self.editor.document()
            c = doc.find(needle, 0)
            while not c.isNull():
                self._matches.append(c)
                if len(self._matches) >= MAX_COUNTED_MATCHES:
                    self._match_capped = True
                    break
                c = doc.find(needle, c)
        if not self._matches:
            self._current = -1
        elif jump:
            # first match at or after the top of the view
            top = self.editor.cursorForPosition(self.editor.viewport().rect().topLeft()).position()
            self._current = next((i for i, m in enumerate(self._matches) if m.selectionStart() >= top), 0)
            self._select_current()
        else:
            sel = self.editor.textCursor()
            pos = sel.selectionStart() if sel.hasSelection() else -1
            self._current = next(
                (i for i, m in enumerate(self._matches) if m.selectionStart() == pos), -1
            )
        self._update_highlights()
        self._update_match_label()

    def _step(self, delta: int) -> None:
        if not self.search_bar.isVisible():
            self.show_search()
        if self._search_timer.isActive() or self._research_timer.isActive() or not self._matches:
            self._refresh_matches(jump=False)
        if not self._matches:
            return
        if self._current < 0:
            pos = self.editor.textCursor().position()
            starts = [m.selectionStart() for m in self._matches]
            if delta > 0:
                self._current = next((i for i, s in enumerate(starts) if s >= pos), 0)
            else:
                self._current = next((i for i in range(len(starts) - 1, -1, -1) if starts[i] < pos), len(starts) - 1)
        else:
            self._current = (self._current + delta) % len(self._matches)
        self._select_current()
        self._update_highlights()
        self._update_match_label()

    def _select_current(self) -> None:
        m = self._matches[self._current]
        self.editor.setTextCursor(QTextCursor(m))
        self.editor.ensureCursorVisible()

    def _update_highlights(self) -> None:
        sels = []
        if self._matches:
            i = max(self._current, 0)
            lo = max(0, i - MAX_HIGHLIGHTS // 2)
            for k in range(lo, min(len(self._matches), lo + MAX_HIGHLIGHTS)):
                s = QTextEdit.ExtraSelection()
                s.cursor = self._matches[k]
                s.format = self._current_format if k == self._current else self._match_format
                sels.append(s)
        self.editor.setExtraSelections(sels)

    def _update_match_label(self) -> None:
        n = len(self._matches)
        if not self.search_edit.text():
            self.match_label.setText("")
        elif n == 0:
            self.match_label.setText("No matches")
        else:
            total = f"{n:,}+" if self._match_capped else f"{n:,}"
            cur = f"{self._current + 1:,} of " if self._current >= 0 else ""
            self.match_label.setText(f"{cur}{total}")
        pal = self.match_label.palette()
        pal.setColor(
            QPalette.ColorRole.WindowText,
            QColor("#c0392b") if (n == 0 and self.search_edit.text()) else self.palette().color(QPalette.ColorRole.WindowText),
        )
        self.match_label.setPalette(pal)

