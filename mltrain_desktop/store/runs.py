"""Run rows, their state changes and inputs: every transition is checked and timestamped atomically.

Functions take a ``sqlite3.Connection`` in autocommit mode (as ``store.db.connect`` opens it).
"""
from __future__ import annotations

import json
import sqlite3
import time

from ..domain.run_state import ACTIVE, TERMINAL, RunStatus, can_move
from .sql import where
from .transaction import write_transaction

ACTIVE_STATES = tuple(s.value for s in ACTIVE)
TERMINAL_STATES = tuple(s.value for s in RunStatus if s in TERMINAL)
# A run holds one of its compute target's slots from Preparing until it ends.
SLOT_STATES = tuple(s for s in ACTIVE_STATES if s != RunStatus.QUEUED)

_SUMMARY_COLUMNS = ("id", "experiment", "number", "status", "compute", "created", "started", "ended",
                    "spec", "tags", "error", "parent_id", "run_type")


def _marks(values) -> str:
    return ",".join("?" * len(values))


# ------------------------------------------------------------------------------ state changes

def set_status(conn: sqlite3.Connection, run_id: str, new: RunStatus | str, detail: str = "", **fields) -> bool:
    """Moves a run to ``new`` if the transition is allowed; returns False (and changes nothing) if not.

    Inside a transaction the caller holds, the move is part of it."""
    new = RunStatus(new)
    with write_transaction(conn):
        row = conn.execute("SELECT status FROM runs WHERE id=?", [run_id]).fetchone()
        if row is None or not can_move(row[0], new):
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
        return True


def take_slot(conn: sqlite3.Connection, run_id: str, compute: str, limit: int) -> tuple[bool, str | None]:
    """Moves a Queued run to Preparing when ``compute`` has a free slot for it, first come first
    served: runs queued before it get the free slots first. Returns (whether it moved, the run's
    status now); (False, "Queued") means no slot yet, ask again later; a None status, no such run."""
    with write_transaction(conn):
        found = conn.execute("SELECT status, created FROM runs WHERE id=?", [run_id]).fetchone()
        if found is None or found[0] != RunStatus.QUEUED:
            return False, (found[0] if found else None)
        created = found[1]
        busy = conn.execute(f"SELECT COUNT(*) FROM runs WHERE compute=? AND status IN ({_marks(SLOT_STATES)})",
                            [compute, *SLOT_STATES]).fetchone()[0]
        ahead = conn.execute(
            "SELECT COUNT(*) FROM runs WHERE compute=? AND status=? AND "
            "(created < ? OR (created = ? AND rowid < (SELECT rowid FROM runs WHERE id=?)))",
            [compute, RunStatus.QUEUED.value, created, created, run_id]).fetchone()[0]
        if busy + ahead >= limit or not set_status(conn, run_id, RunStatus.PREPARING):
            return False, RunStatus.QUEUED.value
        return True, RunStatus.PREPARING.value


def update_fields(conn: sqlite3.Connection, run_id: str, **fields) -> None:
    cols = ", ".join(f"{k}=?" for k in fields)
    vals = [json.dumps(v) if isinstance(v, (dict, list)) else v for v in fields.values()]
    conn.execute(f"UPDATE runs SET {cols} WHERE id=?", [*vals, run_id])


def request_cancel(conn: sqlite3.Connection, run_id: str) -> None:
    conn.execute("UPDATE runs SET cancel_requested=1 WHERE id=?", [run_id])


def cancel_requested(conn: sqlite3.Connection, run_id: str) -> bool:
    row = conn.execute("SELECT cancel_requested FROM runs WHERE id=?", [run_id]).fetchone()
    return bool(row and row[0])


def cancel_requested_at(db_path, run_id: str) -> bool | None:
    """:func:`cancel_requested` over a read-only connection of its own to the database file at
    ``db_path``, for code that holds no connection; None when the file cannot be read."""
    import urllib.parse
    try:
        conn = sqlite3.connect(f"file:{urllib.parse.quote(str(db_path))}?mode=ro", uri=True, timeout=5)
        try:
            return cancel_requested(conn, run_id)
        finally:
            conn.close()
    except sqlite3.Error:
        return None


