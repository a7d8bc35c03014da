"""Compute target rows: their kinds, configurations and the state their last probe found."""
from __future__ import annotations

import json
import sqlite3
import time

from .transaction import write_transaction


def get(conn: sqlite3.Connection, name: str) -> dict | None:
    """{name, kind, config, state, detail, probe, created} (config and probe parsed), or None."""
    row = conn.execute("SELECT name, kind, config, state, state_detail, probe, created FROM compute_targets "
                       "WHERE name=?", [name]).fetchone()
    if row is None:
        return None
    return {"name": row[0], "kind": row[1], "config": json.loads(row[2]), "state": row[3], "detail": row[4],
            "probe": json.loads(row[5]), "created": row[6]}


def names(conn: sqlite3.Connection) -> list[str]:
    """Every target's name, sorted."""
    return [r for (r,) in conn.execute("SELECT name FROM compute_targets ORDER BY name")]


def exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM compute_targets WHERE name=?", [name]).fetchone() is not None


def configs_of_kind(conn: sqlite3.Connection, kind: str) -> list[dict]:
    return [json.loads(c) for (c,) in conn.execute("SELECT config FROM compute_targets WHERE kind=?", [kind])]


def put_creating(conn: sqlite3.Connection, name: str, kind: str, config: dict) -> None:
    """Adds the target, or replaces its kind and configuration, in state Creating (until probed)."""
    now = time.time()
    with write_transaction(conn):
        conn.execute(
            "INSERT INTO compute_targets (name, kind, config, state, state_detail, created, updated) "
            "VALUES (?, ?, ?, 'Creating', '', ?, ?) ON CONFLICT(name) DO UPDATE SET kind=excluded.kind, "
            "config=excluded.config, state='Creating', updated=excluded.updated",
            [name, kind, json.dumps(config), now, now])


def record_probe(conn: sqlite3.Connection, name: str, state: str, detail: str, probe: dict) -> None:
    with write_transaction(conn):
        conn.execute("UPDATE compute_targets SET state=?, state_detail=?, probe=?, updated=? WHERE name=?",
                     [state, detail, json.dumps(probe), time.time(), name])


def delete(conn: sqlite3.Connection, name: str) -> None:
    with write_transaction(conn):
        conn.execute("DELETE FROM compute_targets WHERE name=?", [name])
