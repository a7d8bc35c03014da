"""The store's repository functions that the SDK, the engine, the app and the CLI now go through:
slots taken through set_status, transactions that join, run listings and counts, catalog and
registry writes that leave nothing half-done, and the change watch the window polls."""
from __future__ import annotations

import sqlite3

import pytest

from mltrain_desktop.app.watch import ChangeWatch, WorkspaceLost
from mltrain_desktop.core.errors import DatasetError
from mltrain_desktop.core.runs import Run
from mltrain_desktop.domain.run_state import ACTIVE, TERMINAL, RunStatus
from mltrain_desktop.store import catalog, experiments, models, runs as run_rows
from mltrain_desktop.store.transaction import write_transaction


def _queue(ws, run_id: str, compute: str = "local", experiment: str = "exp") -> str:
    """A Queued run row with no supervisor (nothing is started)."""
    exp_id = experiments.ensure(ws.db.conn, experiment)
    run_rows.insert(ws.db.conn, run_id, exp_id, compute, {"entry_script": "job.py"}, {}, "queued by a test", {})
    return run_id


def _events(ws, run_id: str) -> list[str]:
    return [e["status"] for e in run_rows.events(ws.db.conn, run_id)]


def test_the_state_lists_cover_every_state_once():
    assert set(ACTIVE) | set(TERMINAL) == set(RunStatus)
    assert not set(ACTIVE) & set(TERMINAL)
    assert run_rows.ACTIVE_STATES == ("Queued", "Preparing", "Running", "Finalizing")
    assert set(run_rows.TERMINAL_STATES) == {"Completed", "Failed", "Canceled"}
    assert run_rows.SLOT_STATES == ("Preparing", "Running", "Finalizing")


def test_slots_go_first_come_first_served_through_set_status(ws):
    conn = ws.db.conn
    first, second = _queue(ws, "run-a"), _queue(ws, "run-b")
    assert run_rows.take_slot(conn, second, "local", limit=1) == (False, "Queued")  # run-a is ahead
    assert run_rows.take_slot(conn, first, "local", limit=1) == (True, "Preparing")
    assert _events(ws, first) == ["Queued", "Preparing"]  # the transition was recorded like any other
    assert run_rows.take_slot(conn, second, "local", limit=1) == (False, "Queued")  # the slot is held
    assert run_rows.slots_in_use(conn) == {"local": 1}
    for status in (RunStatus.RUNNING, RunStatus.FINALIZING, RunStatus.COMPLETED):
        assert run_rows.set_status(conn, first, status)
    assert run_rows.get(conn, first)["ended"] is not None
    assert run_rows.take_slot(conn, second, "local", limit=1) == (True, "Preparing")
    assert not conn.in_transaction
    assert run_rows.set_status(conn, second, RunStatus.CANCELED)  # no supervisor here to end it


def test_a_slot_is_never_taken_for_a_run_that_is_not_queued(ws):
    conn = ws.db.conn
    rid = _queue(ws, "run-c")
    assert run_rows.set_status(conn, rid, RunStatus.CANCELED, "canceled")
    assert run_rows.take_slot(conn, rid, "local", limit=5) == (False, "Canceled")
    assert _events(ws, rid) == ["Queued", "Canceled"]
    assert run_rows.take_slot(conn, "no-such-run", "local", limit=5) == (False, None)


def test_a_failed_transaction_takes_the_joined_status_change_with_it(ws):
    conn = ws.db.conn
    rid = _queue(ws, "run-d")
    with pytest.raises(RuntimeError, match="boom"):
        with write_transaction(conn):
            assert run_rows.set_status(conn, rid, RunStatus.PREPARING)  # joins, does not commit
            raise RuntimeError("boom")
    assert run_rows.get_status(conn, rid) == "Queued"
    assert _events(ws, rid) == ["Queued"]
    assert not conn.in_transaction


def test_a_refused_transition_changes_nothing(ws):
    rid = _queue(ws, "run-e")
    assert not run_rows.set_status(ws.db.conn, rid, RunStatus.COMPLETED)  # Queued cannot complete
    assert run_rows.get_status(ws.db.conn, rid) == "Queued"
    assert _events(ws, rid) == ["Queued"]


def test_run_list_and_counts(ws):
    for i, exp in enumerate(("alpha", "beta", "alpha")):
        _queue(ws, f"run-{i}", experiment=exp)
    run_rows.set_status(ws.db.conn, "run-1", RunStatus.FAILED, "failed")
    assert Run.count_by_status(ws) == {"Queued": 2, "Failed": 1}
    listed = Run.list(ws)
    assert sorted(r.id for r in listed) == ["run-0", "run-1", "run-2"]
    assert {r.experiment.name for r in Run.list(ws, experiment="alpha")} == {"alpha"}
    assert [r.id for r in Run.list(ws, status="Failed")] == ["run-1"]
    assert len(Run.list(ws, limit=2)) == 2
    assert Run.list(ws, limit=0) == []
    assert Run.list(ws, experiment="nobody") == []
    assert [r["number"] for r in run_rows.summaries(ws.db.conn, experiment="alpha")] == [2, 1]