# ------------------------------------------------------------------------------ one run

def get_status(conn: sqlite3.Connection, run_id: str) -> str | None:
    row = conn.execute("SELECT status FROM runs WHERE id=?", [run_id]).fetchone()
    return row[0] if row else None


def get(conn: sqlite3.Connection, run_id: str) -> dict | None:
    """The run's row as a dict, or None if there is no such run."""
    cur = conn.execute("SELECT * FROM runs WHERE id=?", [run_id])
    row = cur.fetchone()
    return dict(zip([c[0] for c in cur.description], row)) if row else None


def experiment_of(conn: sqlite3.Connection, run_id: str) -> str | None:
    """The name of the run's experiment, or None if there is no such run."""
    row = conn.execute("SELECT e.name FROM runs r JOIN experiments e ON e.id=r.experiment_id WHERE r.id=?",
                       [run_id]).fetchone()
    return row[0] if row else None


def events(conn: sqlite3.Connection, run_id: str) -> list[dict]:
    rows = conn.execute("SELECT status, at, detail FROM run_events WHERE run_id=? ORDER BY id", [run_id])
    return [{"status": s, "at": a, "detail": d} for s, a, d in rows]


def inputs(conn: sqlite3.Connection, run_id: str) -> list[dict]:
    """The run's dataset inputs by name: {input, mode, dataset, version}."""
    rows = conn.execute(
        "SELECT i.name, i.mode, d.name, v.version FROM run_inputs i JOIN dataset_versions v "
        "ON v.id=i.dataset_version_id JOIN datasets d ON d.id=v.dataset_id WHERE i.run_id=? ORDER BY i.name",
        [run_id])
    return [{"input": n, "mode": m, "dataset": d, "version": v} for n, m, d, v in rows]


def insert(conn: sqlite3.Connection, run_id: str, experiment_id: int, compute: str, spec: dict, tags: dict,
           detail: str, run_inputs: dict[str, dict]) -> int:
    """Records a new Queued run (with its first event and its dataset inputs); returns its number."""
    now = time.time()
    with write_transaction(conn):
        number = conn.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM runs WHERE experiment_id=?",
                              [experiment_id]).fetchone()[0]
        conn.execute("INSERT INTO runs (id, experiment_id, number, status, compute, created, spec, tags) "
                     "VALUES (?,?,?,?,?,?,?,?)",
                     [run_id, experiment_id, number, RunStatus.QUEUED.value, compute, now, json.dumps(spec),
                      json.dumps(tags)])
        conn.execute("INSERT INTO run_events (run_id, status, at, detail) VALUES (?,?,?,?)",
                     [run_id, RunStatus.QUEUED.value, now, detail])
        conn.executemany("INSERT INTO run_inputs (run_id, name, dataset_version_id, mode) VALUES (?,?,?,?)",
                         [(run_id, n, a["version_id"], a["mode"]) for n, a in run_inputs.items()])
    return number


def delete(conn: sqlite3.Connection, run_id: str) -> None:
    """Removes the run's rows: metrics, inputs, events and the run itself, in one transaction."""
    from . import metrics
    with write_transaction(conn):
        metrics.delete_for_run(conn, run_id)
        for table in ("run_inputs", "run_events"):
            conn.execute(f"DELETE FROM {table} WHERE run_id=?", [run_id])
        conn.execute("DELETE FROM runs WHERE id=?", [run_id])


# ------------------------------------------------------------------------------ supervisors

def claim_supervisor(conn: sqlite3.Connection, run_id: str, seen_pid) -> bool:
    """Marks the run as being given a new supervisor (pid -1, with the time of the claim in
    supervisor_started), unless another client did so first."""
    return conn.execute("UPDATE runs SET supervisor_pid=-1, supervisor_started=? WHERE id=? AND supervisor_pid IS ?",
                        [time.time(), run_id, seen_pid]).rowcount == 1


