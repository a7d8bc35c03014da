"""The workspace database: migrations, refusal of newer schemas and non-databases, concurrent clients."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from mltrain_desktop.core import Workspace
from mltrain_desktop.core.errors import WorkspaceError
from mltrain_desktop.store.db import StoreError, connect, schema_version
from mltrain_desktop.store.migrations import LATEST


def test_fresh_database_is_migrated_and_wal(tmp_path):
    db = connect(tmp_path / "w.db")
    assert schema_version(db) == LATEST
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"runs", "metrics", "models", "dataset_versions", "run_events"} <= set(db.table_names())


def test_reopening_does_not_reapply(tmp_path):
    connect(tmp_path / "w.db").execute("INSERT INTO experiments (name, created) VALUES ('x', 1)")
    db = connect(tmp_path / "w.db")
    assert db.execute("SELECT name FROM experiments").fetchall() == [("x",)]


def test_newer_schema_is_refused_untouched(tmp_path):
    p = tmp_path / "w.db"
    connect(p).execute(f"PRAGMA user_version = {LATEST + 5}")
    before = p.read_bytes()
    with pytest.raises(StoreError, match="newer MLTrain Desktop"):
        connect(p)
    assert p.read_bytes() == before


def test_newer_schema_not_in_wal_mode_is_left_byte_for_byte(tmp_path):
    p = tmp_path / "w.db"
    c = sqlite3.connect(p)
    c.execute("CREATE TABLE t (x)")
    c.execute(f"PRAGMA user_version = {LATEST + 1}")
    c.close()
    before = p.read_bytes()
    with pytest.raises(StoreError, match="newer"):
        connect(p)
    assert p.read_bytes() == before and not (tmp_path / "w.db-wal").exists()


def test_not_a_database(tmp_path):
    (tmp_path / "workspace.db").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not an MLTrain workspace database"):
        Workspace(tmp_path)
    assert (tmp_path / "workspace.db").read_bytes().startswith(b"this is not sqlite")


def test_folder_that_is_not_a_workspace(tmp_path):
    with pytest.raises(WorkspaceError, match="not an MLTrain workspace"):
        Workspace(tmp_path)


def test_two_processes_write_at_once(tmp_path):
    Workspace.create(tmp_path / "ws")
    code = textwrap.dedent(f"""
        import sys
        from mltrain_desktop.core import Workspace, Experiment
        ws = Workspace({str(tmp_path / 'ws')!r})
        for i in range(60):
            Experiment(ws, f"exp-{{sys.argv[1]}}-{{i}}")
            with ws.transaction() as c:
                c.execute("INSERT INTO workspace_info VALUES (?, ?)", [f"k{{sys.argv[1]}}-{{i}}", "v"])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(n)]) for n in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    ws = Workspace(tmp_path / "ws")
    assert ws.db.execute("SELECT COUNT(*) FROM experiments").fetchone()[0] == 180
    assert ws.db.execute("SELECT COUNT(*) FROM workspace_info WHERE key LIKE 'k%'").fetchone()[0] == 180
