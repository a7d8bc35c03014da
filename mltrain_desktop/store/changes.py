"""What changed in a workspace database since a reader last looked, cheaply, per topic.

``PRAGMA data_version`` tells a connection that another one committed; a small aggregate per
topic (runs, experiments, datasets, compute, models, endpoints) then says which kinds of rows
those commits touched.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from .db import BUSY_TIMEOUT_MS, DB_FILE
from .runs import TERMINAL_STATES

_TERMINAL = ",".join(f"'{s}'" for s in TERMINAL_STATES)
TOPIC_QUERIES = {
    "runs": "SELECT (SELECT COUNT(*) FROM runs), (SELECT MAX(id) FROM run_events), "
            "(SELECT COALESCE(SUM(cancel_requested), 0) FROM runs "
            f"WHERE status NOT IN ({_TERMINAL}))",
    "experiments": "SELECT COUNT(*), MAX(id) FROM experiments",
    "datasets": "SELECT (SELECT COUNT(*) FROM datasets), (SELECT MAX(id) FROM dataset_versions), "
                "(SELECT COUNT(*) FROM dataset_versions)",
    "compute": "SELECT COUNT(*), MAX(updated), GROUP_CONCAT(state) FROM compute_targets",
    "models": "SELECT COUNT(*), MAX(id) FROM models",
    "endpoints": "SELECT COUNT(*), MAX(updated), GROUP_CONCAT(name || ':' || state) FROM endpoints",
}
TOPICS = tuple(TOPIC_QUERIES)


def open_reader(workspace_dir: str | Path) -> sqlite3.Connection:
    """A plain connection for one thread (busy timeout as the store's; no migrations)."""
    conn = sqlite3.connect(str(Path(workspace_dir) / DB_FILE), timeout=BUSY_TIMEOUT_MS / 1000,
                           isolation_level=None, check_same_thread=True)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def data_version(conn: sqlite3.Connection) -> int:
    """Changes whenever another connection has committed to the database."""
    return conn.execute("PRAGMA data_version").fetchone()[0]


def signature(conn: sqlite3.Connection, topic: str) -> tuple:
    """A value that changes when the topic's rows do (() for a table this schema lacks)."""
    try:
        return tuple(conn.execute(TOPIC_QUERIES[topic]).fetchone())
    except sqlite3.OperationalError as exc:
        if "no such" not in str(exc):
            raise
        return ()