def record_supervisor(conn: sqlite3.Connection, run_id: str, pid: int, create_time: float) -> None:
    conn.execute("UPDATE runs SET supervisor_pid=?, supervisor_started=? WHERE id=?", [pid, create_time, run_id])


def record_first_supervisor(conn: sqlite3.Connection, run_id: str, pid: int, create_time: float | None) -> None:
    """Records the spawned supervisor unless it already recorded itself."""
    conn.execute("UPDATE runs SET supervisor_pid=COALESCE(supervisor_pid, ?), "
                 "supervisor_started=COALESCE(supervisor_started, ?) WHERE id=?", [pid, create_time, run_id])


# ------------------------------------------------------------------------------ many runs

def active_run_ids(conn: sqlite3.Connection) -> list[str]:
    return [r for (r,) in conn.execute(f"SELECT id FROM runs WHERE status IN ({_marks(ACTIVE_STATES)})",
                                       ACTIVE_STATES)]


def active_runs_with_target_kind(conn: sqlite3.Connection) -> list[tuple]:
    """(id, status, supervisor_pid, supervisor_started, backend_state, created, target kind) of unfinished runs."""
    return conn.execute(
        "SELECT r.id, r.status, r.supervisor_pid, r.supervisor_started, r.backend_state, r.created, "
        "COALESCE(t.kind, '') FROM runs r LEFT JOIN compute_targets t ON t.name = r.compute "
        f"WHERE r.status IN ({_marks(ACTIVE_STATES)})", ACTIVE_STATES).fetchall()


def ids_in_experiment(conn: sqlite3.Connection, experiment_id: int, status: str | None = None) -> list[str]:
    """The experiment's run ids, newest first (only those in ``status`` when given)."""
    clause, args = where(("experiment_id=?", experiment_id), ("status=?", status or None))
    return [r for (r,) in conn.execute("SELECT id FROM runs" + clause + " ORDER BY created DESC", args)]


def summaries(conn: sqlite3.Connection, experiment: str | None = None, status: str | None = None,
              limit: int | None = None) -> list[dict]:
    """Runs newest first as dicts: id, experiment (its name), number, status, compute, created,
    started, ended, spec and tags (JSON text as stored), error, parent_id (the sweep of a child run)
    and run_type ('hyperdrive' for a sweep, else 'run')."""
    sql = ("SELECT r.id, e.name, r.number, r.status, r.compute, r.created, r.started, r.ended, r.spec, r.tags, "
           "r.error, r.parent_id, r.run_type FROM runs r JOIN experiments e ON e.id = r.experiment_id")
    clause, args = where(("e.name = ?", experiment or None), ("r.status = ?", status or None))
    sql += clause + " ORDER BY r.created DESC"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(int(limit))
    return [dict(zip(_SUMMARY_COLUMNS, row)) for row in conn.execute(sql, args)]


def count_by_status(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())


def slots_in_use(conn: sqlite3.Connection) -> dict[str, int]:
    """{compute target: runs holding one of its slots}."""
    return dict(conn.execute(f"SELECT compute, COUNT(*) FROM runs WHERE status IN ({_marks(SLOT_STATES)}) "
                             "GROUP BY compute", SLOT_STATES).fetchall())


def unfinished_runs_on(conn: sqlite3.Connection, compute: str) -> list[tuple[str, str]]:
    """(id, status) of the runs on ``compute`` that have not ended, oldest first."""
    return [tuple(r) for r in conn.execute(
        f"SELECT id, status FROM runs WHERE compute=? AND status IN ({_marks(ACTIVE_STATES)}) ORDER BY created",
        [compute, *ACTIVE_STATES])]


def unfinished_on(conn: sqlite3.Connection, compute: str) -> int:
    """How many runs on ``compute`` have not ended."""
    return conn.execute(f"SELECT COUNT(*) FROM runs WHERE compute=? AND status IN ({_marks(ACTIVE_STATES)})",
                        [compute, *ACTIVE_STATES]).fetchone()[0]
