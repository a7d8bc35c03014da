"""Shared fixtures: a private MLTRAIN_HOME, fresh workspaces, tiny job scripts."""
from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _private_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("mltrain-home")
    os.environ["MLTRAIN_HOME"] = str(home)
    os.environ.setdefault("XDG_CONFIG_HOME", str(home / "config"))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    yield home


@pytest.fixture
def ws(tmp_path):
    from mltrain_desktop.core import Workspace
    w = Workspace.create(tmp_path / "ws")
    yield w
    _cancel_leftovers(w)


def _cancel_leftovers(w):
    """Nothing a test started may outlive it: cancel unfinished runs."""
    from mltrain_desktop.core.runs import Run
    rows = w.db.execute("SELECT id FROM runs WHERE status NOT IN ('Completed','Failed','Canceled')").fetchall()
    for (rid,) in rows:
        try:
            Run.get(w, rid).cancel(wait_seconds=20)
        except Exception:  # noqa: BLE001
            pass


@pytest.fixture
def make_script(tmp_path):
    """Writes a job script into its own source folder; returns the folder."""
    def _make(body: str, name: str = "job.py", folder: str = "src") -> Path:
        d = tmp_path / folder
        d.mkdir(exist_ok=True)
        (d / name).write_text(textwrap.dedent(body))
        return d
    return _make


@pytest.fixture
def open_window(qtbot, tmp_path, monkeypatch):
    """``open_window(path)``: the real window, offscreen, with private settings, opened on the
    workspace at ``path`` (what a second client does); shut down after the test."""
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("MLTRAIN_HOME", str(tmp_path / "window-home"))
    from mltrain_desktop.gui.app import configure_settings
    from mltrain_desktop.gui.main_window import MainWindow
    configure_settings()
    opened = []

    def _open(path):
        window = MainWindow()
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        opened.append(window)
        window.open_workspace(str(path))
        qtbot.waitUntil(lambda: window.workspace_path == str(path), timeout=20_000)
        return window
    yield _open
    for window in opened:
        window.shutdown()


def python_exe() -> str:
    return sys.executable
