"""Endpoint rows: the only SQL on the ``endpoints`` table. Every state change goes through
:func:`set_state`, which checks it against the transition table and writes it atomically.

Functions take a ``sqlite3.Connection`` in autocommit mode (as ``store.db.connect`` opens it).
"""
from __future__ import annotations

import json
import sqlite3
import time

from ..domain.endpoint_state import INITIAL, EndpointState, can_move

# Columns other than name and state that update() may write.
_FIELDS = frozenset({"kind", "model_ids", "config", "host", "port", "pid", "pid_started",
                     "container_id", "key", "state_detail"})


def get(conn: sqlite3.Connection, name: str) -> dict | None:
    """The endpoint's row as a dict, or None if there is no such endpoint."""
    cur = conn.execute("SELECT * FROM endpoints WHERE name=?", [name])
    row = cur.fetchone()
    return dict(zip([c[0] for c in cur.description], row)) if row else None


def names(conn: sqlite3.Connection) -> list[str]:
    """Every endpoint's name, sorted."""
    return [r[0] for r in conn.execute("SELECT name FROM endpoints ORDER BY name")]


def exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM endpoints WHERE name=?", [name]).fetchone() is not None


def insert(conn: sqlite3.Connection, name: str, kind: str, model_ids: list[str], config: dict,
           key: str, host: str = "127.0.0.1") -> bool:
    """Adds an endpoint in the initial state (Transitioning); False if the name is taken."""
    now = time.time()
    try:
        conn.execute("INSERT INTO endpoints (name, kind, state, model_ids, config, host, key, created, updated) "
                     "VALUES (?,?,?,?,?,?,?,?,?)",
                     [name, kind, INITIAL.value, json.dumps(model_ids), json.dumps(config), host, key,
                      now, now])
    except sqlite3.IntegrityError:
        return False
    return True


def update(conn: sqlite3.Connection, name: str, **fields) -> None:
    """Writes fields other than the state (key, port, process or container identity)."""
    bad = sorted(set(fields) - _FIELDS)
    if bad:
        raise ValueError(f"update() cannot write {', '.join(bad)}: the state changes only through "
                         f"set_state(); writable fields are {', '.join(sorted(_FIELDS))}")
    fields["updated"] = time.time()
    cols = ", ".join(f"{k}=?" for k in fields)
    conn.execute(f"UPDATE endpoints SET {cols} WHERE name=?", [*fields.values(), name])


def set_state(conn: sqlite3.Connection, name: str, new: EndpointState | str, detail: str = "",
              expect: EndpointState | str | None = None, **fields) -> bool:
    """Moves the endpoint to ``new`` (with ``detail`` and other ``fields``) if the transition is
    allowed and, when ``expect`` is given, the endpoint is still in ``expect``. Returns False and
    changes nothing otherwise (the endpoint is gone, another client moved it first, or the move
    is not allowed)."""
    new = EndpointState(new)
    if new is EndpointState.DELETED:
        raise ValueError("an endpoint becomes Deleted by delete(), not set_state()")
    bad = sorted(set(fields) - (_FIELDS - {"state_detail"}))
    if bad:
        raise ValueError(f"set_state() cannot write {', '.join(bad)} (the detail is its own argument)")
    expect = None if expect is None else EndpointState(expect)
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT state FROM endpoints WHERE name=?", [name]).fetchone()
        if row is None or (expect is not None and row[0] != expect.value) or not can_move(row[0], new):
            conn.execute("ROLLBACK")
            return False
        sets = {"state": new.value, "state_detail": detail, **fields, "updated": time.time()}
        cols = ", ".join(f"{k}=?" for k in sets)
        conn.execute(f"UPDATE endpoints SET {cols} WHERE name=?", [*sets.values(), name])
        conn.execute("COMMIT")
        return True
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def delete(conn: sqlite3.Connection, name: str) -> bool:
    """Removes the endpoint's row (it is Deleted from then on); False if there was none."""
    return conn.execute("DELETE FROM endpoints WHERE name=?", [name]).rowcount == 1
