"""store.endpoints on a real workspace database: rows, and state changes checked against the
transition table (a refused or stale change writes nothing)."""
from __future__ import annotations

import pytest

from mltrain_desktop.domain.endpoint_state import EndpointState as S
from mltrain_desktop.store import endpoints as rows


def _snapshot(conn, name):
    return conn.execute("SELECT * FROM endpoints WHERE name=?", [name]).fetchone()


@pytest.fixture
def conn(ws):
    return ws.db.conn


def test_insert_get_names_and_a_taken_name(conn):
    assert rows.insert(conn, "svc-b", "local", ["m:1"], {"port": 0}, key="k1")
    assert rows.insert(conn, "svc-a", "docker", ["m:2"], {"compute_target": "d"}, key="k2")
    r = rows.get(conn, "svc-b")
    assert r["state"] == "Transitioning" and r["kind"] == "local" and r["key"] == "k1"
    assert r["model_ids"] == '["m:1"]' and r["host"] == "127.0.0.1" and r["created"] == r["updated"]
    assert rows.names(conn) == ["svc-a", "svc-b"]
    assert rows.exists(conn, "svc-a") and not rows.exists(conn, "nope") and rows.get(conn, "nope") is None
    before = _snapshot(conn, "svc-b")
    assert not rows.insert(conn, "svc-b", "docker", ["other:9"], {}, key="k3")   # taken: nothing changes
    assert _snapshot(conn, "svc-b") == before


def test_allowed_changes_are_written_with_detail_and_fields(conn):
    rows.insert(conn, "svc", "local", ["m:1"], {}, key="k")
    assert rows.set_state(conn, "svc", S.HEALTHY, "", expect=S.TRANSITIONING, port=4321)
    r = rows.get(conn, "svc")
    assert (r["state"], r["port"]) == ("Healthy", 4321)
    assert rows.set_state(conn, "svc", "Unhealthy", "the service process is no longer running")
    assert rows.get(conn, "svc")["state_detail"] == "the service process is no longer running"
    assert rows.set_state(conn, "svc", S.STOPPED, "stopped by the user")
    assert rows.set_state(conn, "svc", S.STOPPED, "stopped again")            # staying is allowed
    assert rows.set_state(conn, "svc", S.TRANSITIONING, "starting", pid=123, pid_started=1.5)
    assert rows.get(conn, "svc")["pid"] == 123


@pytest.mark.parametrize("path,refused", [
    ([S.STOPPED], S.HEALTHY),
    ([S.FAILED], S.UNHEALTHY),
    ([S.HEALTHY], S.TRANSITIONING),
    ([S.HEALTHY], S.FAILED),
])
def test_a_refused_change_writes_nothing(conn, path, refused):
    rows.insert(conn, "svc", "local", ["m:1"], {}, key="k")
    for st in path:
        assert rows.set_state(conn, "svc", st, f"now {st}")
    before = _snapshot(conn, "svc")
    assert not rows.set_state(conn, "svc", refused, "should not land", port=9)
    assert _snapshot(conn, "svc") == before


def test_a_stale_change_loses_to_the_client_that_moved_first(conn):
    rows.insert(conn, "svc", "local", ["m:1"], {}, key="k")
    assert rows.set_state(conn, "svc", S.STOPPED, "stopped by another client")
    before = _snapshot(conn, "svc")
    # a client that saw Transitioning and now finds the ready file must not revive it
    assert not rows.set_state(conn, "svc", S.FAILED, "late", expect=S.TRANSITIONING)
    assert _snapshot(conn, "svc") == before
    assert not rows.set_state(conn, "gone", S.STOPPED, "no such endpoint")
    assert not conn.in_transaction


def test_bad_calls_say_what_to_do_and_change_nothing(conn):
    rows.insert(conn, "svc", "local", ["m:1"], {}, key="k")
    before = _snapshot(conn, "svc")
    with pytest.raises(ValueError, match="only through set_state"):
        rows.update(conn, "svc", state="Healthy")
    with pytest.raises(ValueError, match="by delete"):
        rows.set_state(conn, "svc", S.DELETED)
    with pytest.raises(ValueError, match="unknown endpoint state 'Running'"):
        rows.set_state(conn, "svc", "Running")
    with pytest.raises(ValueError, match="cannot write bogus"):
        rows.set_state(conn, "svc", S.FAILED, "x", bogus=1)
    with pytest.raises(ValueError, match="detail is its own argument"):
        rows.set_state(conn, "svc", S.FAILED, "x", state_detail="y")
    assert _snapshot(conn, "svc") == before and not conn.in_transaction


def test_update_and_delete(conn):
    rows.insert(conn, "svc", "local", ["m:1"], {}, key="old")
    rows.update(conn, "svc", key="new", port=8080)
    r = rows.get(conn, "svc")
    assert (r["key"], r["port"], r["state"]) == ("new", 8080, "Transitioning")
    assert rows.delete(conn, "svc") and rows.get(conn, "svc") is None
    assert not rows.delete(conn, "svc")
