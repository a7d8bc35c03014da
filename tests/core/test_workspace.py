"""Workspaces: create, open, from_config, default location, bad folders."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mltrain_desktop.core import Workspace
from mltrain_desktop.core.errors import WorkspaceError
from mltrain_desktop.core.workspace import default_workspace_dir


def test_create_and_open(tmp_path):
    ws = Workspace.create(tmp_path / "a")
    assert (tmp_path / "a" / "workspace.db").is_file()
    assert Workspace(tmp_path / "a") == ws
    assert "local" in ws.compute_targets


def test_create_where_one_exists(tmp_path):
    Workspace.create(tmp_path / "a")
    with pytest.raises(WorkspaceError, match="already exists"):
        Workspace.create(tmp_path / "a")
    assert Workspace.create(tmp_path / "a", exist_ok=True).path == (tmp_path / "a").resolve()


def test_create_under_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(WorkspaceError, match="cannot create a workspace"):
        Workspace.create(tmp_path / "f" / "ws")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to the 'nobody' user")
def test_create_in_a_folder_not_writable():
    import tempfile
    base = tempfile.mkdtemp(prefix="mltrain-ro-")
    os.chmod(base, 0o755)
    locked = Path(base) / "locked"
    locked.mkdir(mode=0o555)
    code = ("from mltrain_desktop.core import Workspace\n"
            "from mltrain_desktop.core.errors import WorkspaceError\n"
            f"try:\n    Workspace.create({str(locked / 'ws')!r})\n"
            "except WorkspaceError as e:\n    print('ERR', e)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "HOME": "/tmp"}
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
                         capture_output=True, text=True, env=env, cwd="/tmp")
    assert "ERR cannot create a workspace" in out.stdout, out.stderr
    assert "Choose a folder you can write to" in out.stdout


def test_from_config_walks_upward(tmp_path, monkeypatch):
    ws = Workspace.create(tmp_path / "ws")
    project = tmp_path / "project"
    (project / "deep" / "er").mkdir(parents=True)
    ws.write_config(project)
    monkeypatch.chdir(project / "deep" / "er")
    assert Workspace.from_config() == ws
    assert json.loads((project / ".mltrain" / "config.json").read_text())["workspace_path"] == str(ws.path)


def test_from_config_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WorkspaceError, match="no .mltrain/config.json"):
        Workspace.from_config()


def test_default_workspace_under_user_data(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRAIN_HOME", str(tmp_path / "home"))
    ws = Workspace.get_default()
    assert ws.path == default_workspace_dir().resolve()
    assert str(ws.path).startswith(str(tmp_path / "home"))
