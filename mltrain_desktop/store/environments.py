"""Environment rows: the interpreters, venvs and images built for runs, keyed by a hash of their spec."""
from __future__ import annotations

import sqlite3
import time


def record(conn: sqlite3.Connection, env_hash: str, kind: str, spec: str, location: str,
           state: str = "Ready") -> None:
    """Adds the environment, or updates where it is, its state and when it was last used."""
    now = time.time()
    conn.execute(
        "INSERT INTO environments (hash, kind, spec, location, state, created, last_used) VALUES (?,?,?,?,?,?,?) "
        "ON CONFLICT(hash) DO UPDATE SET location=excluded.location, state=excluded.state, "
        "last_used=excluded.last_used",
        [env_hash, kind, spec, location, state, now, now])


def start_build(conn: sqlite3.Connection, env_hash: str, kind: str, spec: str, location: str) -> None:
    """Records a (re)build of the environment: state Building, created and used now."""
    now = time.time()
    conn.execute("INSERT OR REPLACE INTO environments (hash, kind, spec, location, state, created, last_used) "
                 "VALUES (?, ?, ?, ?, 'Building', ?, ?)", [env_hash, kind, spec, location, now, now])


def mark_ready(conn: sqlite3.Connection, env_hash: str) -> None:
    conn.execute("UPDATE environments SET state='Ready' WHERE hash=?", [env_hash])


def touch(conn: sqlite3.Connection, env_hash: str) -> None:
    """Notes that a run uses the environment now."""
    conn.execute("UPDATE environments SET last_used=? WHERE hash=?", [time.time(), env_hash])
