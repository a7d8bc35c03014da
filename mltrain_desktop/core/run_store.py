"""Run rows and their state changes: every transition is checked and timestamped atomically."""
from __future__ import annotations

import json
import sqlite3
import time

from ..engine.status import RunStatus, can_move

ACTIVE_STATES = ("Queued", "Preparing", "Running", "Finalizing")


def set_status(conn: sqlite3.Connection, run_id: str, new: RunStatus | str, detail: str = "", **fields) -> bool:
    """Moves a run to ``new`` if the transition is allowed; returns False (and changes nothing) if not."""
    new = RunStatus(new)
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT status FROM runs WHERE id=?", [run_id]).fetchone()
        if row is None or not can_move(row[0], new):
            conn.execute("ROLLBACK")
            return False
        now = time.time()
        sets = {"status": new.value, **fields}
        if new == RunStatus.RUNNING:
            sets.setdefault("started", now)
        if new.is_terminal():
            sets.setdefault("ended", now)
        cols = ", ".join(f"{k}=?" for k in sets)
        conn.execute(f"UPDATE runs SET {cols} WHERE id=?", [*sets.values(), run_id])
        conn.execute("INSERT INTO run_events (run_id, status, at, detail) VALUES (?,?,?,?)",
                     [run_id, new.value, now, detail])
        conn.execute("COMMIT")
        return True
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def update_fields(conn: sqlite3.Connection, run_id: str, **fields) -> None:
    cols = ", ".join(f"{k}=?" for k in fields)
    vals = [json.dumps(v) if isinstance(v, (dict, list)) else v for v in fields.values()]
    conn.execute(f"UPDATE runs SET {cols} WHERE id=?", [*vals, run_id])


def get_status(conn: sqlite3.Connection, run_id: str) -> str | None:
    row = conn.execute("SELECT status FROM runs WHERE id=?", [run_id]).fetchone()
    return row[0] if row else None
