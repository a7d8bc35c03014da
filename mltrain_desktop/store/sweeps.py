"""Sweep parents and their child runs: the parent link, the children's rows and primary metrics.

A sweep's parent is a row in ``runs`` whose ``run_type`` is ``'hyperdrive'``; each child run has
``parent_id`` set to it. Functions take a ``sqlite3.Connection`` in autocommit mode.
"""
from __future__ import annotations

import json
import sqlite3
import time

from ..domain.run_state import ACTIVE
from .transaction import write_transaction

SWEEP_TYPE = "hyperdrive"
_ACTIVE = tuple(s.value for s in ACTIVE)
_CHILD_COLUMNS = ("id", "number", "status", "created", "started", "ended", "tags", "error")


def _marks(values) -> str:
    return ",".join("?" * len(values))


def mark_sweep(conn: sqlite3.Connection, run_id: str) -> None:
    conn.execute("UPDATE runs SET run_type=? WHERE id=?", [SWEEP_TYPE, run_id])


def set_parent(conn: sqlite3.Connection, child_id: str, parent_id: str) -> None:
    conn.execute("UPDATE runs SET parent_id=? WHERE id=?", [parent_id, child_id])


def is_sweep(conn: sqlite3.Connection, run_id: str) -> bool:
    row = conn.execute("SELECT run_type FROM runs WHERE id=?", [run_id]).fetchone()
    return bool(row and row[0] == SWEEP_TYPE)


def parent_of(conn: sqlite3.Connection, run_id: str) -> str | None:
    row = conn.execute("SELECT parent_id FROM runs WHERE id=?", [run_id]).fetchone()
    return row[0] if row else None


def children(conn: sqlite3.Connection, parent_id: str) -> list[dict]:
    """The parent's child runs in submission order: id, number, status, created, started, ended,
    tags (a dict), error."""
    rows = conn.execute(f"SELECT {', '.join(_CHILD_COLUMNS)} FROM runs WHERE parent_id=? ORDER BY created, rowid",
                        [parent_id]).fetchall()
    out = []
    for row in rows:
        d = dict(zip(_CHILD_COLUMNS, row))
        d["tags"] = json.loads(d["tags"] or "{}")
        out.append(d)
    return out


def status_counts(conn: sqlite3.Connection, parent_id: str) -> dict[str, int]:
    return dict(conn.execute("SELECT status, COUNT(*) FROM runs WHERE parent_id=? GROUP BY status",
                             [parent_id]).fetchall())


def primary_points(conn: sqlite3.Connection, parent_id: str, metric: str) -> dict[str, list]:
    """{child id: the values of its rank-0 ``metric`` in step order} for every child (None where a
    point is not a number), children without the metric included with an empty list."""
    out: dict[str, list] = {r: [] for (r,) in conn.execute("SELECT id FROM runs WHERE parent_id=?", [parent_id])}
    rows = conn.execute(
        "SELECT s.run_id, m.value FROM metric_series s JOIN metrics m ON m.series_id = s.id "
        "JOIN runs r ON r.id = s.run_id WHERE r.parent_id=? AND s.name=? AND s.rank=0 "
        "ORDER BY s.run_id, m.step, m.rowid", [parent_id, metric])
    for run_id, value in rows:
        out.setdefault(run_id, []).append(value)
    return out


def metric_names_of_children(conn: sqlite3.Connection, parent_id: str) -> list[str]:
    """The metric names any child logged (to say what they logged when the primary one is missing)."""
    return [n for (n,) in conn.execute(
        "SELECT DISTINCT s.name FROM metric_series s JOIN runs r ON r.id = s.run_id WHERE r.parent_id=? "
        "ORDER BY s.name", [parent_id])]


def note_early_termination(conn: sqlite3.Connection, child_id: str, reason: str) -> bool:
    """Records why the policy stopped a child (in its tags and as an event); False if already noted."""
    with write_transaction(conn):
        row = conn.execute("SELECT tags, status FROM runs WHERE id=?", [child_id]).fetchone()
        if row is None:
            return False
        tags = json.loads(row[0] or "{}")
        if "hyperdrive.early_termination" in tags:
            return False
        tags["hyperdrive.early_termination"] = reason
        conn.execute("UPDATE runs SET tags=?, cancel_requested=1 WHERE id=?", [json.dumps(tags), child_id])
        conn.execute("INSERT INTO run_events (run_id, status, at, detail) VALUES (?,?,?,?)",
                     [child_id, row[1], time.time(), reason])
        return True


def set_tags(conn: sqlite3.Connection, run_id: str, **tags) -> None:
    """Adds ``tags`` to the run's tags (values stored as given)."""
    with write_transaction(conn):
        row = conn.execute("SELECT tags FROM runs WHERE id=?", [run_id]).fetchone()
        if row is None:
            return
        merged = {**json.loads(row[0] or "{}"), **tags}
        conn.execute("UPDATE runs SET tags=? WHERE id=?", [json.dumps(merged), run_id])


def active_sweeps(conn: sqlite3.Connection) -> list[tuple]:
    """(id, status, supervisor_pid, supervisor_started, created) of unfinished sweep parents."""
    return conn.execute(
        "SELECT id, status, supervisor_pid, supervisor_started, created FROM runs "
        f"WHERE run_type=? AND status IN ({_marks(_ACTIVE)})", [SWEEP_TYPE, *_ACTIVE]).fetchall()


def sweep_summaries(conn: sqlite3.Connection, experiment: str | None = None, limit: int | None = None) -> list[dict]:
    """Sweep parents newest first: id, experiment, number, status, created, ended, children (count)."""
    sql = ("SELECT r.id, e.name, r.number, r.status, r.created, r.ended, "
           "(SELECT COUNT(*) FROM runs c WHERE c.parent_id = r.id) FROM runs r "
           "JOIN experiments e ON e.id = r.experiment_id WHERE r.run_type=?")
    args: list = [SWEEP_TYPE]
    if experiment:
        sql += " AND e.name=?"
        args.append(experiment)
    sql += " ORDER BY r.created DESC"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(int(limit))
    cols = ("id", "experiment", "number", "status", "created", "ended", "children")
    return [dict(zip(cols, row)) for row in conn.execute(sql, args)]


def kinds_in_experiment(conn: sqlite3.Connection, experiment_id: int) -> dict[str, tuple[str, str | None]]:
    """{run id: (run_type, parent_id)} of the experiment's runs."""
    return {r: (t, p) for r, t, p in conn.execute(
        "SELECT id, run_type, parent_id FROM runs WHERE experiment_id=?", [experiment_id])}
