"""The workspace's own facts (``workspace_info``: name, created) and how many of each thing it holds."""
from __future__ import annotations

import sqlite3

from .transaction import write_transaction


def get(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM workspace_info WHERE key=?", [key]).fetchone()
    return row[0] if row else None


def put(conn: sqlite3.Connection, key: str, value: str, replace: bool = True) -> None:
    """Stores ``value`` under ``key``; keeps an existing value when not ``replace``."""
    verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
    with write_transaction(conn):
        conn.execute(f"{verb} INTO workspace_info (key, value) VALUES (?, ?)", [key, value])


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """experiments, datasets, dataset_versions, compute_targets, models (names), model_versions."""
    row = conn.execute(
        "SELECT (SELECT COUNT(*) FROM experiments), (SELECT COUNT(*) FROM datasets), "
        "(SELECT COUNT(*) FROM dataset_versions), (SELECT COUNT(*) FROM compute_targets), "
        "(SELECT COUNT(DISTINCT name) FROM models), (SELECT COUNT(*) FROM models)").fetchone()
    keys = ("experiments", "datasets", "dataset_versions", "compute_targets", "models", "model_versions")
    return dict(zip(keys, row))
