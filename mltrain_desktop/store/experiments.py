"""Experiment rows: named groups of runs."""
from __future__ import annotations

import sqlite3
import time

from .transaction import write_transaction


def get_id(conn: sqlite3.Connection, name: str) -> int | None:
    row = conn.execute("SELECT id FROM experiments WHERE name=?", [name]).fetchone()
    return row[0] if row else None


def ensure(conn: sqlite3.Connection, name: str) -> int:
    """The experiment's id, adding the experiment first if there is none of that name."""
    found = get_id(conn, name)
    if found is not None:
        return found
    with write_transaction(conn):
        conn.execute("INSERT OR IGNORE INTO experiments (name, created) VALUES (?, ?)", [name, time.time()])
    return get_id(conn, name)


def names(conn: sqlite3.Connection) -> list[str]:
    """Every experiment's name, sorted."""
    return [r for (r,) in conn.execute("SELECT name FROM experiments ORDER BY name")]
