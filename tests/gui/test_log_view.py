"""LogView with pytest-qt (offscreen)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from mltrain_desktop.gui.widgets.file_tail import FileTailer
from mltrain_desktop.gui.widgets.log_view import MAX_LINE_CHARS, TRUNCATION_MARK, LogView


@pytest.fixture
def view(qtbot):
    v = LogView()
    qtbot.addWidget(v)
    v.resize(700, 300)
    v.show()
    qtbot.waitExposed(v)
    return v


def test_appends_are_batched(view, qtbot):
    for i in range(1000):
        view.append_text(f"line {i}\n")
    assert view.text() == ""  # nothing inserted per line
    qtbot.waitUntil(lambda: view.text().startswith("line 0\n"), timeout=1000)
    assert view.text().count("\n") == 1000 and view.line_count() == 1001


def test_partial_lines_join(view):
    for chunk in ("ep", "och 1/", "3\nloss: 0.", "5\n"):
        view.append_text(chunk)
    view.flush()
    assert view.text() == "epoch 1/3\nloss: 0.5\n"


def test_follows_tail_unless_scrolled_up(view, qtbot):
    view.append_text("".join(f"line {i}\n" for i in range(500)))
    view.flush()
    bar = view.editor.verticalScrollBar()
    assert bar.value() == bar.maximum() > 0 and view.is_following()
    view.append_text("".join(f"more {i}\n" for i in range(100)))
    qtbot.waitUntil(lambda: "more 99" in view.text(), timeout=1000)
    assert bar.value() == bar.maximum()
    bar.setValue(10)  # the user scrolls up to read
    assert not view.is_following()
    view.append_text("".join(f"later {i}\n" for i in range(100)))
    view.flush()
    assert bar.value() == 10
    view.scroll_to_end()
    view.append_text("end\n")
    view.flush()
    assert bar.value() == bar.maximum()


def test_search_finds_matches_and_navigates(view, qtbot):
    view.append_text("".join(f"step {i} loss {i % 7}\n" for i in range(300)))
    view.append_text("ERROR: out of memory\nsome text\nerror again\n")
    view.flush()
    qtbot.keyClick(view.editor, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert view.search_bar.isVisible()
    qtbot.keyClicks(view.search_edit, "error")
    qtbot.waitUntil(lambda: view.match_count() == 2, timeout=1000)  # case-insensitive
    assert "of 2" in view.match_label.text()
    first = view.current_match()
    qtbot.keyClick(view.search_edit, Qt.Key.Key_Return)
    second = view.current_match()
    assert second == (first + 1) % 2
    assert view.editor.textCursor().selectedText().lower() == "error"
    qtbot.keyClick(view.search_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert view.current_match() == first
    assert len(view.editor.extraSelections()) == 2
    assert view.search("loss 3") == 43
    assert view.search("no such thing") == 0 and view.match_label.text() == "No matches"
    qtbot.keyClick(view.search_edit, Qt.Key.Key_Escape)
    assert not view.search_bar.isVisible()


def test_line_cap_and_note(qtbot):
    v = LogView(max_lines=100)
    qtbot.addWidget(v)
    v.set_source_path("/runs/x/logs/driver.log")
    v.append_text("".join(f"line {i}\n" for i in range(90)))
    v.flush()
    assert not v.note.isVisibleTo(v)
    v.append_text("".join(f"line {i}\n" for i in range(90, 150)))
    v.flush()
    assert v.line_count() == 100
    assert v.text().splitlines()[-1] == "line 149"
    assert v.note.isVisibleTo(v) and "driver.log" in v.note.text()
    v.append_text("".join(f"big {i}\n" for i in range(10_000)))  # more than the cap at once
    v.flush()
    assert v.line_count() == 100 and v.text().splitlines()[-1] == "big 9999"


def test_long_line_cut_in_view(view):
    view.append_text("a" * 1_000_000 + "\nnext\n")
    view.flush()
    first, second = view.text().split("\n")[:2]
    assert first == "a" * MAX_LINE_CHARS + TRUNCATION_MARK
    assert second == "next"
    view.append_text("b" * (MAX_LINE_CHARS - 5))  # a long line arriving in pieces
    view.append_text("c" * 100)
    view.flush()
    view.append_text("d" * 100 + "\n")
    view.flush()
    last = view.text().split("\n")[-2]
    assert last == "b" * (MAX_LINE_CHARS - 5) + "ccccc" + TRUNCATION_MARK


def test_carriage_return_progress_overwrites(view):
    view.append_text("Epoch 1\n 10%|#\r 50%|#####\r")
    view.flush()
    assert view.text() == "Epoch 1\n 50%|#####"
    view.append_text("100%|##########\ndone\n")
    view.flush()
    assert view.text() == "Epoch 1\n100%|##########\ndone\n"


def test_copy(view):
    view.append_text("alpha\nbeta\n")
    view.flush()
    view.copy()  # nothing selected: everything
    assert QApplication.clipboard().text() == "alpha\nbeta\n"
    view.search("beta")
    view.copy()
    assert QApplication.clipboard().text() == "beta"


def test_fed_by_file_tailer(view, tmp_path):
    p = tmp_path / "rank0.log"
    t = FileTailer(p)
    view.append_text(t.read())  # no file yet
    p.write_bytes(b"caf\xc3\xa9 \xff ok\n")
    view.append_text(t.read())
    view.flush()
    assert view.text() == "caf\u00e9 \ufffd ok\n"