def test_deleting_a_run_removes_its_rows_and_keeps_the_others(ws):
    conn = ws.db.conn
    keep, gone = _queue(ws, "run-keep"), _queue(ws, "run-gone")
    run_rows.set_status(conn, gone, RunStatus.CANCELED)
    conn.execute("INSERT INTO metric_series (run_id, name, rank) VALUES (?, 'loss', 0)", [gone])
    run_rows.delete(conn, gone)
    assert run_rows.get(conn, gone) is None and _events(ws, gone) == []
    assert conn.execute("SELECT COUNT(*) FROM metric_series WHERE run_id=?", [gone]).fetchone()[0] == 0
    assert run_rows.get(conn, keep) is not None


def test_a_dataset_name_is_not_reused_without_create_new_version(ws):
    conn = ws.db.conn
    manifest = [("a.txt", "0" * 64, 3)]
    assert catalog.add_version(conn, "d", "first", manifest, "m1", ["a.txt"], create_new_version=False) == 1
    with pytest.raises(DatasetError, match="create_new_version=True"):
        catalog.add_version(conn, "d", "second", manifest, "m2", ["a.txt"], create_new_version=False)
    assert catalog.version_numbers(conn, "d") == [1]
    assert catalog.add_version(conn, "d", "second", manifest, "m2", ["a.txt"], create_new_version=True) == 2
    assert catalog.find_version(conn, "d")[2] == 2 and catalog.find_version(conn, "d", 1)[3] == "first"
    assert catalog.find_version(conn, "d", 7) is None
    assert [v[2] for v in catalog.versions(conn, latest_only=True)] == [2]


def test_a_model_version_whose_files_could_not_be_placed_is_not_recorded(ws):
    conn = ws.db.conn

    def fail(version):
        raise OSError(f"disk full while placing version {version}")
    with pytest.raises(OSError, match="version 1"):
        models.add_version(conn, "m", fail, framework=None, framework_version=None, resource_configuration={},
                           tags={}, description="", run_id=None, source_path="x", file_count=1, total_bytes=1)
    assert models.get(conn, "m") is None
    version = models.add_version(conn, "m", lambda v: f"models/m/{v}/x", framework="TensorFlow",
                                 framework_version="2", resource_configuration={}, tags={"k": "v"},
                                 description="", run_id=None, source_path="x", file_count=1, total_bytes=1)
    assert version == 1 and models.get(conn, "m")[10] == "models/m/1/x"


def test_the_change_watch_names_what_another_client_changed(ws):
    watch = ChangeWatch(ws.path)
    try:
        assert {"runs", "experiments", "datasets", "compute", "models", "endpoints"} <= watch.poll()
        assert watch.poll() is None  # nothing committed since
        other = sqlite3.connect(str(ws.path / "workspace.db"), isolation_level=None)
        other.execute("INSERT INTO experiments (name, created) VALUES ('from-elsewhere', 1)")
        other.close()
        assert watch.poll() == {"experiments", "metrics"}
        _queue(ws, "run-w", experiment="from-elsewhere")
        assert watch.poll() == {"runs", "metrics"}
    finally:
        watch.close()


def test_the_change_watch_says_when_the_database_is_gone(tmp_path):
    from mltrain_desktop.core import Workspace
    ws = Workspace.create(tmp_path / "doomed")
    watch = ChangeWatch(ws.path)
    try:
        watch.poll()
        ws.close()
        (ws.path / "workspace.db").unlink()
        with pytest.raises(WorkspaceLost, match="was removed"):
            watch.poll()
    finally:
        watch.close()


def test_filters_build_one_where_clause():
    from mltrain_desktop.store.sql import where
    assert where(("a=?", None), ("flag", False)) == ("", [])
    assert where(("a=?", 1), ("b=?", "x"), ("flag", True)) == (" WHERE a=? AND b=? AND flag", [1, "x"])
    assert where(("name=?", "")) == (" WHERE name=?", [""])  # an empty name is a filter, not "any"


def test_an_empty_dataset_name_finds_no_versions(ws):
    catalog.add_version(ws.db.conn, "d", "", [("a", "0" * 64, 1)], "m", [], create_new_version=False)
    assert catalog.versions(ws.db.conn, "") == []
    assert len(catalog.versions(ws.db.conn)) == 1
